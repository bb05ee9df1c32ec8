"""Alert notifications: fan-out after new alerts, delivery jobs, and the daily digest.

- ``fan_out(alert_ids)`` (called by the tracking job once its alerts are committed):
  per alert, the user's active channels whose min_severity the alert reaches; digest
  users are left for the digest; everyone else gets at most N notifications per
  product per UTC day (notification_prefs.max_notifications_per_product_per_day,
  default 5) and the rest is recorded as 'suppressed' deliveries. One
  ``deliver_notification`` job per (channel, alert) goes to the critical queue.
- ``deliver_notification``: one attempt at one delivery (signed webhook POST or SES
  e-mail); a failure raises RetryableJobError so the consumer backs off and SQS
  redelivers, up to the redrive policy's 3 receives, then the DLQ.
- ``plan_digests`` (schedule "daily_digest") queues one ``send_digest`` job per user
  with pending alerts on the low queue; ``send_digest`` sends one message per channel
  with the alerts grouped by product and marks them notified.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Result, text

from amazon_pilot.adapters import notify
from amazon_pilot.adapters.queues import enqueue_many
from amazon_pilot.domain import notifications as rules
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import RetryableJobError
from amazon_pilot.platform.jobs import Delivery

DELIVER_JOB = "deliver_notification"
DIGEST_JOB = "send_digest"
SWEEP_JOB = "sweep_notifications"
# The critical queue's redrive policy moves a message to the DLQ after 3 receives:
# the third failed attempt is the last, and the delivery is then marked 'failed'.
MAX_ATTEMPTS = 3
MAX_DIGEST_ALERTS = 500
STRAGGLER_AGE = timedelta(minutes=15)
STRAGGLER_WINDOW = timedelta(hours=48)

ALERT_COLUMNS = (
    "a.id, a.user_id, a.product_id, a.type, a.severity, a.metric, a.old_value, a.new_value,"
    " a.change_pct, a.threshold, a.message, a.created_at, a.notified_at,"
    " p.asin, p.marketplace, p.title AS product_title, p.data_source"
)


def _dicts(result: Result[Any]) -> list[dict[str, Any]]:
    return [dict(row) for row in result.mappings()]


def _first(result: Result[Any]) -> dict[str, Any] | None:
    row = result.mappings().first()
    return dict(row) if row is not None else None


def alert_key(alert_id: str) -> str:
    """dedupe_key of a per-alert delivery (unique per channel)."""
    return f"alert:{alert_id}"


def digest_key(day: str) -> str:
    return f"digest:{day}"


def job_key(channel_id: str, alert_id: str) -> str:
    return f"notify:{channel_id}:{alert_id}"


# ------------------------------------------------------------------ fan-out


def fan_out(alert_ids: Sequence[str], *, now: datetime | None = None) -> int:
    """Queue the notifications of freshly committed alerts; returns the jobs queued.

    Idempotent: only alerts not yet notified are considered (and they are locked while
    this runs), so calling it twice, or concurrently, notifies each alert once. The
    jobs are queued before the transaction commits: if SQS refuses them nothing is
    marked and the caller may simply call again."""
    ids = sorted({str(uuid.UUID(str(a))) for a in alert_ids})
    if not ids:
        return 0
    now = now or datetime.now(UTC)
    day_start = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    jobs: list[tuple[str, dict[str, Any], str]] = []
    with transaction() as conn:
        alerts = _dicts(conn.execute(text(
            f"SELECT {ALERT_COLUMNS}, u.notification_prefs AS prefs, u.is_active AS user_active"
            " FROM alerts a JOIN users u ON u.id = a.user_id JOIN products p ON p.id = a.product_id"
            " WHERE a.id = ANY(CAST(:ids AS uuid[])) AND a.notified_at IS NULL"
            " ORDER BY a.user_id, a.product_id, a.created_at FOR UPDATE OF a SKIP LOCKED"),
            {"ids": ids}))
        immediate = [a for a in alerts
                     if a["user_active"] and not rules.wants_daily_digest(a["prefs"])]
        handled = [str(a["id"]) for a in alerts if not a["user_active"]]
        channels = _channels_of(conn, {str(a["user_id"]) for a in immediate})
        groups: dict[tuple[str, int], list[Mapping[str, Any]]] = defaultdict(list)
        for alert in immediate:
            groups[(str(alert["user_id"]), int(alert["product_id"]))].append(alert)
        for (user_id, product_id), group in sorted(groups.items()):
            jobs += _fan_out_group(conn, user_id, product_id, group,
                                   channels.get(user_id, []), day_start)
            handled += [str(a["id"]) for a in group]
        if handled:
            conn.execute(text("UPDATE alerts SET notified_at = now()"
                              " WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": handled})
        if jobs:
            enqueue_many("critical", jobs)
    return len(jobs)


def _channels_of(conn: Connection, user_ids: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    users = sorted(user_ids)
    if not users:
        return {}
    rows = conn.execute(text(
        "SELECT id, user_id, kind, min_severity FROM notification_channels"
        " WHERE user_id = ANY(CAST(:u AS uuid[])) AND is_active ORDER BY created_at, id"),
        {"u": users}).mappings().all()
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        out[str(row["user_id"])].append(dict(row))
    return out


def _fan_out_group(conn: Connection, user_id: str, product_id: int,
                   alerts: list[Mapping[str, Any]], channels: list[dict[str, Any]],
                   day_start: datetime) -> list[tuple[str, dict[str, Any], str]]:
    """One user's new alerts of one product: apply the cap, record deliveries, return
    the jobs to queue."""
    prefs = alerts[0]["prefs"]
    eligible = {str(a["id"]): [c for c in channels
                               if rules.channel_enabled(c["kind"], prefs)
                               and rules.severity_passes(a["severity"], c["min_severity"])]
                for a in alerts}
    candidates = [rules.CapCandidate(str(a["id"]), a["severity"], a["created_at"])
                  for a in alerts if eligible[str(a["id"])]]
    if not candidates:
        return []
    # Serialize deciders for this user and product, so two concurrent fan-outs cannot
    # both see room under the cap.
    conn.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:k, 7210003))"),
                 {"k": f"notify-cap:{user_id}:{product_id}"})
    sent_today = conn.execute(text(
        "SELECT count(*) FROM alerts a WHERE a.user_id = :u AND a.product_id = :p"
        " AND a.notified_at >= :since AND EXISTS (SELECT 1 FROM notification_deliveries d"
        "   WHERE d.user_id = :u AND d.dedupe_key = 'alert:' || a.id::text"
        "   AND d.status <> 'suppressed')"),
        {"u": user_id, "p": product_id, "since": day_start}).scalar_one()
    cap = rules.cap_per_product_per_day(prefs)
    send, suppress = rules.apply_cap(candidates, int(sent_today), cap)
    jobs: list[tuple[str, dict[str, Any], str]] = []
    for alert_id in send:
        for channel in eligible[alert_id]:
            delivery_id, status = _upsert_delivery(conn, str(channel["id"]), user_id,
                                                   alert_key(alert_id), [alert_id])
            if status != "delivered":
                payload = {"delivery_id": delivery_id, "channel_id": str(channel["id"]),
                           "alert_id": alert_id}
                jobs.append((DELIVER_JOB, payload, job_key(str(channel["id"]), alert_id)))
    reason = f"over the cap of {cap} notifications per product per day"
    for alert_id in suppress:
        for channel in eligible[alert_id]:
            conn.execute(text(
                "INSERT INTO notification_deliveries"
                " (channel_id, user_id, dedupe_key, alert_ids, status, last_error)"
                " VALUES (:c, :u, :k, CAST(:a AS uuid[]), 'suppressed', :e)"
                " ON CONFLICT (channel_id, dedupe_key) DO NOTHING"),
                {"c": channel["id"], "u": user_id, "k": alert_key(alert_id), "a": [alert_id],
                 "e": reason})
    return jobs


def _upsert_delivery(conn: Connection, channel_id: str, user_id: str, dedupe: str,
                     alert_ids: list[str], delivery_id: str | None = None) -> tuple[str, str]:
    """The delivery row of (channel, dedupe key), created pending if missing: (id, status)."""
    row = conn.execute(text(
        "INSERT INTO notification_deliveries (id, channel_id, user_id, dedupe_key, alert_ids)"
        " VALUES (:id, :c, :u, :k, CAST(:a AS uuid[]))"
        " ON CONFLICT (channel_id, dedupe_key) DO UPDATE"
        "   SET alert_ids = notification_deliveries.alert_ids"
        " RETURNING id, status"),
        {"id": delivery_id or str(uuid.uuid4()), "c": channel_id, "u": user_id, "k": dedupe,
         "a": alert_ids}).one()
    return str(row.id), str(row.status)


# ------------------------------------------------------------------ one delivery


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False,
                      default=str).encode()


def send_to_channel(channel: Mapping[str, Any], delivery_id: str, payload: dict[str, Any],
                    email: tuple[str, str]) -> notify.SendResult:
    """Send one message: `payload` (signed JSON) to a webhook, `email` (subject, text)
    to an e-mail channel."""
    if channel["kind"] == "webhook":
        body = _body(payload)
        timestamp = str(int(time.time()))
        headers = {
            rules.SIGNATURE_HEADER: rules.sign(body, str(channel["secret"] or ""), timestamp),
            rules.TIMESTAMP_HEADER: timestamp,
            rules.DELIVERY_HEADER: delivery_id,
            rules.EVENT_HEADER: str(payload["event"]),
        }
        return notify.post_webhook(str(channel["target"]), body, headers)
    subject, text_body = email
    return notify.send_email(str(channel["target"]), subject, text_body)


def record_attempt(delivery_id: str, result: notify.SendResult, *, sent: bool = True) -> int:
    """Store one attempt's outcome (`sent=False`: nothing went out); returns the attempts."""
    with transaction() as conn:
        attempts = conn.execute(text(
            "UPDATE notification_deliveries SET attempts = attempts + :n,"
            " last_attempt_at = CASE WHEN :n = 1 THEN now() ELSE last_attempt_at END,"
            " response_code = :code, last_error = :error,"
            " status = CASE WHEN :ok THEN 'delivered'"
            "   WHEN :permanent OR attempts + :n >= :max THEN 'failed' ELSE 'pending' END,"
            " delivered_at = CASE WHEN :ok THEN now() ELSE delivered_at END"
            " WHERE id = :id RETURNING attempts"),
            {"id": delivery_id, "code": result.status_code, "error": result.error,
             "ok": result.delivered, "permanent": result.permanent,
             "max": MAX_ATTEMPTS, "n": 1 if sent else 0}).scalar()
    return int(attempts or 0)


