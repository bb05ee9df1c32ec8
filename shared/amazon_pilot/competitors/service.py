"""Policy and orchestration of competitor groups, their comparison and positioning reports.

- groups: parsing product references, the membership rules (``domain.groups``), the plan's
  group limit, what to fetch first; member changes lock the group row in their transaction.
- ``comparison``: a group's products -> ``GroupComparison`` + ``FeatureComparison`` (domain),
  cached as the answer's JSON.
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
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.competitors import store as db
from amazon_pilot.competitors.schemas import Window
from amazon_pilot.competitors.store import GroupProductRow, GroupRow, ReportRow
from amazon_pilot.domain import csv_export
from amazon_pilot.domain.comparison import GroupComparison, compare_group
from amazon_pilot.domain.features import (
    FeatureComparison,
    ProductFeatures,
    compare_features,
    features_from_snapshot,
)
from amazon_pilot.domain.groups import (
    Add,
    Change,
    Create,
    MembershipError,
    Ref,
    Remove,
    members_after,
)
from amazon_pilot.domain.product_ref import InvalidProductRef, parse_product_ref
from amazon_pilot.domain.report import (
    REPORT_SCHEMA_NAME,
    InvalidLLMOutput,
    PositioningReport,
    build_report_messages,
    rules_report,
    validate_llm_report,
)
from amazon_pilot.domain.spend import LLMSpend
from amazon_pilot.platform import outbox
from amazon_pilot.platform.cache import Cache, DbCache, cache_get, cache_put
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import NotFound, PlanLimitReached, ValidationFailed
from amazon_pilot.platform.job_errors import RetryableJobError
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking.store import upsert_product

REPORT_JOB = "generate_report"
LLM_CACHE_TTL_S = 24 * 3600
COMPARISON_CACHE_TTL_S = 6 * 3600  # also dropped the moment new data lands for a product
WEEKLY_WINDOW_DAYS = 30
WINDOW_DAYS: dict[Window, int] = {"7d": 7, "30d": 30, "90d": 90}
GROUP_NOT_FOUND = "competitor group not found"


@dataclass(frozen=True, slots=True)
class GroupMembers:
    group: GroupRow
    products: list[GroupProductRow]  # main first, then competitors in the order added


# ---------------------------------------------------------------- groups


def _parse(text: str, field: str) -> Ref:
    try:
        return parse_product_ref(text)
    except InvalidProductRef as exc:
        raise ValidationFailed(f"{field}: {exc}", details=[{"field": field,
                                                           "message": str(exc)}]) from exc


def check_members(main: Ref, current: Sequence[Ref], change: Change) -> list[Ref]:
    """``domain.groups.members_after`` with its refusal as the API's error."""
    try:
        return members_after(main, current, change)
    except MembershipError as exc:
        if exc.kind == "missing":
            raise NotFound(exc.message) from exc
        raise ValidationFailed(exc.message, details=[{"field": exc.field,
                                                      "message": exc.message}]) from exc


def _members(conn: Connection, group: GroupRow) -> GroupMembers:
    return GroupMembers(group, db.group_products(conn, [group.id])[group.id])


def _locked(conn: Connection, user_id: UUID, group_id: UUID) -> GroupRow:
    group = db.get_group(conn, user_id, group_id, lock=True)
    if group is None:  # deleted since the ownership check
        raise NotFound(GROUP_NOT_FOUND)
    return group


def _reread(conn: Connection, user_id: UUID, group_id: UUID) -> GroupMembers:
    group = db.get_group(conn, user_id, group_id)
    assert group is not None  # locked in this transaction
    return _members(conn, group)


def create_group(user_id: UUID, plan: str, name: str, main_text: str,
                 competitor_texts: Sequence[str]) -> GroupMembers:
    """A new group; products never fetched are fetched at once, in one actor run."""
    from amazon_pilot.tracking.service import queue_first_fetch

    main = _parse(main_text, "main")
    refs = [_parse(c, f"competitors.{i}") for i, c in enumerate(competitor_texts)]
    competitors = check_members(main, [], Create(refs))
    limit = settings().plan(plan).competitor_groups
    to_fetch: list[int] = []
    with transaction() as conn:
        if db.count_groups(conn, user_id) >= limit:
            raise PlanLimitReached(f"the {plan} plan allows {limit} competitor groups;"
                                   " delete one first")
        ids: list[int] = []
        for asin, marketplace in [main, *competitors]:
            product_id, fresh = upsert_product(conn, asin, marketplace)
            ids.append(product_id)
            if fresh:
                to_fetch.append(product_id)
        group_id = db.insert_group(conn, user_id, name.strip(), ids[0], ids[1:])
        out = _reread(conn, user_id, group_id)
        queue_first_fetch(conn, to_fetch, trigger="group")  # one actor run for all new
    return out


def plan_groups(plan: str) -> int:
    """How many groups the plan allows (after the stage's overrides)."""
    return settings().plan(plan).competitor_groups


