"""Offline stand-in for the Apify API: the subset `apify-client` uses to run a product actor.

Serves items from the synthetic catalog (`apify_catalog`) in the default actor's exact output
format, so the real adapter, the real `apify-client` and the real normalizer run unchanged
against it. The stdlib's ThreadingHTTPServer (and orjson): it starts in milliseconds, in a
thread or as a process.

    standin = ApifyStandIn(port=0).start()      # in-process, background thread
    ApifyClient("any-token", api_url=standin.url)
    standin.stop()

    python -m pilot_dev.standins.apify_server --port 8765 [--replay FILE[,FILE...]]

Replay (APIFY_REPLAY, `standin.replay(Recording(files))`): every run, of any actor id, is
answered from recorded dataset exports instead of the catalog (see `replay.py`).

Endpoints (Bearer token required, any non-empty token is accepted):
    POST /v2/acts/{actorId}/runs, POST /v2/actors/{actorId}/runs   (?waitForFinish<=60, timeout)
    GET  /v2/actor-runs/{runId}?waitForFinish=N                     (N capped at 60)
    POST /v2/actor-runs/{runId}/abort
    GET  /v2/datasets/{datasetId}/items?offset&limit&clean&desc&fields&omit
    POST /v2/acts/{actorId}/run-sync-get-dataset-items              (408 after 300 s)
Control plane (no auth, for tests and demos):
    POST   /_sandbox/faults  {"mode": ..., "count": N, "delay_s": s}  DELETE /_sandbox/faults
    GET    /_sandbox/runs    runs started, with their URLs          GET /_sandbox/requests
    GET    /_sandbox/replay  the recording in use, if any

Fault modes. Run faults apply to the next `count` runs started:
    run_failed      run ends FAILED (exit code 1) with the first half of its items
    run_timed_out   run ends TIMED-OUT with the first half of its items
    slow            run stays RUNNING for `delay_s` seconds (default 2) before it succeeds
    missing_items   the run's last item is missing from its dataset
    malformed_items item 0 becomes a non-object (an HTML string) and item 1 an object with
                    none of the actor's fields (only asin, url and an error text)
Request faults apply to the next `count` /v2 requests:
    http_429        429 rate-limit-exceeded          http_500   500 internal-server-error

A catalog run keeps its URLs and day, not its items: an item is a pure function of (URL,
day), so each dataset page is rendered when it is read. Memory is then flat in the size of a
refresh (a 100,000-product refresh used to hold every item it served). Only the last 1,000
runs are kept (older ones, and their datasets, answer 404).
Unknown products (catalog returns None) get the actor's not-found item: statusCode 404,
statusMessage "NOT_FOUND", url, asin. A run's day is today (UTC) unless the input carries
"sandboxDate": "YYYY-MM-DD". Items of actor ids containing "junglee" are served in the
junglee/amazon-crawler shape.
"""

from __future__ import annotations

import argparse
import gzip
import json
import secrets
import signal
import string
import threading
import time
import zlib
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, overload
from urllib.parse import parse_qs, unquote, urlsplit

import orjson

from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.product_ref import InvalidProductRef, parse_product_ref
from pilot_dev.standins.apify_catalog import item_for, not_found_item
from pilot_dev.standins.apify_search_catalog import search_items
from pilot_dev.standins.replay import Recording
from pilot_dev.standins.served import ServedStandIn

__all__ = ["FAULT_MODES", "ApifyStandIn", "main"]

RUN_FAULTS = ("run_failed", "run_timed_out", "slow", "missing_items", "malformed_items")
REQUEST_FAULTS = ("http_429", "http_500")
FAULT_MODES: tuple[str, ...] = RUN_FAULTS + REQUEST_FAULTS
KNOWN_ACTORS = frozenset({"axesso_data~amazon-product-details-scraper", "junglee~amazon-crawler"})
# keyword search actors (apify_search_catalog): input {"keywords", "marketplace"}
SEARCH_ACTORS = frozenset({"automly~amazon-search-scraper"})
TERMINAL = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
MAX_WAIT_S = 60.0  # the platform never holds a waitForFinish request longer
SYNC_WAIT_S = 300.0  # run-sync-* answers 408 after this
NO_LIMIT = 999_999_999_999  # what the platform reports as the limit when none was given
MAX_RUNS = 1_000  # older runs are forgotten (memory): a day of 100,000 products is 500 runs
_ID_CHARS = string.ascii_letters + string.digits


