"""The reconciler: work the queues should be doing but nobody is. It runs on the Reconcile
schedule in AWS and once when `pilot run` starts (after a crash everything that was in
flight is stuck). Each stuck item is re-queued through the outbox under its own job key
(so a late original and the re-queued copy leave one result) or failed with a reason.

- scrape runs `running` longer than their worker may run: failed, "abandoned" (their
  message is retried by SQS, or re-sent by the local runtime; a retry under the same key
  takes the run up again and stores at most one snapshot per product per run: the
  observation time comes from the message and snapshots are unique per product and time);
- competitor reports and suggestion runs `queued`/`running` too long with no job pending
  in the outbox: re-queued, or failed once they used their attempts;
- products tracked (or in a group) that were never fetched and have no fetch attempt and
  no pending fetch job: a first fetch is queued.

This module keeps its SQL here (platform/) because it is the one place that knows what
"stuck" means for every capability; what it queues is each capability's own job.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from amazon_pilot.platform import outbox
from amazon_pilot.platform.db import transaction

RUN_STALE_AFTER = timedelta(minutes=20)  # the workers' Timeout (900 s) and some margin
WORK_STALE_AFTER = timedelta(minutes=30)  # a report or suggestion run with no progress
NEVER_FETCHED_AFTER = timedelta(minutes=10)
MAX_ATTEMPTS = 3  # the queues' maxReceiveCount


@dataclass
class Reconciled:
    runs_abandoned: int = 0
    reports_requeued: int = 0
    reports_failed: int = 0
    suggestion_runs_requeued: int = 0
    suggestion_runs_failed: int = 0
    products_queued: int = 0


def reconcile(now: datetime | None = None, *, after_crash: bool = False) -> dict[str, Any]:
    """One pass. `after_crash`: the only process that could be working has died (the
    local runtime at start), so nothing in flight is waited for."""
    now = now or datetime.now(UTC)
    zero = timedelta(0)
    result = Reconciled()
    with transaction() as conn:
        result.runs_abandoned = conn.execute(text(
            "UPDATE scrape_runs SET status = 'failed', finished_at = now(),"
            " error = :reason WHERE status = 'running' AND started_at < :before"),
            {"before": now - (zero if after_crash else RUN_STALE_AFTER),
             "reason": "abandoned: the worker stopped before the run finished (a crash or a"
                       " timeout); the job is retried under the same key or is in the DLQ"},
        ).rowcount
    work_before = now - (zero if after_crash else WORK_STALE_AFTER)
    for table, job, counts in (("competitor_reports", _report_job, "reports"),
                               ("suggestion_runs", _suggest_job, "suggestion_runs")):
        requeued, failed = _stuck_work(table, job, work_before)
        setattr(result, f"{counts}_requeued", requeued)
        setattr(result, f"{counts}_failed", failed)
    result.products_queued = _never_fetched(now - (zero if after_crash else
                                                   NEVER_FETCHED_AFTER))
    return {"job": "reconcile", **asdict(result)}


def _report_job(row_id: str) -> outbox.Job:
    from amazon_pilot.competitors.service import report_job

    return report_job(row_id)


def _suggest_job(row_id: str) -> outbox.Job:
    from amazon_pilot.optimization.service import suggest_job

    return suggest_job(row_id)


def _stuck_work(table: str, make_job: Any, before: datetime) -> tuple[int, int]:
    """Rows queued/running since `before` whose job is not waiting in the outbox."""
    with transaction() as conn:
        rows = conn.execute(text(
            f"SELECT id, attempts FROM {table} w"
            " WHERE w.status IN ('queued', 'running')"
            "   AND coalesce(w.started_at, w.created_at) < :before"
            "   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.sent_at IS NULL"
            "     AND o.job_key = :prefix || w.id::text)"
            " FOR UPDATE SKIP LOCKED"),
            {"before": before, "prefix": make_job("x")[2][:-1]}).all()
        spent = [r.id for r in rows if r.attempts >= MAX_ATTEMPTS]
        retry = [r.id for r in rows if r.attempts < MAX_ATTEMPTS]
        if spent:
            conn.execute(text(
                f"UPDATE {table} SET status = 'failed', finished_at = now(),"
                " error = :reason WHERE id = ANY(:ids)"),
                {"ids": spent, "reason": f"abandoned after {MAX_ATTEMPTS} attempts: no"
                                         " worker finished it"})
        if retry:
            conn.execute(text(
                f"UPDATE {table} SET status = 'queued' WHERE id = ANY(:ids)"),
                {"ids": retry})
            outbox.enqueue_many(conn, "low", (make_job(str(i)) for i in retry))
    return len(retry), len(spent)


def _never_fetched(before: datetime) -> int:
    """Tracked or grouped products with no observation, no fetch attempt on record and
    no unfinished fetch job: first fetches for them, 50 per job."""
    from amazon_pilot.tracking.service import fetch_job

    with transaction() as conn:
        ids = list(conn.execute(text(
            "SELECT p.id FROM products p"
            " WHERE p.latest_captured_at IS NULL AND p.last_fetch_status IS NULL"
            "   AND p.created_at < :before"
            "   AND (EXISTS (SELECT 1 FROM tracked_products t WHERE t.product_id = p.id)"
            "     OR EXISTS (SELECT 1 FROM competitor_group_members g"
            "                WHERE g.product_id = p.id)"
            "     OR EXISTS (SELECT 1 FROM competitor_groups g WHERE g.main_product_id = p.id))"
            "   AND NOT EXISTS (SELECT 1 FROM scrape_run_products r WHERE r.product_id = p.id)"
            # a fetch job for it that no consumer has finished (waiting, queued, running)
            "   AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.job_type = 'fetch_products'"
            "     AND o.payload -> 'product_ids' @> to_jsonb(p.id)"
            "     AND NOT EXISTS (SELECT 1 FROM processed_messages m"
            "       WHERE m.idempotency_key = o.job_key"
            "         AND coalesce(to_jsonb(m) ->> 'status', 'done') IN ('done', 'failed')))"
            " ORDER BY p.id"), {"before": before}).scalars())
        if not ids:
            return 0
        now = datetime.now(UTC).replace(microsecond=0)
        batches = [ids[i:i + 50] for i in range(0, len(ids), 50)]
        outbox.enqueue_many(conn, "critical",
                            (fetch_job(b, "reconcile", now) for b in batches))
    return len(ids)


def scheduled_reconcile(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The Reconcile schedule's job (platform/scheduler.py PLANNERS)."""
    from amazon_pilot.platform import idempotency

    result = reconcile(now)
    result["outbox_pruned"] = outbox.prune()
    result["idempotency_keys_pruned"] = idempotency.prune()
    return result
