"""Alert notifications: channels, fan-out after new alerts, delivery jobs, and the daily
digest.

- Channels: ``create_channel`` (target rules, at most 10 per user, one per target),
  ``list_channels``, ``delete_channel``, ``list_deliveries`` and ``send_test`` (at most 5
  test notifications per channel per hour) serve the routes of notifications/router.py.
- ``fan_out(alert_ids)`` (called by the tracking job once its alerts are committed):
  per alert, the user's active channels whose min_severity the alert reaches; digest
  users are left for the digest; everyone else gets at most N notifications per
  product per UTC day (notification_prefs.max_notifications_per_product_per_day,
  default 5) and the rest is recorded as 'suppressed' deliveries. One
  ``deliver_notification`` job per (channel, alert) goes to the critical queue.
- ``deliver`` (job ``deliver_notification``): one attempt at one delivery (signed
  webhook POST or SES e-mail); a failure raises RetryableJobError so the consumer backs
  off and SQS redelivers, up to the queue's maxReceiveCount, then the DLQ.
- ``queue_digests`` (schedule "daily_digest") queues one ``send_digest`` job per user
  with pending alerts on the low queue; ``send_digest`` sends one message per channel
  with the alerts grouped by product and marks them notified.

The job handlers and the planner are in notifications/jobs.py.
"""

from __future__ import annotations

import json
import secrets
import time
import uuid
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.adapters import crypto, notify
from amazon_pilot.domain import notifications as rules
from amazon_pilot.notifications import store
from amazon_pilot.notifications.schemas import (
    ChannelCreated,
    ChannelIn,
    ChannelList,
    ChannelOut,
    ChannelPatch,
    ChannelVerified,
    DeliverPayload,
    DeliveryKind,
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    DigestPayload,
    SnoozeIn,
    SnoozeList,
    SnoozeOut,
    SweepPayload,
    TestQueued,
)
from amazon_pilot.notifications.store import AlertRow, Channel, FanOutAlert
from amazon_pilot.platform import outbox
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import (
    Conflict,
    NotFound,
    ServiceUnavailable,
    TooManyRequests,
    ValidationFailed,
)
from amazon_pilot.platform.job_errors import RetryableJobError
from amazon_pilot.platform.observability import record_metric

MAX_CHANNELS_PER_USER = 10
TEST_SENDS_PER_HOUR = 5
SECRET_PREFIX = "whsec_"
SECRET_PURPOSE = "notification_channels.secret"  # bound into each sealed value
VERIFY_PURPOSE = "notification_channels.verify_token"
DELIVER_JOB = "deliver_notification"
DIGEST_JOB = "send_digest"
SWEEP_JOB = "sweep_notifications"
MAX_DIGEST_ALERTS = 100_000  # a storm day's digest is still one message (500 listed)
STRAGGLER_AGE = timedelta(minutes=15)
STRAGGLER_WINDOW = timedelta(hours=48)

Job = tuple[str, dict[str, Any], str]  # (job type, payload, idempotency key)


def alert_key(alert_id: str) -> str:
    """dedupe_key of a per-alert delivery (unique per channel)."""
    return f"alert:{alert_id}"


def digest_key(day: str) -> str:
    return f"digest:{day}"


def channel_test_key(delivery_id: str) -> str:
    return f"test:{delivery_id}"


def delivery_kind(dedupe_key: str) -> DeliveryKind:
    prefix = dedupe_key.split(":", 1)[0]
    if prefix in ("digest", "test", "report", "verify"):
        return cast(DeliveryKind, prefix)
    return "alert"  # alert:<id> and group:<first id>


def job_key(channel_id: str, alert_id: str) -> str:
    return f"notify:{channel_id}:{alert_id}"


def _deliver_job(delivery_id: str, channel_id: str, alert_id: str | None, key: str) -> Job:
    payload = DeliverPayload(delivery_id=UUID(delivery_id), channel_id=UUID(channel_id),
                             alert_id=UUID(alert_id) if alert_id else None)
    return (DELIVER_JOB, payload.model_dump(mode="json", exclude_none=True), key)


# ------------------------------------------------------------------ channels


def _channel_out(channel: Channel) -> dict[str, Any]:
    is_email = channel.kind == "email"
    status = "paused" if not channel.is_active else (
        "active" if channel.verified else "unverified")
    return {"id": channel.id, "kind": channel.kind, "name": channel.name,
            "url": None if is_email else channel.target,
            "email": channel.target if is_email else None,
            "events": [e for e in rules.CHANNEL_EVENTS if e in channel.events],
            "min_severity": channel.min_severity, "is_active": channel.is_active,
            "verified": channel.verified, "status": status,
            "verification_sent_at": channel.verify_sent_at if not channel.verified else None,
            "created_at": channel.created_at}