def _new_id() -> str:
    return "".join(secrets.choice(_ID_CHARS) for _ in range(17))


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


class ApiError(Exception):
    """An error answer in Apify's shape: {"error": {"type", "message"}} with an HTTP status."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


class _Dataset(Sequence[Any]):
    """A run's items, each rendered when it is read: a catalog item is a pure function of
    its URL and day, so a run keeps its URLs, not its items. `replaced` holds the items a
    fault changed, and `size` may cut the end."""

    def __init__(self, count: int, render: Callable[[int], Any]) -> None:
        self.size, self.render = count, render
        self.replaced: dict[int, Any] = {}

    @classmethod
    def catalog(cls, urls: list[str], day: date, junglee: bool) -> _Dataset:
        return cls(len(urls), lambda i: _item_for_url(urls[i], day, junglee))

    @classmethod
    def listed(cls, items: Sequence[Any]) -> _Dataset:
        kept = list(items)  # a recording's or a search's items, given whole
        return cls(len(kept), kept.__getitem__)

    def __len__(self) -> int:
        return self.size

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(self.size))]
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(index)
        return self.replaced[index] if index in self.replaced else self.render(index)


@dataclass
class _Run:
    id: str
    actor_id: str
    started: float
    finish_at: float
    final_status: str
    status_message: str
    items: _Dataset
    urls: list[str]
    day: date
    timeout_secs: int
    input_len: int
    fault: str | None
    cost_per_item: float
    dataset_id: str = field(default_factory=_new_id)
    kv_id: str = field(default_factory=_new_id)
    rq_id: str = field(default_factory=_new_id)
    aborted_at: float | None = None

    def status(self, now: float) -> str:
        if self.aborted_at is not None:
            return "ABORTED"
        return self.final_status if now >= self.finish_at else "RUNNING"

    def finished_at(self, now: float) -> float | None:
        if self.aborted_at is not None:
            return self.aborted_at
        return self.finish_at if now >= self.finish_at else None

    def visible_items(self, now: float) -> Sequence[Any]:
        # Items appear when the run ends; an aborted run keeps what it had (nothing here).
        return self.items if self.status(now) in ("SUCCEEDED", "FAILED", "TIMED-OUT") else ()

    def to_json(self, now: float) -> dict[str, Any]:
        status = self.status(now)
        finished = self.finished_at(now)
        run_secs = (finished if finished is not None else now) - self.started
        items = len(self.visible_items(now))
        return {
            "id": self.id,
            "actId": self.actor_id,
            "userId": "sandboxUser000001",
            "startedAt": _iso(self.started),
            "finishedAt": _iso(finished) if finished is not None else None,
            "status": status,
            "statusMessage": self.status_message if status in TERMINAL else "Crawling pages",
            "isStatusMessageTerminal": status in TERMINAL,
            "meta": {"origin": "API", "userAgent": "amazon-pilot sandbox"},
            "stats": {
                "inputBodyLen": self.input_len,
                "restartCount": 0,
                "resurrectCount": 0,
                "durationMillis": int(run_secs * 1000),
                "runTimeSecs": round(run_secs, 3),
                "computeUnits": round(run_secs / 3600 * 4, 6),
            },
            "options": {
                "build": "latest",
                "timeoutSecs": self.timeout_secs,
                "memoryMbytes": 4096,
                "diskMbytes": 8192,
            },
            "buildId": "sandboxBuild00001",
            "buildNumber": "0.0.1",
            "exitCode": None if status not in TERMINAL else (0 if status == "SUCCEEDED" else 1),
            "defaultDatasetId": self.dataset_id,
            "defaultKeyValueStoreId": self.kv_id,
            "defaultRequestQueueId": self.rq_id,
            "usageTotalUsd": round(self.cost_per_item * items, 6),
            "sandbox": True,
        }


class _State:
    """Everything the server remembers; one lock, held only for bookkeeping."""

    def __init__(self, cost_per_item: float, max_page_size: int | None) -> None:
        self.lock = threading.Lock()
        self.runs: dict[str, _Run] = {}
        self.datasets: dict[str, _Run] = {}
        self.faults: dict[str, list[float]] = {}  # mode -> [remaining, delay_s]
        self.requests: deque[dict[str, Any]] = deque(maxlen=10_000)
        self.cost_per_item = cost_per_item
        self.max_page_size = max_page_size
        self.recording: Recording | None = None  # APIFY_REPLAY: answer from exports

    def inject(self, mode: str, count: int = 1, delay_s: float | None = None) -> None:
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; known: {', '.join(FAULT_MODES)}")
        if count < 1:
            raise ValueError("count must be at least 1")
        with self.lock:
            self.faults[mode] = [count, 2.0 if delay_s is None else float(delay_s)]

    def clear(self) -> None:
        with self.lock:
            self.faults.clear()

    def take(self, modes: tuple[str, ...]) -> tuple[str, float] | None:
        """Consume one use of the first armed fault among `modes`."""
        with self.lock:
            for mode in modes:
                slot = self.faults.get(mode)
                if slot is not None:
                    slot[0] -= 1
                    if slot[0] <= 0:
                        del self.faults[mode]
                    return mode, slot[1]
        return None


# --------------------------------------------------------------------------------------------
# Building runs


def _input_urls(payload: Any) -> list[str]:
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid-input", "Input is not valid: the input must be a JSON object")
    raw = payload.get("urls")
    if raw is None and "categoryOrProductUrls" in payload:
        raw = payload["categoryOrProductUrls"]
    if not isinstance(raw, list) or not raw:
        raise ApiError(
            400, "invalid-input", "Input is not valid: Field input.urls must be a non-empty array"
        )
    urls: list[str] = []
    for entry in raw:
        url = entry.get("url") if isinstance(entry, dict) else entry
        if not isinstance(url, str):
            raise ApiError(
                400, "invalid-input", "Input is not valid: every entry of input.urls must be a URL"
            )
        urls.append(url)
    return urls


def _input_search(payload: Any) -> tuple[list[str], str]:
    """A search actor's input: its keywords and marketplace ("amazon.com" or "com")."""
    if not isinstance(payload, dict):
        raise ApiError(400, "invalid-input", "Input is not valid: the input must be a JSON object")
    keywords = payload.get("keywords")
    if (not isinstance(keywords, list) or not keywords
            or not all(isinstance(k, str) and k.strip() for k in keywords)):
        raise ApiError(400, "invalid-input",
                       "Input is not valid: Field input.keywords must be a non-empty array")
    marketplace = str(payload.get("marketplace") or "amazon.com").removeprefix("amazon.")
    return list(keywords), marketplace


