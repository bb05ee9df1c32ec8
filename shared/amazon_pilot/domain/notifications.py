"""Notification rules: webhook signatures, payloads, digests, the per-product cap and
what a channel target may be. Pure: no I/O, no clock (callers pass the time in).

Signature scheme (see docs/notifications.md)::

    X-Pilot-Timestamp: <unix seconds>
    X-Pilot-Signature: sha256=<hex HMAC-SHA256(secret, "<timestamp>." + raw body)>

The timestamp is part of the signed message, so a captured request cannot be replayed
later with a fresh timestamp; receivers reject timestamps older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import SplitResult, urlsplit

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
CHANNEL_KINDS: tuple[str, ...] = ("webhook", "email", "slack")
# What a channel takes: per-alert messages, digests, weekly competitor reports.
CHANNEL_EVENTS: tuple[str, ...] = ("alert", "digest", "report")
DIGEST_MODES: tuple[str, ...] = ("off", "daily", "weekly")
WEEKLY_DIGEST_WEEKDAY = 0  # Monday: the weekly digest goes out with that day's digest run

SIGNATURE_HEADER = "X-Pilot-Signature"
TIMESTAMP_HEADER = "X-Pilot-Timestamp"
DELIVERY_HEADER = "X-Pilot-Delivery"
EVENT_HEADER = "X-Pilot-Event"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300

EVENT_ALERT = "alert.created"
EVENT_DIGEST = "alert.digest"
EVENT_TEST = "notification.test"
EVENT_GROUP = "alert.grouped"
EVENT_REPORT = "report.weekly"
PAYLOAD_VERSION = 1

DEFAULT_CAP_PER_PRODUCT_PER_DAY = 5
MAX_CAP_PER_PRODUCT_PER_DAY = 1000
MAX_URL_LENGTH = 2048
MAX_EMAIL_LENGTH = 254


# ------------------------------------------------------------------ signing


def signed_message(body: bytes, timestamp: int | str) -> bytes:
    """What the HMAC covers: the timestamp, a dot, then the raw body bytes."""
    return str(timestamp).encode("ascii") + b"." + body


def sign(body: bytes, secret: str, timestamp: int | str) -> str:
    """The X-Pilot-Signature header value for this body, secret and timestamp."""
    digest = hmac.new(secret.encode(), signed_message(body, timestamp), hashlib.sha256)
    return SIGNATURE_PREFIX + digest.hexdigest()


def verify(
    body: bytes,
    secret: str,
    timestamp: int | str,
    signature: str,
    *,
    now: float | None = None,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> bool:
    """True when `signature` is this body's signature. With `now` (unix seconds), the
    timestamp must also be within `tolerance_s` of it (replay protection)."""
    try:
        sent_at = int(str(timestamp))
    except ValueError:
        return False
    if now is not None and abs(now - sent_at) > tolerance_s:
        return False
    expected = sign(body, secret, sent_at)
    return hmac.compare_digest(expected.encode(), signature.strip().encode())


# ------------------------------------------------------------------ severities, prefs, cap


def severity_passes(severity: str, min_severity: str) -> bool:
    """An alert goes to a channel when its severity is at least the channel's minimum."""
    return SEVERITY_RANK.get(severity, 0) >= SEVERITY_RANK.get(min_severity, 0)


def digest_mode(prefs: Mapping[str, Any] | None) -> str:
    """off | daily | weekly (anything else: off)."""
    mode = str((prefs or {}).get("digest") or "").lower()
    return mode if mode in DIGEST_MODES else "off"


def wants_daily_digest(prefs: Mapping[str, Any] | None) -> bool:
    """True for digest users (daily or weekly): they get no per-alert messages."""
    return digest_mode(prefs) != "off"


def digest_due(prefs: Mapping[str, Any] | None, day: date) -> bool:
    """Whether the digest run of `day` sends this user's digest: every day for daily
    users, on Mondays for weekly users (the week's alerts in one message)."""
    mode = digest_mode(prefs)
    return mode == "daily" or (mode == "weekly" and day.weekday() == WEEKLY_DIGEST_WEEKDAY)


def email_enabled(prefs: Mapping[str, Any] | None) -> bool:
    """notification_prefs.email = false turns e-mail channels off (webhooks still run)."""
    return (prefs or {}).get("email") is not False


