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
from typing import Any
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
    DeliverPayload,
    DeliveryKind,
    DeliveryList,
    DeliveryOut,
    DeliveryStatus,
    DigestPayload,
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
DELIVER_JOB = "deliver_notification"
DIGEST_JOB = "send_digest"
SWEEP_JOB = "sweep_notifications"
MAX_DIGEST_ALERTS = 500
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
    if prefix == "digest":
        return "digest"
    return "test" if prefix == "test" else "alert"


def job_key(channel_id: str, alert_id: str) -> str:
    return f"notify:{channel_id}:{alert_id}"


def _deliver_job(delivery_id: str, channel_id: str, alert_id: str | None, key: str) -> Job:
    payload = DeliverPayload(delivery_id=UUID(delivery_id), channel_id=UUID(channel_id),
                             alert_id=UUID(alert_id) if alert_id else None)
    return (DELIVER_JOB, payload.model_dump(mode="json", exclude_none=True), key)


# ------------------------------------------------------------------ channels


def _channel_out(channel: Channel) -> dict[str, Any]:
    is_webhook = channel.kind == "webhook"
    return {"id": channel.id, "kind": channel.kind,
            "url": channel.target if is_webhook else None,
            "email": None if is_webhook else channel.target,
            "min_severity": channel.min_severity, "is_active": channel.is_active,
            "created_at": channel.created_at}


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
            # parsed and resolved: a name pointing inside is refused now, not at delivery
            return notify.check_webhook_target(value)
        return rules.validate_email_address(value)
    except rules.InvalidChannelTarget as exc:
        raise _invalid(exc.field, exc.message) from None


def _audit(conn: Connection, action: str, user_id: UUID, channel_id: UUID, kind: str) -> None:
    from amazon_pilot.accounts.store import audit

    audit(conn, action, user_id=user_id, actor_id=user_id, target=str(channel_id),
          details={"kind": kind})


