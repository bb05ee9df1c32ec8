"""Keywords and sales estimates in a real browser: a seller adds search terms to a product
and sees their ranks (the stand-in's search actor, through the running stack), reads the
product's sales estimate beside Amazon's "bought in past month" figure, and sees the
group's share of the first page and each product's estimate on the group page."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.platform.db import get_engine
from pilot_dev.standins.apify_catalog import demo_asins, item_for
from pilot_dev.standins.apify_search_catalog import search_page
from pilot_dev.timetravel import backfill, observe_search
from tests.e2e.conftest import shoot, sign_in
from tests.integration.test_runtime import wait_for

pytestmark = pytest.mark.slow

PASSWORD = "Keywords-pass-2026"
NOTHING = "\u2013"  # the dashboard's "no value" (an en dash)


def product_row(asin: str) -> int:
    from sqlalchemy import text

    with get_engine().connect() as conn:
        return int(conn.execute(text("SELECT id FROM products WHERE asin = :a"),
                                {"a": asin}).scalar_one())


def _ranked_and_popular(asin: str, day: date) -> bool:
    """The page shows a sales rank and "N+ bought in past month"."""
    snap = normalize_item(item_for(asin, "com", day))
    return snap.bsr_rank is not None and snap.bought_past_month is not None


def test_add_keywords_see_their_ranks_and_read_sales_estimates(
        page: Any, api: httpx.Client) -> None:
    from amazon_pilot.accounts.service import create_user

    email = f"keywords-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email, PASSWORD, plan="free")
    token = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": "Bearer " + token.json()["access_token"]}
    asins = demo_asins("wireless earbuds", 60)
    today = datetime.now(UTC).date()
    # a popular product: its page shows "N+ bought in past month"
    mine = next(a for a in asins if _ranked_and_popular(a, today))
    asins = [mine, *[a for a in asins if a != mine]]
    tracked = api.post("/v1/products", json={"asin": mine}, headers=headers)
    assert tracked.status_code == 202, tracked.text
    tracked_id = tracked.json()["id"]
    wait_for(lambda: api.get(f"/v1/products/{tracked_id}", headers=headers).json()
             ["fetch_status"] == "ok" or None, 60, "the first fetch")
    backfill([product_row(mine)], 14)
    group = api.post("/v1/competitor-groups", headers=headers, json={
        "name": "Earbuds on page one", "main": mine, "competitors": asins[1:4]})
    assert group.status_code == 201, group.text

    sign_in(page, email, PASSWORD)
    page.goto(f"/products/{tracked_id}")

    # sales estimate: units, revenue, Amazon's own figure beside it, and the method
    page.wait_for_selector("#sales-units .stat-value")
    units = page.inner_text("#sales-units")
    assert "range" in units and page.inner_text("#sales-units .stat-value") != NOTHING
    badge = page.inner_text("#sales-badge")
    assert "bought in past month" in badge.lower() and "+" in badge
    assert ("at or above the badge" in badge) or ("below the badge" in badge)
    assert "Brynjolfsson" in page.inner_text("#sales-method")
    page.wait_for_selector("#sales-chart[data-state=ready]")

    # keywords: add two terms, see their first-page places, the plan's limit, a chart
    assert page.inner_text("#keywords .state-empty")
    for term in ("Wireless Earbuds", "bluetooth earbuds sport"):
        page.fill("#keyword-term", term)
        page.click("#keyword-add")
        page.wait_for_selector(f"#keywords-table tr[data-term='{term.lower()}']")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#keywords-table tbody tr td:nth-child(4)')]"
        ".every((td) => /^\\d{4}-/.test(td.textContent))", timeout=60_000)
    organic = [c["asin"] for c in search_page("wireless earbuds", "com", today)
               if not c["isSponsored"]]
    expected = f"#{organic.index(mine) + 1}" if mine in organic else NOTHING
    assert page.inner_text(
        "#keywords-table tr[data-term='wireless earbuds'] .keyword-organic") == expected
    assert "2 of 3 search terms" in page.inner_text("#keyword-limit")

    # a week of history for the chart (the stand-in's pages of past days)
    for back in range(7, 0, -1):
        observe_search("com", ["wireless earbuds"], today - timedelta(days=back))
    page.reload()
    page.wait_for_selector("#keyword-chart[data-state=ready]")
    assert page.get_attribute("#keyword-chart", "data-term") == "wireless earbuds"
    page.evaluate("window.scrollTo(0, 0)")  # the sticky header stays on top of the shot
    shoot(page, "keywords", full_page=True)

    # a term typed twice is refused in words
    page.fill("#keyword-term", "  WIRELESS earbuds ")
    page.click("#keyword-add")
    page.wait_for_selector("#keyword-form .form-errors .state-error")
    assert "already tracks" in page.inner_text("#keyword-form .form-errors")

    # the group page: share of the first page for the main product's terms, estimates
    page.goto(f"/competitors/{group.json()['id']}")
    page.wait_for_selector("#share-table tr[data-term='wireless earbuds']")
    share = page.inner_text("#share-table tr[data-term='wireless earbuds']")
    assert "of 48" in share
    page.wait_for_selector(f"#group-sales-table tr[data-asin='{mine}']")
    assert "(yours)" in page.inner_text(f"#group-sales-table tr[data-asin='{mine}']")
    page.locator("#group-keywords").scroll_into_view_if_needed()
    shoot(page, "group-keywords-sales", full_page=False)
    assert page.watch.errors == []