def channel_enabled(kind: str, prefs: Mapping[str, Any] | None) -> bool:
    return kind != "email" or email_enabled(prefs)


def cap_per_product_per_day(prefs: Mapping[str, Any] | None) -> int:
    """The user's cap (notification_prefs.max_notifications_per_product_per_day), or 5.
    0 mutes immediate notifications; anything that is not a whole number of at least 0
    falls back to the default."""
    raw = (prefs or {}).get("max_notifications_per_product_per_day")
    if isinstance(raw, bool) or raw is None:
        return DEFAULT_CAP_PER_PRODUCT_PER_DAY
    try:
        value = int(raw)
    except (TypeError, ValueError):
        return DEFAULT_CAP_PER_PRODUCT_PER_DAY
    if value < 0:
        return DEFAULT_CAP_PER_PRODUCT_PER_DAY
    return min(value, MAX_CAP_PER_PRODUCT_PER_DAY)


@dataclass(frozen=True)
class CapCandidate:
    """An alert waiting to be notified for one user and one product."""

    alert_id: str
    severity: str
    created_at: datetime


def apply_cap(
    candidates: Iterable[CapCandidate], already_sent_today: int, cap: int
) -> tuple[list[str], list[str]]:
    """Split one user's new alerts for one product into (send, suppress).

    `already_sent_today` notifications went out for this product today; at most
    `cap - already_sent_today` more may. When only some fit, the most severe win, then
    the oldest (ties broken by id, so the result does not depend on input order).
    """
    room = max(0, cap - max(0, already_sent_today))
    ordered = sorted(
        candidates,
        key=lambda c: (-SEVERITY_RANK.get(c.severity, 0), c.created_at, c.alert_id),
    )
    send = [c.alert_id for c in ordered[:room]]
    suppress = [c.alert_id for c in ordered[room:]]
    return send, suppress


# ------------------------------------------------------------------ payloads


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def alert_fields(alert: Mapping[str, Any]) -> dict[str, Any]:
    """The alert as receivers see it. `alert` carries the alerts row plus the product's
    asin, marketplace and product_title."""
    return {
        "id": str(alert["id"]),
        "type": alert["type"],
        "severity": alert["severity"],
        "metric": alert.get("metric"),
        "product": {
            "asin": alert.get("asin"),
            "marketplace": alert.get("marketplace"),
            "title": alert.get("product_title"),
        },
        "old_value": alert.get("old_value"),
        "new_value": alert.get("new_value"),
        "change_pct": alert.get("change_pct"),
        "threshold": alert.get("threshold"),
        "message": alert["message"],
        "created_at": _iso(alert.get("created_at")),
    }


def _data_source(alerts: Iterable[Mapping[str, Any]]) -> str:
    """'sandbox' as soon as one alert comes from stand-in data: users must be able to
    tell sandbox data from real data wherever they see it."""
    sources = {str(a.get("data_source") or "apify") for a in alerts}
    if "sandbox" in sources:
        return "sandbox"
    return sources.pop() if len(sources) == 1 else "mixed"


def alert_payload(alert: Mapping[str, Any], delivery_id: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "event": EVENT_ALERT,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": _data_source([alert]),
        "alert": alert_fields(alert),
    }


def channel_test_payload(channel_id: str, delivery_id: str, sent_at: datetime) -> dict[str, Any]:
    return {
        "event": EVENT_TEST,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": "test",
        "channel_id": channel_id,
        "message": "Test notification from Amazon Pilot: this channel is set up correctly.",
    }