def create_channel(user_id: UUID, body: ChannelIn) -> ChannelCreated:
    """A new channel; a webhook gets its signing secret, returned only here."""
    target = _target(body)
    secret = SECRET_PREFIX + secrets.token_urlsafe(32) if body.kind == "webhook" else None
    sealed = crypto.seal(secret, SECRET_PURPOSE) if secret is not None else None
    with transaction() as conn:
        store.lock_user(conn, user_id)  # one creator at a time per user: the limit holds
        if store.count_channels(conn, user_id) >= MAX_CHANNELS_PER_USER:
            raise Conflict(f"you already have {MAX_CHANNELS_PER_USER} notification "
                           "channels, the most allowed; delete one first")
        channel = store.insert_channel(conn, user_id, body.kind, target,
                                       sealed.value if sealed else None, body.min_severity,
                                       sealed.key_id if sealed else None)
        if channel is None:
            what = "URL" if body.kind == "webhook" else "address"
            raise Conflict(f"you already have a {body.kind} channel for this {what}")
        _audit(conn, "notification_channel.create", user_id, channel.id, body.kind)
    return ChannelCreated(**_channel_out(channel), secret=secret)


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

    Idempotent: only alerts not yet notified are considered (and they are locked while
    this runs), so calling it twice, or concurrently, notifies each alert once. The
    jobs go to the outbox in the transaction that marks the alerts notified."""
    ids = sorted({str(uuid.UUID(str(a))) for a in alert_ids})
    if not ids:
        return 0
    now = now or datetime.now(UTC)
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    jobs: list[Job] = []
    with transaction() as conn:
        alerts = store.lock_new_alerts(conn, ids)
        immediate = [a for a in alerts
                     if a["user_active"] and not rules.wants_daily_digest(a["prefs"])]
        handled = [str(a["id"]) for a in alerts if not a["user_active"]]
        channels: dict[str, list[Channel]] = defaultdict(list)
        for channel in store.active_channels(conn, sorted({str(a["user_id"])
                                                           for a in immediate})):
            channels[str(channel.user_id)].append(channel)
        groups: dict[tuple[str, int], list[FanOutAlert]] = defaultdict(list)
        for alert in immediate:
            groups[(str(alert["user_id"]), int(alert["product_id"]))].append(alert)
        for (user_id, product_id), group in sorted(groups.items()):
            jobs += _fan_out_group(conn, user_id, product_id, group,
                                   channels.get(user_id, []), day_start)
            handled += [str(a["id"]) for a in group]
        if handled:
            store.mark_notified(conn, handled)
        if jobs:
            outbox.enqueue_many(conn, "critical", jobs)
    return len(jobs)


def _fan_out_group(conn: Connection, user_id: str, product_id: int, alerts: list[FanOutAlert],
                   channels: list[Channel], day_start: datetime) -> list[Job]:
    """One user's new alerts of one product: apply the cap, record deliveries, return
    the jobs to queue."""
    prefs = alerts[0]["prefs"]
    eligible = {str(a["id"]): [c for c in channels
                               if rules.channel_enabled(c.kind, prefs)
                               and rules.severity_passes(a["severity"], c.min_severity)]
                for a in alerts}
    candidates = [rules.CapCandidate(str(a["id"]), a["severity"], a["created_at"])
                  for a in alerts if eligible[str(a["id"])]]
    if not candidates:
        return []
    # two concurrent fan-outs must not both see room under the cap
    store.lock_cap(conn, user_id, product_id)
    sent_today = store.count_sent_since(conn, user_id, product_id, day_start)
    cap = rules.cap_per_product_per_day(prefs)
    send, suppress = rules.apply_cap(candidates, sent_today, cap)
    jobs: list[Job] = []
    for alert_id in send:
        for channel in eligible[alert_id]:
            delivery_id, status = store.upsert_delivery(conn, str(channel.id), user_id,
                                                        alert_key(alert_id), [alert_id])
            if status != "delivered":
                jobs.append(_deliver_job(delivery_id, str(channel.id), alert_id,
                                         job_key(str(channel.id), alert_id)))
    reason = f"over the cap of {cap} notifications per product per day"
    for alert_id in suppress:
        for channel in eligible[alert_id]:
            store.insert_suppressed(conn, str(channel.id), user_id, alert_key(alert_id),
                                    [alert_id], reason)
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
    to an e-mail channel."""
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
    """One attempt at one delivery (an alert, or a channel test)."""
    channel_id, delivery_id = str(job.channel_id), str(job.delivery_id)
    alert_id = str(job.alert_id) if job.alert_id else None
    alert: AlertRow | None = None
    with transaction() as conn:
        channel = store.channel_by_id(conn, channel_id)
        if channel is None:
            return {"skipped": "the channel was deleted"}
        if alert_id:
            alert = store.user_alert(conn, alert_id, channel.user_id)
            if alert is None:
                return {"skipped": "the alert no longer exists"}
            # normally written by fan_out; recreated here if that row is missing
            delivery_id, status = store.upsert_delivery(
                conn, channel_id, str(channel.user_id), alert_key(alert_id), [alert_id],
                delivery_id)
        else:
            found = store.delivery_status(conn, delivery_id, channel_id)
            if found is None:  # its row is not committed yet (or the queueing failed)
                raise RetryableJobError(f"delivery {delivery_id} is not recorded yet")
            status = found
    if status in ("delivered", "suppressed"):
        return {"delivery_id": delivery_id, "status": status, "replayed": True}
    if not channel.is_active:
        return _outcome(delivery_id, notify.SendResult(
            False, error="the channel is disabled", permanent=True), max_attempts)
    sent_at = datetime.now(UTC)
    if alert is not None:
        body = rules.alert_payload(alert, delivery_id, sent_at)
        email = rules.alert_email(alert)
    else:
        body = rules.channel_test_payload(channel_id, delivery_id, sent_at)
        email = rules.channel_test_email()
    return _outcome(delivery_id, send_to_channel(channel, delivery_id, body, email),
                    max_attempts)


# ------------------------------------------------------------------ daily digest


def queue_digests(day: str | None, now: datetime) -> dict[str, Any]:
    """Schedule "daily_digest": one send_digest job (low queue) per digest user with
    pending alerts, for `day` (an ISO date; default: today, UTC), and one
    sweep_notifications job (default queue, whose worker may send to the critical
    queue) for alerts a failed fan-out left pending."""
    digest_day = date.fromisoformat(day) if day else now.astimezone(UTC).date()
    with reading() as conn:
        users = store.digest_user_ids(conn)
    jobs = [(DIGEST_JOB, DigestPayload(user_id=u, date=digest_day).model_dump(mode="json"),
             f"digest:{u}:{digest_day}") for u in users]
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
                    if rules.channel_enabled(c.kind, user.notification_prefs)]
        prior = {str(d.channel_id): d for d in store.digest_deliveries(conn, user_id, dedupe)}
        prior_ids = sorted({str(a) for d in prior.values() for a in d.alert_ids})
        alerts = store.digest_alerts(conn, user_id, prior_ids, MAX_DIGEST_ALERTS)
    by_id = {str(a["id"]): a for a in alerts}
    pending = [a for a in alerts if a["notified_at"] is None]
    covered: set[str] = {str(a["id"]) for a in pending if not any(
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