def _invalid(field: str, message: str) -> ValidationFailed:
    return ValidationFailed(f"{field}: {message}", details=[{"field": field, "message": message}])


def _check_target(kind: str, value: str) -> str:
    """The validated target of a channel of this kind, or a 422 saying what is wrong."""
    try:
        if kind == "slack":
            rules.validate_slack_url(value, notify.allowed_hosts())
            return notify.check_webhook_target(value)
        if kind == "webhook":
            # parsed and resolved: a name pointing inside is refused now, not at delivery
            return notify.check_webhook_target(value)
        return rules.validate_email_address(value)
    except rules.InvalidChannelTarget as exc:
        raise _invalid(exc.field, exc.message) from None


def _target(body: ChannelIn) -> str:
    """The validated target of the new channel, or a 422 saying what is wrong."""
    wanted, other = ("email", "url") if body.kind == "email" else ("url", "email")
    if getattr(body, other) is not None:
        raise _invalid(other, f"a {body.kind} channel takes '{wanted}', not '{other}'")
    value = getattr(body, wanted)
    if value is None:
        raise _invalid(wanted, f"a {body.kind} channel needs '{wanted}'")
    return _check_target(body.kind, value)


def _audit(conn: Connection, action: str, user_id: UUID, channel_id: UUID, kind: str) -> None:
    from amazon_pilot.accounts.store import audit

    audit(conn, action, user_id=user_id, actor_id=user_id, target=str(channel_id),
          details={"kind": kind})


def _name(raw: str | None) -> str | None:
    cleaned = " ".join((raw or "").split())
    return cleaned or None


def _verification(conn: Connection, channel: Channel, token: str, link_base: str) -> None:
    """Queue the e-mail with the channel's confirmation link; the token travels sealed."""
    delivery_id = str(uuid.uuid4())
    store.insert_delivery(conn, delivery_id, str(channel.id), str(channel.user_id),
                          f"verify:{delivery_id}")
    sealed = crypto.seal(token, VERIFY_PURPOSE)
    payload = DeliverPayload(delivery_id=UUID(delivery_id), channel_id=channel.id,
                             verify_token=sealed.value, link_base=link_base)
    outbox.enqueue_many(conn, "critical", [(DELIVER_JOB, payload.model_dump(
        mode="json", exclude_none=True), f"notify-verify:{delivery_id}")])


def create_channel(user_id: UUID, body: ChannelIn, link_base: str = "") -> ChannelCreated:
    """A new channel; a webhook gets its signing secret, returned only here; an e-mail
    address gets a confirmation link and receives nothing until it is opened."""
    target = _target(body)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32) if body.kind == "webhook" else None
    sealed = crypto.seal(secret, SECRET_PURPOSE) if secret is not None else None
    token = secrets.token_urlsafe(rules.VERIFY_TOKEN_BYTES) if body.kind == "email" else None
    with transaction() as conn:
        store.lock_user(conn, user_id)  # one creator at a time per user: the limit holds
        if store.count_channels(conn, user_id) >= MAX_CHANNELS_PER_USER:
            raise Conflict(f"you already have {MAX_CHANNELS_PER_USER} notification "
                           "channels, the most allowed; delete one first")
        channel = store.insert_channel(
            conn, user_id, body.kind, target, sealed.value if sealed else None,
            body.min_severity, sealed.key_id if sealed else None, name=_name(body.name),
            events=body.events or rules.CHANNEL_EVENTS, verified=token is None,
            verify_token_hash=rules.verify_token_hash(token) if token else None)
        if channel is None:
            what = "address" if body.kind == "email" else "URL"
            raise Conflict(f"you already have a {body.kind} channel for this {what}")
        if token is not None:
            _verification(conn, channel, token, link_base)
        _audit(conn, "notification_channel.create", user_id, channel.id, body.kind)
    return ChannelCreated(**_channel_out(channel), secret=secret)


