"""Sending notifications: webhooks over HTTP (httpx) and e-mail through SES (boto3).

Webhooks: one POST, 10 s timeout, redirects never followed, proxies from the
environment ignored. The URL is validated again before every send, and a host name
is resolved first: a name that points at a private or reserved address is refused
(so a public name cannot be re-pointed at the internal network after creation).

E-mail: SES `send_email` on the configured AWS endpoint. The sender
(NOTIFY_FROM_EMAIL, default alerts@amazon-pilot.local) is checked once per cold start
and submitted for verification if SES does not know it yet.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from dataclasses import dataclass
from urllib.parse import urlsplit

from amazon_pilot.adapters.aws import client
from amazon_pilot.domain.notifications import (
    InvalidChannelTarget,
    is_loopback_host,
    is_public_ip,
    validate_webhook_url,
)
from amazon_pilot.platform.settings import settings

WEBHOOK_TIMEOUT_S = 10.0
USER_AGENT = "AmazonPilot-Webhooks/1"
DEFAULT_SENDER = "alerts@amazon-pilot.local"
# SES errors that another attempt cannot fix
PERMANENT_SES_ERRORS = frozenset({"MessageRejected", "InvalidParameterValue",
                                  "MailFromDomainNotVerifiedException"})


class UndeliverableTarget(Exception):
    """The channel's target may not be sent to at all; retrying cannot help."""


@dataclass(frozen=True)
class SendResult:
    delivered: bool
    status_code: int | None = None
    error: str | None = None
    provider_id: str | None = None  # SES message id
    permanent: bool = False  # True when retrying cannot help


# ------------------------------------------------------------------ webhooks


def _check_resolved_addresses(url: str) -> None:
    """Refuse a host name that resolves to a non-public address."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if is_loopback_host(host):
        return
    try:
        ipaddress.ip_address(host)
        return  # a literal address was already judged by validate_webhook_url
    except ValueError:
        pass
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if not is_public_ip(address):
            raise UndeliverableTarget(
                f"{host} resolves to {address}, a private or reserved address"
            )


def post_webhook(url: str, body: bytes, headers: dict[str, str],
                 timeout_s: float = WEBHOOK_TIMEOUT_S) -> SendResult:
    """POST `body` once. 2xx = delivered; anything else is a failure with its reason."""
    try:
        validate_webhook_url(url)
        _check_resolved_addresses(url)
    except InvalidChannelTarget as exc:
        return SendResult(False, error=exc.message, permanent=True)
    except UndeliverableTarget as exc:
        return SendResult(False, error=str(exc), permanent=True)
    except OSError as exc:  # DNS failure: may be temporary
        return SendResult(False, error=f"could not resolve the host: {exc}")
    import httpx  # at the first delivery, not in every cold start of the API

    request_headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT, **headers}
    try:
        with httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as http, \
                http.stream("POST", url, content=body, headers=request_headers) as response:
            status = response.status_code
            location = response.headers.get("location")
    except httpx.TimeoutException:
        return SendResult(False, error=f"timed out after {timeout_s:g} s")
    except httpx.HTTPError as exc:
        return SendResult(False, error=f"{type(exc).__name__}: {exc}"[:500])
    if 200 <= status < 300:
        return SendResult(True, status_code=status)
    if 300 <= status < 400:
        shown = f" to {location[:200]}" if location else ""
        return SendResult(False, status_code=status,
                          error=f"HTTP {status}: redirect{shown} not followed")
    return SendResult(False, status_code=status, error=f"HTTP {status}")


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
