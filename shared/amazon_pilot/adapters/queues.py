"""Sending jobs to the three priority queues. One message = one job, as JSON."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from amazon_pilot.adapters.aws import client
from amazon_pilot.platform.settings import settings

PRIORITIES = ("critical", "default", "low")


class QueueNotConfigured(RuntimeError):
    pass


def job_message(job_type: str, payload: dict[str, Any], key: str) -> str:
    """The body every consumer understands; `key` makes the job idempotent."""
    return json.dumps(
        {
            "type": job_type,
            "key": key,
            "payload": payload,
            "enqueued_at": datetime.now(UTC).isoformat(),
        },
        separators=(",", ":"),
        default=str,
    )


def queue_url(priority: str) -> str:
    url = settings().queue_urls.get(priority)
    if not url:
        raise QueueNotConfigured(f"no queue URL for priority {priority!r} (QUEUE_URL_*)")
    return url


def enqueue(priority: str, job_type: str, payload: dict[str, Any], key: str) -> str:
    response = client("sqs").send_message(
        QueueUrl=queue_url(priority), MessageBody=job_message(job_type, payload, key)
    )
    return str(response["MessageId"])


def enqueue_many(priority: str, jobs: Iterable[tuple[str, dict[str, Any], str]]) -> int:
    """Send in batches of 10 (the SQS maximum); raises if any entry was refused."""
    url = queue_url(priority)
    sent = 0
    batch: list[dict[str, str]] = []

    def flush() -> None:
        nonlocal sent
        if not batch:
            return
        result = client("sqs").send_message_batch(QueueUrl=url, Entries=batch)
        if result.get("Failed"):
            reasons = "; ".join(f.get("Message", f.get("Code", "?")) for f in result["Failed"])
            raise RuntimeError(f"SQS refused {len(result['Failed'])} messages: {reasons}")
        sent += len(batch)
        batch.clear()

    for job_type, payload, key in jobs:
        batch.append({"Id": str(len(batch)), "MessageBody": job_message(job_type, payload, key)})
        if len(batch) == 10:
            flush()
    flush()
    return sent


def enqueue_later(priority: str, job_type: str, payload: dict[str, Any], key: str,
                  delay_s: int) -> str:
    """One job, delivered no sooner than `delay_s` seconds from now (SQS allows 0-900)."""
    response = client("sqs").send_message(
        QueueUrl=queue_url(priority), MessageBody=job_message(job_type, payload, key),
        DelaySeconds=max(0, min(900, int(delay_s))),
    )
    return str(response["MessageId"])
