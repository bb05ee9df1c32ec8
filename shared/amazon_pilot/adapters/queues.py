"""Sending jobs to the three priority queues. One message = one job, as JSON.

Services never call this: they write jobs to the outbox (platform/outbox.py) in their
own transaction, and the outbox relay sends them with `send_jobs`."""

from __future__ import annotations

import json
from collections.abc import Sequence
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


def send_jobs(priority: str, jobs: Sequence[tuple[int, tuple[str, dict[str, Any], str]]],
              *, fast: bool = False) -> dict[int, str]:
    """Send (id, job) pairs in batches of 10 (the SQS maximum); returns {id: reason} for
    those not sent. When SQS cannot be reached, the rest of `jobs` is not tried."""
    # fast: the nudge inside an API request gives up at once; the scheduled relay retries
    sqs = client("sqs", quick=fast)
    failed: dict[int, str] = {}
    try:
        url = queue_url(priority)
    except QueueNotConfigured as exc:
        return {row_id: str(exc) for row_id, _ in jobs}
    for start in range(0, len(jobs), 10):
        chunk = jobs[start:start + 10]
        entries = [{"Id": str(row_id), "MessageBody": job_message(*job)} for row_id, job in chunk]
        try:
            result = sqs.send_message_batch(QueueUrl=url, Entries=entries)
        except Exception as exc:  # endpoint down, throttled, refused: all of them wait
            reason = f"{type(exc).__name__}: {exc}"
            failed.update({row_id: reason for row_id, _ in jobs[start:]})
            break
        for refused in result.get("Failed", []):
            failed[int(refused["Id"])] = str(refused.get("Message") or refused.get("Code"))
    return failed
