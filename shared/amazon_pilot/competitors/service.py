"""Competitor comparison and positioning reports: the glue between storage, domain and LLM.

- ``analyse``: a group's products -> ``GroupComparison`` + ``FeatureComparison`` (domain).
- ``write_report``: the report for an analysis. The model only words it (numbers are ours);
  when there is no key, or the model times out, errors, or answers something that does not
  validate, the rules report is used and says why (``fallback_reason``). A model answer is
  cached under ``llm:report:<sha256 of model + messages>`` for 24 h, so the same inputs
  never call the model twice in that window.
- ``run_report``: one stored report, idempotent per report id (the job is in jobs.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.competitors import store as db
from amazon_pilot.domain.comparison import GroupComparison, compare_group
from amazon_pilot.domain.features import (
    FeatureComparison,
    ProductFeatures,
    compare_features,
    features_from_snapshot,
)
from amazon_pilot.domain.report import (
    REPORT_SCHEMA_NAME,
    InvalidLLMOutput,
    PositioningReport,
    build_report_messages,
    rules_report,
    validate_llm_report,
)
from amazon_pilot.platform.cache import Cache, DbCache
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import RetryableJobError

REPORT_JOB = "generate_report"
LLM_CACHE_TTL_S = 24 * 3600
WEEKLY_WINDOW_DAYS = 30
MAX_ATTEMPTS = 3  # the low queue's maxReceiveCount: after that the report is "failed"
WINDOWS = {"7d": 7, "30d": 30, "90d": 90}


# ---------------------------------------------------------------- comparison


@dataclass(slots=True)
class Analysis:
    comparison: GroupComparison
    features: FeatureComparison
    product_features: list[ProductFeatures]
    data_source: str | None  # "sandbox" when any product's data came from the stand-in
    data_sources: dict[str, str | None]
    as_of: dict[str, datetime | None]

    def features_dict(self) -> dict[str, Any]:
        return {
            "comparison": self.features.to_dict(),
            "products": [f.to_dict() for f in self.product_features],
        }


def overall_source(sources: dict[str, str | None]) -> str | None:
    known = {s for s in sources.values() if s}
    if not known:
        return None
    return "sandbox" if "sandbox" in known else sorted(known)[0]


def analyse(conn: Connection, products: list[Any], window_days: int) -> Analysis:
    """Compare a group's products (main first) over the window; pure domain after one query."""
    views = db.load_views(conn, products, window_days)
    comparison = compare_group(views.main, views.competitors, window_days)
    feats = [
        features_from_snapshot(v.snapshot) if v.snapshot is not None and v.snapshot.found
        else ProductFeatures(v.asin)
        for v in (views.main, *views.competitors)
    ]
    return Analysis(
        comparison=comparison,
        features=compare_features(feats[0], feats[1:]),
        product_features=feats,
        data_source=overall_source(views.data_sources),
        data_sources=views.data_sources,
        as_of=views.as_of,
    )


# ---------------------------------------------------------------- the report


@dataclass(slots=True)
class ReportOutcome:
    report: PositioningReport
    generated_by: str  # "llm" | "rules"
    model: str | None = None
    sandbox: bool | None = None
    fallback_reason: str | None = None
    cache: str | None = None  # "hit" | "miss"; None when no model was configured
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    latency_ms: float | None = None
    errors: list[str] = field(default_factory=list)


def cache_key(model: str, messages: list[dict[str, str]]) -> str:
    raw = json.dumps({"model": model, "messages": messages}, sort_keys=True,
                     separators=(",", ":"), ensure_ascii=False)
    return "llm:report:" + hashlib.sha256(raw.encode()).hexdigest()


def _rules(analysis: Analysis, reason: str, **kw: Any) -> ReportOutcome:
    return ReportOutcome(rules_report(analysis.comparison, analysis.features), "rules",
                         fallback_reason=reason, **kw)


ReportCache = Cache


