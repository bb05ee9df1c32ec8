"""Jobs that belong to the platform itself rather than to a product feature."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
from amazon_pilot.platform.jobs import Delivery


def noop(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    return {"ok": True}


def fail(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Operators' probe for the retry and DLQ path: fails as told."""
    if payload.get("permanent"):
        raise PermanentJobError(payload.get("reason", "asked to fail permanently"))
    raise RetryableJobError(payload.get("reason", "asked to fail"))


def record(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Writes one audit row per key: the smallest job that shows idempotency."""
    key = delivery.key
    with transaction() as conn:
        # SQS may deliver a duplicate to a second consumer at the same moment; the lock
        # makes the second wait and then see the first's row (NOT EXISTS alone races)
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext(:key))"), {"key": key})
        conn.execute(
            text(
                "INSERT INTO audit_log (action, target, details)"
                " SELECT 'job.record', :key, '{}'::jsonb"
                " WHERE NOT EXISTS (SELECT 1 FROM audit_log"
                "   WHERE action = 'job.record' AND target = :key)"
            ),
            {"key": key},
        )
    return {"recorded": key}


def maintain_partitions(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Keep snapshot partitions three months ahead and drop expired cache rows."""
    months_ahead = int(payload.get("months_ahead", 3))
    today = datetime.now(UTC).date()
    with transaction() as conn:
        created = conn.execute(
            text("SELECT ensure_snapshot_partitions(:a, :b)"),
            {"a": today.replace(day=1), "b": today + timedelta(days=31 * months_ahead)},
        ).scalar()
        expired = conn.execute(text("DELETE FROM cache_entries WHERE expires_at < now()")).rowcount
        counters = conn.execute(
            text("DELETE FROM rate_limit_counters WHERE window_start < now() - interval '1 day'")
        ).rowcount
    return {"partitions_created": created, "cache_expired": expired, "counters_removed": counters}
