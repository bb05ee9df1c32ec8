"""Webhook signing secrets at rest, through the running local stack: sealed in Postgres
with the stack's key ring (.pilot/secrets.key), opened for each delivery; plaintext rows
from before migration 0012 sealed by the data step; a key rotation leaves every old
secret usable."""

from __future__ import annotations

import base64
import os
import uuid
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.adapters import crypto
from amazon_pilot.domain.notifications import verify
from amazon_pilot.notifications.service import fan_out, seal_stored_secrets
from amazon_pilot.platform.db import transaction
from pilot_dev.standins.webhook_receiver import WebhookReceiver
from tests.integration import test_notifications
from tests.integration.test_notifications import (
    IMMEDIATE,
    add_channel,
    new_alert,
    new_product,
    new_user,
)
from tests.integration.test_runtime import wait_for

receiver = test_notifications.receiver  # the webhook sink fixture, allowed by its port


def stored(channel_id: str) -> tuple[str, str | None]:
    with transaction() as conn:
        row = conn.execute(text("SELECT secret, secret_key_id FROM notification_channels"
                                " WHERE id = :c"), {"c": channel_id}).one()
    return str(row.secret), row.secret_key_id


def delivered_with(receiver: WebhookReceiver, path: str, secret: str) -> bool:
    hit = wait_for(lambda: receiver.hits(path), 30, f"a delivery to {path}")[-1]
    headers = hit["headers"]
    return verify(hit["body"], secret, headers["x-pilot-timestamp"],
                  headers["x-pilot-signature"])


def test_a_new_secret_is_stored_sealed_and_signs_deliveries(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/sealed"))
    value, key_id = stored(channel["id"])
    assert value.startswith("enc:v1:file:") and channel["secret"] not in value
    assert key_id == crypto.active_key_id()
    with transaction() as conn:  # nowhere else in the database either
        dump = conn.execute(text("SELECT string_agg(t::text, '') FROM notification_channels t"
                                 " WHERE id = :c"), {"c": channel["id"]}).scalar_one()
    assert channel["secret"] not in dump
    assert fan_out([new_alert(new_product(seller))]) == 1
    assert delivered_with(receiver, "/sealed", channel["secret"])


def test_plaintext_rows_are_sealed_and_a_rotation_keeps_old_secrets_working(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/legacy"))
    legacy = "whsec_written_before_0012"
    with transaction() as conn:  # a row as it stood before migration 0012
        conn.execute(text("UPDATE notification_channels SET secret = :s, secret_key_id = NULL"
                          " WHERE id = :c"), {"s": legacy, "c": channel["id"]})
    counts = seal_stored_secrets()
    print("data step:", counts)
    assert counts["plaintext_sealed"] >= 1
    value, key_id = stored(channel["id"])
    assert value.startswith("enc:v1:") and legacy not in value and key_id is not None
    assert seal_stored_secrets()["plaintext_sealed"] == 0  # idempotent

    # rotation, as docs/security.md says: a new key first in the ring, the current one
    # kept below it for reading (the session's own ring, see conftest)
    ring = Path(os.environ["SECRETS_KEY_FILE"])
    new_id = f"rotated{uuid.uuid4().hex[:6]}"
    ring.write_text(crypto.new_key_line(new_id) + "\n" + ring.read_text())
    assert fan_out([new_alert(new_product(seller))]) == 1  # still under the old key
    assert delivered_with(receiver, "/legacy", legacy)
    resealed = seal_stored_secrets()
    print("rotation:", resealed)
    assert resealed["resealed"] >= 1
    assert stored(channel["id"])[1] == f"file:{new_id}"
    before = len(receiver.hits("/legacy"))
    assert fan_out([new_alert(new_product(seller))]) == 1
    wait_for(lambda: len(receiver.hits("/legacy")) > before, 30, "a delivery after rotation")
    assert delivered_with(receiver, "/legacy", legacy)


def test_a_secret_sealed_under_an_unknown_key_fails_the_delivery_not_the_worker(
    api: httpx.Client, receiver: WebhookReceiver
) -> None:
    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/lost-key"))
    foreign = "enc:v1:file:gone:" + base64.urlsafe_b64encode(os.urandom(40)).decode()
    with transaction() as conn:
        conn.execute(text("UPDATE notification_channels SET secret = :s,"
                          " secret_key_id = 'file:gone' WHERE id = :c"),
                     {"s": foreign, "c": channel["id"]})
    assert fan_out([new_alert(new_product(seller))]) == 1

    def failed() -> list[dict[str, object]]:
        response = api.get(f"/v1/notification-channels/{channel['id']}/deliveries",
                           headers=seller["headers"])
        return [d for d in response.json()["items"] if d["status"] == "failed"]

    log = wait_for(failed, 60, "the delivery to fail")[0]
    assert "signing secret cannot be opened" in str(log["last_error"])
    # the data step counts it, leaves it as it is, and seals the rest
    assert seal_stored_secrets()["unreadable"] >= 1
    assert stored(channel["id"])[0] == foreign


def test_pilot_secrets_reencrypt(api: httpx.Client, receiver: WebhookReceiver, database_url: str,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    from pilot_dev import cli

    seller = new_user(api, IMMEDIATE)
    channel = add_channel(api, seller, kind="webhook", url=receiver.url("/cli"))
    with transaction() as conn:
        conn.execute(text("UPDATE notification_channels SET secret = 'whsec_plain',"
                          " secret_key_id = NULL WHERE id = :c"), {"c": channel["id"]})
    assert cli.main(["secrets", "reencrypt", "--database-url", database_url]) == 0
    out = capsys.readouterr().out
    assert "plaintext secret(s) sealed" in out and not out.startswith("active key None")
    assert stored(channel["id"])[0].startswith("enc:v1:")
    assert receiver.hits("/lost-key") == []  # nothing unsigned or wrongly signed went out