def update_channel(channel: Channel, body: ChannelPatch, link_base: str = "") -> ChannelOut:
    """Change a channel's target, name, events, minimum severity or pause it. A new
    e-mail address is unconfirmed until its link is opened (a new link is sent)."""
    given = body.model_fields_set
    changes: dict[str, Any] = {}
    wanted = "email" if channel.kind == "email" else "url"
    other = "url" if wanted == "email" else "email"
    if other in given and getattr(body, other) is not None:
        raise _invalid(other, f"a {channel.kind} channel takes '{wanted}', not '{other}'")
    token = None
    if wanted in given and getattr(body, wanted) is not None:
        target = _check_target(channel.kind, getattr(body, wanted))
        if target != channel.target:
            changes["target"] = target
            if channel.kind == "email":
                token = secrets.token_urlsafe(rules.VERIFY_TOKEN_BYTES)
                changes.update(verified_at=None,
                               verify_token_hash=rules.verify_token_hash(token),
                               verify_sent_at=datetime.now(UTC))
    if "name" in given:
        changes["name"] = _name(body.name)
    for key in ("events", "min_severity", "is_active"):
        if key in given:
            value = getattr(body, key)
            if value is None:
                raise _invalid(key, f"'{key}' cannot be null")
            changes[key] = value
    try:
        with transaction() as conn:
            updated = store.update_channel(conn, channel.user_id, channel.id, changes)
            if updated is None:
                raise NotFound("notification channel not found")
            if token is not None:
                _verification(conn, updated, token, link_base)
            if changes:
                _audit(conn, "notification_channel.update", updated.user_id, updated.id,
                       updated.kind)
    except store.TargetTaken:
        what = "address" if channel.kind == "email" else "URL"
        raise Conflict(f"you already have a {channel.kind} channel for this {what}") from None
    return ChannelOut(**_channel_out(updated))


def resend_verification(channel: Channel, link_base: str) -> ChannelOut:
    """A new confirmation link for an unconfirmed e-mail channel (the old one stops
    working), at most once a minute."""
    if channel.kind != "email" or channel.verified:
        raise Conflict("this channel needs no confirmation")
    if channel.verify_sent_at is not None and \
            datetime.now(UTC) - channel.verify_sent_at < timedelta(minutes=1):
        raise TooManyRequests("a confirmation link was sent less than a minute ago",
                              headers={"Retry-After": "60"})
    token = secrets.token_urlsafe(rules.VERIFY_TOKEN_BYTES)
    with transaction() as conn:
        updated = store.update_channel(conn, channel.user_id, channel.id, {
            "verify_token_hash": rules.verify_token_hash(token),
            "verify_sent_at": datetime.now(UTC)})
        if updated is None:
            raise NotFound("notification channel not found")
        _verification(conn, updated, token, link_base)
    return ChannelOut(**_channel_out(updated))


def verify_email_channel(token: str) -> ChannelVerified:
    """Open a confirmation link: the channel whose token it carries is verified."""
    with transaction() as conn:
        channel = store.verify_channel(conn, rules.verify_token_hash(token.strip()),
                                       datetime.now(UTC) - rules.VERIFY_LINK_TTL)
        if channel is None:
            raise NotFound("this confirmation link is unknown, used or expired; ask for a "
                           "new one on the channels page")
        _audit(conn, "notification_channel.verify", channel.user_id, channel.id, channel.kind)
    return ChannelVerified(channel_id=channel.id, email=channel.target)


def list_channels(user_id: UUID) -> ChannelList:
    with reading() as conn:
        channels = store.list_channels(conn, user_id)
    return ChannelList(items=[ChannelOut(**_channel_out(c)) for c in channels])


def delete_channel(channel: Channel) -> None:
    """Delete the channel (its delivery log goes with it)."""
    with transaction() as conn:
        deleted = store.delete_channel(conn, channel.user_id, channel.id)
        if deleted is None:  # deleted meanwhile
            raise NotFound("notification channel not found")
        _audit(conn, "notification_channel.delete", deleted.user_id, deleted.id, deleted.kind)


def list_deliveries(channel: Channel, limit: int, status: DeliveryStatus | None) -> DeliveryList:
    """The channel's delivery log, newest first."""
    with reading() as conn:
        rows = store.list_deliveries(conn, channel.id, status, limit)
    items = [DeliveryOut(id=r.id, kind=delivery_kind(r.dedupe_key), status=r.status,
                         attempts=r.attempts, response_code=r.response_code,
                         last_error=r.last_error, alert_ids=r.alert_ids,
                         created_at=r.created_at, last_attempt_at=r.last_attempt_at,
                         delivered_at=r.delivered_at) for r in rows]
    return DeliveryList(channel_id=channel.id, items=items)