def group_by_product(alerts: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Alerts grouped per product (products in order of first appearance, alerts in
    the order given)."""
    groups: dict[tuple[Any, Any], dict[str, Any]] = {}
    for alert in alerts:
        key = (alert.get("asin"), alert.get("marketplace"))
        group = groups.get(key)
        if group is None:
            group = {
                "asin": alert.get("asin"),
                "marketplace": alert.get("marketplace"),
                "title": alert.get("product_title"),
                "alerts": [],
            }
            groups[key] = group
        group["alerts"].append(alert_fields(alert))
    return list(groups.values())


def digest_payload(
    alerts: list[Mapping[str, Any]], digest_date: str, delivery_id: str, sent_at: datetime
) -> dict[str, Any]:
    """One message for the whole digest: the first 500 alerts listed per product, and
    `summary` counting every alert (a storm day stays one message)."""
    return {
        "event": EVENT_DIGEST,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": _data_source(alerts),
        "date": digest_date,
        "alert_count": len(alerts),
        "summary": digest_summary(alerts),
        "products": group_by_product(alerts[:DIGEST_LISTED]),
    }


def _product_label(group: Mapping[str, Any]) -> str:
    title = group.get("title") or "(untitled)"
    return f"{title} — {group.get('asin')} (amazon.{group.get('marketplace')})"


def _sandbox_note(data_source: str) -> list[str]:
    if data_source == "sandbox":
        return ["", "Note: these values come from sandbox (stand-in) data, not from Amazon."]
    return []


def alert_email(alert: Mapping[str, Any]) -> tuple[str, str]:
    """(subject, plain text) of one alert's e-mail."""
    fields = alert_fields(alert)
    product = fields["product"]
    label = product["title"] or product["asin"]
    subject = f"[Amazon Pilot] {fields['severity'].upper()}: {fields['message']} — {label}"
    lines = [
        f"{fields['message']}",
        "",
        f"Product: {_product_label({**product})}",
        f"Alert: {fields['type']} ({fields['severity']})",
    ]
    if fields["old_value"] is not None or fields["new_value"] is not None:
        lines.append(f"Change: {fields['old_value']} → {fields['new_value']}")
    if fields["change_pct"] is not None:
        lines.append(f"Change %: {fields['change_pct']:+.2f}%")
    if fields["threshold"] is not None:
        lines.append(f"Threshold: {fields['threshold']}")
    lines.append(f"Raised at: {fields['created_at']}")
    lines += _sandbox_note(_data_source([alert]))
    return _one_line(subject), "\n".join(lines) + "\n"


def digest_text(alerts: list[Mapping[str, Any]], digest_date: str) -> tuple[str, str]:
    """(subject, plain text) of a daily digest: alerts grouped by product."""
    groups = group_by_product(alerts[:DIGEST_LISTED])
    count = len(alerts)
    products = digest_summary(alerts)["product_count"]
    subject = (f"[Amazon Pilot] Digest for {digest_date}: {count} alert"
               f"{'' if count == 1 else 's'} on {products} product"
               f"{'' if products == 1 else 's'}")
    lines = [f"Alerts for {digest_date}", ""]
    for group in groups:
        lines.append(_product_label(group))
        for item in group["alerts"]:
            lines.append(f"  - [{item['severity']}] {item['message']} ({item['created_at']})")
        lines.append("")
    if count > DIGEST_LISTED:
        summary = digest_summary(alerts)
        lines.append(f"… and {count - DIGEST_LISTED} more alerts on "
                     f"{summary['product_count']} products in all: "
                     + ", ".join(f"{n} {t}" for t, n in summary["by_type"].items()))
    lines += _sandbox_note(_data_source(alerts))
    return _one_line(subject), "\n".join(lines).rstrip("\n") + "\n"


def channel_test_email() -> tuple[str, str]:
    return ("[Amazon Pilot] Test notification",
            "This is a test notification from Amazon Pilot: the channel is set up correctly.\n")


def _one_line(value: str, limit: int = 200) -> str:
    flat = " ".join(value.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


# ------------------------------------------------------------------ channel targets


class InvalidChannelTarget(ValueError):
    """A webhook URL or e-mail address a channel may not use; the message says why."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_NUMERIC_HOST = re.compile(r"^(0x[0-9a-f]+|[0-9]+)(\.(0x[0-9a-f]+|[0-9]+))*\.?$")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost."})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_EMAIL_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")


def _url_error(message: str) -> InvalidChannelTarget:
    return InvalidChannelTarget("url", message)


def _ip_of(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    return ip


def is_loopback_host(host: str) -> bool:
    """localhost, 127.0.0.0/8 or ::1 (also as ::ffff:127.x.y.z)."""
    name = host.lower().strip("[]")
    if name in _LOOPBACK_NAMES:
        return True
    ip = _ip_of(name)
    return ip is not None and ip.is_loopback


def is_public_ip(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A globally routable unicast address. Refused: loopback, private (RFC 1918, IPv6
    ULA fc00::/7), link-local (169.254/16 and the metadata service, fe80::/10), shared
    (100.64/10), multicast, unspecified, reserved and documentation ranges; an
    IPv4-mapped (::ffff:a.b.c.d) or NAT64/6to4-embedded address is judged by the IPv4
    address inside it."""
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            return is_public_ip(ip.sixtofour)
        elif ip in _NAT64:
            return is_public_ip(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return ip.is_global and not ip.is_multicast


def _split(url: str) -> SplitResult:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError on a bad port
    except ValueError as exc:
        raise _url_error(f"the webhook URL cannot be parsed ({exc})") from exc
    return parts


def _check_hostname(host: str) -> None:
    if _NUMERIC_HOST.match(host):
        raise _url_error(
            "the webhook URL's host is a numeric form that is not a dotted IPv4 address"
        )
    if not host.isascii():
        raise _url_error("the webhook URL's host must be ASCII (use its punycode form, xn--…)")
    name = host[:-1] if host.endswith(".") else host
    labels = name.split(".")
    if len(name) > 253 or not all(_HOST_LABEL.match(label) for label in labels):
        raise _url_error(f"the webhook URL's host {host!r} is not a valid host name")
    if labels[-1].isdigit():
        raise _url_error(f"the webhook URL's host {host!r} is not a valid host name")
    if len(labels) < 2:
        raise _url_error(
            f"the webhook URL's host {host!r} must be a fully qualified domain name"
        )


def host_key(host: str, port: int | None) -> tuple[str, str]:
    """How an allow-list entry names a target: ("host", "host:port"), lower-case, an
    IPv6 address in brackets."""
    name = host.lower().strip("[]")
    if ":" in name:
        name = f"[{name}]"
    return name, f"{name}:{port}" if port is not None else name


def is_dev_allowed(host: str, port: int | None, allowed: Iterable[str]) -> bool:
    """True when an operator's development allow-list (WEBHOOK_ALLOW_HOSTS) names this
    host, or this host and port. Empty in every deployed stage."""
    entries = {entry.strip().lower() for entry in allowed if entry.strip()}
    if not entries:
        return False
    bare, with_port = host_key(host, port)
    return bare in entries or with_port in entries


def default_port(scheme: str) -> int:
    return 443 if scheme.lower() == "https" else 80


def validate_webhook_url(raw: str, allowed: Iterable[str] = ()) -> str:
    """The URL, trimmed, when a webhook may use it; InvalidChannelTarget otherwise.

    https to a public host or address. Never loopback, private, link-local, multicast
    or other reserved addresses, plain http, credentials, other schemes, or more than
    2048 chars. The one exception is `allowed`: hosts ("127.0.0.1") or host:port pairs
    ("127.0.0.1:8080") an operator allowed for development, which may use any address
    and plain http. The URL is only parsed here: nothing is fetched.
    """
    url = raw.strip()
    if not url:
        raise _url_error("the webhook URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise _url_error(f"the webhook URL is longer than {MAX_URL_LENGTH} characters")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise _url_error("the webhook URL must not contain spaces or control characters")
    parts = _split(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        shown = f"'{scheme}:'" if scheme else "none"
        raise _url_error(f"the webhook URL must use https (scheme {shown} is not allowed)")
    if not parts.netloc:
        raise _url_error("the webhook URL has no host")
    if "@" in parts.netloc:
        raise _url_error("the webhook URL must not contain credentials (user:password@)")
    host = (parts.hostname or "").lower()
    if not host:
        raise _url_error("the webhook URL has no host")
    if is_dev_allowed(host, parts.port or default_port(scheme), allowed):
        return url
    if scheme == "http":
        raise _url_error("the webhook URL must use https (plain http is not allowed)")
    if is_loopback_host(host):
        raise _url_error(
            "the webhook URL points to a loopback address (this server itself); "
            "use a public host"
        )
    ip = _ip_of(host)
    if ip is not None:
        if not is_public_ip(ip):
            raise _url_error(
                f"the webhook URL points to a private or reserved address ({ip}); "
                "use a public host"
            )
        return url
    if ":" in host:
        raise _url_error(f"the webhook URL's host {host!r} is not a valid address")
    _check_hostname(host)
    if host.endswith((".localhost", ".localhost.")):
        raise _url_error("the webhook URL must not use a *.localhost name; use a public host")
    return url


def validate_email_address(raw: str) -> str:
    """The address with its domain lower-cased; InvalidChannelTarget otherwise."""
    email = raw.strip()
    if not email:
        raise InvalidChannelTarget("email", "the e-mail address is empty")
    if len(email) > MAX_EMAIL_LENGTH:
        raise InvalidChannelTarget(
            "email", f"the e-mail address is longer than {MAX_EMAIL_LENGTH} characters"
        )
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in email):
        raise InvalidChannelTarget(
            "email", "the e-mail address must not contain spaces or control characters"
        )
    local, at, domain = email.rpartition("@")
    if not at or not local or not domain:
        raise InvalidChannelTarget("email", "the e-mail address must look like name@example.com")
    if "@" in local or not _EMAIL_LOCAL.match(local) or local.startswith(".") \
            or local.endswith(".") or ".." in local:
        raise InvalidChannelTarget("email", "the e-mail address's name part is not valid")
    domain = domain.lower()
    labels = domain.split(".")
    if len(labels) < 2 or not all(_HOST_LABEL.match(label) for label in labels) \
            or labels[-1].isdigit():
        raise InvalidChannelTarget("email", "the e-mail address's domain is not valid")
    return f"{local}@{domain}"


# ------------------------------------------------------------------ quiet hours


class InvalidQuietHours(ValueError):
    """Quiet hours that cannot be used; the message says why."""


@dataclass(frozen=True)
class QuietHours:
    """A daily window of local wall-clock time (start inclusive, end exclusive) in an
    IANA time zone. start > end wraps past midnight (22:00 to 07:00)."""

    start: time
    end: time
    tz: str


def parse_clock(value: str) -> time:
    """"HH:MM" (24-hour) as a time; InvalidQuietHours otherwise."""
    match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value.strip())
    if match is None:
        raise InvalidQuietHours(f"{value!r} is not a time of day as HH:MM (00:00 to 23:59)")
    return time(int(match.group(1)), int(match.group(2)))


def validate_timezone(name: str) -> str:
    """An IANA time zone name the system knows ("Europe/Berlin"); InvalidQuietHours
    otherwise."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    cleaned = name.strip()
    if not cleaned or len(cleaned) > 64 or cleaned.startswith("/") or ".." in cleaned:
        raise InvalidQuietHours(f"{name!r} is not an IANA time zone name")
    try:
        ZoneInfo(cleaned)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidQuietHours(
            f"{name!r} is not an IANA time zone name (like Europe/Berlin)") from None
    return cleaned


def quiet_hours(prefs: Mapping[str, Any] | None) -> QuietHours | None:
    """The user's quiet hours (notification_prefs.quiet_hours {"start", "end"} and
    notification_prefs.timezone, default UTC), or None when unset or unusable."""
    raw = (prefs or {}).get("quiet_hours")
    if not isinstance(raw, Mapping) or not raw.get("start") or not raw.get("end") \
            or raw.get("enabled") is False:
        return None
    try:
        start, end = parse_clock(str(raw["start"])), parse_clock(str(raw["end"]))
        tz = validate_timezone(str((prefs or {}).get("timezone") or "UTC"))
    except InvalidQuietHours:
        return None
    if start == end:
        return None
    return QuietHours(start, end, tz)


def local_clock(at: datetime, tz: str) -> time:
    """The wall-clock time in `tz` at the instant `at` (aware)."""
    from zoneinfo import ZoneInfo

    return at.astimezone(ZoneInfo(tz)).time().replace(tzinfo=None)


def in_quiet_hours(hours: QuietHours | None, at: datetime) -> bool:
    """Whether the instant `at` falls in the quiet hours, judged by the local wall clock
    of that instant. Across a DST change the window keeps its wall-clock bounds: on a
    spring-forward night 22:00 to 07:00 is an hour shorter, on a fall-back night an hour
    longer, and a bound inside a skipped hour simply starts or ends at the jump."""
    if hours is None:
        return False
    clock = local_clock(at, hours.tz)
    if hours.start < hours.end:
        return hours.start <= clock < hours.end
    return clock >= hours.start or clock < hours.end


def held_for_quiet_hours(severity: str, hours: QuietHours | None, at: datetime) -> bool:
    """A non-critical alert raised in quiet hours waits for the next digest; critical
    alerts always go at once."""
    return severity != "critical" and in_quiet_hours(hours, at)


# ------------------------------------------------------------------ snoozes

MAX_SNOOZE = timedelta(days=90)


@dataclass(frozen=True)
class Snooze:
    """No notifications for a tracked product (any type), an alert type (any product),
    or both, from `starts_at` until `until`."""

    tracked_product_id: str | None
    alert_type: str | None
    starts_at: datetime
    until: datetime


def snooze_matches(snooze: Snooze, tracked_product_id: str, alert_type: str,
                   at: datetime) -> bool:
    if not snooze.starts_at <= at < snooze.until:
        return False
    if snooze.tracked_product_id is not None and snooze.tracked_product_id != tracked_product_id:
        return False
    return snooze.alert_type is None or snooze.alert_type == alert_type


def snoozed_by(snoozes: Iterable[Snooze], tracked_product_id: str, alert_type: str,
               at: datetime) -> Snooze | None:
    """The snooze (the one lasting longest) that silences this alert raised at `at`."""
    hits = [s for s in snoozes if snooze_matches(s, tracked_product_id, alert_type, at)]
    return max(hits, key=lambda s: s.until) if hits else None


def snooze_until(now: datetime, hours: float | None, until: datetime | None) -> datetime:
    """The end of a snooze asked for as a duration or an end time; ValueError when it is
    not in (now, now + 90 days]."""
    if (hours is None) == (until is None):
        raise ValueError("give either hours or until")
    end = now + timedelta(hours=hours) if hours is not None else until
    assert end is not None
    if end.tzinfo is None:
        raise ValueError("until must carry a time zone offset")
    if end <= now:
        raise ValueError("a snooze must end in the future")
    if end - now > MAX_SNOOZE:
        raise ValueError(f"a snooze lasts at most {MAX_SNOOZE.days} days")
    return end


# ------------------------------------------------------------------ alert storms


def storm_groups(alerts: Iterable[Mapping[str, Any]]) -> list[list[Mapping[str, Any]]]:
    """One user's alerts of one fan-out grouped per (product, type), groups in order of
    first appearance, alerts in the order given: each group becomes one message, so a
    product that changes price 40 times in a batch sends one message, not 40."""
    groups: dict[tuple[Any, Any], list[Mapping[str, Any]]] = {}
    for alert in alerts:
        groups.setdefault((alert.get("product_id"), alert.get("type")), []).append(alert)
    return list(groups.values())


def group_severity(alerts: Iterable[Mapping[str, Any]]) -> str:
    return max((str(a["severity"]) for a in alerts),
               key=lambda s: SEVERITY_RANK.get(s, 0), default="info")


GROUP_LISTED = 20  # alerts listed in a grouped message (the count covers all)


def alert_group_payload(alerts: list[Mapping[str, Any]], delivery_id: str,
                        sent_at: datetime) -> dict[str, Any]:
    """One message for several alerts of one product and type: `alert.grouped` with the
    count, the span, and the latest alerts (at most 20); one alert is `alert.created`."""
    if len(alerts) == 1:
        return alert_payload(alerts[0], delivery_id, sent_at)
    latest = alerts[-1]
    listed = alerts[-GROUP_LISTED:]
    return {
        "event": EVENT_GROUP,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": _data_source(alerts),
        "type": latest["type"],
        "severity": group_severity(alerts),
        "count": len(alerts),
        "first_at": _iso(alerts[0].get("created_at")),
        "last_at": _iso(latest.get("created_at")),
        "product": {"asin": latest.get("asin"), "marketplace": latest.get("marketplace"),
                    "title": latest.get("product_title")},
        "alerts": [alert_fields(a) for a in listed],
    }


def alert_group_email(alerts: list[Mapping[str, Any]]) -> tuple[str, str]:
    if len(alerts) == 1:
        return alert_email(alerts[0])
    latest = alerts[-1]
    label = latest.get("product_title") or latest.get("asin")
    subject = (f"[Amazon Pilot] {group_severity(alerts).upper()}: {len(alerts)} x "
               f"{latest['type']} — {label}")
    product = {"title": latest.get("product_title"), "asin": latest.get("asin"),
               "marketplace": latest.get("marketplace")}
    lines = [f"{len(alerts)} alerts of type {latest['type']} on {_product_label(product)}", ""]
    for alert in alerts[-GROUP_LISTED:]:
        lines.append(f"  - [{alert['severity']}] {alert['message']} "
                     f"({_iso(alert.get('created_at'))})")
    if len(alerts) > GROUP_LISTED:
        lines.append(f"  … and {len(alerts) - GROUP_LISTED} earlier")
    lines += _sandbox_note(_data_source(alerts))
    return _one_line(subject), "\n".join(lines) + "\n"


DIGEST_LISTED = 500  # alerts listed in a digest; counts cover every alert


def digest_summary(alerts: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Counts of a digest's alerts per product and type (a storm day's digest lists
    the first 500 alerts and counts all of them, in one message)."""
    per_type: dict[str, int] = {}
    products: set[tuple[Any, Any]] = set()
    for alert in alerts:
        per_type[str(alert["type"])] = per_type.get(str(alert["type"]), 0) + 1
        products.add((alert.get("asin"), alert.get("marketplace")))
    return {"alert_count": len(alerts), "product_count": len(products),
            "by_type": dict(sorted(per_type.items())),
            "listed": min(len(alerts), DIGEST_LISTED)}


# ------------------------------------------------------------------ Slack

SLACK_HOST = "hooks.slack.com"
SLACK_MAX_BLOCKS = 50  # Block Kit: at most 50 blocks per message
SLACK_MAX_TEXT = 3000  # Block Kit: a section's text is at most 3,000 characters


def validate_slack_url(raw: str, allowed: Iterable[str] = ()) -> str:
    """A Slack incoming-webhook URL: https://hooks.slack.com/services/…; an operator's
    development allow-list (WEBHOOK_ALLOW_HOSTS) also admits its hosts (the stand-in)."""
    url = validate_webhook_url(raw, allowed)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if is_dev_allowed(host, parts.port or default_port(parts.scheme), allowed):
        return url
    if host != SLACK_HOST or parts.port not in (None, 443):
        raise _url_error("a Slack channel takes an incoming-webhook URL of "
                         f"https://{SLACK_HOST}/services/…")
    if not parts.path.startswith("/services/"):
        raise _url_error(f"a Slack incoming-webhook URL looks like https://{SLACK_HOST}"
                         "/services/T…/B…/…")
    return url


def _slack_escape(value: Any) -> str:
    """Text for Slack mrkdwn: &, < and > escaped, as Slack asks."""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(value: str, limit: int = SLACK_MAX_TEXT) -> str:
    return value if len(value) <= limit else value[: limit - 1] + "…"


def _section(markdown: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(markdown)}}


def _context(text_: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text_)}]}