def write_report(analysis: Analysis, client: Any, cache: ReportCache | None = None
                 ) -> ReportOutcome:
    """The positioning report for an analysis: the model's words when it can, else rules.

    Never raises for model trouble. ``client`` is an ``LLMClient`` or None (rules only).
    """
    if client is None:
        return _rules(analysis, "no OpenAI API key configured: rules only")
    cache = cache or DbCache()
    messages = build_report_messages(analysis.comparison, analysis.features)
    key = cache_key(client.model, messages)
    cached = cache.get(key)
    if cached is not None:
        entry = json.loads(cached)
        try:
            report = validate_llm_report(json.dumps(entry["report"]), analysis.comparison,
                                         analysis.features)
        except (InvalidLLMOutput, KeyError, TypeError):
            pass  # an entry from an older schema: ask again
        else:
            return ReportOutcome(report, "llm", model=entry.get("model"),
                                 sandbox=bool(entry.get("sandbox")), cache="hit",
                                 cost_usd=0.0)
    result = client.complete_json(messages, PositioningReport, REPORT_SCHEMA_NAME)
    spent = {"model": result.model, "sandbox": result.sandbox, "cache": "miss",
             "prompt_tokens": result.usage.prompt_tokens,
             "completion_tokens": result.usage.completion_tokens,
             "cost_usd": result.cost_usd, "latency_ms": result.latency_ms}
    if result.error is not None:
        return _rules(analysis, f"model unavailable ({result.error})", **spent)
    try:
        report = validate_llm_report(result.raw_text, analysis.comparison, analysis.features)
    except InvalidLLMOutput as exc:
        return _rules(analysis, f"model answer rejected ({exc})", **spent)
    entry = {"report": report.model_dump(), "model": result.model, "sandbox": result.sandbox,
             "usage": {"prompt_tokens": result.usage.prompt_tokens,
                       "completion_tokens": result.usage.completion_tokens}}
    cache.put(key, json.dumps(entry), LLM_CACHE_TTL_S)
    return ReportOutcome(report, "llm", **spent)


def run_report(report_id: UUID | str, client: Any = ...) -> dict[str, Any]:
    """Generate one stored report (idempotent: a done report is left as it is).

    ``client`` defaults to ``adapters.llm.configured_client()``; tests pass their own.
    """
    rid = UUID(str(report_id))
    with transaction() as conn:
        row = db.claim_report(conn, rid)
        if row is None:
            return {"report_id": str(rid), "skipped": "report or group deleted"}
        if row.status == "done":
            return {"report_id": str(rid), "replayed": True}
        products = db.group_products(conn, [row.group_id])[row.group_id]
        analysis = analyse(conn, products, int(row.window_days))
    try:
        owned = client is ...
        from amazon_pilot.adapters.llm import configured_client

        llm = configured_client() if owned else client
        try:
            outcome = write_report(analysis, llm)
        finally:
            if owned and llm is not None:
                llm.close()
        values = {
            "generated_by": outcome.generated_by, "model": outcome.model,
            "sandbox": outcome.sandbox, "fallback_reason": outcome.fallback_reason,
            "cache": outcome.cache, "prompt_tokens": outcome.prompt_tokens,
            "completion_tokens": outcome.completion_tokens, "cost_usd": outcome.cost_usd,
            "llm_latency_ms": None if outcome.latency_ms is None else int(outcome.latency_ms),
            "data_source": analysis.data_source,
            "report": outcome.report.model_dump_json(),
            "comparison": json.dumps({"comparison": analysis.comparison.to_dict(),
                                      "features": analysis.features.to_dict()}),
        }
        with transaction() as conn:
            db.finish_report(conn, rid, values)
    except Exception as exc:
        final = int(row.attempts) >= MAX_ATTEMPTS
        with transaction() as conn:
            db.fail_report(conn, rid, f"{type(exc).__name__}: {exc}", final)
        raise RetryableJobError(f"report {rid}: {exc!r}") from exc
    return {"report_id": str(rid), "generated_by": outcome.generated_by,
            "cache": outcome.cache, "fallback_reason": outcome.fallback_reason}


def report_job(report_id: UUID | str) -> tuple[str, dict[str, Any], str]:
    return REPORT_JOB, {"report_id": str(report_id)}, f"report:{report_id}"


def queue_report(report_id: UUID | str) -> None:
    from amazon_pilot.adapters.queues import enqueue

    job_type, payload, key = report_job(report_id)
    enqueue("low", job_type, payload, key)