def send_test(channel: Channel) -> TestQueued:
    """Queue a test notification to the channel, within the hourly allowance."""
    if not channel.verified:
        raise Conflict("confirm this address first: open the link e-mailed to it")
    with reading() as conn:
        recent = store.count_tests_last_hour(conn, channel.id)
    if recent >= TEST_SENDS_PER_HOUR:
        raise TooManyRequests(f"at most {TEST_SENDS_PER_HOUR} test notifications per channel "
                              "per hour; try again later", headers={"Retry-After": "600"})
    try:
        delivery_id = queue_test(str(channel.id), str(channel.user_id))
    except Exception as exc:
        raise ServiceUnavailable("the test notification could not be queued; retry shortly",
                                 headers={"Retry-After": "5"}) from exc
    return TestQueued(channel_id=channel.id, delivery_id=UUID(delivery_id))


def queue_test(channel_id: str, user_id: str) -> str:
    """Record a test delivery for a channel and queue it; returns the delivery id."""
    delivery_id = str(uuid.uuid4())
    # the row and its job commit together (the outbox sends the job after the commit)
    with transaction() as conn:
        store.insert_delivery(conn, delivery_id, channel_id, user_id, channel_test_key(delivery_id))
        outbox.enqueue_many(conn, "critical", [_deliver_job(delivery_id, channel_id, None,
                                                            f"notify-test:{delivery_id}")])
    return delivery_id


# ------------------------------------------------------------------ fan-out


def fan_out(alert_ids: Sequence[str], *, now: datetime | None = None) -> int:
    """Queue the notifications of freshly committed alerts; returns the jobs queued.

    Idempotent: only alerts not yet notified (nor held) are considered, and they are
    locked while this runs, so calling it twice, or concurrently, notifies each alert
    once. The jobs go to the outbox in the transaction that marks the alerts notified.

    Per user: digest users' alerts wait for their digest; snoozed alerts are marked
    handled without a message; non-critical alerts in the user's quiet hours are held
    for the next digest; the rest is grouped per (product, type), one message per
    group (an alert storm of 40 price changes of one product is one message), within
    the per-product daily cap."""
    ids = sorted({str(uuid.UUID(str(a))) for a in alert_ids})
    if not ids:
        return 0
    now = now or datetime.now(UTC)
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    jobs: list[Job] = []
    with transaction() as conn:
        alerts = store.lock_new_alerts(conn, ids)
        handled = [str(a["id"]) for a in alerts if not a["user_active"]]
        immediate = [a for a in alerts
                     if a["user_active"] and not rules.wants_daily_digest(a["prefs"])]
        users = sorted({str(a["user_id"]) for a in immediate})
        oldest = min((a["created_at"] for a in immediate), default=now)
        snoozes = {u: [_snooze(s) for s in rows]
                   for u, rows in store.active_snoozes(conn, users, oldest).items()}
        held: list[str] = []
        to_send: list[FanOutAlert] = []
        for alert in immediate:
            if rules.snoozed_by(snoozes.get(str(alert["user_id"]), []),
                                str(alert["tracked_product_id"]), alert["type"],
                                alert["created_at"]) is not None:
                handled.append(str(alert["id"]))
            elif rules.held_for_quiet_hours(alert["severity"],
                                            rules.quiet_hours(alert["prefs"]), now):
                held.append(str(alert["id"]))
            else:
                to_send.append(alert)
        channels: dict[str, list[Channel]] = defaultdict(list)
        for channel in store.active_channels(conn, users):
            channels[str(channel.user_id)].append(channel)
        by_user: dict[str, list[FanOutAlert]] = defaultdict(list)
        for alert in to_send:
            by_user[str(alert["user_id"])].append(alert)
        for user_id, user_alerts in sorted(by_user.items()):
            jobs += _fan_out_user(conn, user_id, user_alerts, channels.get(user_id, []),
                                  day_start)
            handled += [str(a["id"]) for a in user_alerts]
        if handled:
            store.mark_notified(conn, handled)
        if held:
            store.mark_held(conn, held)
        if jobs:
            outbox.enqueue_many(conn, "critical", jobs)
    return len(jobs)


def _snooze(row: store.SnoozeRow) -> rules.Snooze:
    return rules.Snooze(str(row.tracked_product_id) if row.tracked_product_id else None,
                        row.alert_type, row.starts_at, row.until)


def group_key(alert_ids: Sequence[str]) -> str:
    """dedupe_key of a grouped delivery: named by its first alert (unique per channel)."""
    return alert_key(alert_ids[0]) if len(alert_ids) == 1 else f"group:{alert_ids[0]}"


