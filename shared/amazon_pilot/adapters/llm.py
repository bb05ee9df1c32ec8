"""Structured-output calls to an OpenAI-compatible chat API, failures as values.

``LLMClient.complete_json`` never raises for model or transport trouble: the result's
``error`` is ``"<code>: <message>"`` with code one of ``timeout``, ``rate_limited``,
``server_error``, ``connection_error``, ``invalid_json``, ``schema_violation``,
``refusal``, ``empty_response``, ``bad_request``, ``auth_error``, ``api_error``, so
callers fall back to the rules report.

Sandbox detection: a result is ``sandbox=True`` when the response carries the header
``x-pilot-sandbox: 1`` or its model name starts with ``sandbox-`` (both are set by
``pilot_dev.standins.openai_server``). Sandbox results still carry the cost the real
model would have charged, so budget code can be exercised offline; filter on ``sandbox``
before summing real spend.
"""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import openai
from openai import OpenAI
from pydantic import BaseModel, ValidationError

from amazon_pilot.domain.spend import LLMSpend
from amazon_pilot.platform.observability import record_metric

SANDBOX_HEADER = "x-pilot-sandbox"
SANDBOX_MODEL_PREFIX = "sandbox-"

# USD per million tokens (input, output). Longest matching prefix wins, so dated
# snapshots like "gpt-4o-mini-2024-07-18" price as their family.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
}

M = TypeVar("M", bound=BaseModel)


