"""Observations of past days from the Apify stand-in, for the demo, the benches and tests.

The stand-in serves the catalog as it was on the day an actor run's input names
("sandboxDate"; today without one). Production never asks for a day: its job payloads
carry only product ids, trigger and captured_at. Time travel happens here instead, by
building a fetcher whose input carries the day and handing it to
tracking.service.run_fetch.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from amazon_pilot.adapters.apify import (
    INPUT_BUILDERS,
    InputBuilder,
    axesso_input,
)
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking.service import Fetcher, fetch_job, make_fetcher, run_fetch


def input_on(day: date, actor_id: str) -> InputBuilder:
    """The actor's input for some product URLs, asking the stand-in for `day`."""
    build = INPUT_BUILDERS.get(actor_id, axesso_input)

    def on_day(urls: list[str]) -> dict[str, Any]:
        return {**build(urls), "sandboxDate": day.isoformat()}

    return on_day


def fetcher_for(day: date) -> Fetcher:
    """The configured actor (the stand-in, locally) answering as of `day` (with
    PRODUCT_SOURCE=keepa, the Keepa source, which answers as of now)."""
    return make_fetcher(input_builder=input_on(day, settings().apify_actor_id))


def observe(product_ids: list[int], captured_at: datetime, day: date,
            trigger: str = "backfill") -> dict[str, Any]:
    """One fetch of these products, stored as the observation at `captured_at`, of the
    stand-in's catalog on `day`; keyed like a queued job, so a replay stores nothing twice."""
    _, _, key = fetch_job(product_ids, trigger, captured_at)
    return run_fetch(product_ids, trigger, captured_at, key, fetcher=fetcher_for(day))


def backfill(product_ids: list[int], days: int, today: date | None = None) -> int:
    """Fill `days` of history (one observation a day at 06:00 UTC), oldest first."""
    today = today or datetime.now(UTC).date()
    stored = 0
    for offset in range(days, 0, -1):
        day = today - timedelta(days=offset)
        captured_at = datetime(day.year, day.month, day.day, 6, tzinfo=UTC)
        stored += int(observe(product_ids, captured_at, day).get("stored", 0))
    return stored


def search_fetcher_for(day: date) -> Any:
    """The configured search actor (the stand-in, locally) answering as of `day`."""
    from amazon_pilot.adapters.apify_search import search_input
    from amazon_pilot.market.service import make_search_fetcher

    def on_day(terms: list[str], marketplace: str) -> dict[str, Any]:
        return {**search_input(terms, marketplace), "sandboxDate": day.isoformat()}

    return make_search_fetcher(input_builder=on_day)


def observe_search(marketplace: str, terms: list[str], day: date) -> dict[str, Any]:
    """The search pages of `terms` as the stand-in served them on `day`, stored for that
    day (rank-drop alerts included), like the daily search job."""
    from amazon_pilot.market.service import run_search

    captured_at = datetime(day.year, day.month, day.day, 6, 30, tzinfo=UTC)
    return run_search(marketplace, terms, day, captured_at, fetcher=search_fetcher_for(day))
