"""Product fetching jobs: the daily plan, one batch fetch, first fetches and refreshes.

A batch job is idempotent twice over: its scrape run is keyed by the job key (a
replay after success does not start the actor again), and its snapshots are keyed
by (product, captured_at) where captured_at comes from the message, not the clock.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from amazon_pilot.adapters.queues import enqueue_many
from amazon_pilot.db.snapshots import IngestResult, ingest
from amazon_pilot.domain.snapshot import Snapshot
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
from amazon_pilot.platform.jobs import Delivery
from amazon_pilot.platform.settings import settings

FETCH_JOB = "fetch_products"


def make_fetcher(sandbox_date: date | None = None) -> Any:
    from amazon_pilot.adapters.apify import ApifyProductFetcher

    cfg = settings()
    if not cfg.apify_token:
        raise PermanentJobError("APIFY_TOKEN is not set and no stand-in is configured")
    return ApifyProductFetcher(
        cfg.apify_token, cfg.apify_api_url, actor_id=cfg.apify_actor_id,
        sandbox_date=sandbox_date,
        max_retries=cfg.apify_max_retries,
        min_delay_between_retries_millis=cfg.apify_retry_delay_ms,
    )


def fetch_job(product_ids: list[int], trigger: str, captured_at: datetime,
              sandbox_date: date | None = None) -> tuple[str, dict[str, Any], str]:
    """A queued job that fetches these products for one observation time."""
    digest = hashlib.blake2s(",".join(map(str, sorted(product_ids))).encode(),
                             digest_size=6).hexdigest()
    key = f"fetch:{trigger}:{captured_at.isoformat()}:{digest}"
    payload: dict[str, Any] = {"product_ids": product_ids, "trigger": trigger,
                               "captured_at": captured_at.isoformat()}
    if sandbox_date is not None:
        payload["sandbox_date"] = sandbox_date.isoformat()
    return FETCH_JOB, payload, key


def fetch_products(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    try:
        product_ids = [int(p) for p in payload["product_ids"]]
        trigger = str(payload.get("trigger", "schedule"))
        captured_at = datetime.fromisoformat(payload["captured_at"])
        sandbox = payload.get("sandbox_date")
        sandbox_date = date.fromisoformat(sandbox) if sandbox else None
    except (KeyError, TypeError, ValueError) as exc:
        raise PermanentJobError(f"bad fetch payload: {exc!r}") from exc
    return run_fetch(product_ids, trigger, captured_at, delivery.key, sandbox_date)


def run_fetch(product_ids: list[int], trigger: str, captured_at: datetime, key: str,
              sandbox_date: date | None = None, fetcher: Any = None) -> dict[str, Any]:
    from amazon_pilot.adapters.apify import ApifyError, ApifyRejected, ApifyRunError

    with transaction() as conn:
        run = _begin_run(conn, key, trigger, captured_at, len(product_ids))
        if run["status"] == "succeeded":
            return {"scrape_run_id": run["id"], "replayed": True}
        refs = conn.execute(text("SELECT id, asin, marketplace FROM products WHERE id = ANY(:ids)"),
                            {"ids": product_ids}).all()
    by_ref = {(r.asin, r.marketplace): r.id for r in refs}
    unusable = _unusable_refs(by_ref)  # one bad row must not sink the other 49
    for ref in unusable:
        by_ref.pop(ref)
    started = time.monotonic()
    try:
        result = (fetcher or make_fetcher(sandbox_date)).fetch(list(by_ref))
    except ApifyRejected as exc:
        _finish_failed(run["id"], "failed", str(exc), started, None)
        raise PermanentJobError(str(exc)) from exc
    except ApifyRunError as exc:
        status = "timed_out" if "TIM" in exc.status else "failed"
        _finish_failed(run["id"], status, str(exc), started, exc.record)
        raise RetryableJobError(str(exc)) from exc
    except ApifyError as exc:
        _finish_failed(run["id"], "failed", str(exc), started, None)
        raise RetryableJobError(str(exc)) from exc
    observations: list[tuple[int, Snapshot]] = []
    for snap in result.snapshots:
        pid = by_ref.get((snap.asin, snap.marketplace))
        if pid is not None:
            observations.append((pid, snap))
    missing = [by_ref[ref] for ref in by_ref if ref[0] in set(result.not_found)]
    missing += list(unusable.values())
    with transaction() as conn:
        outcome: IngestResult = ingest(conn, captured_at, run["id"], observations)
        if missing:
            conn.execute(text(
                "UPDATE products SET last_fetch_status = 'not_found',"
                " not_found_since = coalesce(not_found_since, :at) WHERE id = ANY(:ids)"),
                {"ids": missing, "at": captured_at})
        conn.execute(text(
            "UPDATE scrape_runs SET status = 'succeeded', apify_run_id = :rid, actor_id = :actor,"
            " item_count = :items, not_found_count = :nf, malformed_count = :bad,"
            " cost_usd = :cost, data_source = :src, error = NULL, finished_at = now(),"
            " duration_ms = :ms WHERE id = :id"),
            {"rid": result.run_id, "actor": result.actor_id, "items": result.item_count,
             "nf": len(result.not_found), "bad": len(result.malformed), "cost": result.cost_usd,
             "src": result.data_source, "ms": int((time.monotonic() - started) * 1000),
             "id": run["id"]})
    if outcome.alert_ids:
        _notify(outcome.alert_ids)
    return {"scrape_run_id": run["id"], "stored": outcome.inserted, "replayed_rows":
            outcome.skipped, "not_found": len(missing), "malformed": len(result.malformed),
            "alerts": len(outcome.alert_ids)}


def _unusable_refs(by_ref: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Products whose ASIN or marketplace no actor URL can be built for."""
    from amazon_pilot.domain.product_ref import InvalidProductRef, product_url

    bad = {}
    for ref, product_id in by_ref.items():
        try:
            product_url(*ref)
        except InvalidProductRef:
            bad[ref] = product_id
    return bad


