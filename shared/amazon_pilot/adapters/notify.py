"""Sending notifications: webhooks over HTTP (httpx) and e-mail through SES (boto3).

Webhooks (SSRF-safe, see docs/security.md):
- the URL is validated again before every send (domain.notifications);
- the host is resolved ONCE; every address it resolves to must be public (not
  loopback, private, link-local, shared, multicast, reserved, IPv6 ULA, or an
  IPv4-mapped form of those) unless the operator's development allow-list
  (WEBHOOK_ALLOW_HOSTS) names it;
- the connection goes to that same checked address (the URL's host is replaced by the
  IP; the original name travels in the Host header and as the TLS SNI / certificate
  name), so DNS cannot answer "public" for the check and "private" for the connect;
- one POST, 10 s timeout, redirects never followed, proxies from the environment
  ignored;
- the delivery log gets only "target refused" (not a public address) or "target
  unreachable" (anything that went wrong before an HTTP answer): it never tells a
  closed port from an open one, nor a timeout from a reset.

E-mail: SES `send_email` on the configured AWS endpoint. The sender
(NOTIFY_FROM_EMAIL, default alerts@amazon-pilot.local) is checked once per cold start
and submitted for verification if SES does not know it yet.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from amazon_pilot.adapters.aws import client
from amazon_pilot.domain.notifications import (
    InvalidChannelTarget,
    default_port,
    is_dev_allowed,
    is_public_ip,
    slack_failure,
    validate_webhook_url,
)
from amazon_pilot.platform.settings import settings

WEBHOOK_TIMEOUT_S = 10.0
USER_AGENT = "AmazonPilot-Webhooks/1"
DEFAULT_SENDER = "alerts@amazon-pilot.local"
# What the delivery log says; deliberately the same whatever the network did.
TARGET_REFUSED = "target refused: the webhook host is not a public address"
TARGET_UNREACHABLE = "target unreachable"
# SES errors that another attempt cannot fix
PERMANENT_SES_ERRORS = frozenset({"MessageRejected", "InvalidParameterValue",
                                  "MailFromDomainNotVerifiedException"})


class UndeliverableTarget(Exception):
    """The channel's target may not be sent to at all; retrying cannot help."""


class UnresolvableTarget(Exception):
    """The host name did not resolve (may be temporary)."""


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    provider_id: str | None = None  # SES message id
    permanent: bool = False  # True when retrying cannot help


@dataclass(frozen=True)
class ResolvedTarget:
    """A webhook URL and the one address it will be sent to."""

    url: str
    scheme: str
    host: str  # as written in the URL (lower-case, no brackets)
    port: int
    address: str  # the checked IP the connection goes to


# ------------------------------------------------------------------ webhooks


def allowed_hosts() -> tuple[str, ...]:
    return settings().webhook_allow_hosts


def _addresses(host: str, port: int) -> list[str]:
    """The host's addresses: a literal as is, a name from one DNS lookup."""
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise UnresolvableTarget(host) from exc
    found: list[str] = []
    for info in infos:
        address = str(info[4][0]).split("%")[0]
        if address not in found:
            found.append(address)
    if not found:
        raise UnresolvableTarget(host)
    return found


def resolve_webhook(url: str, allowed: Iterable[str] | None = None) -> ResolvedTarget:
    """Validate `url`, resolve its host once and pick the address to connect to.

    InvalidChannelTarget: the URL itself is not allowed. UndeliverableTarget: the host
    resolves to any non-public address (one bad answer is enough: a resolver that mixes
    public and private answers is refused). UnresolvableTarget: DNS gave nothing."""
    allow = tuple(allowed_hosts() if allowed is None else allowed)
    url = validate_webhook_url(url, allow)
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port or default_port(parts.scheme)
    addresses = _addresses(host, port)
    if not is_dev_allowed(host, port, allow):
        for address in addresses:
            if not is_public_ip(ipaddress.ip_address(address)):
                raise UndeliverableTarget(f"{host} resolves to a non-public address")
    return ResolvedTarget(url, parts.scheme.lower(), host, port, addresses[0])


def check_webhook_target(url: str) -> str:
    """For channel creation: the validated URL, or InvalidChannelTarget saying why.
    A name that does not resolve yet is accepted (every delivery checks again)."""
    try:
        return resolve_webhook(url).url
    except UndeliverableTarget:
        raise InvalidChannelTarget(
            "url", "the webhook URL's host resolves to a private or reserved address; "
                   "use a public host") from None
    except UnresolvableTarget:
        return validate_webhook_url(url, allowed_hosts())


def _pinned_request_url(target: ResolvedTarget) -> str:
    """The URL with its host replaced by the checked address."""
    import httpx

    return str(httpx.URL(target.url).copy_with(host=target.address))


