"""Alert control and more channels through the running local stack (issue 17 "Alert
control and channels", issue 18 "Alert storms"): storms grouped per product and type,
snoozes and quiet hours set through the API, Slack channels against the Slack stand-in,
e-mail channels confirmed by the link SES carried, channel edits, and the weekly
competitor report delivered to the seller's channels."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.notifications.service import fan_out
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.settings import reset_settings
from pilot_dev.standins.slack_server import SlackStandIn
from pilot_dev.standins.webhook_receiver import WebhookReceiver
from tests.integration.test_notifications import (
    IMMEDIATE,
    add_channel,
    confirm_email_channel,
    deliveries,
    new_product,
    new_user,
    notified_at,
)
from tests.integration.test_runtime import wait_for


@pytest.fixture(scope="module")
def sinks() -> Iterator[tuple[WebhookReceiver, SlackStandIn]]:
    """A webhook receiver and the Slack stand-in, both allowed by the operator's
    development allow-list (exactly their ports)."""
    receiver, slack = WebhookReceiver(), SlackStandIn(rate_per_s=50).start()
    saved = os.environ.get("WEBHOOK_ALLOW_HOSTS")
    os.environ["WEBHOOK_ALLOW_HOSTS"] = (f"{receiver.host},"
                                         f"127.0.0.1:{slack.port}")
    reset_settings()
    yield receiver, slack
    if saved is None:
        os.environ.pop("WEBHOOK_ALLOW_HOSTS", None)
    else:
        os.environ["WEBHOOK_ALLOW_HOSTS"] = saved
    reset_settings()
    receiver.close()
    slack.stop()


def insert_alert(product: dict[str, Any], kind: str, severity: str = "warning") -> str:
    with transaction() as conn:
        return str(conn.execute(text(
            "INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity,"
            " message, snapshot_captured_at) VALUES (:u, :t, :p, :k, :s, :m, now())"
            " RETURNING id"),
            {"u": product["user_id"], "t": product["tracked_id"], "p": product["id"],
             "k": kind, "s": severity, "m": f"{kind} {uuid.uuid4().hex[:6]}"}).scalar_one())


def held_at(alert_id: str) -> Any:
    with transaction() as conn:
        return conn.execute(text("SELECT held_at FROM alerts WHERE id = :a"),
                            {"a": alert_id}).scalar()


def test_a_storm_is_one_message_per_product_and_type_within_the_cap(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn]
) -> None:
    receiver, _ = sinks
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/storm"))
    bottle, mug = new_product(seller), new_product(seller, "Ceramic mug")
    storm = [insert_alert(p, kind) for _ in range(150) for p in (bottle, mug)
             for kind in ("price_change", "bsr_change")]
    assert fan_out(storm) == 4  # 600 alerts: 2 products x 2 types
    hits = wait_for(lambda: len(receiver.hits("/storm")) == 4 or None, 30, "4 messages")
    assert hits
    payloads = [json.loads(h["body"]) for h in receiver.hits("/storm")]
    assert {p["event"] for p in payloads} == {"alert.grouped"}
    assert sorted(p["count"] for p in payloads) == [150] * 4
    assert all(len(p["alerts"]) == 20 for p in payloads)
    assert all(notified_at(a) is not None for a in storm)
    # four more bursts of the bottle's prices
    for _ in range(4):
        fan_out([insert_alert(bottle, "price_change") for _ in range(10)])
    # the bottle had 2 messages (price, BSR): 3 more fit under the cap of 5, then none
    log = deliveries(api, seller, channel["id"])
    suppressed = [d for d in log if d["status"] == "suppressed"]
    assert len(suppressed) == 1 and len(suppressed[0]["alert_ids"]) == 10
    assert "cap of 5" in suppressed[0]["last_error"]
    assert len(log) == 4 + 4  # four storm messages, three more sent, one suppressed


def test_snoozes_through_the_api(api: httpx.Client,
                                 sinks: tuple[WebhookReceiver, SlackStandIn]) -> None:
    receiver, _ = sinks
    seller, other = new_user(api, IMMEDIATE), new_user(api, IMMEDIATE)
    add_channel(api, seller, kind="webhook", url=receiver.url("/snoozed"))
    bottle, mug = new_product(seller), new_product(seller, "Mug")
    made = api.post("/v1/alert-snoozes", headers=seller["headers"],
                    json={"tracked_product_id": bottle["tracked_id"], "hours": 2})
    assert made.status_code == 201, made.text
    snooze = made.json()
    kind = api.post("/v1/alert-snoozes", headers=seller["headers"],
                    json={"alert_type": "rating_change", "hours": 1})
    assert kind.status_code == 201, kind.text
    listed = api.get("/v1/alert-snoozes", headers=seller["headers"]).json()["items"]
    assert {s["id"] for s in listed} == {snooze["id"], kind.json()["id"]}
    # another seller's product is 404; an empty or endless snooze is 422
    assert api.post("/v1/alert-snoozes", headers=other["headers"],
                    json={"tracked_product_id": bottle["tracked_id"], "hours": 1}
                    ).status_code == 404
    assert api.post("/v1/alert-snoozes", headers=seller["headers"],
                    json={"hours": 1}).status_code == 422
    assert api.post("/v1/alert-snoozes", headers=seller["headers"],
                    json={"alert_type": "price_change", "hours": 24 * 91}).status_code == 422
    assert api.delete(f"/v1/alert-snoozes/{snooze['id']}",
                      headers=other["headers"]).status_code == 404

    silenced = [insert_alert(bottle, "price_change"), insert_alert(mug, "rating_change")]
    assert fan_out(silenced) == 0
    assert all(notified_at(a) is not None for a in silenced)  # handled, nothing sent
    assert fan_out([insert_alert(mug, "price_change")]) == 1
    ended = api.delete(f"/v1/alert-snoozes/{snooze['id']}", headers=seller["headers"])
    assert ended.status_code == 204
    assert fan_out([insert_alert(bottle, "price_change")]) == 1
    wait_for(lambda: len(receiver.hits("/snoozed")) == 2 or None, 30, "two messages")


def _quiet_now(tz: str) -> dict[str, str]:
    """Quiet hours around the current local time in `tz`."""
    local = datetime.now(UTC).astimezone(ZoneInfo(tz))
    start, end = local - timedelta(hours=1), local + timedelta(hours=1)
    return {"start": f"{start:%H}:00", "end": f"{end:%H}:59"}


def test_quiet_hours_hold_non_critical_alerts_for_the_next_digest(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn], operator: httpx.Client
) -> None:
    receiver, _ = sinks
    seller = new_user(api, IMMEDIATE)
    refused = api.patch("/v1/auth/me", headers=seller["headers"], json={
        "notification_prefs": {"timezone": "Mars/Olympus"}})
    assert refused.status_code == 422
    saved = api.patch("/v1/auth/me", headers=seller["headers"], json={"notification_prefs": {
        "timezone": "Asia/Tokyo", "quiet_hours": _quiet_now("Asia/Tokyo")}})
    assert saved.status_code == 200, saved.text
    assert saved.json()["notification_prefs"]["timezone"] == "Asia/Tokyo"
    add_channel(api, seller, kind="webhook", url=receiver.url("/quiet"))
    product = new_product(seller)
    warning, critical = insert_alert(product, "price_change"), \
        insert_alert(product, "out_of_stock", "critical")
    assert fan_out([warning, critical]) == 1  # the critical one goes at once
    assert held_at(warning) is not None and notified_at(warning) is None
    first = wait_for(lambda: receiver.hits("/quiet"), 30, "the critical alert")[0]
    assert json.loads(first["body"])["alert"]["id"] == critical
    # the sweep leaves a held alert alone; the next digest carries it
    fired = operator.post("/_pilot/schedules/DailyDigest/fire")
    assert fired.status_code == 200, fired.text
    digest = wait_for(lambda: [h for h in receiver.hits("/quiet")
                               if json.loads(h["body"])["event"] == "alert.digest"],
                      30, "the digest")[0]
    payload = json.loads(digest["body"])
    assert [a["id"] for p in payload["products"] for a in p["alerts"]] == [warning]
    wait_for(lambda: notified_at(warning) is not None, 10, "the held alert notified")


def test_slack_channels_get_block_kit_and_their_failures_are_logged(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn]
) -> None:
    _, slack = sinks
    seller = new_user(api, IMMEDIATE)
    bad = api.post("/v1/notification-channels", headers=seller["headers"],
                   json={"kind": "slack", "url": "https://example.com/services/T/B/X"})
    assert bad.status_code == 422 and "hooks.slack.com" in bad.text
    hook = slack.webhook_url("T0001", f"B{uuid.uuid4().hex[:6].upper()}")
    channel = add_channel(api, seller, kind="slack", url=hook, name="#pricing")
    assert channel["secret"] is None and channel["name"] == "#pricing"
    assert channel["status"] == "active"
    assert api.post(f"/v1/notification-channels/{channel['id']}/test",
                    headers=seller["headers"]).status_code == 202
    product = new_product(seller)
    assert fan_out([insert_alert(product, "price_change")]) == 1
    messages = wait_for(lambda: len(slack.hook_messages(hook)) == 2 and
                        slack.hook_messages(hook), 30, "two Slack messages")
    alert = messages[-1] if "price_change" in json.dumps(messages[-1]) else messages[0]
    assert alert["blocks"][0]["type"] == "section" and alert["text"].startswith("WARNING")
    # an archived channel: 410 channel_is_archived fails the delivery at once
    archived = add_channel(api, seller, kind="slack",
                           url=slack.webhook_url("T0001", "BARCHIVED"))
    assert fan_out([insert_alert(product, "bsr_change")]) == 2

    def failed() -> Any:
        log = deliveries(api, seller, archived["id"])
        return log if log and log[0]["status"] == "failed" else None

    log = wait_for(failed, 30, "the archived channel's failure")
    assert log[0]["attempts"] == 1 and log[0]["response_code"] == 410
    assert "channel_is_archived" in log[0]["last_error"]
    # rate limited (429 with Retry-After): retried, then delivered
    slack.inject(429, 1)
    assert api.post(f"/v1/notification-channels/{channel['id']}/test",
                    headers=seller["headers"]).status_code == 202

    def retried() -> Any:
        tests = [d for d in deliveries(api, seller, channel["id"]) if d["kind"] == "test"]
        return tests if tests and tests[0]["status"] == "delivered" else None

    latest = wait_for(retried, 60, "the rate-limited test delivered on a retry")[0]
    assert latest["attempts"] == 2


def test_email_channels_are_confirmed_by_link_and_channels_can_be_edited(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn]
) -> None:
    receiver, _ = sinks
    seller, other = new_user(api, IMMEDIATE), new_user(api, IMMEDIATE)
    address = f"ops-{uuid.uuid4().hex[:6]}@example.com"
    email = add_channel(api, seller, kind="email", email=address)
    assert email["status"] == "unverified" and email["verified"] is False
    product = new_product(seller)
    assert fan_out([insert_alert(product, "price_change")]) == 0  # skipped: unconfirmed
    refused = api.post(f"/v1/notification-channels/{email['id']}/test",
                       headers=seller["headers"])
    assert refused.status_code == 409
    assert api.get("/v1/notification-channels/verify",
                   params={"token": "x" * 40}).status_code == 404
    link = confirm_email_channel(api, address)
    listed = api.get("/v1/notification-channels", headers=seller["headers"]).json()["items"]
    assert [c["status"] for c in listed if c["id"] == email["id"]] == ["active"]
    # a used link does not work twice
    assert api.get("/" + link.split("://", 1)[1].split("/", 1)[1]).status_code == 404
    assert fan_out([insert_alert(product, "bsr_change")]) == 1

    # edits: a new address needs a new confirmation; name and events change in place
    moved = f"moved-{uuid.uuid4().hex[:6]}@example.com"
    patched = api.patch(f"/v1/notification-channels/{email['id']}", headers=seller["headers"],
                        json={"email": moved, "name": "Ops inbox"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["status"] == "unverified" and patched.json()["name"] == "Ops inbox"
    confirm_email_channel(api, moved)
    webhook = add_channel(api, seller, kind="webhook", url=receiver.url("/edited"))
    only_digests = api.patch(f"/v1/notification-channels/{webhook['id']}",
                             headers=seller["headers"], json={"events": ["digest"]})
    assert only_digests.json()["events"] == ["digest"]
    paused = api.patch(f"/v1/notification-channels/{email['id']}", headers=seller["headers"],
                       json={"is_active": False})
    assert paused.json()["status"] == "paused"
    assert fan_out([insert_alert(product, "rating_change")]) == 0
    moved_url = api.patch(f"/v1/notification-channels/{webhook['id']}",
                          headers=seller["headers"], json={"url": receiver.url("/edited-2")})
    assert moved_url.json()["url"].endswith("/edited-2")
    assert api.patch(f"/v1/notification-channels/{webhook['id']}", headers=other["headers"],
                     json={"name": "mine"}).status_code == 404
    assert api.patch(f"/v1/notification-channels/{webhook['id']}", headers=seller["headers"],
                     json={"email": "a@example.com"}).status_code == 422
    assert api.patch(f"/v1/notification-channels/{webhook['id']}", headers=seller["headers"],
                     json={"url": "http://10.0.0.1/x"}).status_code == 422


def test_weekly_competitor_reports_reach_the_sellers_channels(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn]
) -> None:
    from amazon_pilot.competitors import store as cdb
    from amazon_pilot.competitors.service import run_report

    receiver, _ = sinks
    seller = new_user(api, IMMEDIATE)
    add_channel(api, seller, kind="webhook", url=receiver.url("/reports"))
    alerts_only = add_channel(api, seller, kind="webhook", url=receiver.url("/no-reports"))
    api.patch(f"/v1/notification-channels/{alerts_only['id']}", headers=seller["headers"],
              json={"events": ["alert"]})
    products = [new_product(seller, f"Earbuds {n}") for n in range(3)]
    with transaction() as conn:
        group = cdb.insert_group(conn, uuid.UUID(seller["id"]), "Earbuds",
                                 products[0]["id"], [p["id"] for p in products[1:]])
        report = cdb.insert_report(conn, group, uuid.UUID(seller["id"]), 30, trigger="weekly")
        conn.execute(text("UPDATE competitor_reports SET period = :p WHERE id = :r"),
                     {"p": f"test-{uuid.uuid4().hex[:6]}", "r": report})
    run_report(report, None)  # rules only (no model)
    hit = wait_for(lambda: receiver.hits("/reports"), 30, "the weekly report")[0]
    payload = json.loads(hit["body"])
    assert payload["event"] == "report.weekly" and payload["group"] == "Earbuds"
    assert payload["report_id"] == str(report) and payload["summary"]
    assert receiver.hits("/no-reports") == []


def test_alerts_of_an_imported_export_are_delivered_at_once(
    api: httpx.Client, sinks: tuple[WebhookReceiver, SlackStandIn]
) -> None:
    """`pilot import-apify` stores through tracking.service.store_import, which fans the
    alerts out like a refresh (they used to wait for the sweep)."""
    from amazon_pilot.domain.snapshot import Snapshot
    from amazon_pilot.tracking.service import store_import

    receiver, _ = sinks
    seller = new_user(api, IMMEDIATE)
    add_channel(api, seller, kind="webhook", url=receiver.url("/imported"))
    product = new_product(seller, "Kettle")
    ref = (product["asin"], "com")
    earlier = datetime.now(UTC) - timedelta(hours=2)
    store_import(earlier, [ref], [Snapshot(asin=ref[0], title="Kettle", price=40.0)], [])
    result = store_import(earlier + timedelta(hours=1), [ref],
                          [Snapshot(asin=ref[0], title="Kettle", price=20.0)], [])
    assert result.alert_ids
    assert all(notified_at(a) is not None for a in result.alert_ids)  # not left to the sweep
    hit = wait_for(lambda: receiver.hits("/imported"), 30, "the imported alert")[0]
    assert json.loads(hit["body"])["alert"]["id"] in result.alert_ids