def _notify(alert_ids: list[str]) -> None:
    """Hand new alerts to delivery. The snapshots are committed already, so a failure
    here must not fail the job: the notification sweep picks such alerts up."""
    import logging

    from amazon_pilot.notifications.service import fan_out

    try:
        fan_out(alert_ids)
    except Exception as exc:
        logging.getLogger(__name__).warning(
            "fan-out failed; the sweep will deliver %d alert(s): %r", len(alert_ids), exc)


def _begin_run(conn: Connection, key: str, trigger: str, captured_at: datetime,
               count: int) -> dict[str, Any]:
    row = conn.execute(text(
        "INSERT INTO scrape_runs (idempotency_key, trigger, status, product_count, captured_at)"
        " VALUES (:k, :t, 'running', :n, :at)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET attempts = scrape_runs.attempts + 1,"
        "   status = CASE WHEN scrape_runs.status = 'succeeded' THEN 'succeeded'"
        "   ELSE 'running' END, started_at = now()"
        " RETURNING id, status"), {"k": key, "t": trigger, "n": count, "at": captured_at}).one()
    return {"id": str(row.id), "status": row.status}


def _finish_failed(run_id: str, status: str, error: str, started: float, record: Any) -> None:
    with transaction() as conn:
        conn.execute(text(
            "UPDATE scrape_runs SET status = :s, error = :e, finished_at = now(),"
            " duration_ms = :ms, apify_run_id = coalesce(:rid, apify_run_id),"
            " cost_usd = coalesce(:cost, cost_usd) WHERE id = :id"),
            {"s": status, "e": error[:2000], "ms": int((time.monotonic() - started) * 1000),
             "rid": getattr(record, "run_id", None), "cost": getattr(record, "cost_usd", None),
             "id": run_id})


# ---------------------------------------------------------------- daily plan


def plan_daily_refresh(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One fetch per shared product that any seller tracks (not per seller), in batches."""
    batch_size = max(1, int(event.get("batch_size") or settings().apify_batch_size))
    captured_at = now.replace(minute=0, second=0, microsecond=0)
    with transaction() as conn:
        due = conn.execute(text(
            "SELECT p.id FROM products p WHERE (EXISTS (SELECT 1 FROM tracked_products t"
            "   WHERE t.product_id = p.id AND NOT t.is_paused)"
            "  OR EXISTS (SELECT 1 FROM competitor_groups g WHERE g.is_active"
            "   AND g.main_product_id = p.id)"
            "  OR EXISTS (SELECT 1 FROM competitor_group_members m JOIN competitor_groups g"
            "   ON g.id = m.group_id WHERE m.product_id = p.id AND g.is_active))"
            " AND (p.latest_captured_at IS NULL OR p.latest_captured_at < :fresh)"
            " ORDER BY p.id"), {"fresh": now - timedelta(hours=20)}).scalars().all()
    batches = [list(due[i:i + batch_size]) for i in range(0, len(due), batch_size)]
    sent = enqueue_many("default", (fetch_job(b, "schedule", captured_at) for b in batches))
    return {"job": "daily_refresh", "products": len(due), "batches": sent,
            "captured_at": captured_at.isoformat()}


def queue_first_fetch(product_ids: list[int], trigger: str = "add") -> int:
    """User-triggered fetches go on the critical queue, one actor run for the lot."""
    if not product_ids:
        return 0
    now = datetime.now(UTC).replace(microsecond=0)
    return enqueue_many("critical", [fetch_job(sorted(set(product_ids)), trigger, now)])


def backfill(product_ids: list[int], days: int, today: date | None = None,
             fetcher_factory: Any = None) -> int:
    """Fill `days` of history from the sandbox catalog, oldest first (stand-in only)."""
    today = today or datetime.now(UTC).date()
    stored = 0
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        captured_at = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        fetcher = (fetcher_factory or make_fetcher)(day)
        _, _, key = fetch_job(product_ids, "backfill", captured_at)
        result = run_fetch(product_ids, "backfill", captured_at, key, day, fetcher=fetcher)
        stored += int(result.get("stored", 0))
    return stored
