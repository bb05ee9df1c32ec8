"""Notification channels and alert delivery through the running local stack: the real
products function, real Postgres, real SQS pollers, SES on the AWS endpoint, and a
webhook receiver on a loopback port."""

from __future__ import annotations

import itertools
import json
import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.domain.notifications import verify
from amazon_pilot.notifications.service import fan_out
from amazon_pilot.platform.db import transaction
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.webhook_receiver import WebhookReceiver
from tests.integration.test_runtime import wait_for

PASSWORD = "Notify-pass-2026!"
_moments = itertools.count(1)


# ------------------------------------------------------------------ a webhook receiver


@pytest.fixture(scope="module")
def receiver() -> Iterator[WebhookReceiver]:
    """The sink, allowed by the operator setting for exactly its own port (loopback
    webhooks are refused otherwise, the API's port included)."""
    import os

    from amazon_pilot.platform.settings import reset_settings

    running = WebhookReceiver()
    saved = os.environ.get("WEBHOOK_ALLOW_HOSTS")
    os.environ["WEBHOOK_ALLOW_HOSTS"] = running.host
    reset_settings()
    yield running
    if saved is None:
        os.environ.pop("WEBHOOK_ALLOW_HOSTS", None)
    else:
        os.environ["WEBHOOK_ALLOW_HOSTS"] = saved
    reset_settings()
    running.close()


# ------------------------------------------------------------------ helpers


def new_user(api: httpx.Client, prefs: dict[str, Any] | None = None) -> dict[str, Any]:
    """An account made with create_user, signed in through POST /v1/auth/login."""
    from amazon_pilot.accounts.service import create_user

    email = f"notify-{uuid.uuid4().hex[:10]}@example.com"
    user = create_user(email, PASSWORD, plan="pro")
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    if prefs is not None:
        with transaction() as conn:
            conn.execute(text("UPDATE users SET notification_prefs = CAST(:p AS jsonb)"
                              " WHERE id = :u"), {"p": json.dumps(prefs), "u": user.id})
    return {"id": str(user.id), "email": email,
            "headers": {"Authorization": f"Bearer {response.json()['access_token']}"}}


IMMEDIATE = {"digest": "off"}


def new_product(user: dict[str, Any], title: str = "Steel water bottle") -> dict[str, Any]:
    asin = "B" + uuid.uuid4().hex[:9].upper()
    with transaction() as conn:
        product_id = conn.execute(text(
            "INSERT INTO products (asin, marketplace, title, data_source)"
            " VALUES (:a, 'com', :t, 'sandbox') RETURNING id"), {"a": asin, "t": title}
        ).scalar_one()
        tracked_id = conn.execute(text(
            "INSERT INTO tracked_products (user_id, product_id) VALUES (:u, :p) RETURNING id"),
            {"u": user["id"], "p": product_id}).scalar_one()
    return {"id": product_id, "tracked_id": str(tracked_id), "asin": asin, "title": title,
            "user_id": user["id"]}


def new_alert(product: dict[str, Any], severity: str = "warning",
              message: str = "Price dropped 20.0% (19.99 → 15.99)") -> str:
    captured = datetime.now(UTC) - timedelta(seconds=next(_moments))
    with transaction() as conn:
        return str(conn.execute(text(
            "INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity, metric,"
            " old_value, new_value, change_pct, threshold, message, snapshot_captured_at)"
            " VALUES (:u, :t, :p, 'price_change', :s, 'price', '19.99', '15.99', -20.01, 10,"
            " :m, :at) RETURNING id"),
            {"u": product["user_id"], "t": product["tracked_id"], "p": product["id"],
             "s": severity, "m": message, "at": captured}).scalar_one())


