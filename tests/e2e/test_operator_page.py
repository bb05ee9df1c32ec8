"""The dashboard's operations page (/admin/operations), in headless Chromium against the
session's stack: a dead letter fires the DLQ alarm, which the page shows firing first;
the admin redrives the letter from the page and the job runs. A seller gets the API's 403."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack
from tests.e2e.conftest import new_admin_with_mfa, sign_in

PASSWORD = "Admin-pass-2026"


def _ran(key: str) -> bool:
    with get_engine().connect() as conn:
        return bool(conn.execute(text(
            "SELECT count(*) FROM processed_messages WHERE idempotency_key = :k"
            " AND status = 'done'"), {"k": key}).scalar_one())


def test_an_admin_sees_the_dlq_alarm_and_redrives_the_letter(page: Any, stack: Stack) -> None:
    key = f"page-{uuid.uuid4().hex}"
    product_id = str(uuid.uuid4())
    stack.client("sqs").send_message(
        QueueUrl=stack.queue_urls["CriticalDLQ"],
        MessageBody=json.dumps({"type": "record", "key": key,
                                "payload": {"product_id": product_id}}),
        MessageAttributes={"failure_reason": {"DataType": "String",
                                              "StringValue": "ConnectError: webhook down"}})
    assert stack.alarms is not None
    stack.alarms.evaluate_now()  # the evaluator's next round, without waiting for it

    email, secret = new_admin_with_mfa(PASSWORD)
    sign_in(page, email, PASSWORD, totp_secret=secret)
    page.click("nav >> text=Operations")
    page.wait_for_url("**/admin/operations")
    page.wait_for_selector("#ops-alarms tbody tr")
    # firing first: the critical DLQ's alarm is among the first rows, in ALARM
    firing = page.locator("#ops-alarms tbody tr.is-firing", has_text="CriticalDLQAlarm")
    firing.wait_for()
    assert "ALARM" in firing.inner_text() and "Threshold Crossed" in firing.inner_text()
    first = page.inner_text("#ops-alarms tbody tr:first-child")
    assert "ALARM" in first

    page.wait_for_selector("#ops-queues tbody tr[data-queue=critical]")
    page.click("#ops-queues button[data-queue=critical]")
    row = page.locator(f"#ops-dlq-table tbody tr[data-key='{key}']")
    row.wait_for()
    assert "ConnectError: webhook down" in row.inner_text()
    assert product_id in row.inner_text() and "record" in row.inner_text()
    row.locator("button", has_text="Redrive").click()
    page.wait_for_selector(f"#ops-dlq-table tbody tr[data-key='{key}']", state="detached")
    deadline = time.monotonic() + 30
    while not _ran(key):
        assert time.monotonic() < deadline, "the redriven job did not run"
        time.sleep(0.5)
    page.click("#ops-refresh")
    page.wait_for_function(
        "key => document.querySelector('#ops-jobs') &&"
        " document.querySelector('#ops-jobs').textContent.includes(key)", arg=key)
    assert page.watch.errors == []


def test_a_seller_is_refused_by_the_api(page: Any) -> None:
    sign_in(page)  # the demo seller
    page.goto("/admin/operations")
    page.wait_for_selector(".state-error")
    assert "FORBIDDEN" in page.inner_text(".state-error")
    assert "Operations" not in page.inner_text("nav")
