"""Duplicate in-flight delivery (issue 14, item 3): two copies of one message delivered
while the first is still running give one side effect. Counted by things we did not write
for this: the POSTs a local webhook sink received, and the actor runs the Apify stand-in
was asked to start (it is an HTTP server that apify-client talks to; every run is
recorded). The second copy is sent only once the first is observably mid-side-effect."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from pilot_dev.standins.apify_catalog import demo_asins
from pilot_dev.standins.apify_server import ApifyStandIn
from pilot_dev.standins.webhook_receiver import WebhookReceiver
from tests.chaos.delivery_harness import (
    PilotRun,
    aws_endpoint,  # noqa: F401  (fixture)
    dlq_bodies,
    own_database,  # noqa: F401  (fixture)
    queue_url,
    sqs_client,
)
from tests.chaos.helpers import wait_for

pytestmark = pytest.mark.chaos
SINK_DELAY_S = 3.0  # the receiver takes its time: the first copy is mid-delivery
# A copy finding its job running comes back after the back-off (RETRY_BASE_SECONDS): here
# longer than the first copy's side effect takes, as in AWS (30 s), so its next receive
# finds the job done; a copy finding it running again would wait out the whole lease.
RETRY_BASE_S = "5"


@pytest.fixture()
def world(own_database: str, aws_endpoint: str,  # noqa: F811
          tmp_path: Path) -> Iterator[dict[str, Any]]:
    standin = ApifyStandIn(port=0).start()
    sink = WebhookReceiver(delay_s=SINK_DELAY_S)
    stack = PilotRun(tmp_path, {"DATABASE_URL": own_database, "AWS_ENDPOINT_URL": aws_endpoint,
                                # not the stack's own stand-in: this one, so runs can be counted
                                "APIFY_TOKEN": "sandbox-chaos", "APIFY_API_URL": standin.url,
                                "RETRY_BASE_SECONDS": RETRY_BASE_S,
                                # webhooks reach no loopback address unless an operator
                                # names it (development only): this sink, and only it
                                "WEBHOOK_ALLOW_HOSTS": sink.host})
    try:
        stack.start()
        yield {"stack": stack, "standin": standin, "sink": sink, "db": own_database,
               "sqs": sqs_client(aws_endpoint)}
    finally:
        stack.close()
        sink.close()
        standin.stop()


def _settled(sqs: Any, name: str) -> bool:
    attrs = sqs.get_queue_attributes(
        QueueUrl=queue_url(sqs, name), AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
            "ApproximateNumberOfMessagesDelayed"])["Attributes"]
    return not any(int(v) for v in attrs.values())


def test_a_webhook_is_sent_once_when_a_copy_arrives_during_the_first_send(
        world: dict[str, Any]) -> None:
    stack, sink, sqs = world["stack"], world["sink"], world["sqs"]
    headers = stack.sign_in()
    headers.pop("email")
    channel = stack.client.post("/v1/notification-channels", headers=headers,
                                json={"kind": "webhook", "url": sink.url("/hook")})
    assert channel.status_code == 201, channel.text
    channel_id = channel.json()["id"]
    queued = stack.client.post(f"/v1/notification-channels/{channel_id}/test", headers=headers)
    assert queued.status_code == 202, queued.text
    delivery_id = queued.json()["delivery_id"]
    wait_for(lambda: sink.hits(), 120, "the first copy's POST")  # now mid-send
    copy = {"type": "deliver_notification", "key": f"notify-test:{delivery_id}",
            "payload": {"delivery_id": delivery_id, "channel_id": channel_id}}
    sqs.send_message(QueueUrl=queue_url(sqs, "critical"), MessageBody=json.dumps(copy))
    wait_for(lambda: stack.log_lines("in progress elsewhere", delivery_id)
             or len(sink.hits()) > 1, 60, "the second copy to arrive")
    wait_for(lambda: _settled(sqs, "critical"), 120, "both copies to be settled")
    time.sleep(1.0)
    deferred = len(stack.log_lines("in progress elsewhere", delivery_id))
    dead = [b for b in dlq_bodies(sqs, queue_url(sqs, "critical-dlq")) if delivery_id in b]
    print(f"duplicate webhook: copies delivered = 2, webhook POSTs received = "
          f"{len(sink.hits())}, second copy deferred {deferred} time(s), in the DLQ: "
          f"{len(dead)}")
    assert len(sink.hits()) == 1 and not dead
    deliveries = stack.client.get(f"/v1/notification-channels/{channel_id}/deliveries",
                                  headers=headers).json()["items"]
    assert [(d["status"], d["attempts"]) for d in deliveries] == [("delivered", 1)]


def test_a_fetch_starts_one_actor_run_when_a_copy_arrives_during_the_run(
        world: dict[str, Any]) -> None:
    standin, sqs = world["standin"], world["sqs"]
    asin = demo_asins("headphones", 5)[2]
    with psycopg.connect(world["db"], autocommit=True) as conn:
        row = conn.execute("INSERT INTO products (asin, marketplace) VALUES (%s, 'com')"
                           " RETURNING id", (asin,)).fetchone()
    assert row is not None
    product_id = int(row[0])
    at = datetime.now(UTC).replace(microsecond=0)
    message = json.dumps({
        "type": "fetch_products", "key": f"fetch:refresh:{at.isoformat()}:{uuid.uuid4().hex}",
        "payload": {"product_ids": [product_id], "trigger": "refresh",
                    "captured_at": at.isoformat()}})
    standin.inject("slow", count=1, delay_s=3.0)  # the first copy's run takes a while
    sqs.send_message(QueueUrl=queue_url(sqs, "critical"), MessageBody=message)
    page = f"https://www.amazon.com/dp/{asin}"

    def runs() -> list[dict[str, Any]]:
        return [r for r in standin.runs() if page in r["urls"]]

    wait_for(runs, 120, "the first copy's actor run")  # now mid-run (a cold worker is slow)
    sqs.send_message(QueueUrl=queue_url(sqs, "critical"), MessageBody=message)
    wait_for(lambda: _settled(sqs, "critical"), 120, "both copies to be settled")
    time.sleep(1.0)
    with psycopg.connect(world["db"], autocommit=True) as conn:
        snapshots = conn.execute("SELECT count(*) FROM snapshots WHERE product_id = %s",
                                 (product_id,)).fetchone()
    stored = int(snapshots[0]) if snapshots else 0
    print(f"duplicate fetch: copies delivered = 2, actor runs started = {len(runs())}, "
          f"snapshots stored = {stored}")
    assert len(runs()) == 1 and stored == 1