def slack_message(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The Block Kit message for one of our payloads (alert, group, digest, report,
    test): `text` is the notification fallback, `blocks` what the channel shows."""
    event = payload.get("event")
    blocks: list[dict[str, Any]] = []
    if event == EVENT_ALERT:
        alert = payload["alert"]
        product = alert["product"]
        fallback = f"{alert['severity'].upper()}: {alert['message']}"
        blocks.append(_section(f"*{_slack_escape(alert['message'])}*\n"
                               f"{_slack_escape(product.get('title') or product.get('asin'))} "
                               f"({_slack_escape(product.get('asin'))}, amazon."
                               f"{_slack_escape(product.get('marketplace'))})"))
        blocks.append(_context(f"{alert['type']} · {alert['severity']} · "
                               f"{alert.get('created_at')}"))
    elif event == EVENT_GROUP:
        product = payload["product"]
        fallback = f"{payload['count']} x {payload['type']} on {product.get('asin')}"
        lines = "\n".join(f"• {_slack_escape(a['message'])}" for a in payload["alerts"][-10:])
        blocks.append(_section(f"*{payload['count']} alerts ({_slack_escape(payload['type'])})*"
                               f" on {_slack_escape(product.get('title') or product.get('asin'))}"
                               f" ({_slack_escape(product.get('asin'))})\n{lines}"))
        blocks.append(_context(f"{payload['severity']} · {payload['first_at']} → "
                               f"{payload['last_at']}"))
    elif event == EVENT_DIGEST:
        fallback = f"Digest for {payload['date']}: {payload['alert_count']} alerts"
        blocks.append({"type": "header", "text": {"type": "plain_text",
                                                  "text": _cut(fallback, 150)}})
        for group in payload["products"][: SLACK_MAX_BLOCKS - 3]:
            lines = "\n".join(f"• [{a['severity']}] {_slack_escape(a['message'])}"
                              for a in group["alerts"][:10])
            more = len(group["alerts"]) - 10
            blocks.append(_section(
                f"*{_slack_escape(group.get('title') or group.get('asin'))}* "
                f"({_slack_escape(group.get('asin'))})\n{lines}"
                + (f"\n… and {more} more" if more > 0 else "")))
        hidden = len(payload["products"]) - (SLACK_MAX_BLOCKS - 3)
        if hidden > 0:
            blocks.append(_context(f"… and {hidden} more products (see the dashboard)"))
    elif event == EVENT_REPORT:
        fallback = str(payload.get("title") or "Weekly competitor report")
        blocks.append({"type": "header", "text": {"type": "plain_text",
                                                  "text": _cut(fallback, 150)}})
        blocks.append(_section(_slack_escape(payload.get("text") or "")))
    else:
        fallback = str(payload.get("message") or "Amazon Pilot")
        blocks.append(_section(_slack_escape(fallback)))
    if payload.get("data_source") == "sandbox":
        blocks.append(_context("Sandbox (stand-in) data, not from Amazon."))
    return {"text": _cut(fallback, 300), "blocks": blocks[:SLACK_MAX_BLOCKS]}


def slack_failure(status: int, body: str) -> tuple[str, bool]:
    """(error, permanent) of a Slack answer that is not 200 "ok". Slack answers
    incoming webhooks with 400 (invalid_payload, invalid_blocks…), 403
    (action_prohibited), 404 (no_team, channel_not_found, no_service), 410
    (channel_is_archived): retrying cannot help; 429 and 5xx are retried."""
    reason = body.strip()[:100] or "no body"
    permanent = status in (400, 403, 404, 410)
    return f"Slack HTTP {status}: {reason}", permanent


# ------------------------------------------------------------------ e-mail verification

VERIFY_TOKEN_BYTES = 32
VERIFY_LINK_TTL = timedelta(days=3)


def verify_token_hash(token: str) -> str:
    """What is stored of a verification link's token (the token itself only goes out in
    the e-mail)."""
    return hashlib.sha256(token.encode()).hexdigest()


def verification_email(link: str) -> tuple[str, str]:
    return ("[Amazon Pilot] Confirm this address for alerts",
            "Someone (hopefully you) asked Amazon Pilot to send alerts to this address.\n\n"
            f"Confirm it by opening this link (valid for {VERIFY_LINK_TTL.days} days):\n"
            f"{link}\n\nIf it was not you, ignore this message: nothing is sent to an "
            "address that was not confirmed.\n")


def channel_accepts(kind: str, events: Iterable[str], verified: bool, event: str,
                    prefs: Mapping[str, Any] | None) -> bool:
    """Whether a channel takes this event (alert | digest | report): it lists the event,
    an e-mail channel is verified, and e-mail is not turned off."""
    return event in set(events) and (kind != "email" or verified) \
        and channel_enabled(kind, prefs)


# ------------------------------------------------------------------ weekly reports


def report_payload(report: Mapping[str, Any], delivery_id: str,
                   sent_at: datetime) -> dict[str, Any]:
    """A finished weekly competitor report (`report` holds report_id, group_name,
    period, summary, recommendations and data_source)."""
    title = f"Weekly competitor report: {report.get('group_name')} ({report.get('period')})"
    recs = [str(r) for r in report.get("recommendations") or []][:5]
    text_ = str(report.get("summary") or "")
    if recs:
        text_ += "\n\nRecommendations:\n" + "\n".join(f"• {r}" for r in recs)
    return {
        "event": EVENT_REPORT,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": str(report.get("data_source") or "apify"),
        "report_id": str(report.get("report_id")),
        "group": report.get("group_name"),
        "period": report.get("period"),
        "title": title,
        "summary": report.get("summary"),
        "recommendations": recs,
        "text": text_,
    }


def report_email(report: Mapping[str, Any]) -> tuple[str, str]:
    payload = report_payload(report, "", datetime.now().astimezone())
    lines = [payload["title"], "", payload["text"]]
    lines += _sandbox_note(payload["data_source"])
    return _one_line(f"[Amazon Pilot] {payload['title']}"), "\n".join(lines) + "\n"
