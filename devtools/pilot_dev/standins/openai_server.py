"""Offline stand-in for the OpenAI Chat Completions API.

Speaks ``POST /v1/chat/completions`` the way the official ``openai`` client calls it and
answers with JSON derived from the request: for a ``json_schema`` response format it
builds an object valid against that schema. Schemas with a registered handler (see
``SCHEMA_HANDLERS``; ``positioning_report`` is built in) get a content-aware answer read
from the user message; any other schema gets the generic filler.

Every answer is labelled: header ``x-pilot-sandbox: 1`` and model ``"sandbox-" + model``.

Fault injection (the next ``count`` chat requests fail, then it clears itself):

* ``POST /_sandbox/faults`` ``{"mode": M, "count": N, "delay_s": S?}`` with M one of
  ``timeout`` (sleep ``delay_s``, default ``timeout_delay_s``, before answering),
  ``http_429``, ``http_500``, ``invalid_json`` (200 with truncated JSON) and
  ``schema_violation`` (200 with JSON missing a required field and carrying an extra one);
* ``DELETE /_sandbox/faults`` clears; ``GET /_sandbox/faults`` shows what is armed;
* ``GET /_sandbox/requests`` -> ``{"count": n, "requests": [...]}`` (chat requests only),
  ``DELETE /_sandbox/requests`` resets the log.

In-process: ``OpenAIStandIn(port=0).start()`` then ``.url``, ``.inject(mode, count)``,
``.stop()``. As a process: ``python -m pilot_dev.standins.openai_server --port 8787``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SANDBOX_HEADER = "x-pilot-sandbox"
MODEL_PREFIX = "sandbox-"
FAULT_MODES = ("timeout", "http_429", "http_500", "invalid_json", "schema_violation")
MAX_LOGGED_REQUESTS = 1000

JSON = dict[str, Any]


@dataclass(slots=True)
class ChatRequest:
    """What a schema handler gets: the request plus the pieces it usually needs."""

    model: str
    messages: list[JSON]
    body: JSON
    schema_name: str | None = None
    schema: JSON | None = None
    user_text: str = ""
    numbers: list[str] = field(default_factory=list)


SchemaHandler = Callable[[ChatRequest], JSON]
# Schema name -> handler. Add one per structured answer the product asks for.
SCHEMA_HANDLERS: dict[str, SchemaHandler] = {}


def register_schema_handler(name: str) -> Callable[[SchemaHandler], SchemaHandler]:
    def wrap(func: SchemaHandler) -> SchemaHandler:
        SCHEMA_HANDLERS[name] = func
        return func

    return wrap


# --------------------------------------------------------------------------- filler

_NUMBER_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?![\w.])")


def _text_of(message: JSON) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type": "text", "text": ...}]
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def _resolve(schema: JSON, root: JSON) -> JSON:
    ref = schema.get("$ref")
    if not isinstance(ref, str) or not ref.startswith("#/"):
        return schema
    node: Any = root
    for part in ref[2:].split("/"):
        node = node.get(part, {}) if isinstance(node, dict) else {}
    return node if isinstance(node, dict) else {}


def _pick_type(schema: JSON) -> str | None:
    kind = schema.get("type")
    if isinstance(kind, list):
        non_null = [k for k in kind if k != "null"]
        return non_null[0] if non_null else "null"
    if kind is None and "properties" in schema:
        return "object"
    return kind if isinstance(kind, str) else None


def _fill_string(schema: JSON, hint: str, numbers: list[str]) -> str:
    if schema.get("format") == "date-time":
        return "2025-01-01T00:00:00Z"
    text = f"sandbox {hint}"
    if numbers:
        text += f" based on {', '.join(numbers[:3])} from the request"
    max_len = schema.get("maxLength")
    return text[:max_len] if isinstance(max_len, int) else text


def _fill_number(schema: JSON) -> float:
    low = schema.get("minimum", schema.get("exclusiveMinimum"))
    high = schema.get("maximum", schema.get("exclusiveMaximum"))
    value = float(low) + (1 if "exclusiveMinimum" in schema else 0) if low is not None else 1.0
    return min(value, float(high)) if high is not None else value


def fill_schema(
    schema: JSON,
    root: JSON | None = None,
    hint: str = "value",
    numbers: list[str] | None = None,
    depth: int = 0,
) -> Any:
    """A value valid against ``schema`` (the subset OpenAI structured outputs use)."""
    root = root if root is not None else schema
    numbers = numbers or []
    schema = _resolve(schema, root)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        options = [o for o in schema.get(key, []) if _pick_type(_resolve(o, root)) != "null"]
        if options:
            return fill_schema(options[0], root, hint, numbers, depth + 1)
    kind = _pick_type(schema)
    if kind == "object":
        props: JSON = schema.get("properties", {})
        if depth > 8:
            return {}
        return {k: fill_schema(v, root, k, numbers, depth + 1) for k, v in props.items()}
    if kind == "array":
        count = max(int(schema.get("minItems", 1)), 1) if depth <= 8 else 0
        item = schema.get("items", {})
        return [fill_schema(item, root, hint, numbers, depth + 1) for _ in range(count)]
    if kind == "string":
        return _fill_string(schema, hint, numbers)
    if kind == "integer":
        return int(_fill_number(schema))
    if kind == "number":
        return _fill_number(schema)
    if kind == "boolean":
        return True
    return None


# --------------------------------------------------------------------------- report


def _tagged_json(text: str, tag: str) -> Any:
    m = re.search(rf"<{tag}>\s*(.*?)\s*</{tag}>", text, re.DOTALL)
    if not m:
        return None
    try:
        return json.loads(m.group(1))
    except json.JSONDecodeError:
        return None


def _first_json_object(text: str) -> JSON | None:
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", text):
        try:
            obj, _ = decoder.raw_decode(text, m.start())
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict) and "main" in obj:
            return obj
    return None


def _v(node: Any) -> Any:
    return node.get("value") if isinstance(node, dict) else None


@dataclass(slots=True)
class _ReportWriter:
    keys: set[str]
    strengths: list[JSON] = field(default_factory=list)
    weaknesses: list[JSON] = field(default_factory=list)
    threats: list[JSON] = field(default_factory=list)
    recs: list[JSON] = field(default_factory=list)

    def allows(self, metric: str) -> bool:
        return not self.keys or metric in self.keys  # no key list: nothing to check against

    def add(self, bucket: list[JSON], text: str, metric: str) -> None:
        if self.allows(metric):
            bucket.append({"text": text, "metric": metric})

    def rec(self, action: str, rationale: str, metric: str, impact: str) -> None:
        if self.allows(metric):
            self.recs.append(
                {
                    "priority": len(self.recs) + 1,
                    "action": action,
                    "rationale": rationale,
                    "metric": metric,
                    "expected_impact": impact,
                }
            )


_RANK_WORDS = {
    "price": ("lowest price", "highest price"),
    "bsr": ("best sales rank", "weakest sales rank"),
    "rating": ("highest rating", "lowest rating"),
    "review_count": ("most reviews", "fewest reviews"),
    "review_velocity": ("fastest review growth", "slowest review growth"),
}
_RANK_ACTIONS = {
    "price": ("Test a coupon to close the price gap", "price_gap_pct"),
    "bsr": ("Raise Sponsored Products bids on the rival's winning keywords", "bsr_log_ratio"),
    "rating": ("Fix the most cited complaint in 1-3 star reviews", "rating_gap"),
    "review_count": ("Enrol in Vine to add reviews", "review_count_gap"),
    "review_velocity": ("Request reviews on every eligible order", "review_velocity_gap"),
}


def _rank_points(w: _ReportWriter, ranks: JSON) -> None:
    for metric, (good, bad) in _RANK_WORDS.items():
        pos = ranks.get(metric) or {}
        rank, of = pos.get("rank"), pos.get("of") or 0
        if not rank or of < 2:
            continue
        key = f"main_rank.{metric}"
        if rank == 1:
            w.add(w.strengths, f"[sandbox] {good} in the group (rank 1 of {of}).", key)
        elif rank == of:
            w.add(w.weaknesses, f"[sandbox] {bad} in the group (rank {rank} of {of}).", key)
            action, gap_key = _RANK_ACTIONS[metric]
            w.rec(
                f"[sandbox] {action}.",
                f"Rank {rank} of {of} on {metric}.",
                gap_key if gap_key in w.keys else key,
                "medium",
            )


def _fallback_metric(keys: set[str]) -> str:
    for key in ("main_rank.price", "availability"):
        if key in keys:
            return key
    return sorted(keys)[0] if keys else "availability"


@register_schema_handler("positioning_report")
def positioning_report(req: ChatRequest) -> JSON:
    """Report written from the comparison JSON in the user message, citing real keys."""
    comparison = _tagged_json(req.user_text, "comparison") or _first_json_object(req.user_text)
    if not isinstance(comparison, dict) or not isinstance(comparison.get("main"), dict):
        raise LookupError("no comparison JSON in the user message")
    keys = _tagged_json(req.user_text, "metric_keys") or comparison.get("metric_keys") or []
    w = _ReportWriter(keys={str(k) for k in keys})
    group: JSON = comparison.get("group") or {}
    _rank_points(w, group.get("main_rank") or {})
    for asin in group.get("cutting_prices") or []:
        w.add(w.threats, f"[sandbox] {asin} is cutting prices.", "cutting_prices")
    for asin in group.get("bsr_improving") or []:
        w.add(w.threats, f"[sandbox] {asin}'s sales rank is improving.", "bsr_improving")
    features = _tagged_json(req.user_text, "features") or {}
    for gap in (features.get("main_lacks") or [])[:2]:
        name = gap.get("name", "")
        w.add(w.weaknesses, f"[sandbox] Competitors advertise {name}.", f"features.{name}")
    if not w.recs:
        w.rec(
            "[sandbox] Hold price and keep monitoring the group.",
            "No gap large enough to act on.",
            _fallback_metric(w.keys),
            "low",
        )
    main: JSON = comparison["main"]
    summary = (
        f"[sandbox] {main.get('asin')} over {comparison.get('window_days')} days: price "
        f"{_v(main.get('price'))}, BSR {_v(main.get('bsr_rank'))}, rating "
        f"{_v(main.get('rating'))} from {_v(main.get('review_count'))} reviews, against "
        f"{len(comparison.get('competitors') or [])} competitors."
    )
    return {
        "summary": summary,
        "strengths": w.strengths,
        "weaknesses": w.weaknesses,
        "threats": w.threats,
        "recommendations": w.recs,
    }


# --------------------------------------------------------------------------- listing copy

_QUOTED_TITLE_RE = re.compile(r'Rewritten title \(\d+ chars\): "(?P<title>.+)"\s*$', re.DOTALL)
_COPY_PROMO_RE = re.compile(
    r"(?<![a-z0-9])(best[- ]?sell(?:er|ing)|top[- ]?rated|best|#\s*1|sale|cheapest|"
    r"free shipping|deals?)(?![a-z0-9])",
    re.IGNORECASE,
)
_COPY_TITLE_MAX = 200


def _copy_request(text: str) -> tuple[JSON, list[JSON]]:
    """The listing and the suggestions from the llm_copy_messages user message."""
    head, sep, tail = text.partition("Apply these suggestions:")
    if not sep:
        raise LookupError("no suggestions in the user message")
    listing = json.loads(head.split("Current listing:", 1)[1])
    wanted = json.loads(tail)
    if not isinstance(listing, dict) or not isinstance(wanted, list):
        raise ValueError("unexpected listing copy request")
    return listing, [w for w in wanted if isinstance(w, dict)]


def _cut(text: str, limit: int) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    return text[: limit + 1].rsplit(" ", 1)[0].rstrip(" ,;-|")


_RULE_BULLETS_RE = re.compile(r"Rewrite the bullets from the listing's own facts:\n"
                              r"(?P<bullets>(?:- .*(?:\n|$))+)")
_SENTENCE_RE = re.compile(r"(?<=[.!?。])\s+")


def _shingles(text: str) -> set[tuple[str, ...]]:
    words = re.findall(r"[^\W_]+", text.lower())
    return {tuple(words[i : i + 4]) for i in range(max(0, len(words) - 3))}


@register_schema_handler("listing_copy")
def listing_copy(req: ChatRequest) -> JSON:
    """Copy written from the request and nothing else, so it obeys the grounding rule: the
    title the rules proposed (else the current one), brand first and at most 200
    characters; the bullets the rules built from the listing's own facts (else the current
    bullets tightened to 250 characters); a description made of the current description's
    sentences that the bullets do not already say. It invents no term and no number."""
    listing, wanted = _copy_request(req.user_text)
    brand = str(listing.get("brand") or "").strip()
    title = str(listing.get("title") or "").strip()
    bullets: list[str] = []
    for w in wanted:
        change = str(w.get("change") or "")
        m = _QUOTED_TITLE_RE.search(change)
        if w.get("type") == "title" and m:
            title = m.group("title")
        b = _RULE_BULLETS_RE.search(change)
        if w.get("type") == "description" and b:
            bullets = [line[2:].strip() for line in b.group("bullets").splitlines()
                       if line.startswith("- ")]
    title = _COPY_PROMO_RE.sub(" ", title)
    if brand and not title.lower().replace(" ", "").startswith(brand.lower().replace(" ", "")):
        title = f"{brand} {title}"
    title = _cut(title, _COPY_TITLE_MAX) or brand or "Untitled"
    if not bullets:
        bullets = [_cut(str(b), 250) for b in listing.get("bullets") or [] if str(b).strip()]
    bullets = bullets[:5]
    said = _shingles(" ".join([title, *bullets]))
    kept = []
    for sent in _SENTENCE_RE.split(" ".join(str(listing.get("description") or "").split())):
        sh = _shingles(sent)
        if sent and not (sh and len(sh & said) * 2 > len(sh)):
            kept.append(sent)
    description = _cut(" ".join(kept), 2000)
    return {"title": title, "bullets": bullets, "description": description}


# --------------------------------------------------------------------------- answering


def _parse_request(body: JSON) -> ChatRequest:
    messages = [m for m in body.get("messages", []) if isinstance(m, dict)]
    user_text = "\n".join(_text_of(m) for m in messages if m.get("role") == "user")
    req = ChatRequest(
        model=str(body.get("model", "unknown")),
        messages=messages,
        body=body,
        user_text=user_text,
        numbers=_NUMBER_RE.findall(user_text)[:20],
    )
    fmt = body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        req.schema_name = spec.get("name")
        req.schema = spec.get("schema") if isinstance(spec.get("schema"), dict) else {}
    return req


def _schema_answer(req: ChatRequest) -> JSON:
    schema = req.schema or {}
    handler = SCHEMA_HANDLERS.get(req.schema_name or "")
    if handler is not None:
        try:
            answer = handler(req)
        except (LookupError, ValueError, TypeError, KeyError):
            answer = None
        # A handler out of step with the schema it was asked for falls back to the filler.
        if answer is not None and set(answer) == set(schema.get("properties", answer)):
            return answer
    filled = fill_schema(schema, schema, req.schema_name or "value", req.numbers)
    return filled if isinstance(filled, dict) else {"value": filled}


def answer_content(req: ChatRequest) -> str:
    """The assistant message content for a request, before any fault is applied."""
    if req.schema is not None:
        return json.dumps(_schema_answer(req))
    fmt = req.body.get("response_format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_object":
        return json.dumps({"sandbox": True, "numbers": req.numbers[:5]})
    return (
        f"[sandbox] Received {len(req.messages)} messages; the user message has "
        f"{len(req.user_text)} characters."
    )


def _violate(content: str, schema: JSON | None) -> str:
    try:
        data = json.loads(content)
    except json.JSONDecodeError:
        data = {}
    if not isinstance(data, dict):
        data = {"value": data}
    required = (schema or {}).get("required") or list(data)
    if required:
        data.pop(required[0], None)
    data["sandbox_unexpected_field"] = True
    return json.dumps(data)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)  # rough English average, enough for cost plumbing


def _completion(req: ChatRequest, content: str, seq: int) -> JSON:
    prompt = sum(_tokens(_text_of(m)) + 4 for m in req.messages)
    completion = _tokens(content)
    return {
        "id": f"chatcmpl-sandbox-{seq}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_PREFIX + req.model,
        "system_fingerprint": "sandbox",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": None},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


# --------------------------------------------------------------------------- server


@dataclass(slots=True)
class _Fault:
    mode: str
    remaining: int
    delay_s: float


class _State:
    def __init__(self, timeout_delay_s: float, retry_after_ms: int) -> None:
        self.lock = threading.Lock()
        self.fault: _Fault | None = None
        self.requests: list[JSON] = []
        self.count = 0
        self.seq = itertools.count(1)
        self.timeout_delay_s = timeout_delay_s
        self.retry_after_ms = retry_after_ms
        self.stopping = threading.Event()

    def arm(self, mode: str, count: int, delay_s: float | None) -> JSON:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; use one of {', '.join(FAULT_MODES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self.fault = _Fault(mode, count, self.timeout_delay_s if delay_s is None else delay_s)
        return self.fault_state()

    def clear(self) -> None:
        with self.lock:
            self.fault = None

    def fault_state(self) -> JSON:
        f = self.fault
        return (
            {"mode": f.mode, "remaining": f.remaining, "delay_s": f.delay_s}
            if f
            else {"mode": None, "remaining": 0, "delay_s": None}
        )

    def take(self, body: JSON) -> _Fault | None:
        """Log a chat request and consume one armed fault, if any."""
        with self.lock:
            self.count += 1
            fault = self.fault
            entry = {
                "n": self.count,
                "received_at": time.time(),
                "body": body,
                "fault": fault.mode if fault else None,
            }
            self.requests.append(entry)
            del self.requests[:-MAX_LOGGED_REQUESTS]
            if fault is None:
                return None
            fault.remaining -= 1
            if fault.remaining <= 0:
                self.fault = None
            return _Fault(fault.mode, 1, fault.delay_s)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], state: _State) -> None:
        super().__init__(addr, _Handler)
        self.state = state


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # keep test output clean; the request log is at /_sandbox/requests

    # -- plumbing
    def _send(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        try:
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header(SANDBOX_HEADER, "1")
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. after its timeout)

    def _body(self) -> JSON | None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            data = json.loads(raw or b"{}")
        except json.JSONDecodeError:
            return None
        return data if isinstance(data, dict) else None

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        err = {"message": message, "type": kind, "param": None, "code": code}
        retry = {"retry-after-ms": str(self.server.state.retry_after_ms)}
        self._send(status, {"error": err}, retry if status in (429, 500) else None)

    # -- routes
    def do_GET(self) -> None:
        state = self.server.state
        path = self.path.split("?")[0]
        if path == "/_sandbox/requests":
            with state.lock:
                self._send(200, {"count": state.count, "requests": list(state.requests)})
        elif path == "/_sandbox/faults":
            self._send(200, state.fault_state())
        elif path in ("/healthz", "/v1/health"):
            self._send(200, {"ok": True, "sandbox": True})
        elif path == "/v1/models":
            models = ["gpt-4o-mini", "gpt-4o", "gpt-4.1-mini"]
            self._send(
                200,
                {
                    "object": "list",
                    "data": [
                        {"id": MODEL_PREFIX + m, "object": "model", "owned_by": "sandbox"}
                        for m in models
                    ],
                },
            )
        else:
            self._error(404, f"no route {path}", "invalid_request_error")

    def do_DELETE(self) -> None:
        state = self.server.state
        path = self.path.split("?")[0]
        if path == "/_sandbox/faults":
            state.clear()
            self._send(200, state.fault_state())
        elif path == "/_sandbox/requests":
            with state.lock:
                state.requests.clear()
                state.count = 0
            self._send(200, {"count": 0, "requests": []})
        else:
            self._error(404, f"no route {path}", "invalid_request_error")

    def do_POST(self) -> None:
        path = self.path.split("?")[0]
        body = self._body()
        if body is None:
            self._error(400, "body must be a JSON object", "invalid_request_error")
        elif path == "/_sandbox/faults":
            self._post_fault(body)
        elif path.rstrip("/") == "/v1/chat/completions":
            self._chat(body)
        else:
            self._error(404, f"no route {path}", "invalid_request_error")

    def _post_fault(self, body: JSON) -> None:
        try:
            delay = body.get("delay_s")
            state = self.server.state.arm(
                str(body.get("mode")),
                int(body.get("count", 1)),
                float(delay) if delay is not None else None,
            )
        except (TypeError, ValueError) as exc:
            self._send(400, {"error": str(exc)})
            return
        self._send(200, state)

    def _chat(self, body: JSON) -> None:
        state = self.server.state
        if not isinstance(body.get("messages"), list) or not body.get("model"):
            self._error(400, "'model' and 'messages' are required", "invalid_request_error")
            return
        fault = state.take(body)
        # Hold the answer past the client's timeout; stop() cuts the wait short.
        if fault and fault.mode == "timeout" and state.stopping.wait(fault.delay_s):
            return
        if fault and fault.mode == "http_429":
            self._error(
                429, "Sandbox: rate limit injected", "rate_limit_error", "rate_limit_exceeded"
            )
            return
        if fault and fault.mode == "http_500":
            self._error(500, "Sandbox: server error injected", "server_error")
            return
        req = _parse_request(body)
        content = answer_content(req)
        if fault and fault.mode == "invalid_json":
            content = content[: max(1, len(content) // 2)]  # cut mid-object: not JSON
            if content.startswith("["):
                content = "{" + content
        elif fault and fault.mode == "schema_violation":
            content = _violate(content, req.schema)
        self._send(200, _completion(req, content, next(state.seq)))


class OpenAIStandIn:
    """The stand-in server in a background thread (for tests and the local stack)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout_delay_s: float = 5.0,
        retry_after_ms: int = 10,
    ) -> None:
        self._state = _State(timeout_delay_s, retry_after_ms)
        self._server = _Server((host, port), self._state)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL for ``OpenAI(base_url=...)``, including ``/v1``."""
        return f"http://{self.host}:{self.port}/v1"

    def start(self) -> OpenAIStandIn:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="openai-standin",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        self._state.stopping.set()
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._server.server_close()

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def __enter__(self) -> OpenAIStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- test controls, same as the HTTP ones
    def inject(self, mode: str, count: int = 1, delay_s: float | None = None) -> None:
        self._state.arm(mode, count, delay_s)

    def clear_faults(self) -> None:
        self._state.clear()

    @property
    def request_count(self) -> int:
        return self._state.count

    @property
    def requests(self) -> list[JSON]:
        with self._state.lock:
            return list(self._state.requests)

    def reset_requests(self) -> None:
        with self._state.lock:
            self._state.requests.clear()
            self._state.count = 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Offline OpenAI Chat Completions stand-in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8787, help="0 picks a free port")
    parser.add_argument(
        "--timeout-delay",
        type=float,
        default=5.0,
        help="seconds the 'timeout' fault holds an answer",
    )
    args = parser.parse_args(argv)
    standin = OpenAIStandIn(args.host, args.port, timeout_delay_s=args.timeout_delay)
    # Tests and scripts read this line to learn the port when --port 0 is used.
    print(f"openai stand-in listening on {standin.url}", flush=True)
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.stop()


if __name__ == "__main__":
    main()
