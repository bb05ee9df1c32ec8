"""Queue jobs and the schedule planner of notifications: each parses its payload, then
calls the service.

- ``deliver_notification`` (critical queue): one attempt at one delivery; a delivery
  fails for good on the queue's last receive (its maxReceiveCount).
- ``send_digest`` (low queue): one user's daily digest.
- ``sweep_notifications`` (default queue): alerts a failed fan-out left pending.
- ``plan_digests`` (schedule "daily_digest"): queues the two above.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amazon_pilot.notifications import service
from amazon_pilot.notifications.schemas import DeliverPayload, DigestPayload, SweepPayload
from amazon_pilot.platform.jobs import Delivery, parse_payload


def deliver_notification(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    job = parse_payload(DeliverPayload, payload)
    return service.deliver(job, max_attempts=delivery.max_receives)


def send_digest(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    job = parse_payload(DigestPayload, payload)
    return service.send_digest(job, max_attempts=delivery.max_receives)


def sweep_notifications(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    job = parse_payload(SweepPayload, payload)
    return service.sweep(job.before)


def plan_digests(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    day = event.get("date")  # a schedule's Input may name the day
    return service.queue_digests(str(day) if day else None, now)