def _post_pinned(url: str, body: bytes, headers: dict[str, str], timeout_s: float,
                 read_limit: int = 0) -> SendResult | tuple[int, str]:
    """POST `body` once to the checked address of `url`: (status, first `read_limit`
    bytes of the answer), or the SendResult of a refusal or network failure."""
    try:
        target = resolve_webhook(url)
    except InvalidChannelTarget as exc:
        return SendResult(False, error=f"{TARGET_REFUSED} ({exc.message})", permanent=True)
    except UndeliverableTarget:
        return SendResult(False, error=TARGET_REFUSED, permanent=True)
    except UnresolvableTarget:  # DNS failure: may be temporary
        return SendResult(False, error=TARGET_UNREACHABLE)
    import httpx  # at the first delivery, not in every cold start of the API

    default = default_port(target.scheme)
    shown_host = f"[{target.host}]" if ":" in target.host else target.host
    host_header = shown_host if target.port == default else f"{shown_host}:{target.port}"
    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                       **headers, "Host": host_header}
    extensions = {"sni_hostname": target.host} if target.scheme == "https" else {}
    answer = b""
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as http:
            request = http.build_request("POST", _pinned_request_url(target), content=body,
                                         headers=request_headers, extensions=extensions)
            response = http.send(request, stream=True)
            try:
                status = response.status_code
                if read_limit:
                    for chunk in response.iter_bytes():
                        answer += chunk
                        if len(answer) >= read_limit:
                            break
            finally:
                response.close()
    except httpx.HTTPError:
        # refused, reset, timed out, TLS failed: one answer, so the log maps no ports
        return SendResult(False, error=TARGET_UNREACHABLE)
    return status, answer[:read_limit].decode("utf-8", "replace")


def post_webhook(url: str, body: bytes, headers: dict[str, str],
                 timeout_s: float = WEBHOOK_TIMEOUT_S) -> SendResult:
    """POST `body` once. 2xx = delivered; anything else is a failure with its reason."""
    outcome = _post_pinned(url, body, headers, timeout_s)
    if isinstance(outcome, SendResult):
        return outcome
    status, _ = outcome
    if 200 <= status < 300:
        return SendResult(True, status_code=status)
    if 300 <= status < 400:
        return SendResult(False, status_code=status,
                          error=f"HTTP {status}: redirect not followed")
    return SendResult(False, status_code=status, error=f"HTTP {status}")


def post_slack(url: str, body: bytes, timeout_s: float = WEBHOOK_TIMEOUT_S) -> SendResult:
    """POST a Block Kit message to a Slack incoming webhook. Slack answers 200 "ok";
    400/403/404/410 name a problem another attempt cannot fix (invalid_blocks, no_team,
    channel_is_archived…: the delivery fails at once); 429 (rate limited, with
    Retry-After) and 5xx are retried like a webhook's failures. Slack does not check
    signatures, so nothing is signed."""
    outcome = _post_pinned(url, body, {}, timeout_s, read_limit=200)
    if isinstance(outcome, SendResult):
        return outcome
    status, answer = outcome
    if status == 200:
        return SendResult(True, status_code=status)
    error, permanent = slack_failure(status, answer)
    return SendResult(False, status_code=status, error=error, permanent=permanent)


# ------------------------------------------------------------------ e-mail

_verified_senders: set[str] = set()
_sender_lock = threading.Lock()


def sender_address() -> str:
    return settings().notify_from_email or DEFAULT_SENDER


def ensure_sender_verified(sender: str) -> None:
    """Once per cold start: make sure SES knows the sender identity. Only an identity
    SES has never seen is submitted (a pending one is not re-submitted, which on AWS
    would send the verification e-mail again)."""
    if sender in _verified_senders:
        return
    with _sender_lock:
        if sender in _verified_senders:
            return
        ses = client("ses")
        # ListIdentities names every identity submitted, pending ones included; some
        # endpoints answer "Success" to GetIdentityVerificationAttributes for anything.
        known: set[str] = set()
        for page in ses.get_paginator("list_identities").paginate(IdentityType="EmailAddress"):
            known.update(page.get("Identities", []))
        if sender not in known:
            ses.verify_email_identity(EmailAddress=sender)
        _verified_senders.add(sender)


def send_email(to: str, subject: str, text: str) -> SendResult:
    from botocore.exceptions import BotoCoreError, ClientError

    sender = sender_address()
    try:
        ensure_sender_verified(sender)
        response = client("ses").send_email(
            Source=sender,
            Destination={"ToAddresses": [to]},
            Message={
                "Subject": {"Data": subject, "Charset": "UTF-8"},
                "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
            },
        )
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code = str(error.get("Code", "ClientError"))
        message = f"SES {code}: {error.get('Message', '')}"[:500]
        return SendResult(False, error=message, permanent=code in PERMANENT_SES_ERRORS)
    except BotoCoreError as exc:
        return SendResult(False, error=f"SES unreachable: {exc}"[:500])
    return SendResult(True, provider_id=str(response.get("MessageId", "")))
