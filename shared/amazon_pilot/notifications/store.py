"""All SQL of notifications: channels, the delivery log, and the alert and user columns
that fan-out and the digest read and mark (alerts.notified_at).

Functions take the caller's connection, so the service decides what shares a
transaction; `load_channel` (the ownership loader of the routes) opens its own.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple, TypedDict, cast
from uuid import UUID

from sqlalchemy import Connection, Row, text
from sqlalchemy.exc import IntegrityError

from amazon_pilot.notifications.schemas import ChannelKind, DeliveryStatus, Severity
from amazon_pilot.platform.db import reading

_CHANNEL_COLUMNS = ("id, user_id, kind, target, secret, min_severity, is_active, created_at,"
                    " name, events, verified_at, verify_sent_at")
_DELIVERY_COLUMNS = (
    "id, channel_id, user_id, dedupe_key, alert_ids, status, attempts, response_code,"
    " last_error, created_at, last_attempt_at, delivered_at"
)
_ALERT_COLUMNS = (
    "a.id, a.user_id, a.product_id, a.type, a.severity, a.metric, a.old_value, a.new_value,"
    " a.change_pct, a.threshold, a.message, a.created_at, a.notified_at,"
    " a.tracked_product_id, p.asin, p.marketplace, p.title AS product_title, p.data_source"
)


@dataclass(frozen=True)
class Channel:
    id: UUID
    user_id: UUID
    kind: ChannelKind
    target: str  # the URL or the address
    secret: str | None  # a webhook's signing key, sealed (adapters.crypto.open_sealed)
    min_severity: Severity
    is_active: bool
    created_at: datetime
    name: str | None = None
    events: tuple[str, ...] = ("alert", "digest", "report")
    verified_at: datetime | None = None
    verify_sent_at: datetime | None = None

    @property
    def verified(self) -> bool:
        return self.kind != "email" or self.verified_at is not None


@dataclass(frozen=True)
class DeliveryRow:
    id: UUID
    channel_id: UUID
    user_id: UUID
    dedupe_key: str  # alert:<alert id> | digest:<date> | test:<delivery id>
    alert_ids: list[UUID]
    status: DeliveryStatus
    attempts: int
    response_code: int | None
    last_error: str | None
    created_at: datetime
    last_attempt_at: datetime | None
    delivered_at: datetime | None


# A mapping, not a dataclass: the domain's payload and e-mail builders read alerts by key.
class AlertRow(TypedDict):
    """An alert with its product's asin, marketplace, title and data source."""

    id: UUID
    user_id: UUID
    product_id: int
    type: str
    severity: str
    metric: str | None
    old_value: str | None
    new_value: str | None
    change_pct: float | None
    threshold: float | None
    message: str
    created_at: datetime
    notified_at: datetime | None
    tracked_product_id: UUID
    asin: str
    marketplace: str
    product_title: str | None
    data_source: str | None


class FanOutAlert(AlertRow):
    """A new alert with what fan-out needs to know about its user."""

    prefs: dict[str, Any] | None
    user_active: bool


class Recipient(NamedTuple):
    is_active: bool
    notification_prefs: dict[str, Any] | None


class DeliveryState(NamedTuple):
    id: str
    status: str


def _channel(row: Row[Any]) -> Channel:
    values = dict(row._mapping)
    values["events"] = tuple(values["events"] or ())
    return Channel(**values)


def _delivery(row: Row[Any]) -> DeliveryRow:
    values = dict(row._mapping)
    values["alert_ids"] = list(values["alert_ids"] or [])
    return DeliveryRow(**values)


def _alert(row: Row[Any]) -> AlertRow:
    return cast(AlertRow, dict(row._mapping))


# ------------------------------------------------------------------ channels


