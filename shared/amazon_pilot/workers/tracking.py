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

from amazon_pilot.adapters.queues import enqueue_many
from amazon_pilot.db.snapshots import IngestResult, ingest
from amazon_pilot.domain.snapshot import Snapshot
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
from amazon_pilot.platform.jobs import Delivery
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking import store

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
        run = store.begin_run(conn, key, trigger, captured_at, len(product_ids))
        if run.status == "succeeded":
            return {"scrape_run_id": run.id, "replayed": True}
        refs = store.product_keys(conn, product_ids)
    by_ref = {(r.asin, r.marketplace): r.id for r in refs}
    unusable = _unusable_refs(by_ref)  # one bad row must not sink the other 49
    for ref in unusable:
        by_ref.pop(ref)
    started = time.monotonic()
    try:
        result = (fetcher or make_fetcher(sandbox_date)).fetch(list(by_ref))
    except ApifyRejected as exc:
        _finish_failed(run.id, "failed", str(exc), started, None)
        raise PermanentJobError(str(exc)) from exc
    except ApifyRunError as exc:
        status = "timed_out" if "TIM" in exc.status else "failed"
        _finish_failed(run.id, status, str(exc), started, exc.record)
        raise RetryableJobError(str(exc)) from exc
    except ApifyError as exc:
        _finish_failed(run.id, "failed", str(exc), started, None)
        raise RetryableJobError(str(exc)) from exc
    observations: list[tuple[int, Snapshot]] = []
    for snap in result.snapshots:
        pid = by_ref.get((snap.asin, snap.marketplace))
        if pid is not None:
            observations.append((pid, snap))
    missing = [by_ref[ref] for ref in by_ref if ref[0] in set(result.not_found)]
    missing += list(unusable.values())
    with transaction() as conn:
        outcome: IngestResult = ingest(conn, captured_at, run.id, observations)
        if missing:
            store.mark_not_found(conn, missing, captured_at)
        store.finish_run(
            conn, run.id, apify_run_id=result.run_id, actor_id=result.actor_id,
            items=result.item_count, not_found=len(result.not_found),
            malformed=len(result.malformed), cost_usd=result.cost_usd,
            data_source=result.data_source, duration_ms=_elapsed_ms(started))
    if outcome.alert_ids:
        _notify(outcome.alert_ids)
    return {"scrape_run_id": run.id, "stored": outcome.inserted, "replayed_rows":
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


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _finish_failed(run_id: str, status: str, error: str, started: float, record: Any) -> None:
    with transaction() as conn:
        store.fail_run(conn, run_id, status=status, error=error,
                       duration_ms=_elapsed_ms(started),
                       apify_run_id=getattr(record, "run_id", None),
                       cost_usd=getattr(record, "cost_usd", None))


# ---------------------------------------------------------------- daily plan


def plan_daily_refresh(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """One fetch per shared product that any seller tracks (not per seller), in batches."""
    batch_size = max(1, int(event.get("batch_size") or settings().apify_batch_size))
    captured_at = now.replace(minute=0, second=0, microsecond=0)
    with transaction() as conn:
        due = store.due_products(conn, now - timedelta(hours=20))
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
