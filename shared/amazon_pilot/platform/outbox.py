"""The transactional outbox: every queued job is a row written in the transaction of the
change that needs it, and a relay sends rows to SQS and stamps them sent.

Why: sending to SQS after a commit loses the job when SQS is down (the change is kept,
its work never runs); sending before the commit queues work for a change that may roll
back. With the outbox the job is durable exactly when the change is.

- `enqueue` / `enqueue_many(conn, ...)` insert rows on the caller's connection; after that
  transaction commits, the rows it wrote are relayed at once (best effort, a "nudge").
- `relay()` sends whatever is pending, oldest first; the OutboxRelay schedule runs it in
  AWS and a thread of `pilot run` runs it locally, so rows a nudge could not send (SQS
  down, process gone) leave as soon as SQS answers again.
- Rows are claimed with `FOR UPDATE SKIP LOCKED`, so relays never send a row twice at
  once; a crash between the send and the stamp sends it again, which consumers absorb
  (the job key is the idempotency key).
- `requeue_unfinished()` is for endpoints whose queues die with the process (the local
  runtime's embedded moto): sent rows no consumer finished are made pending again.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, text

from amazon_pilot.platform.db import after_commit, transaction

log = logging.getLogger("amazon_pilot.outbox")

Job = tuple[str, dict[str, Any], str]  # (job type, payload, idempotency key)
PRIORITIES = ("critical", "default", "low")
CLAIM_SIZE = 100  # rows per relay transaction (ten SQS batches)
MAX_BACKOFF_S = 30  # a row that failed waits at most this long before the next try
KEEP_SENT_DAYS = 7


def enqueue(conn: Connection, priority: str, job_type: str, payload: dict[str, Any],
            key: str, *, delay_s: int = 0) -> int:
    return enqueue_many(conn, priority, [(job_type, payload, key)], delay_s=delay_s)


def enqueue_many(conn: Connection, priority: str, jobs: Iterable[Job], *,
                 delay_s: int = 0) -> int:
    """Write the jobs in `conn`'s transaction; they are relayed after it commits, or, with
    `delay_s`, by the first relay `delay_s` seconds from now (a retry's back-off)."""
    if priority not in PRIORITIES:
        raise ValueError(f"unknown queue priority {priority!r}")
    rows = list(jobs)
    if not rows:
        return 0
    ids = list(conn.execute(text(
        "INSERT INTO outbox (priority, job_type, job_key, payload, next_attempt_at)"
        " SELECT :priority, t, k, p, now() + make_interval(secs => :delay)"
        " FROM unnest(CAST(:types AS text[]), CAST(:keys AS text[]),"
        "   CAST(:payloads AS jsonb[])) WITH ORDINALITY AS j(t, k, p, n)"
        " ORDER BY n RETURNING id"),
        {"priority": priority, "delay": max(0, delay_s),
         "types": [r[0] for r in rows], "keys": [r[2] for r in rows],
         "payloads": [json.dumps(r[1], separators=(",", ":"), default=str) for r in rows]},
    ).scalars())
    if delay_s <= 0:  # a delayed job waits for the scheduled relay
        after_commit(conn, lambda: nudge(ids))
    return len(rows)


def nudge(ids: Sequence[int]) -> None:
    """Send these just-committed rows now. Never raises: whatever is not sent stays
    pending for the scheduled relay, and the request that wrote it has succeeded."""
    try:
        relay(ids=ids, fast=True)
    except Exception as exc:
        log.warning("outbox nudge did not send %d job(s): %r", len(ids), exc)


@dataclass
class RelayResult:
    sent: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"sent": self.sent, "failed": self.failed, "errors": self.errors[:5]}


