"""Delivery guarantees of the queue consumer (docs/slos.md, "Duplicates and retries"):
a job's key is claimed before its side effect, so two copies of one message delivered at
the same time run it once; the last failure's reason travels to the DLQ with the message.

The consumer is the worker function as the runtime loads it, fed real SQS events made
from messages received from a queue of this test's own on the stack's AWS endpoint; the
side effect counted is an actor run started at the Apify stand-in (which we did not
write for this: it records every run it is asked for)."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import text

from amazon_pilot.domain.product_ref import product_url
from amazon_pilot.platform.consumer import claim, mark_done, release, release_orphaned_claims
from amazon_pilot.platform.db import get_engine, transaction
from amazon_pilot.tracking.service import fetch_job
from amazon_pilot.tracking.store import upsert_product
from pilot_dev.runtime.events import sqs_event
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.test_runtime import _dlq_messages, wait_for
from tests.integration.test_tracking import wait_queues_idle


def _record(key: str) -> dict[str, Any]:
    with get_engine().connect() as conn:
        row = conn.execute(text(
            "SELECT status, attempts, last_error, lease_until FROM processed_messages"
            " WHERE idempotency_key = :k"), {"k": key}).one()
    return dict(row._mapping)


@pytest.fixture()
def own_queue(stack: Stack, open_aws: None) -> tuple[str, str]:
    """A queue with a redrive policy like the template's (maxReceiveCount 3). It is not a
    worker's own queue, so its role may not change its messages' visibility: IAM stays
    open while a test uses it (test_iam.py covers the roles)."""
    sqs = stack.client("sqs")
    stamp = time.time_ns()
    dlq = sqs.create_queue(QueueName=f"delivery-test-{stamp}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    url = sqs.create_queue(QueueName=f"delivery-test-{stamp}", Attributes={
        "VisibilityTimeout": "60",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "3"}),
    })["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    return url, arn


def _receive(stack: Stack, url: str, count: int) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + 20
    while len(got) < count and time.monotonic() < deadline:
        got += sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                   AttributeNames=["All"]).get("Messages", [])
    assert len(got) == count, got
    return got


def _invoke(stack: Stack, message: dict[str, Any], arn: str) -> dict[str, Any]:
    event = sqs_event([message], arn, stack.config.region)
    return dict(stack.host.invoke("CriticalWorkerFunction", event) or {})


def test_a_claim_is_held_released_and_taken_over_when_its_lease_runs_out(
        stack: Stack) -> None:
    key = f"claim-{time.time_ns()}"
    assert claim(key, "noop", "a", 30).state == "claimed"
    busy = claim(key, "noop", "b", 30)
    assert busy.state == "busy" and 25 < busy.lease_left_s <= 30
    release(key, "b", "retry", "not the holder")  # only the holder's own claim is touched
    assert claim(key, "noop", "c", 30).state == "busy"
    release(key, "a", "retry", "upstream down")
    assert _record(key)["last_error"] == "upstream down"
    assert claim(key, "noop", "c", 0.3).state == "claimed"  # a retry claims at once
    time.sleep(0.5)  # the holder "crashed": its lease runs out
    assert claim(key, "noop", "d", 30).state == "claimed"
    # a runtime starting after a crash frees what its dead process held
    assert release_orphaned_claims([key]) == 1
    assert claim(key, "noop", "d2", 30).state == "claimed"
    mark_done(key, "noop", {"ok": True})
    assert claim(key, "noop", "e", 30).state == "done"
    record = _record(key)
    assert (record["status"], record["attempts"], record["last_error"]) == ("done", 4, None)


def test_two_copies_delivered_at_once_start_one_actor_run(
        stack: Stack, own_queue: tuple[str, str]) -> None:
    url, arn = own_queue
    asin = demo_asins("headphones", 40)[-1]
    with transaction() as conn:
        product_id, _ = upsert_product(conn, asin, "com")
    job_type, payload, key = fetch_job([product_id], "refresh",
                                       datetime.now(UTC).replace(microsecond=0))
    body = json.dumps({"type": job_type, "key": key, "payload": payload})
    sqs = stack.client("sqs")
    for _ in range(2):  # an at-least-once duplicate: the same job, two messages
        sqs.send_message(QueueUrl=url, MessageBody=body)
    first, second = _receive(stack, url, 2)

    standin = stack.standins["apify"]
    wait_queues_idle(stack)
    standin.inject("slow", count=1, delay_s=2.5)  # the first copy's run takes a while
    answers: dict[str, dict[str, Any]] = {}
    thread = threading.Thread(target=lambda: answers.update(first=_invoke(stack, first, arn)))
    thread.start()
    wait_for(lambda: _record_or_none(key), 10, "the first copy's claim")
    answers["second"] = _invoke(stack, second, arn)  # arrives while the first runs
    thread.join(30)

    page = product_url(asin, "com")
    runs = [r for r in standin.runs() if page in r["urls"]]
    print(f"duplicate in flight: actor runs started = {len(runs)}")
    assert len(runs) == 1
    assert answers["first"] == {"batchItemFailures": []}
    # the copy that found the job running went back to the queue, unprocessed
    assert answers["second"] == {"batchItemFailures": [{"itemIdentifier": second["MessageId"]}]}
    record = _record(key)
    assert (record["status"], record["attempts"]) == ("done", 1)

    # when it comes back, it finds the job done and is acknowledged without running it
    again = dict(second, Attributes={**second["Attributes"], "ApproximateReceiveCount": "2"})
    assert _invoke(stack, again, arn) == {"batchItemFailures": []}
    assert len([r for r in standin.runs() if page in r["urls"]]) == 1


def _record_or_none(key: str) -> dict[str, Any] | None:
    with get_engine().connect() as conn:
        row = conn.execute(text("SELECT status FROM processed_messages"
                                " WHERE idempotency_key = :k"), {"k": key}).first()
    return dict(row._mapping) if row is not None else None


def test_the_last_failure_goes_to_the_dlq_with_its_reason(
        stack: Stack, own_queue: tuple[str, str]) -> None:
    url, arn = own_queue
    key = f"fail-last-{time.time_ns()}"
    body = json.dumps({"type": "fail", "key": key, "payload": {"reason": "upstream down"}})
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=body)
    (message,) = _receive(stack, url, 1)

    # an earlier receive: back to the queue for a retry, the reason kept on the record
    assert _invoke(stack, message, arn)["batchItemFailures"]
    assert _record(key)["status"] == "retry"
    assert _record(key)["last_error"] == "fail: RetryableJobError: upstream down"

    # the queue's last receive (maxReceiveCount 3): the consumer moves it with its reason
    last = dict(message, Attributes={**message["Attributes"], "ApproximateReceiveCount": "3"})
    assert _invoke(stack, last, arn) == {"batchItemFailures": []}

    def dead() -> list[dict[str, Any]]:  # (a message may be seen twice while polling)
        return list({m["MessageId"]: m for m in _dlq_messages(stack, "CriticalDLQ")
                     if key in m["Body"]}.values())

    (dlq_message,) = wait_for(dead, 30, "the message in the critical DLQ")
    attributes = dlq_message["MessageAttributes"]
    assert attributes["failure_reason"]["StringValue"] == (
        "fail: RetryableJobError: upstream down (after 3 attempts)")
    assert attributes["receive_count"]["StringValue"] == "3"
    assert attributes["source_message_id"]["StringValue"] == message["MessageId"]
    assert json.loads(dlq_message["Body"]) == json.loads(body)  # the message, unchanged
    assert _record(key)["status"] == "failed"


def test_a_copy_finding_its_job_held_waits_longer_as_its_receives_run_out(
        stack: Stack, own_queue: tuple[str, str]) -> None:
    """Receive 1: the usual back-off (1 s here). Receive 2 of 3: the holder's whole lease,
    so the last receive finds the job done or its holder gone. Receive 3: acknowledged."""
    url, arn = own_queue
    key = f"held-{time.time_ns()}"
    assert claim(key, "record", "holder", 20).state == "claimed"  # someone else runs it
    body = json.dumps({"type": "record", "key": key, "payload": {}})
    sqs = stack.client("sqs")
    sqs.send_message(QueueUrl=url, MessageBody=body)
    (message,) = _receive(stack, url, 1)

    def as_receive(n: int) -> dict[str, Any]:
        return dict(message, Attributes={**message["Attributes"],
                                         "ApproximateReceiveCount": str(n)})

    assert _invoke(stack, as_receive(1), arn)["batchItemFailures"]
    time.sleep(1.5)
    (message,) = _receive(stack, url, 1)  # back after the short back-off
    assert _invoke(stack, as_receive(2), arn)["batchItemFailures"]
    time.sleep(3)
    hidden = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=1).get("Messages", [])
    assert hidden == []  # waiting out the 20 s lease, not the 2 s back-off
    assert _invoke(stack, as_receive(3), arn) == {"batchItemFailures": []}
    with get_engine().connect() as conn:
        runs = conn.execute(text("SELECT count(*) FROM audit_log WHERE action = 'job.record'"
                                 " AND target = :k"), {"k": key}).scalar_one()
    assert runs == 0  # never run by a copy while its holder held it
