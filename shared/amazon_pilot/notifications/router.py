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

Webhook URLs: https to a public host; never loopback, private or reserved addresses
(also when a host name resolves to one), plain http, credentials in the URL, other
schemes, or more than 2048 characters — each refused with its own 422 message. Only
an operator's development allow-list (WEBHOOK_ALLOW_HOSTS, local stages) lifts this.
The URL is never fetched except to deliver notifications (no validation request).

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

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from amazon_pilot.notifications import service, store
from amazon_pilot.notifications.schemas import (
    ChannelCreated,
    ChannelIn,
    ChannelList,
    ChannelOut,
    ChannelPatch,
    ChannelVerified,
    DeliveryList,
    DeliveryStatus,
    SnoozeIn,
    SnoozeList,
    SnoozeOut,
    TestQueued,
)
from amazon_pilot.notifications.store import Channel
from amazon_pilot.platform.errors import ErrorResponse
from amazon_pilot.platform.ownership import owned
from amazon_pilot.platform.security import Caller

router = APIRouter(tags=["notifications"])

OwnedChannel = Annotated[
    Channel, Depends(owned("channel_id", store.load_channel, "notification channel not found"))]


@router.post("/v1/notification-channels", status_code=201, response_model=ChannelCreated,
             summary="Add a webhook or e-mail channel; a webhook's secret is shown only here")
async def create_channel(body: ChannelIn, request: Request, user: Caller) -> ChannelCreated:
    return service.create_channel(user.id, body, _link_base(request))


def _link_base(request: Request) -> str:
    """Where confirmation links point: this API as the caller reached it."""
    return str(request.base_url).rstrip("/")


@router.get("/v1/notification-channels/verify", response_model=ChannelVerified,
            summary="Confirm an e-mail channel (the link e-mailed to the address)",
            responses={
                303: {"description": "A browser (Accept: text/html) is sent to the "
                                     "channels page"},
                404: {"model": ErrorResponse,
                      "description": "The link is unknown, used or expired"}})
async def verify_channel(
    token: Annotated[str, Query(min_length=20, max_length=200)], request: Request
) -> ChannelVerified | Response:
    verified = service.verify_email_channel(token)
    if "text/html" in request.headers.get("accept", ""):  # a person following the link
        return Response(status_code=303, headers={
            "Location": f"/channels?verified={verified.channel_id}"})
    return verified


@router.get("/v1/notification-channels", response_model=ChannelList,
            summary="The caller's notification channels (without secrets)")
async def list_channels(user: Caller) -> ChannelList:
    return service.list_channels(user.id)


@router.patch("/v1/notification-channels/{channel_id}", response_model=ChannelOut,
              summary="Edit a channel: URL or address, name, events, minimum severity, pause")
async def update_channel(body: ChannelPatch, channel: OwnedChannel,
                         request: Request) -> ChannelOut:
    return service.update_channel(channel, body, _link_base(request))


@router.post("/v1/notification-channels/{channel_id}/verify", response_model=ChannelOut,
             summary="Send a new confirmation link to an unconfirmed e-mail channel")
async def resend_verification(channel: OwnedChannel, request: Request) -> ChannelOut:
    return service.resend_verification(channel, _link_base(request))


@router.get("/v1/alert-snoozes", response_model=SnoozeList,
            summary="The caller's running snoozes")
async def list_snoozes(user: Caller) -> SnoozeList:
    return service.list_snoozes(user.id)


@router.post("/v1/alert-snoozes", status_code=201, response_model=SnoozeOut,
             summary="Snooze a product, an alert type, or both, for a while")
async def create_snooze(body: SnoozeIn, user: Caller) -> SnoozeOut:
    return service.create_snooze(user.id, body)


@router.delete("/v1/alert-snoozes/{snooze_id}", status_code=204, response_class=Response,
               summary="End a snooze now")
async def end_snooze(snooze_id: uuid.UUID, user: Caller) -> Response:
    service.end_snooze(user.id, snooze_id)
    return Response(status_code=204)


@router.delete("/v1/notification-channels/{channel_id}", status_code=204,
               response_class=Response, summary="Remove a channel and its delivery log")
async def delete_channel(channel: OwnedChannel) -> Response:
    service.delete_channel(channel)
    return Response(status_code=204)


@router.get("/v1/notification-channels/{channel_id}/deliveries", response_model=DeliveryList,
            summary="The channel's delivery log, newest first")
async def list_deliveries(
    channel: OwnedChannel,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[DeliveryStatus | None, Query()] = None,
) -> DeliveryList:
    return service.list_deliveries(channel, limit, status)


@router.post("/v1/notification-channels/{channel_id}/test", status_code=202,
             response_model=TestQueued, summary="Queue a test notification to the channel")
async def send_test_notification(channel: OwnedChannel) -> TestQueued:
    return service.send_test(channel)
