"""The real openai client, through LLMClient, against the offline stand-in."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
import pytest
from pydantic import BaseModel, ConfigDict

from amazon_pilot.adapters.llm import LLMClient, strict_json_schema
from amazon_pilot.domain.comparison import GroupComparison, ProductView, compare_group
from amazon_pilot.domain.features import FeatureComparison, compare_features, extract_features
from amazon_pilot.domain.report import (
    REPORT_SCHEMA_NAME,
    PositioningReport,
    build_report_messages,
    validate_llm_report,
)
from amazon_pilot.domain.snapshot import Availability, HistoryPoint, Snapshot
from pilot_dev.standins.openai_server import (
    SCHEMA_HANDLERS,
    ChatRequest,
    OpenAIStandIn,
    register_schema_handler,
)

START = datetime(2025, 6, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def standin() -> Iterator[OpenAIStandIn]:
    server = OpenAIStandIn(port=0, timeout_delay_s=3.0).start()
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _clean(standin: OpenAIStandIn) -> None:
    standin.clear_faults()
    standin.reset_requests()


def client(standin: OpenAIStandIn, **kw: float | int) -> LLMClient:
    opts: dict[str, float | int] = {"timeout_s": 5, "max_retries": 0}
    opts.update(kw)
    return LLMClient("test-key", standin.url, model="gpt-4o-mini", **opts)  # type: ignore[arg-type]


def group() -> tuple[GroupComparison, FeatureComparison]:
    def snap(asin: str, price: float, rating: float, reviews: int, bsr: int) -> Snapshot:
        return Snapshot(
            asin=asin,
            price=price,
            rating=rating,
            review_count=reviews,
            bsr_rank=bsr,
            bsr_category="Electronics",
            availability=Availability.IN_STOCK,
        )

    cut = [
        HistoryPoint(START + timedelta(days=i), price=44.99 if i < 20 else 34.99) for i in range(30)
    ]
    g = compare_group(
        ProductView("B0MAIN", "Main", snap("B0MAIN", 59.99, 3.9, 300, 9000)),
        [
            ProductView("B0CUT", "Cutter", snap("B0CUT", 34.99, 4.5, 8000, 400), cut),
            ProductView("B0MID", "Middle", snap("B0MID", 45.00, 4.2, 2000, 2500)),
        ],
        30,
    )
    f = compare_features(
        extract_features("B0MAIN", ["IPX4", "6 hours per charge"]),
        [
            extract_features("B0CUT", ["Hybrid ANC", "IPX5"]),
            extract_features("B0MID", ["ANC", "IPX4"]),
        ],
    )
    return g, f


def test_standin_starts_fast_in_process() -> None:
    started = time.perf_counter()
    server = OpenAIStandIn(port=0).start()
    try:
        assert time.perf_counter() - started < 0.5
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/v1")
        assert httpx.get(server.url.removesuffix("/v1") + "/healthz").json()["sandbox"] is True
    finally:
        server.stop()


def test_report_comes_back_parsed_labelled_sandbox_with_usage(standin: OpenAIStandIn) -> None:
    g, f = group()
    result = client(standin).complete_json(
        build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME
    )
    assert result.error is None and result.ok
    assert isinstance(result.parsed, PositioningReport)
    assert result.sandbox is True
    assert result.model == "sandbox-gpt-4o-mini"
    assert result.usage.prompt_tokens > 100 and result.usage.completion_tokens > 10
    assert result.cost_usd is not None and result.cost_usd > 0
    # The answer is built from our numbers and cites only metrics the comparison holds.
    report = validate_llm_report(result.raw_text, g, f)
    assert "B0MAIN" in report.summary and "59.99" in report.summary
    assert {p.metric for p in report.weaknesses} >= {"main_rank.price", "main_rank.rating"}
    assert any(t.metric == "cutting_prices" and "B0CUT" in t.text for t in report.threats)
    assert report.recommendations and report.recommendations[0].priority == 1
    # The stand-in saw a strict json_schema request from the real client.
    body = standin.requests[-1]["body"]
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["name"] == REPORT_SCHEMA_NAME
    assert body["response_format"]["json_schema"]["strict"] is True


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        ("timeout", "timeout"),
        ("http_429", "rate_limited"),
        ("http_500", "server_error"),
        ("invalid_json", "invalid_json"),
        ("schema_violation", "schema_violation"),
    ],
)
def test_each_fault_comes_back_as_an_error_code(
    standin: OpenAIStandIn, mode: str, code: str
) -> None:
    g, f = group()
    standin.inject(mode, count=1)
    llm = client(standin, timeout_s=1, max_retries=0)
    started = time.perf_counter()
    result = llm.complete_json(build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME)
    assert result.parsed is None
    assert result.error_code == code, result.error
    assert time.perf_counter() - started < 2.5  # a timeout costs ~1 s, not the 3 s delay
    if mode != "timeout":  # a timed-out call has no response to read the label from
        assert result.sandbox is True
    # The fault was used up: the next call succeeds.
    assert llm.complete_json(build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME).ok


def test_a_retry_absorbs_one_429(standin: OpenAIStandIn) -> None:
    g, f = group()
    standin.inject("http_429", count=1)
    result = client(standin, max_retries=1).complete_json(
        build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME
    )
    assert result.ok
    assert standin.request_count == 2


def test_429_after_retries_is_rate_limited(standin: OpenAIStandIn) -> None:
    g, f = group()
    standin.inject("http_429", count=2)
    result = client(standin, max_retries=1).complete_json(
        build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME
    )
    assert result.error_code == "rate_limited"
    assert standin.request_count == 2


def test_request_counter_and_fault_endpoints_over_http(standin: OpenAIStandIn) -> None:
    base = standin.url.removesuffix("/v1")
    g, f = group()
    llm = client(standin)
    assert httpx.get(f"{base}/_sandbox/requests").json() == {"count": 0, "requests": []}
    llm.complete_json(build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME)
    log = httpx.get(f"{base}/_sandbox/requests").json()
    assert log["count"] == 1 and log["requests"][0]["body"]["model"] == "gpt-4o-mini"

    bad = httpx.post(f"{base}/_sandbox/faults", json={"mode": "meltdown", "count": 1})
    assert bad.status_code == 400
    armed = httpx.post(f"{base}/_sandbox/faults", json={"mode": "http_500", "count": 3})
    assert armed.json() == {"mode": "http_500", "remaining": 3, "delay_s": 3.0}
    assert (
        llm.complete_json(
            build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME
        ).error_code
        == "server_error"
    )
    assert httpx.get(f"{base}/_sandbox/faults").json()["remaining"] == 2
    assert httpx.delete(f"{base}/_sandbox/faults").json()["mode"] is None
    assert llm.complete_json(build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME).ok
    assert httpx.get(f"{base}/_sandbox/requests").json()["count"] == 3
    assert httpx.delete(f"{base}/_sandbox/requests").json()["count"] == 0


class Suggestion(BaseModel):
    model_config = ConfigDict(extra="forbid")
    field: Literal["title", "bullets", "description"]
    text: str
    score: int
    keywords: list[str]


class ListingSuggestions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    suggestions: list[Suggestion]
    confident: bool
    note: str | None


def test_generic_filler_answers_any_schema(standin: OpenAIStandIn) -> None:
    messages = [{"role": "user", "content": "Main price 49.99, rival 39.99, BSR 1200."}]
    result = client(standin).complete_json(messages, ListingSuggestions, "unregistered_schema")
    assert result.ok and result.sandbox
    assert isinstance(result.parsed, ListingSuggestions)
    first = result.parsed.suggestions[0]
    assert first.field == "title"
    assert "49.99" in first.text  # strings are filled from the request's numbers


def test_schema_registry_dispatches_by_name(standin: OpenAIStandIn) -> None:
    @register_schema_handler("listing_suggestions_test")
    def _handler(req: ChatRequest) -> dict[str, object]:
        return {
            "suggestions": [
                {
                    "field": "bullets",
                    "text": f"{len(req.messages)} msgs",
                    "score": 7,
                    "keywords": ["anc"],
                }
            ],
            "confident": False,
            "note": None,
        }

    try:
        result = client(standin).complete_json(
            [{"role": "user", "content": "go"}], ListingSuggestions, "listing_suggestions_test"
        )
        assert result.parsed is not None
        assert result.parsed.suggestions[0].text == "1 msgs"
        assert result.parsed.suggestions[0].keywords == ["anc"]
    finally:
        SCHEMA_HANDLERS.pop("listing_suggestions_test")


def test_strict_schema_requires_every_field() -> None:
    schema = strict_json_schema(ListingSuggestions)
    assert schema["required"] == ["suggestions", "confident", "note"]
    assert schema["additionalProperties"] is False


def test_unreachable_server_is_a_connection_error_not_an_exception() -> None:
    server = OpenAIStandIn(port=0)
    url = server.url
    server.stop()  # never started: the port is closed now
    result = LLMClient("k", url, timeout_s=1, max_retries=0).complete_json(
        [{"role": "user", "content": "hi"}], PositioningReport, REPORT_SCHEMA_NAME
    )
    assert result.error_code == "connection_error"


def test_standin_runs_as_a_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "pilot_dev.standins.openai_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = line.strip().rsplit(" ", 1)[-1]
        assert url.startswith("http://127.0.0.1:") and url.endswith("/v1")
        g, f = group()
        result = LLMClient("k", url, max_retries=0).complete_json(
            build_report_messages(g, f), PositioningReport, REPORT_SCHEMA_NAME
        )
        assert result.ok and result.sandbox
    finally:
        proc.terminate()
        proc.wait(timeout=5)