def _fan_out_user(conn: Connection, user_id: str, alerts: list[FanOutAlert],
                  channels: list[Channel], day_start: datetime) -> list[Job]:
    """One user's new alerts: grouped per (product, type), the cap applied per product
    to the groups (messages), deliveries recorded in one statement; returns the jobs."""
    prefs = alerts[0]["prefs"]
    usable = [c for c in channels
              if rules.channel_accepts(c.kind, c.events, c.verified, "alert", prefs)]
    if not usable:
        return []
    # per product: its groups; per group: per channel, the alerts reaching its severity
    targets: dict[str, list[tuple[Channel, list[str]]]] = {}
    candidates: dict[int, list[rules.CapCandidate]] = defaultdict(list)
    for group in rules.storm_groups(alerts):
        reached = []
        for channel in usable:
            ids = [str(a["id"]) for a in group
                   if rules.severity_passes(a["severity"], channel.min_severity)]
            if ids:
                reached.append((channel, ids))
        if not reached:
            continue
        key = str(group[0]["id"])
        targets[key] = reached
        candidates[int(group[0]["product_id"])].append(
            rules.CapCandidate(key, rules.group_severity(group), group[0]["created_at"]))
    if not candidates:
        return []
    products = sorted(candidates)
    # two concurrent fan-outs must not both see room under the cap
    store.lock_caps(conn, user_id, products)
    sent_today = store.sent_counts_since(conn, user_id, products, day_start)
    cap = rules.cap_per_product_per_day(prefs)
    to_send: list[store.NewDelivery] = []
    to_suppress: list[store.NewDelivery] = []
    for product_id in products:
        send, suppress = rules.apply_cap(candidates[product_id],
                                         sent_today.get(product_id, 0), cap)
        for keys, out in ((send, to_send), (suppress, to_suppress)):
            for key in keys:
                out += [store.NewDelivery(str(c.id), group_key(ids), ids, product_id)
                        for c, ids in targets[key]]
    states = store.upsert_deliveries(conn, user_id, to_send)
    store.upsert_deliveries(conn, user_id, to_suppress, "suppressed",
                            f"over the cap of {cap} notifications per product per day")
    jobs: list[Job] = []
    for row in to_send:
        state = states[(row.channel_id, row.dedupe_key)]
        if state.status != "delivered":
            jobs.append(_deliver_job(state.id, row.channel_id,
                                     row.alert_ids[0] if len(row.alert_ids) == 1 else None,
                                     job_key(row.channel_id, row.alert_ids[0])))
    return jobs


# ------------------------------------------------------------------ one delivery


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def signing_secret(channel: Channel) -> str:
    """The webhook's signing secret, unsealed (stored encrypted at rest)."""
    return crypto.open_sealed(channel.secret or "", SECRET_PURPOSE)


def seal_stored_secrets(batch: int = 200) -> dict[str, int]:
    """Seal every signing secret not under the active key: plaintext rows from before
    migration 0012, and rows under a key being rotated out. Idempotent; safe to run
    concurrently (rows are locked, others skipped). Returns the counts."""
    active = crypto.active_key_id()
    if active is None:
        raise crypto.SecretsKeyError("no key for secrets at rest: set SECRETS_KMS_KEY_ID or "
                                     "SECRETS_KEY_FILE")
    counts = {"plaintext_sealed": 0, "resealed": 0, "unreadable": 0}
    done: list[UUID] = []  # handled or unreadable: never selected twice
    while True:
        with transaction() as conn:
            rows = store.secrets_to_seal(conn, active, batch, done)
            for channel_id, stored in rows:
                done.append(channel_id)
                try:
                    plain = crypto.open_sealed(stored, SECRET_PURPOSE)
                except crypto.SecretsKeyError:
                    # its key is gone (a deleted key ring?): left as it is, counted, and
                    # its deliveries fail saying so; the rest still gets sealed
                    counts["unreadable"] += 1
                    continue
                sealed = crypto.seal(plain, SECRET_PURPOSE)
                store.store_sealed_secret(conn, channel_id, sealed.value, sealed.key_id)
                counts["resealed" if crypto.is_sealed(stored) else "plaintext_sealed"] += 1
        if len(rows) < batch:
            return counts


