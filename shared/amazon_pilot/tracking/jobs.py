"""Tracking's queue jobs and schedule planner: thin over tracking.service."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amazon_pilot.platform.jobs import Delivery, parse_payload
from amazon_pilot.tracking import service
from amazon_pilot.tracking.schemas import FetchPayload


def fetch_products(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    """One batch of shared products fetched by one actor run (queue job fetch_products)."""
    job = parse_payload(FetchPayload, payload)
    return service.run_fetch(job.product_ids, job.trigger, job.captured_at, delivery.key,
                             attempt=job.attempt, final=delivery.is_last, requeue=True)


def plan_daily_refresh(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    """The DailyRefresh schedule: every due product, in batches on the default queue."""
    batch_size = event.get("batch_size")
    return service.plan_daily_refresh(int(batch_size) if batch_size else None, now)