def relay(ids: Sequence[int] | None = None, limit: int = 5000, *,
          fast: bool = False) -> RelayResult:
    """Send pending rows (only `ids`, when given) oldest first, at most `limit`. Stops at
    the first batch SQS refuses entirely: the endpoint is down and the next run retries."""
    from amazon_pilot.adapters.queues import send_jobs

    result = RelayResult()
    while result.sent + result.failed < limit:
        with transaction() as conn:
            rows = conn.execute(text(
                "SELECT id, priority, job_type, job_key, payload, send_attempts FROM outbox"
                " WHERE sent_at IS NULL AND next_attempt_at <= now()"
                + (" AND id = ANY(:ids)" if ids is not None else "") +
                " ORDER BY id LIMIT :n FOR UPDATE SKIP LOCKED"),
                {"ids": list(ids or []), "n": min(CLAIM_SIZE, limit)}).all()
            if not rows:
                break
            failures: dict[int, str] = {}
            for priority in PRIORITIES:
                batch = [(r.id, (r.job_type, r.payload, r.job_key)) for r in rows
                         if r.priority == priority]
                if batch:
                    failures.update(send_jobs(priority, batch, fast=fast))
            sent = [r.id for r in rows if r.id not in failures]
            if sent:
                conn.execute(text(
                    "UPDATE outbox SET sent_at = now(), send_attempts = send_attempts + 1,"
                    " last_error = NULL WHERE id = ANY(:ids)"), {"ids": sent})
            for row_id, reason in failures.items():
                conn.execute(text(
                    "UPDATE outbox SET send_attempts = send_attempts + 1, last_error = :e,"
                    " next_attempt_at = now() + make_interval(secs =>"
                    "   least(power(2, send_attempts), :cap)) WHERE id = :id"),
                    {"id": row_id, "e": reason[:500], "cap": MAX_BACKOFF_S})
        result.sent += len(sent)
        result.failed += len(failures)
        if failures:
            result.errors.extend(sorted(set(failures.values())))
            if not sent:
                break
    if result.failed:
        log.warning("outbox relay: %d sent, %d not sent (%s)", result.sent, result.failed,
                    "; ".join(result.errors[:3]))
    return result


def requeue_unfinished(within_hours: int = 48) -> int:
    """Make sent rows pending again when no consumer finished their job: for a queue
    endpoint that lost its messages (the local runtime's embedded one, after a crash).
    A job counts as finished when its key is recorded done; the relay then sends the
    rest again under the same keys (one result per key). A dead-lettered job (`failed`)
    is sent again too: its DLQ died with that endpoint, and it lands in the new one with
    its reason (a claim of a failed key may be taken again, as a redrive does)."""
    with transaction() as conn:
        # processed_messages.status (done / failed / running / retry) where the schema has
        # it; a row without the column is a finished job.
        return int(conn.execute(text(
            "UPDATE outbox o SET sent_at = NULL, next_attempt_at = now()"
            " WHERE o.sent_at IS NOT NULL"
            "   AND o.sent_at > now() - make_interval(hours => :h)"
            "   AND NOT EXISTS (SELECT 1 FROM processed_messages p"
            "     WHERE p.idempotency_key = o.job_key"
            "       AND coalesce(to_jsonb(p) ->> 'status', 'done') = 'done')"),
            {"h": within_hours}).rowcount)


def pending_by_priority() -> dict[str, int]:
    """Jobs committed but not yet sent, per queue (`pilot queues`)."""
    with transaction() as conn:
        return {str(r[0]): int(r[1]) for r in conn.execute(text(
            "SELECT priority, count(*) FROM outbox WHERE sent_at IS NULL GROUP BY priority"))}


def pending_count() -> int:
    with transaction() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM outbox WHERE sent_at IS NULL")).scalar_one())


def prune(keep_days: int = KEEP_SENT_DAYS) -> int:
    """Sent rows older than `keep_days` go (the reconciler calls this)."""
    with transaction() as conn:
        return int(conn.execute(text(
            "DELETE FROM outbox WHERE sent_at < now() - make_interval(days => :d)"),
            {"d": keep_days}).rowcount)


def scheduled_relay(event: dict[str, Any], now: Any) -> dict[str, Any]:
    """The OutboxRelay schedule's job (platform/scheduler.py PLANNERS): everything pending."""
    return {"job": "relay_outbox", **relay().as_dict(), "pending": pending_count()}
