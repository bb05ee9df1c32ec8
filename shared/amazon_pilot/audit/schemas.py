"""Shapes of the audit log reader (GET /v1/admin/audit)."""

import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field


class AuditEntry(BaseModel):
    id: int
    at: datetime
    action: str = Field(description="e.g. auth.login, auth.login_failed, admin.user_update, "
                                    "notification_channel.create")
    user_id: uuid.UUID | None = Field(None, description="the account the event is about")
    actor_id: uuid.UUID | None = Field(None, description="who did it (None: nobody signed in)")
    target: str | None = None
    ip: str | None = None
    request_id: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_cursor: str | None = Field(
        None, description="pass as `cursor` for the next (older) page; null on the last page")
    limit: int
