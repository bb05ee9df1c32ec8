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
from datetime import datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
SEVERITY_RANK: dict[str, int] = {name: rank for rank, name in enumerate(SEVERITIES)}
CHANNEL_KINDS: tuple[str, ...] = ("webhook", "email")

SIGNATURE_HEADER = "X-Pilot-Signature"
TIMESTAMP_HEADER = "X-Pilot-Timestamp"
DELIVERY_HEADER = "X-Pilot-Delivery"
EVENT_HEADER = "X-Pilot-Event"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE_S = 300

EVENT_ALERT = "alert.created"
EVENT_DIGEST = "alert.digest"
EVENT_TEST = "notification.test"
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


def wants_daily_digest(prefs: Mapping[str, Any] | None) -> bool:
    return str((prefs or {}).get("digest") or "").lower() == "daily"


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
    return {
        "event": EVENT_DIGEST,
        "version": PAYLOAD_VERSION,
        "delivery_id": delivery_id,
        "sent_at": sent_at.isoformat(),
        "data_source": _data_source(alerts),
        "date": digest_date,
        "alert_count": len(alerts),
        "products": group_by_product(alerts),
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
    groups = group_by_product(alerts)
    count = len(alerts)
    subject = (f"[Amazon Pilot] Daily digest for {digest_date}: {count} alert"
               f"{'' if count == 1 else 's'} on {len(groups)} product"
               f"{'' if len(groups) == 1 else 's'}")
    lines = [f"Alerts for {digest_date}", ""]
    for group in groups:
        lines.append(_product_label(group))
        for item in group["alerts"]:
            lines.append(f"  - [{item['severity']}] {item['message']} ({item['created_at']})")
        lines.append("")
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
