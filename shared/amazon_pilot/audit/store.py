"""SQL of the audit log reader. The writer is accounts.store.audit (every capability
records through it, in its own transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, text

_COLUMNS = "id, at, action, user_id, actor_id, target, ip, request_id, details"


def page(conn: Connection, *, before_id: int | None, limit: int, action: str | None,
         action_prefix: str | None, user_id: str | None, actor_id: str | None,
         since: datetime | None, until: datetime | None) -> list[dict[str, Any]]:
    """Newest first (by id, which follows time), at most `limit` rows older than
    `before_id`; every filter optional. LIKE metacharacters in the prefix are escaped."""
    prefix = None
    if action_prefix is not None:
        prefix = (action_prefix.replace("\\", "\\\\").replace("%", "\\%")
                  .replace("_", "\\_")) + "%"
    rows = conn.execute(text(
        f"SELECT {_COLUMNS} FROM audit_log"
        " WHERE (CAST(:before AS bigint) IS NULL OR id < :before)"
        " AND (CAST(:action AS text) IS NULL OR action = :action)"
        " AND (CAST(:prefix AS text) IS NULL OR action LIKE :prefix ESCAPE '\\')"
        " AND (CAST(:user_id AS uuid) IS NULL OR user_id = CAST(:user_id AS uuid))"
        " AND (CAST(:actor_id AS uuid) IS NULL OR actor_id = CAST(:actor_id AS uuid))"
        " AND (CAST(:since AS timestamptz) IS NULL OR at >= :since)"
        " AND (CAST(:until AS timestamptz) IS NULL OR at < :until)"
        " ORDER BY id DESC LIMIT :limit"),
        {"before": before_id, "action": action, "prefix": prefix, "user_id": user_id,
         "actor_id": actor_id, "since": since, "until": until, "limit": limit}).all()
    return [dict(r._mapping) for r in rows]
