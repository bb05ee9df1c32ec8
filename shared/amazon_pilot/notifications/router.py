"""Notification channels: where a seller's alerts go (routes of the products function).

Routes (all scoped to the caller; another seller's channel id answers 404):

- ``POST /v1/notification-channels`` {"kind": "webhook", "url"} or {"kind": "email",
  "email"}, optional "min_severity" (info | warning | critical, default info) → 201
  with the channel; a webhook's signing ``secret`` is in this response only.
- ``GET /v1/notification-channels`` → {"items": [...]} (never the secret).
- ``DELETE /v1/notification-channels/{id}`` → 204 (its delivery log goes with it).
- ``GET /v1/notification-channels/{id}/deliveries`` → the delivery log, newest first:
  kind (alert | digest | test), status (pending | delivered | failed | suppressed),
  attempts, response_code, last_error, alert_ids, created_at, last_attempt_at,
  delivered_at.
- ``POST /v1/notification-channels/{id}/test`` → 202 {"delivery_id"}: queues a
  ``notification.test`` message (at most 5 per channel per hour).

Webhook URLs: https, or plain http only to a loopback host (127.0.0.0/8, ::1,
localhost); never private or reserved addresses, credentials in the URL, other
schemes, or more than 2048 characters — each refused with its own 422 message. The
URL is never fetched except to deliver notifications (no validation request).

Payload (JSON, UTF-8, POST)::

    {"event": "alert.created", "version": 1, "delivery_id": "<uuid>",
     "sent_at": "<ISO 8601>", "data_source": "apify" | "sandbox",
     "alert": {"id", "type", "severity", "metric",
               "product": {"asin", "marketplace", "title"},
               "old_value", "new_value", "change_pct", "threshold", "message",
               "created_at"}}

``alert.digest`` carries "date", "alert_count" and "products": [{"asin",
"marketplace", "title", "alerts": [<alert>, ...]}]; ``notification.test`` carries
"channel_id" and "message".

Signature: headers ``X-Pilot-Timestamp`` (unix seconds), ``X-Pilot-Delivery`` (the
delivery id, the same on every retry: use it to drop duplicates), ``X-Pilot-Event``
and ``X-Pilot-Signature: sha256=<hex>``, the HMAC-SHA256 keyed with the channel secret
of ``<timestamp> + "." + <raw body bytes>``. A receiver recomputes it over the raw
body (before any JSON parsing), compares in constant time, and rejects timestamps more
than 5 minutes from its clock (``amazon_pilot.domain.notifications.verify``).

Delivery: 10 s timeout, redirects not followed, 2xx = delivered. Anything else is
retried with exponential back-off (RETRY_BASE_SECONDS x 2^(n-1): 30 s, 60 s on the
critical queue) for 3 attempts in all; then the delivery is 'failed' and the message
is in the critical DLQ. Each attempt's response code and error are in the log.

Cap: at most notification_prefs.max_notifications_per_product_per_day (default 5)
notifications per product per UTC day and user; alerts beyond it are logged as
'suppressed' deliveries (the most severe alerts are kept when only some fit).

Digest: users with notification_prefs {"digest": "daily"} get no per-alert messages;
at 08:00 UTC one message per channel lists their pending alerts grouped by product.
See docs/notifications.md.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from amazon_pilot.domain import notifications as rules
from amazon_pilot.notifications.schemas import (
    ChannelCreated,
    ChannelIn,
    ChannelList,
    ChannelOut,
    DeliveryKind,
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    TestQueued,
)
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from amazon_pilot.platform.security import CurrentUser, current_user

router = APIRouter(tags=["notifications"])

User = Annotated[CurrentUser, Depends(current_user)]
MAX_CHANNELS_PER_USER = 10
TEST_SENDS_PER_HOUR = 5
SECRET_PREFIX = "whsec_"
_CHANNEL_COLUMNS = "id, kind, target, min_severity, is_active, created_at"


def _channel_out(row: Any, model: type[ChannelOut] = ChannelOut, **extra: Any) -> Any:
    is_webhook = row.kind == "webhook"
    return model(id=row.id, kind=row.kind, url=row.target if is_webhook else None,
                 email=None if is_webhook else row.target, min_severity=row.min_severity,
                 is_active=row.is_active, created_at=row.created_at, **extra)


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def _target(body: ChannelIn) -> str:
    """The validated target of the new channel, or a 422 saying what is wrong."""
    wanted, other = ("url", "email") if body.kind == "webhook" else ("email", "url")
    if getattr(body, other) is not None:
        raise _invalid(other, f"a {body.kind} channel takes '{wanted}', not '{other}'")
    value = getattr(body, wanted)
    if value is None:
        raise _invalid(wanted, f"a {body.kind} channel needs '{wanted}'")
    try:
        if body.kind == "webhook":
            return rules.validate_webhook_url(value)
        return rules.validate_email_address(value)
    except rules.InvalidChannelTarget as exc:
        raise _invalid(exc.field, exc.message) from None


def _owned(conn: Any, channel_id: UUID, user: CurrentUser) -> Any:
    row = conn.execute(text(
        f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels WHERE id = :id AND user_id = :u"),
        {"id": channel_id, "u": user.id}).first()
    if row is None:
        raise NotFound("notification channel not found")
    return row


def _audit(conn: Any, action: str, user: CurrentUser, channel_id: Any, kind: str) -> None:
    from amazon_pilot.db.accounts import audit

    audit(conn, action, user_id=user.id, actor_id=user.id, target=str(channel_id),
          details={"kind": kind})


@router.post("/v1/notification-channels", status_code=201, response_model=ChannelCreated,
             summary="Add a webhook or e-mail channel; a webhook's secret is shown only here")
async def create_channel(body: ChannelIn, user: User) -> ChannelCreated:
    target = _target(body)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32) if body.kind == "webhook" else None
    try:
        with transaction() as conn:
            # one creator at a time per user, so the channel limit holds
            conn.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": user.id})
            count = conn.execute(text(
                "SELECT count(*) FROM notification_channels WHERE user_id = :u"),
                {"u": user.id}).scalar_one()
            if count >= MAX_CHANNELS_PER_USER:
                raise Conflict(f"you already have {MAX_CHANNELS_PER_USER} notification "
                               "channels, the most allowed; delete one first")
            row = conn.execute(text(
                "INSERT INTO notification_channels (user_id, kind, target, secret, min_severity)"
                f" VALUES (:u, :kind, :target, :secret, :sev) RETURNING {_CHANNEL_COLUMNS}"),
                {"u": user.id, "kind": body.kind, "target": target, "secret": secret,
                 "sev": body.min_severity}).one()
            _audit(conn, "notification_channel.create", user, row.id, body.kind)
    except IntegrityError as exc:
        if "notification_channels_user_id_kind_target_key" in str(exc.orig):
            what = "URL" if body.kind == "webhook" else "address"
            raise Conflict(f"you already have a {body.kind} channel for this {what}") from None
        raise
    created: ChannelCreated = _channel_out(row, ChannelCreated, secret=secret)
    return created


@router.get("/v1/notification-channels", response_model=ChannelList,
            summary="The caller's notification channels (without secrets)")
async def list_channels(user: User) -> ChannelList:
    with transaction() as conn:
        rows = conn.execute(text(
            f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels WHERE user_id = :u"
            " ORDER BY created_at, id"), {"u": user.id}).all()
    return ChannelList(items=[_channel_out(r) for r in rows])


@router.delete("/v1/notification-channels/{channel_id}", status_code=204,
               response_class=Response, summary="Remove a channel and its delivery log")
async def delete_channel(channel_id: UUID, user: User) -> Response:
    with transaction() as conn:
        row = _owned(conn, channel_id, user)
        conn.execute(text("DELETE FROM notification_channels WHERE id = :id AND user_id = :u"),
                     {"id": channel_id, "u": user.id})
        _audit(conn, "notification_channel.delete", user, channel_id, row.kind)
    return Response(status_code=204)


def _delivery_kind(dedupe_key: str) -> DeliveryKind:
    prefix = dedupe_key.split(":", 1)[0]
    if prefix == "digest":
        return "digest"
    return "test" if prefix == "test" else "alert"


@router.get("/v1/notification-channels/{channel_id}/deliveries", response_model=DeliveryList,
            summary="The channel's delivery log, newest first")
async def list_deliveries(
    channel_id: UUID,
    user: User,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> DeliveryList:
    with transaction() as conn:
        _owned(conn, channel_id, user)
        rows = conn.execute(text(
            "SELECT id, dedupe_key, status, attempts, response_code, last_error, alert_ids,"
            " created_at, last_attempt_at, delivered_at FROM notification_deliveries"
            " WHERE channel_id = :c AND (CAST(:s AS text) IS NULL OR status = :s)"
            " ORDER BY created_at DESC, id LIMIT :limit"),
            {"c": channel_id, "s": status, "limit": limit}).all()
    items = [DeliveryOut(id=r.id, kind=_delivery_kind(r.dedupe_key), status=r.status,
                         attempts=r.attempts, response_code=r.response_code,
                         last_error=r.last_error, alert_ids=list(r.alert_ids or []),
                         created_at=r.created_at, last_attempt_at=r.last_attempt_at,
                         delivered_at=r.delivered_at) for r in rows]
    return DeliveryList(channel_id=channel_id, items=items)


@router.post("/v1/notification-channels/{channel_id}/test", status_code=202,
             response_model=TestQueued, summary="Queue a test notification to the channel")
async def send_test_notification(channel_id: UUID, user: User) -> TestQueued:
    from amazon_pilot.notifications.service import queue_test

    with transaction() as conn:
        _owned(conn, channel_id, user)
        recent = conn.execute(text(
            "SELECT count(*) FROM notification_deliveries WHERE channel_id = :c"
            " AND dedupe_key LIKE 'test:%' AND created_at > now() - interval '1 hour'"),
            {"c": channel_id}).scalar_one()
    if recent >= TEST_SENDS_PER_HOUR:
        raise TooManyRequests(f"at most {TEST_SENDS_PER_HOUR} test notifications per channel "
                              "per hour; try again later", headers={"Retry-After": "600"})
    try:
        delivery_id = queue_test(str(channel_id), str(user.id))
    except Exception as exc:
        raise ServiceUnavailable("the test notification could not be queued; retry shortly",
                                 headers={"Retry-After": "5"}) from exc
    return TestQueued(channel_id=channel_id, delivery_id=UUID(delivery_id))