def add_channel(api: httpx.Client, user: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = api.post("/v1/notification-channels", json=body, headers=user["headers"])
    assert response.status_code == 201, response.text
    return dict(response.json())


def deliveries(api: httpx.Client, user: dict[str, Any], channel_id: str) -> list[dict[str, Any]]:
    response = api.get(f"/v1/notification-channels/{channel_id}/deliveries",
                       headers=user["headers"])
    assert response.status_code == 200, response.text
    return list(response.json()["items"])


def notified_at(alert_id: str) -> Any:
    with transaction() as conn:
        return conn.execute(text("SELECT notified_at FROM alerts WHERE id = :a"),
                            {"a": alert_id}).scalar()


_sellers: dict[str, dict[str, Any]] = {}


def _shared_seller(api: httpx.Client) -> dict[str, Any]:
    if "one" not in _sellers:
        _sellers["one"] = new_user(api, IMMEDIATE)
    return _sellers["one"]


def confirm_email_link(address: str, timeout: float = 30) -> str:
    """The confirmation link e-mailed (through the stack's SES, moto in process) to
    `address`."""
    import re

    from moto.ses.models import ses_backends

    pattern = re.compile(r"https?://[^\s\"\\]+/v1/notification-channels/verify\?token=[^\s\"\\]+")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")

    def localstack_link() -> str | None:
        """LocalStack keeps what its SES sent behind the /_aws/ses developer endpoint
        (moto's server answers there with a 500: then there is nothing to read)."""
        answer = httpx.get(f"{endpoint}/_aws/ses", timeout=10)
        if answer.status_code != 200:
            return None
        for message in reversed(answer.json().get("messages", [])):
            text = json.dumps(message)
            if address in text and "Confirm" in text:
                found = pattern.search(text)
                if found:
                    return found.group(0)
        return None

    def link() -> str | None:
        for account in ses_backends.values():
            for backend in account.values():
                for message in reversed(backend.sent_messages):
                    to = [a for v in message.destinations.values() for a in v]
                    if address in to and "Confirm" in message.subject:
                        found = pattern.search(message.body)
                        if found:
                            return found.group(0)
        return localstack_link() if endpoint else None

    return str(wait_for(link, timeout, f"the confirmation e-mail to {address}"))


def confirm_email_channel(api: httpx.Client, address: str, timeout: float = 30) -> str:
    """Open the confirmation link e-mailed to `address`; returns the link."""
    url = confirm_email_link(address, timeout)
    path = url.split("://", 1)[1].split("/", 1)[1]
    opened = api.get("/" + path)
    assert opened.status_code == 200, opened.text
    assert opened.json()["verified"] is True
    return url


# ------------------------------------------------------------------ tests


def test_webhook_gets_a_signed_payload_when_an_alert_is_fanned_out(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/signed"))
    assert channel["kind"] == "webhook" and channel["min_severity"] == "info"
    assert channel["secret"].startswith("whsec_") and len(channel["secret"]) > 30
    listed = api.get("/v1/notification-channels", headers=seller["headers"]).json()["items"]
    assert [c["id"] for c in listed] == [channel["id"]]
    assert "secret" not in listed[0] and channel["secret"] not in json.dumps(listed)

    product = new_product(seller)
    alert_id = new_alert(product)
    assert fan_out([alert_id]) == 1
    assert fan_out([alert_id]) == 0  # already notified: nothing twice

    hit = wait_for(lambda: receiver.hits("/signed"), 30, "the webhook delivery")[0]
    headers, body = hit["headers"], hit["body"]
    assert verify(body, channel["secret"], headers["x-pilot-timestamp"],
                  headers["x-pilot-signature"], now=datetime.now(UTC).timestamp())
    assert not verify(body + b"x", channel["secret"], headers["x-pilot-timestamp"],
                      headers["x-pilot-signature"])
    assert headers["x-pilot-signature"].startswith("sha256=")
    assert headers["content-type"] == "application/json"
    payload = json.loads(body)
    assert payload["event"] == "alert.created" == headers["x-pilot-event"]
    assert payload["delivery_id"] == headers["x-pilot-delivery"]
    assert payload["data_source"] == "sandbox"
    alert = payload["alert"]
    assert alert["id"] == alert_id and alert["type"] == "price_change"
    assert alert["severity"] == "warning" and alert["change_pct"] == -20.01
    assert alert["old_value"] == "19.99" and alert["new_value"] == "15.99"
    assert alert["threshold"] == 10 and alert["message"].startswith("Price dropped")
    assert alert["product"] == {"asin": product["asin"], "marketplace": "com",
                                "title": product["title"]}
    assert alert["created_at"]

    def delivered() -> list[dict[str, Any]]:
        return [d for d in deliveries(api, seller, channel["id"]) if d["status"] == "delivered"]

    log = wait_for(delivered, 10, "the delivery to be recorded")[0]
    assert log["id"] == payload["delivery_id"] and log["kind"] == "alert"
    assert log["attempts"] == 1 and log["response_code"] == 200 and log["last_error"] is None
    assert log["alert_ids"] == [alert_id] and log["delivered_at"] and log["last_attempt_at"]
    assert notified_at(alert_id) is not None


def test_failing_receiver_is_retried_with_back_off_until_delivered(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    receiver.plan("/flaky", [500, 500, 200])
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/flaky"))
    alert_id = new_alert(new_product(seller), severity="critical")
    assert fan_out([alert_id]) == 1

    def delivered() -> list[dict[str, Any]]:
        return [d for d in deliveries(api, seller, channel["id"]) if d["status"] == "delivered"]

    log = wait_for(delivered, 60, "the delivery after two failures")[0]
    assert log["attempts"] == 3 and log["response_code"] == 200
    hits = receiver.hits("/flaky")
    assert len(hits) == 3
    # every retry is the same delivery, signed afresh
    assert {h["headers"]["x-pilot-delivery"] for h in hits} == {log["id"]}
    for hit in hits:
        assert verify(hit["body"], channel["secret"], hit["headers"]["x-pilot-timestamp"],
                      hit["headers"]["x-pilot-signature"])


def test_a_receiver_that_keeps_failing_ends_failed_with_its_errors(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    receiver.plan("/down", [503])
    receiver.plan("/moved", [302])
    seller = new_user(api, IMMEDIATE)
    down = add_channel(api, seller, kind="webhook", url=receiver.url("/down"))
    moved = add_channel(api, seller, kind="webhook", url=receiver.url("/moved"))
    assert fan_out([new_alert(new_product(seller))]) == 2

    def failed(channel_id: str) -> Any:
        return [d for d in deliveries(api, seller, channel_id) if d["status"] == "failed"]

    down_log = wait_for(lambda: failed(down["id"]), 60, "the delivery to fail for good")[0]
    assert down_log["attempts"] == 3 and down_log["response_code"] == 503
    assert down_log["last_error"] == "HTTP 503" and down_log["delivered_at"] is None
    moved_log = wait_for(lambda: failed(moved["id"]), 60, "the redirected delivery")[0]
    assert moved_log["response_code"] == 302 and "redirect" in moved_log["last_error"]
    assert receiver.hits("/redirected-here") == []  # redirects are never followed


def test_another_users_channel_is_404(api: httpx.Client, receiver: WebhookReceiver) -> None:
    owner = new_user(api, IMMEDIATE)
    other = new_user(api, IMMEDIATE)
    channel = add_channel(api, owner, kind="webhook", url=receiver.url("/owner"))
    base = f"/v1/notification-channels/{channel['id']}"
    for method, path in (("GET", f"{base}/deliveries"), ("POST", f"{base}/test"),
                         ("DELETE", base)):
        response = api.request(method, path, headers=other["headers"])
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["error"]["message"] == "notification channel not found"
    assert api.get("/v1/notification-channels", headers=other["headers"]).json()["items"] == []
    missing = api.delete(f"/v1/notification-channels/{uuid.uuid4()}", headers=owner["headers"])
    assert missing.status_code == 404
    # still there for its owner; without a token, nothing at all
    assert len(deliveries(api, owner, channel["id"])) == 0
    assert api.get("/v1/notification-channels").status_code == 401


@pytest.mark.parametrize(("body", "field", "message"), [
    ({"kind": "webhook", "url": "http://example.com/hook"}, "url",
     "plain http is not allowed"),
    ({"kind": "webhook", "url": "https://127.0.0.1/_pilot/status"}, "url", "loopback"),
    ({"kind": "webhook", "url": "https://[::1]:3000/hook"}, "url", "loopback"),
    ({"kind": "webhook", "url": "https://192.168.0.10/hook"}, "url",
     "private or reserved address"),
    ({"kind": "webhook", "url": "https://169.254.169.254/latest"}, "url",
     "private or reserved address"),
    ({"kind": "webhook", "url": "https://admin:pw@example.com/hook"}, "url",
     "must not contain credentials"),
    ({"kind": "webhook", "url": "javascript:alert(1)"}, "url", "'javascript:' is not allowed"),
    ({"kind": "webhook", "url": "https://example.com/" + "x" * 2100}, "url",
     "longer than 2048 characters"),
    ({"kind": "webhook"}, "url", "a webhook channel needs 'url'"),
    ({"kind": "webhook", "url": "https://example.com/h", "email": "a@example.com"}, "email",
     "takes 'url', not 'email'"),
    ({"kind": "email", "email": "not-an-address"}, "email", "name@example.com"),
])
def test_invalid_channels_are_422_with_a_specific_message(
    api: httpx.Client, body: dict[str, Any], field: str, message: str
) -> None:
    seller = _shared_seller(api)
    response = api.post("/v1/notification-channels", json=body, headers=seller["headers"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    assert message in error["message"]
    assert error["details"][0]["field"] == field


def test_channel_lifecycle_duplicates_and_min_severity(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/critical-only"),
                          min_severity="critical")
    again = api.post("/v1/notification-channels", headers=seller["headers"],
                     json={"kind": "webhook", "url": receiver.url("/critical-only")})
    assert again.status_code == 409 and "already have" in again.json()["error"]["message"]

    product = new_product(seller)
    quiet = new_alert(product, severity="warning")
    assert fan_out([quiet]) == 0  # below the channel's min_severity
    assert notified_at(quiet) is not None
    loud = new_alert(product, severity="critical")
    assert fan_out([loud]) == 1
    hit = wait_for(lambda: receiver.hits("/critical-only"), 30, "the critical alert")
    assert json.loads(hit[0]["body"])["alert"]["id"] == loud

    deleted = api.delete(f"/v1/notification-channels/{channel['id']}", headers=seller["headers"])
    assert deleted.status_code == 204
    assert api.get("/v1/notification-channels", headers=seller["headers"]).json()["items"] == []
    gone = api.get(f"/v1/notification-channels/{channel['id']}/deliveries",
                   headers=seller["headers"])
    assert gone.status_code == 404


def test_test_notification_and_email_through_ses(
    api: httpx.Client, receiver: WebhookReceiver, stack: Stack
) -> None:
    seller = new_user(api, IMMEDIATE)
    webhook = add_channel(api, seller, kind="webhook", url=receiver.url("/test-ping"))
    queued = api.post(f"/v1/notification-channels/{webhook['id']}/test",
                      headers=seller["headers"])
    assert queued.status_code == 202, queued.text
    hit = wait_for(lambda: receiver.hits("/test-ping"), 30, "the test notification")[0]
    payload = json.loads(hit["body"])
    assert payload["event"] == "notification.test"
    assert payload["delivery_id"] == queued.json()["delivery_id"]
    assert verify(hit["body"], webhook["secret"], hit["headers"]["x-pilot-timestamp"],
                  hit["headers"]["x-pilot-signature"])

    ses = stack.client("ses")
    sent_before = ses.get_send_quota()["SentLast24Hours"]
    email = add_channel(api, seller, kind="email", email="Ops@Example.com",
                        min_severity="warning")
    assert email["email"] == "Ops@example.com" and email["secret"] is None
    assert email["status"] == "unverified"
    confirm_email_channel(api, "Ops@example.com")
    assert fan_out([new_alert(new_product(seller), severity="critical")]) == 2

    def email_delivered() -> list[dict[str, Any]]:
        return [d for d in deliveries(api, seller, email["id"]) if d["status"] == "delivered"]

    log = wait_for(email_delivered, 30, "the e-mail through SES")[0]
    assert log["attempts"] == 1 and log["response_code"] is None
    assert ses.get_send_quota()["SentLast24Hours"] >= sent_before + 1
    assert "alerts@amazon-pilot.local" in ses.list_identities()["Identities"]


def test_digest_users_get_one_message_for_several_alerts(
    api: httpx.Client, receiver: WebhookReceiver, operator: httpx.Client
) -> None:
    seller = new_user(api, {"digest": "daily"})
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/digest"))
    bottle, mug = new_product(seller), new_product(seller, "Ceramic mug")
    alerts = [new_alert(bottle), new_alert(mug, severity="critical", message="Out of stock"),
              new_alert(bottle, severity="info", message="Rating rose 4.2 → 4.4")]
    assert fan_out(alerts) == 0  # left for the digest
    assert all(notified_at(a) is None for a in alerts)

    fired = operator.post("/_pilot/schedules/DailyDigest/fire")
    assert fired.status_code == 200, fired.text
    assert fired.json()["result"]["digests"] >= 1
    hit = wait_for(lambda: receiver.hits("/digest"), 30, "the digest")[0]
    payload = json.loads(hit["body"])
    assert payload["event"] == "alert.digest" and payload["alert_count"] == 3
    assert [p["asin"] for p in payload["products"]] == [bottle["asin"], mug["asin"]]
    assert sorted(a["id"] for p in payload["products"] for a in p["alerts"]) == sorted(alerts)
    assert verify(hit["body"], channel["secret"], hit["headers"]["x-pilot-timestamp"],
                  hit["headers"]["x-pilot-signature"])
    wait_for(lambda: all(notified_at(a) is not None for a in alerts), 10, "alerts marked")
    log = deliveries(api, seller, channel["id"])
    assert [d["kind"] for d in log] == ["digest"] and sorted(log[0]["alert_ids"]) == sorted(alerts)
    # firing again the same day sends nothing more
    operator.post("/_pilot/schedules/DailyDigest/fire")
    time.sleep(3)
    assert len(receiver.hits("/digest")) == 1


def test_the_cap_suppresses_the_sixth_alert_of_a_product_in_a_day(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)  # default cap: 5 per product per day
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/capped"))
    product, other = new_product(seller), new_product(seller, "Other product")
    # one fan-out per alert (one per ingest batch): a message each, until the cap
    assert [fan_out([new_alert(product)]) for _ in range(4)] == [1, 1, 1, 1]
    fifth, sixth = new_alert(product), new_alert(product)
    assert fan_out([fifth]) == 1
    assert fan_out([sixth]) == 0
    assert fan_out([new_alert(other)]) == 1  # the cap is per product

    def settled() -> list[dict[str, Any]] | None:
        log = deliveries(api, seller, channel["id"])
        return log if sum(d["status"] == "delivered" for d in log) == 6 else None

    log = wait_for(settled, 30, "six deliveries")
    suppressed = [d for d in log if d["status"] == "suppressed"]
    assert len(suppressed) == 1 and suppressed[0]["attempts"] == 0
    assert suppressed[0]["alert_ids"] == [sixth]  # the oldest five went out
    assert "cap of 5 notifications per product per day" in suppressed[0]["last_error"]
    assert len(receiver.hits("/capped")) == 6
    assert notified_at(sixth) is not None and notified_at(fifth) is not None


def test_channel_limit_test_allowance_and_audit(api: httpx.Client,
                                                receiver: WebhookReceiver) -> None:
    seller = new_user(api, IMMEDIATE)
    emails = [add_channel(api, seller, kind="email", email=f"ops{i}@example.com")
              for i in range(10)]
    over = api.post("/v1/notification-channels", headers=seller["headers"],
                    json={"kind": "email", "email": "ops10@example.com"})
    assert over.status_code == 409
    assert "already have 10 notification channels" in over.json()["error"]["message"]
    gone = api.delete(f"/v1/notification-channels/{emails[0]['id']}", headers=seller["headers"])
    assert gone.status_code == 204
    with transaction() as conn:
        audit = conn.execute(text(
            "SELECT action, actor_id, target, details FROM audit_log WHERE user_id = :u"
            " AND action LIKE 'notification_channel.%' ORDER BY id"), {"u": seller["id"]}).all()
    assert [a.action for a in audit] == ["notification_channel.create"] * 10 + [
        "notification_channel.delete"]
    assert audit[-1].target == emails[0]["id"] and audit[-1].details == {"kind": "email"}
    assert str(audit[-1].actor_id) == seller["id"]

    webhook = add_channel(api, seller, kind="webhook", url=receiver.url("/allowance"))
    test_url = f"/v1/notification-channels/{webhook['id']}/test"
    for _ in range(5):
        assert api.post(test_url, headers=seller["headers"]).status_code == 202
    refused = api.post(test_url, headers=seller["headers"])
    assert refused.status_code == 429 and refused.headers["retry-after"] == "600"
    assert "at most 5 test notifications" in refused.json()["error"]["message"]
    assert len(wait_for(lambda: receiver.hits("/allowance") if len(
        receiver.hits("/allowance")) == 5 else None, 30, "five test notifications")) == 5


def test_the_queues_max_receives_decides_when_a_delivery_fails(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    from amazon_pilot.notifications.jobs import deliver_notification
    from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
    from amazon_pilot.platform.jobs import Delivery

    receiver.plan("/two-receives", [500])
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/two-receives"))
    alert_id = new_alert(new_product(seller))
    payload = {"delivery_id": str(uuid.uuid4()), "channel_id": channel["id"],
               "alert_id": alert_id}  # run by hand here, never queued
    for receive in (1, 2):
        with pytest.raises(RetryableJobError):
            deliver_notification(payload, Delivery("by-hand", receive, max_receives=2))
        (log,) = deliveries(api, seller, channel["id"])
        assert log["attempts"] == receive and log["response_code"] == 500
        assert log["status"] == ("pending" if receive == 1 else "failed")

    with pytest.raises(PermanentJobError, match="bad payload: delivery_id"):
        deliver_notification({"channel_id": channel["id"]}, Delivery("bad", 1, 3))
    with pytest.raises(PermanentJobError, match="bad payload: extra"):
        deliver_notification({**payload, "extra": 1}, Delivery("bad", 1, 3))


def test_the_sweep_fans_out_alerts_a_failed_fan_out_left_pending(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    from amazon_pilot.notifications.jobs import sweep_notifications
    from amazon_pilot.notifications.schemas import SweepPayload
    from amazon_pilot.platform.jobs import Delivery

    seller = new_user(api, IMMEDIATE)
    add_channel(api, seller, kind="webhook", url=receiver.url("/swept"))
    alert_id = new_alert(new_product(seller))
    with transaction() as conn:
        conn.execute(text("UPDATE alerts SET created_at = now() - interval '20 minutes'"
                          " WHERE id = :a"), {"a": alert_id})
    # the payload exactly as the digest planner writes it
    payload = SweepPayload(before=datetime.now(UTC) - timedelta(minutes=15)).model_dump(
        mode="json")
    result = sweep_notifications(payload, Delivery("sweep-by-hand", 1, 3))
    assert result["alerts"] >= 1 and result["jobs_queued"] >= 1
    assert notified_at(alert_id) is not None
    hit = wait_for(lambda: receiver.hits("/swept"), 30, "the swept alert")[0]
    assert json.loads(hit["body"])["alert"]["id"] == alert_id
