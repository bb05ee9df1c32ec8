"""Market's queue job and schedule planner: thin over market.service.

- ``fetch_search_pages`` (default queue): one actor run for one marketplace's terms.
- ``plan_keyword_ranks``: the KeywordRanks schedule: every due term once a day.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from amazon_pilot.market import service
from amazon_pilot.market.schemas import KeywordPayload
from amazon_pilot.platform.jobs import Delivery, parse_payload


def fetch_search_pages(payload: dict[str, Any], delivery: Delivery) -> dict[str, Any]:
    job = parse_payload(KeywordPayload, payload)
    return service.run_search(job.marketplace, job.terms, job.day, job.captured_at)


def plan_keyword_ranks(event: dict[str, Any], now: datetime) -> dict[str, Any]:
    return service.plan_keyword_ranks(now)