def list_groups(user_id: UUID, limit: int, offset: int) -> tuple[list[GroupMembers], int]:
    with transaction() as conn:
        groups, total = db.list_groups(conn, user_id, limit, offset)
        products = db.group_products(conn, [g.id for g in groups])
    return [GroupMembers(g, products[g.id]) for g in groups], total


def group_members(group: GroupRow) -> GroupMembers:
    with transaction() as conn:
        return _members(conn, group)


def update_group(user_id: UUID, group: GroupRow, name: str | None,
                 is_active: bool | None) -> GroupMembers:
    """Rename or pause a group; None leaves a field as it is."""
    changes: dict[str, Any] = {}
    if name is not None:
        changes["name"] = name.strip()
    if is_active is not None:
        changes["is_active"] = is_active
    with transaction() as conn:
        _locked(conn, user_id, group.id)
        if changes:
            db.update_group(conn, group.id, changes)
        return _reread(conn, user_id, group.id)


def delete_group(user_id: UUID, group_id: UUID) -> None:
    with transaction() as conn:
        if not db.delete_group(conn, user_id, group_id):
            raise NotFound(GROUP_NOT_FOUND)


def add_competitor(user_id: UUID, group: GroupRow, competitor_text: str) -> GroupMembers:
    from amazon_pilot.tracking.service import queue_first_fetch

    ref = _parse(competitor_text, "competitor")
    with transaction() as conn:
        _locked(conn, user_id, group.id)
        products = db.group_products(conn, [group.id])[group.id]
        check_members(products[0].ref, [p.ref for p in products[1:]], Add(ref))
        product_id, fresh = upsert_product(conn, *ref)
        db.add_member(conn, group.id, product_id)
        out = _reread(conn, user_id, group.id)
        if fresh:
            queue_first_fetch(conn, [product_id], trigger="group")
    return out


def remove_competitor(user_id: UUID, group: GroupRow, asin: str) -> GroupMembers:
    wanted = asin.strip().upper()
    with transaction() as conn:
        _locked(conn, user_id, group.id)
        products = db.group_products(conn, [group.id])[group.id]
        after = check_members(products[0].ref, [p.ref for p in products[1:]], Remove(wanted))
        for member in products[1:]:
            if member.ref not in after:
                db.remove_member(conn, group.id, member.product_id)
        return _reread(conn, user_id, group.id)


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


def analyse(conn: Connection, products: Sequence[GroupProductRow],
            window_days: int) -> Analysis:
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


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def comparison_version(group: GroupRow, products: Sequence[GroupProductRow]) -> str:
    parts = [str(group.updated_at.timestamp())] + [
        f"{p.product_id}:{p.latest_captured_at and p.latest_captured_at.timestamp()}:"
        f"{p.last_fetch_status}" for p in products
    ]
    return hashlib.blake2s("|".join(parts).encode(), digest_size=8).hexdigest()


@dataclass(frozen=True, slots=True)
class CachedComparison:
    body: str  # the answer's JSON (schemas.Comparison), as cached
    hit: bool


def comparison(group: GroupRow, window: Window) -> CachedComparison:
    """The comparison of the group over the window, from the cache when it is current."""
    days = WINDOW_DAYS[window]
    with transaction() as conn:
        products = db.group_products(conn, [group.id])[group.id]
        # The key names the group's members and their freshness, so a membership change or
        # new data gives a new key (new snapshots also drop the entry by its tags).
        key = f"comparison:{group.id}:{days}:{comparison_version(group, products)}"
        cached = cache_get(conn, key)
        if cached is not None:
            return CachedComparison(cached, hit=True)
        analysis = analyse(conn, products, days)
        body = {
            "group_id": str(group.id),
            "window": window,
            "data_source": analysis.data_source,
            "products": [
                {"asin": p.asin, "role": p.role,
                 "fetch_status": p.last_fetch_status or "pending",
                 "as_of": _iso(analysis.as_of.get(p.asin)),
                 "data_source": analysis.data_sources.get(p.asin)}
                for p in products
            ],
            "comparison": analysis.comparison.to_dict(),
            "features": analysis.features_dict(),
        }
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        cache_put(conn, key, text, COMPARISON_CACHE_TTL_S,
                  [f"product:{p.product_id}" for p in products])
    return CachedComparison(text, hit=False)


def comparison_csv(body: str) -> str:
    """The comparison as CSV, one row per product (domain.csv_export's columns)."""
    rows = csv_export.comparison_rows(json.loads(body))
    return (csv_export.header(csv_export.COMPARISON_COLUMNS)
            + csv_export.lines(csv_export.COMPARISON_COLUMNS, rows))


# ---------------------------------------------------------------- reports


def create_report(user_id: UUID, group: GroupRow, window: Window) -> ReportRow:
    """Queue a report; a second request while one is still in flight gets that one."""
    days = WINDOW_DAYS[window]
    with transaction() as conn:
        pending = db.in_flight_report(conn, group.id, days)
        if pending is not None:  # a double click does not write (and pay for) two reports
            return pending
        report_id = db.insert_report(conn, group.id, user_id, days)
        row = db.get_report(conn, group.id, report_id, with_body=False)
        queue_report(conn, report_id)
    assert row is not None
    return row