def _input_day(payload: dict[str, Any]) -> date:
    raw = payload.get("sandboxDate")
    if raw is None:
        return datetime.now(UTC).date()
    try:
        return date.fromisoformat(str(raw))
    except ValueError as exc:
        raise ApiError(
            400, "invalid-input", f"Input is not valid: sandboxDate {raw!r} is not YYYY-MM-DD"
        ) from exc


def _item_for_url(url: str, day: date, junglee: bool) -> Any:
    try:
        asin, marketplace = parse_product_ref(url)
    except InvalidProductRef:
        return {"statusCode": 400, "statusMessage": "INVALID_URL", "url": url, "asin": None,
                "sandbox": True}
    item = item_for(asin, marketplace, day)
    if item is None:
        return not_found_item(url, asin)
    item["url"] = url if url.startswith("https://www.amazon.") else item["url"]
    return _to_junglee(item) if junglee else item


def _to_junglee(item: dict[str, Any]) -> dict[str, Any]:
    """The same product as junglee/amazon-crawler reports it (numbers, not text)."""
    snap = normalize_item(item)
    offer = snap.price is not None
    return {
        "title": snap.title,
        "url": item.get("url"),
        "asin": snap.asin,
        "brand": snap.brand,
        "stars": snap.rating,
        "reviewsCount": snap.review_count,
        "price": {"value": snap.price, "currency": "$"} if offer else None,
        "listPrice": {"value": snap.list_price, "currency": "$"} if snap.list_price else None,
        "inStock": snap.in_stock,
        "seller": {"name": snap.buy_box_seller, "id": snap.buy_box_seller_id} if offer else None,
        "features": snap.bullet_points,
        "highResolutionImages": snap.image_urls,
        "description": snap.description,
        "bestsellerRanks": [{"rank": snap.bsr_rank, "category": snap.bsr_category}]
        + [{"rank": r.rank, "category": r.category} for r in snap.subcategory_ranks]
        if snap.bsr_rank is not None
        else [],
        "sandbox": True,
    }


