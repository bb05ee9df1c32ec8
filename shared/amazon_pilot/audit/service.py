"""Reading the audit log (administrators). Every admin action and security event is
written where it happens (accounts.store.audit); reading it is audited too, so who
looked at the log is in the log.

Pagination is by cursor (the last id seen): stable while new rows arrive, and as cheap
for page 500 as for page 1.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from amazon_pilot.audit import store
from amazon_pilot.audit.schemas import AuditEntry, AuditPage
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import ValidationFailed

READ_ACTION = "admin.audit_read"


def _cursor(raw: str | None) -> int | None:
    if raw is None:
        return None
    if not raw.isdigit() or len(raw) > 19:
        raise ValidationFailed("cursor: not a cursor from a previous page",
                               details=[{"field": "cursor",
                                         "message": "not a cursor from a previous page"}])
    return int(raw)


def read(admin_id: UUID, *, limit: int, cursor: str | None, action: str | None,
         action_prefix: str | None, user_id: UUID | None, actor_id: UUID | None,
         since: datetime | None, until: datetime | None, ip: str | None = None,
         request_id: str | None = None) -> AuditPage:
    if since is not None and until is not None and since >= until:
        raise ValidationFailed("since: must be before until",
                               details=[{"field": "since", "message": "must be before until"}])
    before = _cursor(cursor)
    with reading() as conn:
        rows = store.page(conn, before_id=before, limit=limit + 1, action=action,
                          action_prefix=action_prefix,
                          user_id=str(user_id) if user_id else None,
                          actor_id=str(actor_id) if actor_id else None,
                          since=since, until=until)
    more = len(rows) > limit
    items = [AuditEntry(**r) for r in rows[:limit]]
    filters = {k: str(v) for k, v in (("action", action), ("action_prefix", action_prefix),
                                      ("user_id", user_id), ("actor_id", actor_id),
                                      ("since", since), ("until", until), ("cursor", cursor))
               if v is not None}
    from amazon_pilot.accounts.store import audit

    with transaction() as conn:
        audit(conn, READ_ACTION, actor_id=admin_id, ip=ip, request_id=request_id,
              details={"filters": filters, "returned": len(items)})
    return AuditPage(items=items, next_cursor=str(items[-1].id) if more and items else None,
                     limit=limit)
