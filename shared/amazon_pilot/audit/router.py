"""The audit log reader (a route of the auth function, under /v1/admin/):

- ``GET /v1/admin/audit`` → {"items": [...], "next_cursor", "limit"}, newest first.
  Filters: ``action`` (exact), ``action_prefix`` (e.g. ``auth.``), ``user_id`` (the
  account an event is about), ``actor_id`` (who did it), ``since`` / ``until`` (ISO
  8601, since inclusive, until exclusive); ``limit`` 1 to 200 (default 50); ``cursor`` from the
  previous page. 401 without a token, 403 for a seller, 422 for a malformed filter.
  Each read is itself recorded (``admin.audit_read``).

What is recorded, by whom: docs/security.md.
"""

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from amazon_pilot.audit import service
from amazon_pilot.audit.schemas import AuditPage
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.security import AdminCaller

router = APIRouter(tags=["admin"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "no valid access token"},
    403: {"description": "the caller is not an administrator"},
}


@router.get("/v1/admin/audit", response_model=AuditPage, responses=_ERRORS,
            summary="The audit log: admin actions and security events, newest first")
async def read_audit_log(
    request: Request,
    admin: AdminCaller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
    action: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    action_prefix: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    user_id: uuid.UUID | None = None,
    actor_id: uuid.UUID | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
) -> AuditPage:
    return service.read(admin.id, limit=limit, cursor=cursor, action=action,
                        action_prefix=action_prefix, user_id=user_id, actor_id=actor_id,
                        since=since, until=until, ip=ratelimit.client_ip(request.scope),
                        request_id=request.scope.get("state", {}).get("request_id"))