def _apply_run_fault(run: _Run, fault: tuple[str, float] | None) -> None:
    if fault is None:
        return
    mode, delay = fault
    run.fault = mode
    items = run.items
    if mode == "run_failed":
        run.final_status, items.size = "FAILED", items.size // 2
        run.status_message = "The Actor process was terminated with exit code 1 (sandbox fault)"
    elif mode == "run_timed_out":
        run.final_status, items.size = "TIMED-OUT", items.size // 2
        run.status_message = f"Actor run exceeded its timeout of {run.timeout_secs} s (sandbox)"
    elif mode == "slow":
        run.finish_at = run.started + delay
        if delay > run.timeout_secs:
            run.finish_at = run.started + run.timeout_secs
            run.final_status = "TIMED-OUT"
            run.status_message = f"Actor run exceeded its timeout of {run.timeout_secs} s"
    elif mode == "missing_items":
        items.size = max(0, items.size - 1)
    elif mode == "malformed_items":
        original = items[1] if len(items) > 1 else None
        if len(items):
            items.replaced[0] = "<html><title>Robot Check</title></html>"
        if isinstance(original, dict):
            items.replaced[1] = {"asin": original.get("asin"), "url": original.get("url"),
                                 "error": "Unexpected page layout", "sandbox": True}


# --------------------------------------------------------------------------------------------
# Dataset views


def _flag(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["0"])[-1].lower() in ("1", "true")


def _int_param(query: dict[str, list[str]], name: str, default: int) -> int:
    raw = query.get(name, [None])[-1]
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError as exc:
        raise ApiError(400, "invalid-parameter", f"Parameter {name} must be an integer") from exc
    if value < 0:
        raise ApiError(400, "invalid-parameter", f"Parameter {name} must not be negative")
    return value


def _page(
    items: Sequence[Any], query: dict[str, list[str]], max_page: int | None
) -> tuple[list[Any], dict[str, str]]:
    offset = _int_param(query, "offset", 0)
    limit = _int_param(query, "limit", NO_LIMIT) or NO_LIMIT
    if max_page is not None:
        limit = min(limit, max_page)
    desc = _flag(query, "desc")
    total = len(items)
    end = min(total, offset + limit)
    positions = range(total - 1 - offset, total - 1 - end, -1) if desc else range(offset, end)
    chunk = [items[i] for i in positions]  # only this page is rendered
    scanned = len(chunk)
    fields = [f for f in ",".join(query.get("fields", [])).split(",") if f]
    omit = {f for f in ",".join(query.get("omit", [])).split(",") if f}
    clean = _flag(query, "clean") or _flag(query, "skipHidden")
    skip_empty = _flag(query, "clean") or _flag(query, "skipEmpty")
    out: list[Any] = []
    for item in chunk:
        if isinstance(item, dict):
            if fields:
                item = {k: item[k] for k in fields if k in item}
            if omit or clean:
                item = {
                    k: v for k, v in item.items() if k not in omit and not (clean and k[:1] == "#")
                }
            if skip_empty and not item:
                continue
        out.append(item)
    headers = {
        "X-Apify-Pagination-Total": str(len(items)),
        "X-Apify-Pagination-Offset": str(offset),
        "X-Apify-Pagination-Count": str(scanned),
        "X-Apify-Pagination-Limit": str(limit),
        "X-Apify-Pagination-Desc": "true" if desc else "false",
    }
    return out, headers


