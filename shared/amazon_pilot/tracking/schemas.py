"""Tracking's request, response and job payload models."""

from __future__ import annotations

from datetime import date, datetime

from amazon_pilot.platform.models import Strict


class FetchPayload(Strict):
    """A fetch_products job: fetch these shared products for one observation time."""

    product_ids: list[int]
    trigger: str = "schedule"  # schedule | add | refresh | backfill | demo
    captured_at: datetime  # from the message, never the clock: replays store nothing twice
    sandbox_date: date | None = None