@dataclass(slots=True, frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class LLMResult(Generic[M]):
    parsed: M | None
    raw_text: str
    usage: Usage
    cost_usd: float | None  # None when the model is not in the price table
    model: str
    sandbox: bool
    error: str | None = None
    latency_ms: float = 0.0
    attempts: list[str] = field(default_factory=list)  # response formats tried

    @property
    def ok(self) -> bool:
        return self.error is None and self.parsed is not None

    @property
    def spend(self) -> LLMSpend:
        """What this call cost (a cache miss), whatever its outcome."""
        return LLMSpend(self.model, self.sandbox, "miss", self.usage.prompt_tokens,
                        self.usage.completion_tokens, self.cost_usd, self.latency_ms)

    @property
    def error_code(self) -> str | None:
        return self.error.split(":", 1)[0] if self.error else None


def price_for(model: str) -> tuple[float, float] | None:
    name = model.removeprefix(SANDBOX_MODEL_PREFIX)
    matches = [k for k in PRICES_PER_MTOK if name == k or name.startswith(k + "-")]
    return PRICES_PER_MTOK[max(matches, key=len)] if matches else None


def cost_usd(model: str, usage: Usage) -> float | None:
    price = price_for(model)
    if price is None:
        return None
    cost = usage.prompt_tokens * price[0] + usage.completion_tokens * price[1]
    return round(cost / 1_000_000, 8)


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema shaped for OpenAI strict mode.

    Strict mode wants every property required and no additional properties, and rejects
    ``default``; pydantic omits optional fields from ``required`` and emits defaults.
    """
    schema = copy.deepcopy(model.model_json_schema())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            node.pop("default", None)
            if node.get("type") == "object" or "properties" in node:
                node["required"] = list(node.get("properties", {}))
                node["additionalProperties"] = False
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return schema


def _is_sandbox(headers: Mapping[str, str] | None, model: str | None) -> bool:
    if headers is not None and headers.get(SANDBOX_HEADER) == "1":
        return True
    return bool(model and model.startswith(SANDBOX_MODEL_PREFIX))


def _short(exc: BaseException, limit: int = 200) -> str:
    text = " ".join(str(exc).split())
    return text[:limit] or type(exc).__name__


def _status_error_code(exc: openai.APIStatusError) -> str:
    if isinstance(exc, openai.RateLimitError):
        return "rate_limited"
    if exc.status_code >= 500:
        return "server_error"
    if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
        return "auth_error"
    if isinstance(exc, openai.BadRequestError | openai.UnprocessableEntityError):
        return "bad_request"
    return "api_error"


def _format_rejected(exc: openai.APIStatusError) -> bool:
    """A 400 saying the model can't do json_schema: worth a json_object retry."""
    text = str(exc).lower()
    return exc.status_code == 400 and ("response_format" in text or "json_schema" in text)


class LLMClient:
    def __init__(
        self,
        api_key: str,
        base_url: str | None,
        model: str = "gpt-4o-mini",
        timeout_s: float = 20,
        max_retries: int = 1,
        temperature: float | None = 0.2,
    ) -> None:
        self.model = model
        self.temperature = temperature
        self.timeout_s = timeout_s
        # The openai client retries 408/409/429/5xx and timeouts itself, honouring
        # retry-after; we only translate what is left after those retries.
        self._client = OpenAI(
            api_key=api_key or "missing-key",
            base_url=base_url,
            timeout=timeout_s,
            max_retries=max_retries,
        )

    def close(self) -> None:
        self._client.close()

    def complete_json(
        self,
        messages: Sequence[Mapping[str, Any]],
        schema_model: type[M],
        schema_name: str,
    ) -> LLMResult[M]:
        """One structured completion, validated against ``schema_model``; never raises."""
        started = time.perf_counter()
        json_schema = {
            "name": schema_name,
            "strict": True,
            "schema": strict_json_schema(schema_model),
        }
        result, rejected = self._call(messages, {"type": "json_schema", "json_schema": json_schema})
        if rejected:
            # Older or third-party models: ask for any JSON object and state the schema.
            hint = {
                "role": "system",
                "content": f"Reply with one JSON object valid against this JSON schema "
                f"named {schema_name}: {json.dumps(json_schema['schema'])}",
            }
            retry, _ = self._call([*messages, hint], {"type": "json_object"})
            retry.attempts = [*result.attempts, *retry.attempts]
            result = retry
        if result.error is None:
            result = self._validate(result, schema_model)
        result.latency_ms = round((time.perf_counter() - started) * 1000, 1)
        return result

    def _call(
        self, messages: Sequence[Mapping[str, Any]], response_format: dict[str, Any]
    ) -> tuple[LLMResult[Any], bool]:
        """The raw answer, and whether the server refused the response format itself."""
        kind = str(response_format["type"])
        try:
            raw = self._client.chat.completions.with_raw_response.create(  # type: ignore[call-overload]
                model=self.model,
                messages=list(messages),
                response_format=response_format,
                temperature=openai.omit if self.temperature is None else self.temperature,
            )
            completion = raw.parse()
        except openai.APITimeoutError:
            return self._failure(f"timeout: no answer within {self.timeout_s}s", kind), False
        except openai.APIConnectionError as exc:
            return self._failure(f"connection_error: {_short(exc)}", kind), False
        except openai.APIStatusError as exc:
            code = _status_error_code(exc)
            sandbox = _is_sandbox(exc.response.headers, None)
            msg = f"{code}: HTTP {exc.status_code} {_short(exc)}"
            return self._failure(msg, kind, sandbox=sandbox), _format_rejected(exc)
        except openai.OpenAIError as exc:  # response validation and anything else
            return self._failure(f"api_error: {_short(exc)}", kind), False
        usage = Usage(
            completion.usage.prompt_tokens if completion.usage else 0,
            completion.usage.completion_tokens if completion.usage else 0,
        )
        spent = cost_usd(completion.model or self.model, usage)
        # every answered call is paid for, whatever becomes of its answer
        record_metric("LLMPromptTokens", usage.prompt_tokens)
        record_metric("LLMCompletionTokens", usage.completion_tokens)
        record_metric("LLMCostUsd", spent or 0.0)
        choice = completion.choices[0] if completion.choices else None
        text = (choice.message.content or "") if choice else ""
        error: str | None = None
        if choice is not None and choice.message.refusal:
            error = f"refusal: {choice.message.refusal[:200]}"
        elif not text.strip():
            error = "empty_response: the model returned no content"
        elif choice is not None and choice.finish_reason == "length":
            error = "invalid_json: answer cut off (finish_reason=length)"
        result: LLMResult[Any] = LLMResult(
            parsed=None,
            raw_text=text,
            usage=usage,
            cost_usd=spent,
            model=completion.model or self.model,
            sandbox=_is_sandbox(raw.headers, completion.model),
            error=error,
            attempts=[kind],
        )
        return result, False

    def _failure(self, error: str, attempt: str, sandbox: bool = False) -> LLMResult[Any]:
        return LLMResult(
            parsed=None,
            raw_text="",
            usage=Usage(),
            cost_usd=cost_usd(self.model, Usage()),
            model=self.model,
            sandbox=sandbox,
            error=error,
            attempts=[attempt],
        )

    @staticmethod
    def _validate(result: LLMResult[Any], schema_model: type[M]) -> LLMResult[M]:
        try:
            data = json.loads(result.raw_text)
        except json.JSONDecodeError as exc:
            result.error = f"invalid_json: {exc.msg} at char {exc.pos}"
            return result
        try:
            result.parsed = schema_model.model_validate(data)
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "<root>"
            result.error = f"schema_violation: {where}: {first['msg']}"
        return result


def configured_client() -> LLMClient | None:
    """The client for the configured model, or None when no key is set (rules only).
    The key comes from OPENAI_API_KEY, else from the secret OPENAI_SECRET_ARN names."""
    from amazon_pilot.platform.settings import settings

    cfg = settings()
    key = cfg.openai_api_key
    arn = cfg.openai_secret_arn
    if not key and arn:
        from amazon_pilot.adapters.secrets import get_secret_string

        key = get_secret_string(arn).strip() or None
    if not key:
        return None
    return LLMClient(key, cfg.openai_base_url, model=cfg.openai_model,
                     timeout_s=cfg.openai_timeout_s, max_retries=cfg.openai_max_retries)