# --------------------------------------------------------------------------------------------
# HTTP


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the client reuses connections
    disable_nagle_algorithm = True  # headers and body go out in two writes; avoid 40 ms stalls
    server_version = "ApifySandbox/1.0"
    state: _State  # set on the subclass built per server

    def log_message(self, format: str, *args: Any) -> None:
        return  # quiet: tests and `pilot run` read the request log instead

    def do_GET(self) -> None:
        self._dispatch("GET")

    def do_POST(self) -> None:
        self._dispatch("POST")

    def do_DELETE(self) -> None:
        self._dispatch("DELETE")

    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path).rstrip("/")
        query = parse_qs(parts.query, keep_blank_values=True)
        status = 500
        try:
            body = self._read_body()
            if path.startswith("/_sandbox/"):
                status, payload, headers = self._control(method, path, body)
            else:
                self._check_request_faults()
                self._check_auth(query)
                status, payload, headers = self._api(method, path, query, body)
        except ApiError as exc:
            status, headers = exc.status, {}
            payload = {"error": {"type": exc.kind, "message": exc.message}}
        except Exception as exc:  # a stand-in bug must still answer in Apify's shape
            status, headers = 500, {}
            payload = {"error": {"type": "internal-server-error", "message": repr(exc)}}
        self.state.requests.append({
            "method": method, "path": path, "query": parts.query, "status": status,
            "encoding": self.headers.get("Content-Encoding"), "at": time.time(),
        })  # fmt: skip
        self._send(status, payload, headers)

    def _read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        encoding = (self.headers.get("Content-Encoding") or "identity").lower().strip()
        try:
            if encoding == "gzip":
                return gzip.decompress(raw)
            if encoding == "deflate":
                return zlib.decompress(raw)
        except (OSError, zlib.error, EOFError) as exc:
            raise ApiError(400, "invalid-request", f"Body is not valid {encoding}: {exc}") from exc
        if encoding not in ("identity", ""):
            raise ApiError(415, "unsupported-content-encoding", f"Unsupported {encoding!r}")
        return raw

    def _json_body(self, body: bytes) -> Any:
        if not body:
            return {}
        try:
            return json.loads(body)
        except ValueError as exc:
            raise ApiError(400, "invalid-input", f"Input is not valid JSON: {exc}") from exc

    def _check_request_faults(self) -> None:
        fault = self.state.take(REQUEST_FAULTS)
        if fault is None:
            return
        if fault[0] == "http_429":
            raise ApiError(429, "rate-limit-exceeded", "You have exceeded the rate limit (sandbox)")
        raise ApiError(500, "internal-server-error", "Internal server error (sandbox fault)")

    def _check_auth(self, query: dict[str, list[str]]) -> None:
        header = self.headers.get("Authorization") or ""
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        if not token and not query.get("token", [""])[-1]:
            raise ApiError(401, "token-not-provided", "Authentication token was not provided")

    def _send(self, status: int, payload: Any, headers: dict[str, str]) -> None:
        data = _encode(payload)
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    # ---- the API subset

    def _api(
        self, method: str, path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        seg = path.split("/")[1:]  # ["v2", ...]
        if len(seg) >= 4 and seg[0] == "v2" and seg[1] in ("acts", "actors") and method == "POST":
            actor_id = seg[2].replace("/", "~")
            if seg[3:] == ["runs"]:
                run = self._start_run(actor_id, query, body)
                self._wait(run, _wait_param(query, 0.0))
                return 201, {"data": run.to_json(time.time())}, {}
            if seg[3:] == ["run-sync-get-dataset-items"]:
                return self._run_sync(actor_id, query, body)
        if len(seg) >= 3 and seg[:2] == ["v2", "actor-runs"]:
            run = self._run(seg[2])
            if len(seg) == 3 and method == "GET":
                self._wait(run, _wait_param(query, 0.0))
                return 200, {"data": run.to_json(time.time())}, {}
            if seg[3:] == ["abort"] and method == "POST":
                with self.state.lock:
                    if run.status(time.time()) not in TERMINAL:
                        run.aborted_at = time.time()
                        run.status_message = "Run was aborted"
                return 200, {"data": run.to_json(time.time())}, {}
        dataset_items = len(seg) == 4 and seg[:2] == ["v2", "datasets"] and seg[3] == "items"
        if method == "GET" and dataset_items:
            with self.state.lock:
                owner = self.state.datasets.get(seg[2])
            if owner is None:
                raise ApiError(404, "record-not-found", "Dataset was not found")
            visible = owner.visible_items(time.time())
            items, headers = _page(visible, query, self.state.max_page_size)
            return 200, items, headers
        raise ApiError(404, "page-not-found", f"No such API endpoint: {method} {path}")

    def _run(self, run_id: str) -> _Run:
        with self.state.lock:
            run = self.state.runs.get(run_id)
        if run is None:
            raise ApiError(404, "record-not-found", "Actor run was not found")
        return run

    def _start_run(self, actor_id: str, query: dict[str, list[str]], body: bytes) -> _Run:
        recording = self.state.recording
        search = actor_id in SEARCH_ACTORS
        if recording is None and actor_id not in KNOWN_ACTORS and not search:
            raise ApiError(404, "record-not-found", f"Actor {actor_id!r} was not found")
        payload = self._json_body(body)
        day = _input_day(payload)
        if search:  # search pages come from the catalog, also while replaying product runs
            urls, marketplace = _input_search(payload)
            items = _Dataset.listed(search_items(urls, marketplace, day))
        else:
            urls = _input_urls(payload)
            items = (_Dataset.listed(recording.items_for(urls)) if recording is not None
                     else _Dataset.catalog(urls, day, junglee="junglee" in actor_id))
        now = time.time()
        run = _Run(
            id=_new_id(),
            actor_id=actor_id,
            started=now,
            finish_at=now,
            final_status="SUCCEEDED",
            status_message=f"Finished! Total {len(urls)} requests: {len(urls)} succeeded",
            items=items,
            urls=urls,
            day=day,
            timeout_secs=_int_param(query, "timeout", 3600) or 3600,
            input_len=len(body),
            fault=None,
            cost_per_item=self.state.cost_per_item,
        )
        _apply_run_fault(run, self.state.take(RUN_FAULTS))
        with self.state.lock:
            self.state.runs[run.id] = run
            self.state.datasets[run.dataset_id] = run
            while len(self.state.runs) > MAX_RUNS:
                oldest = self.state.runs.pop(next(iter(self.state.runs)))  # insertion order
                self.state.datasets.pop(oldest.dataset_id, None)
        return run

    def _wait(self, run: _Run, wait_s: float) -> None:
        deadline = time.time() + min(wait_s, MAX_WAIT_S)
        while run.status(time.time()) not in TERMINAL:
            remaining = min(deadline, run.finish_at) - time.time()
            if remaining <= 0:
                return
            time.sleep(min(remaining, 0.05))  # short naps so an abort is seen promptly

    def _run_sync(
        self, actor_id: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        run = self._start_run(actor_id, query, body)
        deadline = time.time() + SYNC_WAIT_S
        while run.status(time.time()) not in TERMINAL and time.time() < deadline:
            time.sleep(min(0.05, max(0.0, run.finish_at - time.time())))
        status = run.status(time.time())
        if status not in TERMINAL:
            message = f"Actor run {run.id} did not finish in {SYNC_WAIT_S:.0f} seconds"
            raise ApiError(408, "run-timeout-exceeded", message)
        if status != "SUCCEEDED":
            raise ApiError(400, "run-failed", f"Actor run {run.id} finished with status {status}")
        items, headers = _page(run.visible_items(time.time()), query, None)
        return 201, items, headers

    # ---- control plane

    def _control(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str]]:
        if path == "/_sandbox/faults" and method == "POST":
            spec = self._json_body(body)
            if not isinstance(spec, dict):
                raise ApiError(400, "invalid-input", "Expected a JSON object")
            try:
                self.state.inject(
                    str(spec.get("mode")), int(spec.get("count", 1)), spec.get("delay_s")
                )
            except (TypeError, ValueError) as exc:
                raise ApiError(400, "invalid-input", str(exc)) from exc
            return 200, {"faults": self._faults()}, {}
        if path == "/_sandbox/faults" and method == "DELETE":
            self.state.clear()
            return 200, {"faults": {}}, {}
        if path == "/_sandbox/faults" and method == "GET":
            return 200, {"faults": self._faults()}, {}
        if path == "/_sandbox/replay" and method == "GET":
            recording = self.state.recording
            return 200, {"replay": None if recording is None else recording.describe()}, {}
        if path == "/_sandbox/runs" and method == "GET":
            return 200, {"runs": _run_summaries(self.state)}, {}
        if path == "/_sandbox/requests" and method == "GET":
            with self.state.lock:
                return 200, {"requests": list(self.state.requests)}, {}
        raise ApiError(404, "page-not-found", f"No such sandbox endpoint: {method} {path}")

    def _faults(self) -> dict[str, Any]:
        with self.state.lock:
            return {m: {"count": int(c), "delay_s": d} for m, (c, d) in self.state.faults.items()}


def _encode(payload: Any) -> bytes:
    """JSON as UTF-8 (as the platform sends it). orjson: a dataset page of 200 items is
    ≈ 7 µs an item against the stdlib's ≈ 46, in the process that also runs the API and
    the AWS endpoint; the stdlib takes what orjson refuses (integers over 64 bits, keys
    that are not strings, in recorded items)."""
    try:
        return orjson.dumps(payload)
    except TypeError:
        return json.dumps(payload, separators=(",", ":")).encode()


def _wait_param(query: dict[str, list[str]], default: float) -> float:
    raw = query.get("waitForFinish", [None])[-1]
    try:
        return max(0.0, float(raw)) if raw not in (None, "") else default
    except ValueError:
        return default


def _run_summaries(state: _State) -> list[dict[str, Any]]:
    now = time.time()
    with state.lock:
        runs = list(state.runs.values())
    return [
        {
            "id": r.id,
            "actorId": r.actor_id,
            "status": r.status(now),
            "startedAt": _iso(r.started),
            "day": r.day.isoformat(),
            "urls": list(r.urls),
            "itemCount": len(r.visible_items(now)),
            "fault": r.fault,
            "datasetId": r.dataset_id,
        }
        for r in runs
    ]


# --------------------------------------------------------------------------------------------
# Lifecycle


class ApifyStandIn(ServedStandIn):
    """The stand-in server; `start()` serves in a daemon thread, `.url` is the api_url to use."""

    thread_name = "apify-standin"

    def __init__(
        self,
        port: int = 0,
        host: str = "127.0.0.1",
        *,
        cost_per_item_usd: float = 0.0005,
        max_page_size: int | None = None,
        recording: Recording | None = None,
    ) -> None:
        self.state = _State(cost_per_item_usd, max_page_size)
        self.state.recording = recording
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._serve(ThreadingHTTPServer((host, port), handler))

    def serve_forever(self) -> None:
        self._server.serve_forever(poll_interval=0.2)

    def close(self) -> None:
        self._server.server_close()

    def inject(self, mode: str, count: int = 1, delay_s: float | None = None) -> None:
        """Arm a fault for the next `count` runs (run faults) or requests (http_* faults)."""
        self.state.inject(mode, count, delay_s)

    def clear_faults(self) -> None:
        self.state.clear()

    def replay(self, recording: Recording | None) -> None:
        """Answer every run from these recorded exports (None: the synthetic catalog)."""
        with self.state.lock:
            self.state.recording = recording

    def runs(self) -> list[dict[str, Any]]:
        """Runs started so far, oldest first (same as GET /_sandbox/runs)."""
        return _run_summaries(self.state)

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.requests)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Offline Apify API stand-in (sandbox data).")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--max-page-size", type=int, default=None)
    parser.add_argument("--replay", default=None, metavar="FILE[,FILE...]",
                        help="answer every run from these dataset exports")
    args = parser.parse_args(argv)
    standin = ApifyStandIn(args.port, args.host, max_page_size=args.max_page_size,
                           recording=Recording.from_setting(args.replay))

    def _stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"Apify stand-in (sandbox data) listening on {standin.url}", flush=True)
    try:
        standin.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        standin.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