def find_channel(conn: Connection, user_id: UUID | str, channel_id: UUID | str) -> Channel | None:
    """The user's channel, or None when it does not exist or is somebody else's."""
    row = conn.execute(text(
        f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels WHERE id = :id AND user_id = :u"),
        {"id": channel_id, "u": user_id}).first()
    return _channel(row) if row is not None else None


def load_channel(user_id: UUID, channel_id: UUID) -> Channel | None:
    """Ownership loader of the channel routes (platform.ownership.owned)."""
    with reading() as conn:
        return find_channel(conn, user_id, channel_id)


def channel_by_id(conn: Connection, channel_id: UUID | str) -> Channel | None:
    """Any user's channel (a delivery job knows its channel only by id)."""
    row = conn.execute(text(
        f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels WHERE id = :c"),
        {"c": channel_id}).first()
    return _channel(row) if row is not None else None


def list_channels(conn: Connection, user_id: UUID | str) -> list[Channel]:
    rows = conn.execute(text(
        f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels WHERE user_id = :u"
        " ORDER BY created_at, id"), {"u": user_id}).all()
    return [_channel(r) for r in rows]


def active_channels(conn: Connection, user_ids: Sequence[str]) -> list[Channel]:
    """The active channels of these users, oldest first."""
    if not user_ids:
        return []
    rows = conn.execute(text(
        f"SELECT {_CHANNEL_COLUMNS} FROM notification_channels"
        " WHERE user_id = ANY(CAST(:u AS uuid[])) AND is_active ORDER BY created_at, id"),
        {"u": list(user_ids)}).all()
    return [_channel(r) for r in rows]


def lock_user(conn: Connection, user_id: UUID | str) -> None:
    """Hold the user's row until the transaction ends: one channel creator at a time."""
    conn.execute(text("SELECT 1 FROM users WHERE id = :u FOR UPDATE"), {"u": user_id})


def count_channels(conn: Connection, user_id: UUID | str) -> int:
    return int(conn.execute(text(
        "SELECT count(*) FROM notification_channels WHERE user_id = :u"),
        {"u": user_id}).scalar_one())


def insert_channel(conn: Connection, user_id: UUID | str, kind: str, target: str,
                   secret: str | None, min_severity: str,
                   secret_key_id: str | None = None, *, name: str | None = None,
                   events: Sequence[str] = ("alert", "digest", "report"),
                   verified: bool = True,
                   verify_token_hash: str | None = None) -> Channel | None:
    """The new channel, or None when the user has one of this kind and target already.
    `secret` is the sealed value (adapters.crypto), `secret_key_id` the key that sealed it.
    An unverified channel (an e-mail address) stores its link's token hash."""
    row = conn.execute(text(
        "INSERT INTO notification_channels"
        " (user_id, kind, target, secret, secret_key_id, min_severity, name, events,"
        "  verified_at, verify_token_hash, verify_sent_at)"
        " VALUES (:u, :kind, :target, :secret, :key_id, :sev, :name, CAST(:events AS text[]),"
        "  CASE WHEN :verified THEN now() END, CAST(:vhash AS text),"
        "  CASE WHEN CAST(:vhash AS text) IS NOT NULL THEN now() END)"
        " ON CONFLICT (user_id, kind, target) DO NOTHING"
        f" RETURNING {_CHANNEL_COLUMNS}"),
        {"u": user_id, "kind": kind, "target": target, "secret": secret,
         "key_id": secret_key_id, "sev": min_severity, "name": name, "events": list(events),
         "verified": verified, "vhash": verify_token_hash}).first()
    return _channel(row) if row is not None else None


def update_channel(conn: Connection, user_id: UUID | str, channel_id: UUID | str,
                   changes: dict[str, Any]) -> Channel | None:
    """Apply `changes` (target, name, events, min_severity, is_active, and for a new
    e-mail address verified_at/verify_token_hash/verify_sent_at) to the user's channel.
    None when it is gone; raises TargetTaken when the user has the new target already."""
    columns = {"target": ":target", "name": ":name", "events": "CAST(:events AS text[])",
               "min_severity": ":min_severity", "is_active": ":is_active",
               "verified_at": ":verified_at", "verify_token_hash": ":verify_token_hash",
               "verify_sent_at": ":verify_sent_at"}
    sets = [f"{name} = {columns[name]}" for name in changes]
    if not sets:
        return find_channel(conn, user_id, channel_id)
    params = {**changes, "id": channel_id, "u": user_id}
    if "events" in params:
        params["events"] = list(params["events"])
    try:
        with conn.begin_nested():
            row = conn.execute(text(
                f"UPDATE notification_channels SET {', '.join(sets)}"
                f" WHERE id = :id AND user_id = :u RETURNING {_CHANNEL_COLUMNS}"),
                params).first()
    except IntegrityError:
        raise TargetTaken() from None
    return _channel(row) if row is not None else None


class TargetTaken(Exception):
    """The user has a channel of this kind and target already."""


def verify_channel(conn: Connection, token_hash: str, oldest_sent: datetime) -> Channel | None:
    """Mark the channel whose link token hashes to `token_hash` verified (the link was
    sent after `oldest_sent`); the channel, or None for an unknown or expired link."""
    row = conn.execute(text(
        "UPDATE notification_channels SET verified_at = now(), verify_token_hash = NULL"
        " WHERE verify_token_hash = :h AND verify_sent_at > :oldest"
        f" RETURNING {_CHANNEL_COLUMNS}"), {"h": token_hash, "oldest": oldest_sent}).first()
    return _channel(row) if row is not None else None


def secrets_to_seal(conn: Connection, active_key_id: str | None, limit: int,
                    skip: Sequence[UUID] = ()) -> list[tuple[UUID, str]]:
    """(channel id, stored secret) of secrets not under the active key (plaintext ones
    first) and not in `skip`, locked; other sealers skip them."""
    rows = conn.execute(text(
        "SELECT id, secret FROM notification_channels WHERE secret IS NOT NULL"
        " AND (secret_key_id IS NULL OR secret_key_id IS DISTINCT FROM :active)"
        " AND NOT (id = ANY(CAST(:skip AS uuid[])))"
        " ORDER BY secret_key_id NULLS FIRST, id LIMIT :limit FOR UPDATE SKIP LOCKED"),
        {"active": active_key_id, "limit": limit, "skip": [str(i) for i in skip]}).all()
    return [(r.id, str(r.secret)) for r in rows]


def store_sealed_secret(conn: Connection, channel_id: UUID | str, secret: str,
                        secret_key_id: str) -> None:
    conn.execute(text(
        "UPDATE notification_channels SET secret = :s, secret_key_id = :k WHERE id = :id"),
        {"s": secret, "k": secret_key_id, "id": channel_id})


def delete_channel(conn: Connection, user_id: UUID | str,
                   channel_id: UUID | str) -> Channel | None:
    """Delete the user's channel (its deliveries cascade); the deleted row, or None."""
    row = conn.execute(text(
        "DELETE FROM notification_channels WHERE id = :id AND user_id = :u"
        f" RETURNING {_CHANNEL_COLUMNS}"), {"id": channel_id, "u": user_id}).first()
    return _channel(row) if row is not None else None


# ------------------------------------------------------------------ the delivery log


def list_deliveries(conn: Connection, channel_id: UUID | str, status: str | None,
                    limit: int) -> list[DeliveryRow]:
    rows = conn.execute(text(
        f"SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries"
        " WHERE channel_id = :c AND (CAST(:s AS text) IS NULL OR status = :s)"
        " ORDER BY created_at DESC, id LIMIT :limit"),
        {"c": channel_id, "s": status, "limit": limit}).all()
    return [_delivery(r) for r in rows]


def count_tests_last_hour(conn: Connection, channel_id: UUID | str) -> int:
    return int(conn.execute(text(
        "SELECT count(*) FROM notification_deliveries WHERE channel_id = :c"
        " AND dedupe_key LIKE 'test:%' AND created_at > now() - interval '1 hour'"),
        {"c": channel_id}).scalar_one())


def insert_delivery(conn: Connection, delivery_id: str, channel_id: str, user_id: str,
                    dedupe_key: str) -> None:
    """A new pending delivery without alerts (a channel test)."""
    conn.execute(text(
        "INSERT INTO notification_deliveries (id, channel_id, user_id, dedupe_key)"
        " VALUES (:id, :c, :u, :k)"),
        {"id": delivery_id, "c": channel_id, "u": user_id, "k": dedupe_key})


def upsert_delivery(conn: Connection, channel_id: str, user_id: str, dedupe_key: str,
                    alert_ids: list[str], delivery_id: str | None = None,
                    product_id: int | None = None) -> DeliveryState:
    """The delivery of (channel, dedupe key), created pending if missing."""
    row = conn.execute(text(
        "INSERT INTO notification_deliveries"
        " (id, channel_id, user_id, dedupe_key, alert_ids, product_id)"
        " VALUES (:id, :c, :u, :k, CAST(:a AS uuid[]), :p)"
        " ON CONFLICT (channel_id, dedupe_key) DO UPDATE"
        "   SET alert_ids = notification_deliveries.alert_ids"
        " RETURNING id, status"),
        {"id": delivery_id or str(uuid.uuid4()), "c": channel_id, "u": user_id,
         "k": dedupe_key, "a": alert_ids, "p": product_id}).one()
    return DeliveryState(str(row.id), str(row.status))


class DeliveryTarget(NamedTuple):
    status: str
    alert_ids: list[UUID]
    dedupe_key: str


def delivery_row(conn: Connection, delivery_id: str, channel_id: str) -> DeliveryTarget | None:
    row = conn.execute(text(
        "SELECT status, alert_ids, dedupe_key FROM notification_deliveries"
        " WHERE id = :d AND channel_id = :c"), {"d": delivery_id, "c": channel_id}).first()
    if row is None:
        return None
    return DeliveryTarget(str(row.status), list(row.alert_ids or []), str(row.dedupe_key))


def user_alerts(conn: Connection, alert_ids: Sequence[str],
                user_id: UUID | str) -> list[AlertRow]:
    """The user's alerts of these ids, oldest first."""
    rows = conn.execute(text(
        f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN products p ON p.id = a.product_id"
        " WHERE a.id = ANY(CAST(:ids AS uuid[])) AND a.user_id = :u"
        " ORDER BY a.created_at, a.id"), {"ids": list(alert_ids), "u": user_id}).all()
    return [_alert(r) for r in rows]


def report_message(conn: Connection, report_id: str,
                   user_id: UUID | str) -> dict[str, Any] | None:
    """What a weekly report's message says: its group, period, summary and the actions
    it recommends (competitor_reports.report is the PositioningReport)."""
    row = conn.execute(text(
        "SELECT r.id, r.period, r.report, r.data_source, g.name FROM competitor_reports r"
        " JOIN competitor_groups g ON g.id = r.group_id"
        " WHERE r.id = :r AND r.user_id = :u AND r.status = 'done'"),
        {"r": report_id, "u": user_id}).first()
    if row is None:
        return None
    body = row.report if isinstance(row.report, dict) else {}
    recs = [str(r.get("action")) for r in body.get("recommendations") or []
            if isinstance(r, dict) and r.get("action")]
    return {"report_id": str(row.id), "group_name": row.name, "period": row.period,
            "summary": body.get("summary"), "recommendations": recs,
            "data_source": row.data_source}


def delivery_status(conn: Connection, delivery_id: str, channel_id: str) -> str | None:
    found = conn.execute(text(
        "SELECT status FROM notification_deliveries WHERE id = :d AND channel_id = :c"),
        {"d": delivery_id, "c": channel_id}).scalar()
    return str(found) if found is not None else None


def record_attempt(conn: Connection, delivery_id: str, *, status_code: int | None,
                   error: str | None, delivered: bool, permanent: bool,
                   max_attempts: int) -> int:
    """Store one attempt's outcome; the delivery fails on a permanent error or once it
    has `max_attempts` attempts. Returns its attempts."""
    attempts = conn.execute(text(
        "UPDATE notification_deliveries SET attempts = attempts + 1, last_attempt_at = now(),"
        " response_code = :code, last_error = :error,"
        " status = CASE WHEN :ok THEN 'delivered'"
        "   WHEN :permanent OR attempts + 1 >= :max THEN 'failed' ELSE 'pending' END,"
        " delivered_at = CASE WHEN :ok THEN now() ELSE delivered_at END"
        " WHERE id = :id RETURNING attempts"),
        {"id": delivery_id, "code": status_code, "error": error, "ok": delivered,
         "permanent": permanent, "max": max_attempts}).scalar()
    return int(attempts or 0)


def mark_failed_unsent(conn: Connection, delivery_id: str, error: str) -> None:
    """A delivery that never went out (it could not be queued): failed, no attempt."""
    conn.execute(text(
        "UPDATE notification_deliveries SET response_code = NULL, last_error = :error,"
        " status = 'failed' WHERE id = :id"), {"id": delivery_id, "error": error})


def digest_deliveries(conn: Connection, user_id: str, dedupe_key: str) -> list[DeliveryRow]:
    """The user's deliveries of one digest day, one per channel."""
    rows = conn.execute(text(
        f"SELECT {_DELIVERY_COLUMNS} FROM notification_deliveries"
        " WHERE user_id = :u AND dedupe_key = :k"), {"u": user_id, "k": dedupe_key}).all()
    return [_delivery(r) for r in rows]


# ------------------------------------------------------------------ alerts and users


def lock_new_alerts(conn: Connection, alert_ids: Sequence[str]) -> list[FanOutAlert]:
    """These alerts if not yet notified, locked for this transaction (rows another
    fan-out holds are skipped), with their user's prefs and state."""
    rows = conn.execute(text(
        f"SELECT {_ALERT_COLUMNS}, u.notification_prefs AS prefs, u.is_active AS user_active"
        " FROM alerts a JOIN users u ON u.id = a.user_id JOIN products p ON p.id = a.product_id"
        " WHERE a.id = ANY(CAST(:ids AS uuid[])) AND a.notified_at IS NULL"
        " AND a.held_at IS NULL"
        " ORDER BY a.user_id, a.product_id, a.created_at FOR UPDATE OF a SKIP LOCKED"),
        {"ids": list(alert_ids)}).all()
    return [cast(FanOutAlert, dict(r._mapping)) for r in rows]


def lock_caps(conn: Connection, user_id: str, product_ids: Sequence[int]) -> None:
    """Serialize cap deciders for this user and these products until the transaction
    ends; locked in product order (no deadlock between overlapping fan-outs)."""
    conn.execute(text(
        "SELECT pg_advisory_xact_lock(hashtextextended('notify-cap:' || :u || ':' || p, 7210003))"
        " FROM (SELECT DISTINCT unnest(CAST(:ps AS bigint[])) AS p ORDER BY 1) ordered"),
        {"u": str(user_id), "ps": list(product_ids)}).all()


def sent_counts_since(conn: Connection, user_id: str, product_ids: Sequence[int],
                      since: datetime) -> dict[int, int]:
    """Messages about each of the user's products since `since` that were not
    suppressed: what counts against the cap. A message to two channels counts once (its
    first alert names it); a grouped message of 40 alerts counts once."""
    rows = conn.execute(text(
        "SELECT d.product_id, count(DISTINCT d.alert_ids[1]) FROM notification_deliveries d"
        " WHERE d.user_id = :u AND d.product_id = ANY(CAST(:ps AS bigint[]))"
        " AND d.created_at >= :since AND d.status <> 'suppressed' GROUP BY d.product_id"),
        {"u": user_id, "ps": list(product_ids), "since": since}).all()
    return {int(r[0]): int(r[1]) for r in rows}


class NewDelivery(NamedTuple):
    channel_id: str
    dedupe_key: str
    alert_ids: list[str]
    product_id: int


def upsert_deliveries(conn: Connection, user_id: str, rows: Sequence[NewDelivery],
                      status: str = "pending",
                      reason: str | None = None) -> dict[tuple[str, str], DeliveryState]:
    """Many deliveries of one user in one statement, created with `status` (pending, or
    suppressed with `reason`) if missing; (channel id, dedupe key) → (id, status)."""
    if not rows:
        return {}
    found = conn.execute(text(
        "INSERT INTO notification_deliveries"
        " (channel_id, user_id, dedupe_key, alert_ids, product_id, status, last_error)"
        " SELECT c, :u, k, CAST(string_to_array(a, ',') AS uuid[]), p, :status, :reason"
        " FROM unnest(CAST(:cs AS uuid[]), CAST(:ks AS text[]), CAST(:as AS text[]),"
        "   CAST(:ps AS bigint[])) AS t(c, k, a, p)"
        " ON CONFLICT (channel_id, dedupe_key) DO UPDATE"
        "   SET alert_ids = notification_deliveries.alert_ids"
        " RETURNING id, status, channel_id, dedupe_key"),
        {"u": user_id, "status": status, "reason": reason,
         "cs": [r.channel_id for r in rows], "ks": [r.dedupe_key for r in rows],
         "as": [",".join(r.alert_ids) for r in rows], "ps": [r.product_id for r in rows]}).all()
    return {(str(r.channel_id), str(r.dedupe_key)): DeliveryState(str(r.id), str(r.status))
            for r in found}


def mark_notified(conn: Connection, alert_ids: Sequence[str]) -> None:
    conn.execute(text("UPDATE alerts SET notified_at = now()"
                      " WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": list(alert_ids)})


def mark_user_alerts_notified(conn: Connection, user_id: str, alert_ids: Sequence[str]) -> None:
    """Mark the user's alerts notified, keeping an earlier time where there is one."""
    conn.execute(text(
        "UPDATE alerts SET notified_at = coalesce(notified_at, now())"
        " WHERE user_id = :u AND id = ANY(CAST(:ids AS uuid[]))"),
        {"u": user_id, "ids": list(alert_ids)})


def user_alert(conn: Connection, alert_id: str, user_id: UUID | str) -> AlertRow | None:
    row = conn.execute(text(
        f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN products p ON p.id = a.product_id"
        " WHERE a.id = :a AND a.user_id = :u"), {"a": alert_id, "u": user_id}).first()
    return _alert(row) if row is not None else None


def digest_alerts(conn: Connection, user_id: str, also: Sequence[str],
                  limit: int, *, held_only: bool = False) -> list[AlertRow]:
    """The user's pending alerts (only those held by quiet hours when `held_only`: the
    user is not on a digest), plus the alerts `also` (already in a digest of the day),
    oldest first."""
    rows = conn.execute(text(
        f"SELECT {_ALERT_COLUMNS} FROM alerts a JOIN products p ON p.id = a.product_id"
        " WHERE a.user_id = :u AND ((a.notified_at IS NULL"
        "   AND (NOT :held OR a.held_at IS NOT NULL))"
        "   OR a.id = ANY(CAST(:prior AS uuid[])))"
        " ORDER BY a.created_at, a.id LIMIT :limit"),
        {"u": user_id, "prior": list(also), "limit": limit, "held": held_only}).all()
    return [_alert(r) for r in rows]


def digest_user_ids(conn: Connection) -> list[tuple[UUID, dict[str, Any] | None]]:
    """(id, prefs) of active users with pending alerts who are on a digest (daily or
    weekly) or have alerts held by their quiet hours."""
    rows = conn.execute(text(
        "SELECT DISTINCT a.user_id, u.notification_prefs FROM alerts a"
        " JOIN users u ON u.id = a.user_id"
        " WHERE a.notified_at IS NULL AND u.is_active"
        " AND (lower(u.notification_prefs->>'digest') IN ('daily', 'weekly')"
        "      OR a.held_at IS NOT NULL) ORDER BY a.user_id")).all()
    return [(r.user_id, r.notification_prefs) for r in rows]


def straggler_alert_ids(conn: Connection, before: datetime, oldest: datetime,
                        limit: int = 1000) -> list[UUID]:
    """Pending alerts of active users not on the digest, created in (oldest, before)."""
    return list(conn.execute(text(
        "SELECT a.id FROM alerts a JOIN users u ON u.id = a.user_id"
        " WHERE a.notified_at IS NULL AND u.is_active AND a.held_at IS NULL"
        " AND coalesce(lower(u.notification_prefs->>'digest'), '') NOT IN ('daily', 'weekly')"
        " AND a.created_at < :before AND a.created_at > :oldest"
        " ORDER BY a.created_at LIMIT :limit"),
        {"before": before, "oldest": oldest, "limit": limit}).scalars().all())


def recipient(conn: Connection, user_id: str) -> Recipient | None:
    row = conn.execute(text(
        "SELECT is_active, notification_prefs FROM users WHERE id = :u"), {"u": user_id}).first()
    return Recipient(bool(row.is_active), row.notification_prefs) if row is not None else None


def mark_held(conn: Connection, alert_ids: Sequence[str]) -> None:
    """Alerts raised in quiet hours: left pending for the next digest, not the sweep."""
    conn.execute(text("UPDATE alerts SET held_at = now()"
                      " WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": list(alert_ids)})


# ------------------------------------------------------------------ snoozes


class SnoozeRow(NamedTuple):
    id: UUID
    tracked_product_id: UUID | None
    alert_type: str | None
    starts_at: datetime
    until: datetime
    created_at: datetime


_SNOOZE_COLUMNS = "id, tracked_product_id, alert_type, starts_at, until, created_at"


def active_snoozes(conn: Connection, user_ids: Sequence[str],
                   at: datetime) -> dict[str, list[SnoozeRow]]:
    """Snoozes of these users not over at `at` (ended ones may still cover older alerts
    of a digest: callers pass the oldest moment they judge)."""
    if not user_ids:
        return {}
    rows = conn.execute(text(
        f"SELECT user_id, {_SNOOZE_COLUMNS} FROM alert_snoozes"
        " WHERE user_id = ANY(CAST(:u AS uuid[])) AND until > :at"),
        {"u": list(user_ids), "at": at}).all()
    out: dict[str, list[SnoozeRow]] = {}
    for r in rows:
        out.setdefault(str(r.user_id), []).append(SnoozeRow(
            r.id, r.tracked_product_id, r.alert_type, r.starts_at, r.until, r.created_at))
    return out


def list_snoozes(conn: Connection, user_id: UUID | str, now: datetime) -> list[SnoozeRow]:
    rows = conn.execute(text(
        f"SELECT {_SNOOZE_COLUMNS} FROM alert_snoozes WHERE user_id = :u AND until > :now"
        " ORDER BY until, id"), {"u": user_id, "now": now}).all()
    return [SnoozeRow(*r) for r in rows]


def tracked_product_owned(conn: Connection, user_id: UUID | str,
                          tracked_product_id: UUID | str) -> bool:
    return conn.execute(text(
        "SELECT 1 FROM tracked_products WHERE id = :t AND user_id = :u"),
        {"t": tracked_product_id, "u": user_id}).first() is not None


def insert_snooze(conn: Connection, user_id: UUID | str, tracked_product_id: UUID | str | None,
                  alert_type: str | None, starts_at: datetime, until: datetime) -> SnoozeRow:
    """A new snooze; an active one for the same target is replaced (ended now)."""
    conn.execute(text(
        "DELETE FROM alert_snoozes WHERE user_id = :u"
        " AND tracked_product_id IS NOT DISTINCT FROM CAST(:t AS uuid)"
        " AND alert_type IS NOT DISTINCT FROM CAST(:a AS text) AND until > :s"),
        {"u": user_id, "t": tracked_product_id, "a": alert_type, "s": starts_at})
    row = conn.execute(text(
        "INSERT INTO alert_snoozes (user_id, tracked_product_id, alert_type, starts_at, until)"
        f" VALUES (:u, :t, :a, :s, :until) RETURNING {_SNOOZE_COLUMNS}"),
        {"u": user_id, "t": tracked_product_id, "a": alert_type, "s": starts_at,
         "until": until}).one()
    return SnoozeRow(*row)


def end_snooze(conn: Connection, user_id: UUID | str, snooze_id: UUID | str) -> bool:
    """Delete the user's snooze; False when there is none of that id."""
    return conn.execute(text(
        "DELETE FROM alert_snoozes WHERE id = :id AND user_id = :u RETURNING id"),
        {"id": snooze_id, "u": user_id}).first() is not None
