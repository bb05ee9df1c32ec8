"""Request and response models of the notification channel routes, and the payloads of
the notification jobs."""

import datetime as dt
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from amazon_pilot.domain.changes import AlertType
from amazon_pilot.platform.models import Strict

Severity = Literal["info", "warning", "critical"]
ChannelKind = Literal["webhook", "email", "slack"]
ChannelEvent = Literal["alert", "digest", "report"]
ChannelStatus = Literal["active", "unverified", "paused"]
DeliveryKind = Literal["alert", "digest", "test", "report", "verify"]
DeliveryStatus = Literal["pending", "delivered", "failed", "suppressed"]


_EVENTS = ("what the channel receives: alert (per-alert messages), digest, report (weekly "
           "competitor reports); default all three")


def _all_events() -> list[ChannelEvent]:
    return ["alert", "digest", "report"]


class ChannelIn(Strict):
    kind: ChannelKind
    # Lengths are checked by the rules below, with a message that says which limit.
    url: str | None = Field(None, max_length=8192, examples=["https://example.com/hooks/pilot"],
                            description="webhook: any public https URL; slack: the incoming "
                            "webhook URL (https://hooks.slack.com/services/…)")
    email: str | None = Field(None, max_length=1024, examples=["me@example.com"])
    name: str | None = Field(None, max_length=100, description="a label of your choice")
    events: list[ChannelEvent] | None = Field(None, min_length=1, description=_EVENTS)
    min_severity: Severity = "info"


class ChannelPatch(Strict):
    """Fields to change; a new e-mail address must be confirmed again."""

    url: str | None = Field(None, max_length=8192)
    email: str | None = Field(None, max_length=1024)
    name: str | None = Field(None, max_length=100)
    events: list[ChannelEvent] | None = Field(None, min_length=1, description=_EVENTS)
    min_severity: Severity | None = None
    is_active: bool | None = Field(None, description="false pauses the channel")


class ChannelOut(BaseModel):
    id: UUID
    kind: ChannelKind
    name: str | None = None
    url: str | None = Field(None, description="the webhook or Slack URL")
    email: str | None = Field(None, description="the address (email channels)")
    events: list[ChannelEvent] = Field(default_factory=_all_events)
    min_severity: Severity
    is_active: bool
    verified: bool = Field(True, description="false: an e-mail address not confirmed yet by "
                           "the link sent to it; it receives nothing until then")
    status: ChannelStatus = Field("active", description="active | unverified (skipped until "
                                  "confirmed) | paused")
    verification_sent_at: dt.datetime | None = None
    created_at: dt.datetime


class ChannelVerified(BaseModel):
    channel_id: UUID
    email: str
    verified: Literal[True] = True


class SnoozeIn(Strict):
    """Snooze a tracked product, an alert type, or one type of one product: give
    `hours` or `until`."""

    tracked_product_id: UUID | None = Field(None, description="the product (its id in "
                                            "/v1/products)")
    alert_type: AlertType | None = None
    hours: float | None = Field(None, gt=0, le=24 * 90)
    until: dt.datetime | None = None


class SnoozeOut(BaseModel):
    id: UUID
    tracked_product_id: UUID | None
    alert_type: str | None
    starts_at: dt.datetime
    until: dt.datetime


class SnoozeList(BaseModel):
    items: list[SnoozeOut]


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
    report_id: UUID | None = None
    # an e-mail verification: the link's token, sealed (adapters.crypto), and the link base
    verify_token: str | None = None
    link_base: str | None = None


class DigestPayload(Strict):
    """send_digest: one user's digest of one day."""

    user_id: UUID
    date: dt.date


class SweepPayload(Strict):
    """sweep_notifications: fan out pending alerts created before this moment."""

    before: dt.datetime