def send_to_channel(channel: Channel, delivery_id: str, payload: dict[str, Any],
                    email: tuple[str, str]) -> notify.SendResult:
    """Send one message: `payload` (signed JSON) to a webhook, `email` (subject, text)
    to an e-mail channel, its Block Kit rendering to a Slack channel."""
    if channel.kind == "slack":
        return notify.post_slack(channel.target, _body(rules.slack_message(payload)))
    if channel.kind == "webhook":
        body = _body(payload)
        timestamp = str(int(time.time()))
        try:
            secret = signing_secret(channel)
        except crypto.SecretsKeyError as exc:
            # nothing goes out unsigned; a key that comes back (KMS, a restored key
            # ring) lets a retry through, else the delivery fails with this reason
            return notify.SendResult(False, error=f"the signing secret cannot be opened: "
                                                  f"{exc}"[:500])
        headers = {
            rules.SIGNATURE_HEADER: rules.sign(body, secret, timestamp),
            rules.TIMESTAMP_HEADER: timestamp,
            rules.DELIVERY_HEADER: delivery_id,
            rules.EVENT_HEADER: str(payload["event"]),
        }
        return notify.post_webhook(channel.target, body, headers)
    subject, text_body = email
    return notify.send_email(channel.target, subject, text_body)


def record_attempt(delivery_id: str, result: notify.SendResult, max_attempts: int) -> int:
    """Store one attempt's outcome; returns the delivery's attempts. `max_attempts` is
    the job queue's maxReceiveCount: the attempt that reaches it fails the delivery,
    as the message then goes to the DLQ."""
    record_metric("AlertsDelivered" if result.delivered else "DeliveryFailures")
    with transaction() as conn:
        return store.record_attempt(
            conn, delivery_id, status_code=result.status_code, error=result.error,
            delivered=result.delivered, permanent=result.permanent, max_attempts=max_attempts)


def _outcome(delivery_id: str, result: notify.SendResult, max_attempts: int) -> dict[str, Any]:
    attempts = record_attempt(delivery_id, result, max_attempts)
    if result.delivered:
        return {"delivery_id": delivery_id, "delivered": True, "attempts": attempts,
                "response_code": result.status_code}
    if result.permanent:  # retrying cannot help: recorded as failed, not retried
        return {"delivery_id": delivery_id, "delivered": False, "attempts": attempts,
                "error": result.error}
    raise RetryableJobError(f"delivery {delivery_id} attempt {attempts} failed: {result.error}")


def deliver(job: DeliverPayload, max_attempts: int) -> dict[str, Any]:
    """One attempt at one delivery: an alert, a group of alerts of one product and type,
    a weekly report, an e-mail confirmation link, or a channel test."""
    channel_id, delivery_id = str(job.channel_id), str(job.delivery_id)
    alert_id = str(job.alert_id) if job.alert_id else None
    alerts: list[AlertRow] = []
    report: dict[str, Any] | None = None
    with transaction() as conn:
        channel = store.channel_by_id(conn, channel_id)
        if channel is None:
            return {"skipped": "the channel was deleted"}
        if alert_id:
            alert = store.user_alert(conn, alert_id, channel.user_id)
            if alert is None:
                return {"skipped": "the alert no longer exists"}
            alerts = [alert]
            # normally written by fan_out; recreated here if that row is missing
            delivery_id, status = store.upsert_delivery(
                conn, channel_id, str(channel.user_id), alert_key(alert_id), [alert_id],
                delivery_id, product_id=int(alert["product_id"]))
        else:
            found = store.delivery_row(conn, delivery_id, channel_id)
            if found is None:  # its row is not committed yet (or the queueing failed)
                raise RetryableJobError(f"delivery {delivery_id} is not recorded yet")
            status = found.status
            if found.alert_ids:
                alerts = store.user_alerts(conn, [str(a) for a in found.alert_ids],
                                           channel.user_id)
                if not alerts:
                    return {"skipped": "the alerts no longer exist"}
            elif job.report_id is not None:
                report = store.report_message(conn, str(job.report_id), channel.user_id)
                if report is None:
                    return {"skipped": "the report no longer exists"}
    if status in ("delivered", "suppressed"):
        return {"delivery_id": delivery_id, "status": status, "replayed": True}
    if not channel.is_active:
        return _outcome(delivery_id, notify.SendResult(
            False, error="the channel is paused", permanent=True), max_attempts)
    sent_at = datetime.now(UTC)
    if job.verify_token is not None:
        token = crypto.open_sealed(job.verify_token, VERIFY_PURPOSE)
        link = f"{(job.link_base or '').rstrip('/')}/v1/notification-channels/verify?token={token}"
        subject, text_body = rules.verification_email(link)
        return _outcome(delivery_id, notify.send_email(channel.target, subject, text_body),
                        max_attempts)
    if not channel.verified:
        return _outcome(delivery_id, notify.SendResult(
            False, error="the address is not confirmed yet", permanent=True), max_attempts)
    if alerts:
        body = rules.alert_group_payload(list(alerts), delivery_id, sent_at)
        email = rules.alert_group_email(list(alerts))
    elif report is not None:
        body = rules.report_payload(report, delivery_id, sent_at)
        email = rules.report_email(report)
    else:
        body = rules.channel_test_payload(channel_id, delivery_id, sent_at)
        email = rules.channel_test_email()
    return _outcome(delivery_id, send_to_channel(channel, delivery_id, body, email),
                    max_attempts)