def list_reports(group: GroupRow, limit: int, offset: int) -> tuple[list[ReportRow], int]:
    with transaction() as conn:
        return db.list_reports(conn, group.id, limit, offset)


def get_report(group: GroupRow, report_id: UUID) -> ReportRow:
    with transaction() as conn:
        row = db.get_report(conn, group.id, report_id)
    if row is None:
        raise NotFound("report not found")
    return row


def queue_weekly_reports(period: str, window_days: int) -> int:
    """One report per active group for the period, each sent to the low queue."""
    with transaction() as conn:
        ids = db.queue_weekly_reports(conn, period, window_days)
        return outbox.enqueue_many(conn, "low", (report_job(i) for i in ids))


# ---------------------------------------------------------------- the report


@dataclass(slots=True)
class ReportOutcome:
    report: PositioningReport
    generated_by: str  # "llm" | "rules"
    fallback_reason: str | None = None
    spend: LLMSpend = field(default_factory=LLMSpend)
    errors: list[str] = field(default_factory=list)


def cache_key(model: str, messages: list[dict[str, str]]) -> str:
    raw = json.dumps({"model": model, "messages": messages}, sort_keys=True,
                     separators=(",", ":"), ensure_ascii=False)
    return "llm:report:" + hashlib.sha256(raw.encode()).hexdigest()


def _rules(analysis: Analysis, reason: str, spend: LLMSpend | None = None) -> ReportOutcome:
    return ReportOutcome(rules_report(analysis.comparison, analysis.features), "rules",
                         fallback_reason=reason, spend=spend or LLMSpend())


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
            return ReportOutcome(report, "llm", spend=LLMSpend.cache_hit(
                entry.get("model"), bool(entry.get("sandbox"))))
    result = client.complete_json(messages, PositioningReport, REPORT_SCHEMA_NAME)
    spent = result.spend
    if result.error is not None:
        return _rules(analysis, f"model unavailable ({result.error})", spent)
    try:
        report = validate_llm_report(result.raw_text, analysis.comparison, analysis.features)
    except InvalidLLMOutput as exc:
        return _rules(analysis, f"model answer rejected ({exc})", spent)
    entry = {"report": report.model_dump(), "model": result.model, "sandbox": result.sandbox,
             "usage": {"prompt_tokens": result.usage.prompt_tokens,
                       "completion_tokens": result.usage.completion_tokens}}
    cache.put(key, json.dumps(entry), LLM_CACHE_TTL_S)
    return ReportOutcome(report, "llm", spend=spent)


def run_report(report_id: UUID | str, client: Any = ..., *,
               max_receives: int = 1) -> dict[str, Any]:
    """Generate one stored report (idempotent: a done report is left as it is).

    ``client`` defaults to ``adapters.llm.configured_client()``; tests pass their own.
    A failure puts the report back to ``queued`` for the next delivery, or marks it
    ``failed`` on attempt ``max_receives`` (the queue's maxReceiveCount; 1 when called
    outside the queue, where nothing retries).
    """
    rid = UUID(str(report_id))
    with transaction() as conn:
        row = db.claim_report(conn, rid)
        if row is None:
            return {"report_id": str(rid), "skipped": "report or group deleted"}
        if row.status == "done":
            return {"report_id": str(rid), "replayed": True}
        products = db.group_products(conn, [row.group_id])[row.group_id]
        analysis = analyse(conn, products, row.window_days)
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
            "generated_by": outcome.generated_by, "fallback_reason": outcome.fallback_reason,
            **outcome.spend.columns(),
            "data_source": analysis.data_source,
            "report": outcome.report.model_dump_json(),
            "comparison": json.dumps({"comparison": analysis.comparison.to_dict(),
                                      "features": analysis.features.to_dict()}),
        }
        with transaction() as conn:
            db.finish_report(conn, rid, values)
            if row.trigger == "weekly":  # to the seller's channels that take reports
                from amazon_pilot.notifications.service import queue_report_deliveries

                queue_report_deliveries(conn, row.user_id, rid)
    except Exception as exc:
        final = row.attempts >= max_receives
        with transaction() as conn:
            db.fail_report(conn, rid, f"{type(exc).__name__}: {exc}", final)
        raise RetryableJobError(f"report {rid}: {exc!r}") from exc
    return {"report_id": str(rid), "generated_by": outcome.generated_by,
            "cache": outcome.spend.cache, "fallback_reason": outcome.fallback_reason}


def report_job(report_id: UUID | str) -> tuple[str, dict[str, Any], str]:
    return REPORT_JOB, {"report_id": str(report_id)}, f"report:{report_id}"


def queue_report(conn: Connection, report_id: UUID | str) -> None:
    """The report's job, in the outbox in `conn`'s transaction (the one that created it)."""
    job_type, payload, key = report_job(report_id)
    outbox.enqueue(conn, "low", job_type, payload, key)
