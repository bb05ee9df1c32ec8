"""Request and response models of the notification channel routes, and the payloads of
the notification jobs."""

from __future__ import annotations

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from amazon_pilot.platform.models import Strict

Severity = Literal["info", "warning", "critical"]
ChannelKind = Literal["webhook", "email"]
DeliveryKind = Literal["alert", "digest", "test"]
DeliveryStatus = Literal["pending", "delivered", "failed", "suppressed"]


class ChannelIn(Strict):
    kind: ChannelKind
    # Lengths are checked by the rules below, with a message that says which limit.
    url: str | None = Field(None, max_length=8192, examples=["https://example.com/hooks/pilot"])
    email: str | None = Field(None, max_length=1024, examples=["me@example.com"])
    min_severity: Severity = "info"


class ChannelOut(BaseModel):
    id: UUID
    kind: ChannelKind
    url: str | None = Field(None, description="the webhook URL (webhook channels)")
    email: str | None = Field(None, description="the address (email channels)")
    min_severity: Severity
    is_active: bool
    created_at: dt.datetime


class ChannelCreated(ChannelOut):
    secret: str | None = Field(
        None, description="HMAC-SHA256 signing key of a webhook; shown only in this response")


class ChannelList(BaseModel):
    items: list[ChannelOut]


class DeliveryOut(BaseModel):
    id: UUID
    kind: DeliveryKind
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    last_error: str | None
    alert_ids: list[UUID]
    created_at: dt.datetime
    last_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None


class DeliveryList(BaseModel):
    channel_id: UUID
    items: list[DeliveryOut]


class TestQueued(BaseModel):
    channel_id: UUID
    delivery_id: UUID
    status: Literal["queued"] = "queued"


# ------------------------------------------------------------------ job payloads


class DeliverPayload(Strict):
    """deliver_notification: one delivery to one channel (no alert: a channel test)."""

    delivery_id: UUID
    channel_id: UUID
    alert_id: UUID | None = None


class DigestPayload(Strict):
    """send_digest: one user's digest of one day."""

    user_id: UUID
    date: dt.date


class SweepPayload(Strict):
    """sweep_notifications: fan out pending alerts created before this moment."""

    before: dt.datetime