def queue_report_deliveries(conn: Connection, user_id: UUID | str, report_id: UUID | str) -> int:
    """A finished weekly competitor report, one delivery per channel of the seller that
    takes reports (in the caller's transaction: the outbox sends after its commit)."""
    prefs = store.recipient(conn, str(user_id))
    if prefs is None or not prefs.is_active:
        return 0
    jobs: list[Job] = []
    for channel in store.active_channels(conn, [str(user_id)]):
        if not rules.channel_accepts(channel.kind, channel.events, channel.verified, "report",
                                     prefs.notification_prefs):
            continue
        state = store.upsert_delivery(conn, str(channel.id), str(user_id),
                                      f"report:{report_id}", [])
        if state.status == "delivered":
            continue
        payload = DeliverPayload(delivery_id=UUID(state.id), channel_id=channel.id,
                                 report_id=UUID(str(report_id)))
        jobs.append((DELIVER_JOB, payload.model_dump(mode="json", exclude_none=True),
                     f"notify-report:{channel.id}:{report_id}"))
    if jobs:
        outbox.enqueue_many(conn, "critical", jobs)
    return len(jobs)


# ------------------------------------------------------------------ snoozes


def _snooze_out(row: store.SnoozeRow) -> SnoozeOut:
    return SnoozeOut(id=row.id, tracked_product_id=row.tracked_product_id,
                     alert_type=row.alert_type, starts_at=row.starts_at, until=row.until)


def list_snoozes(user_id: UUID) -> SnoozeList:
    with reading() as conn:
        rows = store.list_snoozes(conn, user_id, datetime.now(UTC))
    return SnoozeList(items=[_snooze_out(r) for r in rows])


def create_snooze(user_id: UUID, body: SnoozeIn) -> SnoozeOut:
    """Snooze a product, an alert type, or both, from now for `hours` or until `until`:
    their alerts are still recorded and listed, but nothing is sent (nor put in a
    digest). A new snooze of the same target replaces the running one."""
    if body.tracked_product_id is None and body.alert_type is None:
        raise _invalid("tracked_product_id", "name a product, an alert type, or both")
    now = datetime.now(UTC)
    try:
        until = rules.snooze_until(now, body.hours, body.until)
    except ValueError as exc:
        raise _invalid("until" if body.until is not None else "hours", str(exc)) from None
    with transaction() as conn:
        if body.tracked_product_id is not None and not store.tracked_product_owned(
                conn, user_id, body.tracked_product_id):
            raise NotFound("product not found")
        row = store.insert_snooze(conn, user_id, body.tracked_product_id,
                                  str(body.alert_type) if body.alert_type else None, now, until)
    return _snooze_out(row)


def end_snooze(user_id: UUID, snooze_id: UUID) -> None:
    with transaction() as conn:
        if not store.end_snooze(conn, user_id, snooze_id):
            raise NotFound("snooze not found")


# ------------------------------------------------------------------ daily digest


def queue_digests(day: str | None, now: datetime) -> dict[str, Any]:
    """Schedule "daily_digest": one send_digest job (low queue) per user whose digest is
    due (daily users every day, weekly users on Mondays) or who has alerts held by quiet
    hours, for `day` (an ISO date; default: today, UTC), and one sweep_notifications job
    (default queue, whose worker may send to the critical queue) for alerts a failed
    fan-out left pending."""
    digest_day = date.fromisoformat(day) if day else now.astimezone(UTC).date()
    with reading() as conn:
        users = store.digest_user_ids(conn)
    due = [u for u, prefs in users
           if rules.digest_due(prefs, digest_day) or not rules.wants_daily_digest(prefs)]
    jobs = [(DIGEST_JOB, DigestPayload(user_id=u, date=digest_day).model_dump(mode="json"),
             f"digest:{u}:{digest_day}") for u in due]
    straggler = SweepPayload(before=now - STRAGGLER_AGE).model_dump(mode="json")
    with transaction() as conn:
        queued = outbox.enqueue_many(conn, "low", jobs)
        outbox.enqueue_many(conn, "default", [(SWEEP_JOB, straggler,
                                               f"sweep-notifications:{now:%Y-%m-%dT%H:%M}")])
    return {"job": "daily_digest", "date": digest_day.isoformat(), "queued_on": "low",
            "digests": queued, "sweep_queued_on": "default"}