def _outcome(delivery_id: str, result: notify.SendResult) -> dict[str, Any]:
    attempts = record_attempt(delivery_id, result)
    if result.delivered:
        return {"delivery_id": delivery_id, "delivered": True, "attempts": attempts,
                "response_code": result.status_code}
    if result.permanent:  # retrying cannot help: recorded as failed, not retried
        return {"delivery_id": delivery_id, "delivered": False, "attempts": attempts,
                "error": result.error}
    raise RetryableJobError(f"delivery {delivery_id} attempt {attempts} failed: {result.error}")


def deliver_notification(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Job: one attempt at one delivery (an alert, or a channel test)."""
    channel_id = str(payload["channel_id"])
    delivery_id = str(payload["delivery_id"])
    alert_id = payload.get("alert_id")
    with transaction() as conn:
        channel = _first(conn.execute(text(
            "SELECT id, user_id, kind, target, secret, is_active FROM notification_channels"
            " WHERE id = :c"), {"c": channel_id}))
        if channel is None:
            return {"skipped": "the channel was deleted"}
        alert = None
        if alert_id:
            alert = _first(conn.execute(text(
                f"SELECT {ALERT_COLUMNS} FROM alerts a JOIN products p ON p.id = a.product_id"
                " WHERE a.id = :a AND a.user_id = :u"),
                {"a": alert_id, "u": channel["user_id"]}))
            if alert is None:
                return {"skipped": "the alert no longer exists"}
            # normally written by fan_out; recreated here if that row is missing
            delivery_id, status = _upsert_delivery(conn, channel_id, str(channel["user_id"]),
                                                   alert_key(str(alert_id)), [str(alert_id)],
                                                   delivery_id)
        else:
            found = conn.execute(text(
                "SELECT status FROM notification_deliveries WHERE id = :d AND channel_id = :c"),
                {"d": delivery_id, "c": channel_id}).scalar()
            if found is None:  # its row is not committed yet (or the queueing failed)
                raise RetryableJobError(f"delivery {delivery_id} is not recorded yet")
            status = str(found)
    if status in ("delivered", "suppressed"):
        return {"delivery_id": delivery_id, "status": status, "replayed": True}
    if not channel["is_active"]:
        return _outcome(delivery_id, notify.SendResult(
            False, error="the channel is disabled", permanent=True))
    sent_at = datetime.now(UTC)
    if alert is not None:
        body = rules.alert_payload(alert, delivery_id, sent_at)
        email = rules.alert_email(alert)
    else:
        body = rules.channel_test_payload(channel_id, delivery_id, sent_at)
        email = rules.channel_test_email()
    return _outcome(delivery_id, send_to_channel(channel, delivery_id, body, email))


def queue_test(channel_id: str, user_id: str) -> str:
    """Record a test delivery for a channel and queue it; returns the delivery id."""
    delivery_id = str(uuid.uuid4())
    # committed before it is queued, so the job always finds the row
    with transaction() as conn:
        conn.execute(text(
            "INSERT INTO notification_deliveries (id, channel_id, user_id, dedupe_key)"
            " VALUES (:id, :c, :u, :k)"),
            {"id": delivery_id, "c": channel_id, "u": user_id, "k": f"test:{delivery_id}"})
    try:
        enqueue_many("critical", [(DELIVER_JOB, {"delivery_id": delivery_id,
                                                 "channel_id": channel_id},
                                   f"notify-test:{delivery_id}")])
    except Exception as exc:
        record_attempt(delivery_id, notify.SendResult(
            False, error=f"could not be queued: {type(exc).__name__}", permanent=True),
            sent=False)
        raise
    return delivery_id


# ------------------------------------------------------------------ daily digest


def plan_digests(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """Schedule "daily_digest": one send_digest job (low queue) per digest user with
    pending alerts, and one sweep_notifications job (default queue, whose worker may
    send to the critical queue) for alerts a failed fan-out left pending."""
    day = str(event.get("date") or now.astimezone(UTC).date().isoformat())
    with transaction() as conn:
        users = conn.execute(text(
            "SELECT DISTINCT a.user_id FROM alerts a JOIN users u ON u.id = a.user_id"
            " WHERE a.notified_at IS NULL AND u.is_active"
            " AND lower(u.notification_prefs->>'digest') = 'daily' ORDER BY a.user_id")
        ).scalars().all()
    jobs = [(DIGEST_JOB, {"user_id": str(u), "date": day}, f"digest:{u}:{day}") for u in users]
    queued = enqueue_many("low", jobs)
    enqueue_many("default", [(SWEEP_JOB, {"before": (now - STRAGGLER_AGE).isoformat()},
                              f"sweep-notifications:{now:%Y-%m-%dT%H:%M}")])
    return {"job": "daily_digest", "date": day, "queued_on": "low", "digests": queued,
            "sweep_queued_on": "default"}


def sweep_notifications(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Job: fan out immediate users' alerts still pending (the fan-out after their
    creation failed), created between 48 hours and 15 minutes ago."""
    before = datetime.fromisoformat(str(payload["before"]))
    with transaction() as conn:
        stragglers = conn.execute(text(
            "SELECT a.id FROM alerts a JOIN users u ON u.id = a.user_id"
            " WHERE a.notified_at IS NULL AND u.is_active"
            " AND coalesce(lower(u.notification_prefs->>'digest'), '') <> 'daily'"
            " AND a.created_at < :before AND a.created_at > :oldest"
            " ORDER BY a.created_at LIMIT 1000"),
            {"before": before, "oldest": before - STRAGGLER_WINDOW}).scalars().all()
    queued = fan_out([str(a) for a in stragglers]) if stragglers else 0
    return {"alerts": len(stragglers), "jobs_queued": queued}


def send_digest(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """Job: one user's digest for a day, one message per active channel.

    A channel already delivered for this day is skipped (retries resend only what
    failed, with the same alerts as the first try). Alerts are marked notified once
    every channel has its digest, or failed for good; a retryable failure leaves
    them pending and raises so SQS retries."""
    user_id, day = str(payload["user_id"]), str(payload["date"])
    dedupe = digest_key(day)
    with transaction() as conn:
        user = _first(conn.execute(text(
            "SELECT is_active, notification_prefs FROM users WHERE id = :u"), {"u": user_id}))
        if user is None or not user["is_active"]:
            return {"skipped": "the user is gone or deactivated"}
        channels = _dicts(conn.execute(text(
            "SELECT id, user_id, kind, target, secret, min_severity FROM notification_channels"
            " WHERE user_id = :u AND is_active ORDER BY created_at, id"),
            {"u": user_id}))
        channels = [c for c in channels
                    if rules.channel_enabled(c["kind"], user["notification_prefs"])]
        prior = {str(r.channel_id): r for r in conn.execute(text(
            "SELECT channel_id, id, status, alert_ids FROM notification_deliveries"
            " WHERE user_id = :u AND dedupe_key = :k"), {"u": user_id, "k": dedupe}).all()}
        prior_ids = sorted({str(a) for r in prior.values() for a in r.alert_ids})
        alerts = _dicts(conn.execute(text(
            f"SELECT {ALERT_COLUMNS} FROM alerts a JOIN products p ON p.id = a.product_id"
            " WHERE a.user_id = :u AND (a.notified_at IS NULL"
            "   OR a.id = ANY(CAST(:prior AS uuid[])))"
            " ORDER BY a.created_at, a.id LIMIT :limit"),
            {"u": user_id, "prior": prior_ids, "limit": MAX_DIGEST_ALERTS}))
    by_id = {str(a["id"]): a for a in alerts}
    pending = [a for a in alerts if a["notified_at"] is None]
    covered: set[str] = {str(a["id"]) for a in pending if not any(
        rules.severity_passes(a["severity"], c["min_severity"]) for c in channels)}
    sent, failures = 0, []
    for channel in channels:
        earlier = prior.get(str(channel["id"]))
        if earlier is not None:
            chosen = [by_id[str(a)] for a in earlier.alert_ids if str(a) in by_id]
        else:
            chosen = [a for a in pending
                      if rules.severity_passes(a["severity"], channel["min_severity"])]
        if not chosen:
            continue
        chosen_ids = [str(a["id"]) for a in chosen]
        if earlier is not None and earlier.status in ("delivered", "failed"):
            covered.update(chosen_ids)
            continue
        with transaction() as conn:
            delivery_id, _ = _upsert_delivery(conn, str(channel["id"]), user_id, dedupe,
                                              chosen_ids)
        result = send_to_channel(
            channel, delivery_id,
            rules.digest_payload(list(chosen), day, delivery_id, datetime.now(UTC)),
            rules.digest_text(list(chosen), day))
        record_attempt(delivery_id, result)
        if result.delivered or result.permanent:
            covered.update(chosen_ids)
            sent += int(result.delivered)
        else:
            failures.append(f"{channel['kind']} {channel['id']}: {result.error}")
    if failures:
        raise RetryableJobError("digest not delivered to " + "; ".join(failures))
    if covered:
        with transaction() as conn:
            conn.execute(text(
                "UPDATE alerts SET notified_at = coalesce(notified_at, now())"
                " WHERE user_id = :u AND id = ANY(CAST(:ids AS uuid[]))"),
                {"u": user_id, "ids": sorted(covered)})
    return {"user_id": user_id, "date": day, "messages": sent, "alerts": len(covered)}
