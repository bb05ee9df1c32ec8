"""SQL of the operator console: job history (processed_messages with the outbox row
that sent each job) and the outbox backlog."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, text


def recent_jobs(conn: Connection, *, limit: int, status: str | None,
                job_type: str | None) -> list[dict[str, Any]]:
    rows = conn.execute(text(
        "SELECT p.idempotency_key AS key, p.job_type, p.status, p.attempts, p.last_error,"
        "  p.processed_at AS finished_at, o.created_at AS queued_at, o.priority,"
        "  CASE WHEN p.status = 'done' AND o.sent_at IS NOT NULL"
        "    THEN greatest(0, extract(epoch FROM p.processed_at - o.sent_at)) END AS duration_s"
        " FROM processed_messages p"
        " LEFT JOIN LATERAL (SELECT created_at, sent_at, priority FROM outbox"
        "   WHERE job_key = p.idempotency_key ORDER BY id DESC LIMIT 1) o ON true"
        " WHERE (CAST(:status AS text) IS NULL OR p.status = :status)"
        "   AND (CAST(:job_type AS text) IS NULL OR p.job_type = :job_type)"
        " ORDER BY p.processed_at DESC LIMIT :limit"),
        {"limit": limit, "status": status, "job_type": job_type}).all()
    return [dict(r._mapping) for r in rows]


def job_counts(conn: Connection) -> dict[str, int]:
    return {str(r[0]): int(r[1]) for r in conn.execute(text(
        "SELECT status, count(*) FROM processed_messages"
        " WHERE processed_at > now() - interval '24 hours' GROUP BY status"))}


def outbox_backlog(conn: Connection) -> dict[str, Any]:
    pending = {str(r[0]): int(r[1]) for r in conn.execute(text(
        "SELECT priority, count(*) FROM outbox WHERE sent_at IS NULL GROUP BY priority"))}
    row = conn.execute(text(
        "SELECT extract(epoch FROM now() - min(created_at)) AS oldest,"
        "  count(*) FILTER (WHERE last_error IS NOT NULL) AS failing,"
        "  (SELECT last_error FROM outbox WHERE sent_at IS NULL AND last_error IS NOT NULL"
        "   ORDER BY id DESC LIMIT 1) AS last_error"
        " FROM outbox WHERE sent_at IS NULL")).one()
    return {"pending": pending,
            "oldest_pending_s": float(row.oldest) if row.oldest is not None else None,
            "failing": int(row.failing or 0), "last_error": row.last_error}