def sweep(before: datetime) -> dict[str, Any]:
    """Fan out immediate users' alerts still pending (the fan-out after their creation
    failed), created before `before` (15 minutes before the planner ran) and at most
    48 hours earlier."""
    with reading() as conn:
        stragglers = store.straggler_alert_ids(conn, before, before - STRAGGLER_WINDOW)
    queued = fan_out([str(a) for a in stragglers]) if stragglers else 0
    return {"alerts": len(stragglers), "jobs_queued": queued}


def send_digest(job: DigestPayload, max_attempts: int) -> dict[str, Any]:
    """One user's digest for a day, one message per active channel.

    A channel already delivered for this day is skipped (retries resend only what
    failed, with the same alerts as the first try). Alerts are marked notified once
    every channel has its digest, or failed for good; a retryable failure leaves
    them pending and raises so SQS retries."""
    user_id, day = str(job.user_id), job.date.isoformat()
    dedupe = digest_key(day)
    with transaction() as conn:
        user = store.recipient(conn, user_id)
        if user is None or not user.is_active:
            return {"skipped": "the user is gone or deactivated"}
        channels = [c for c in store.active_channels(conn, [user_id])
                    if rules.channel_accepts(c.kind, c.events, c.verified, "digest",
                                             user.notification_prefs)]
        prior = {str(d.channel_id): d for d in store.digest_deliveries(conn, user_id, dedupe)}
        prior_ids = sorted({str(a) for d in prior.values() for a in d.alert_ids})
        held_only = not rules.wants_daily_digest(user.notification_prefs)
        alerts = store.digest_alerts(conn, user_id, prior_ids, MAX_DIGEST_ALERTS,
                                     held_only=held_only)
        oldest = min((a["created_at"] for a in alerts), default=datetime.now(UTC))
        snoozes = [_snooze(r) for r in
                   store.active_snoozes(conn, [user_id], oldest).get(user_id, [])]
    by_id = {str(a["id"]): a for a in alerts}
    pending = [a for a in alerts if a["notified_at"] is None]
    # snoozed alerts are handled without a message
    covered: set[str] = {str(a["id"]) for a in pending if rules.snoozed_by(
        snoozes, str(a["tracked_product_id"]), a["type"], a["created_at"]) is not None}
    pending = [a for a in pending if str(a["id"]) not in covered]
    covered |= {str(a["id"]) for a in pending if not any(
        rules.severity_passes(a["severity"], c.min_severity) for c in channels)}
    sent, failures = 0, []
    for channel in channels:
        earlier = prior.get(str(channel.id))
        if earlier is not None:
            chosen = [by_id[str(a)] for a in earlier.alert_ids if str(a) in by_id]
        else:
            chosen = [a for a in pending
                      if rules.severity_passes(a["severity"], channel.min_severity)]
        if not chosen:
            continue
        chosen_ids = [str(a["id"]) for a in chosen]
        if earlier is not None and earlier.status in ("delivered", "failed"):
            covered.update(chosen_ids)
            continue
        with transaction() as conn:
            delivery_id, _ = store.upsert_delivery(conn, str(channel.id), user_id, dedupe,
                                                   chosen_ids)
        result = send_to_channel(
            channel, delivery_id,
            rules.digest_payload(list(chosen), day, delivery_id, datetime.now(UTC)),
            rules.digest_text(list(chosen), day))
        record_attempt(delivery_id, result, max_attempts)
        if result.delivered or result.permanent:
            covered.update(chosen_ids)
            sent += int(result.delivered)
        else:
            failures.append(f"{channel.kind} {channel.id}: {result.error}")
    if failures:
        raise RetryableJobError("digest not delivered to " + "; ".join(failures))
    if covered:
        with transaction() as conn:
            store.mark_user_alerts_notified(conn, user_id, sorted(covered))
    return {"user_id": user_id, "date": day, "messages": sent, "alerts": len(covered)}
