"""Exports in the three actor formats (tests/fixtures/apify), replayed through the running
stack: what a seller reads back is the same whichever actor scraped the page; a page
without a featured offer is no stock-out; low stock and the marketplace's currency arrive."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta
from itertools import count
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazon_pilot.platform.db import transaction
from amazon_pilot.tracking.service import fetch_job, run_fetch
from amazon_pilot.tracking.store import upsert_product
from pilot_dev.runtime.stack import Stack
from tests.integration.replay import FIXTURES, replaying
from tests.integration.sellers import auth, new_seller
from tests.integration.test_runtime import wait_for

EXPORTS = FIXTURES / "apify"
AXESSO = EXPORTS / "axesso-water-bottles.json"
FULL = EXPORTS / "junglee-crawler-full.json"
REDUCED = EXPORTS / "junglee-crawler-reduced.json"
FREE = EXPORTS / "junglee-free-scraper.json"
_seconds = count(1)


def _track(api: httpx.Client, seller: dict[str, str], url: str) -> str:
    response = api.post("/v1/products", json={"url": url}, headers=auth(seller))
    assert response.status_code == 202, response.text
    tracked = str(response.json()["id"])

    def settled() -> bool:
        body = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
        return body["fetch_status"] != "pending"

    wait_for(settled, 30, f"the first fetch of {url}")
    return tracked


def _observe(stack: Stack, export: Path, asin: str, marketplace: str = "com") -> dict[str, Any]:
    """One scheduled fetch of this product, answered from the export; a later moment each
    time, so the observation becomes the product's latest."""
    with transaction() as conn:
        product_id = upsert_product(conn, asin, marketplace)[0]
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=next(_seconds))
    _, _, key = fetch_job([product_id], "schedule", at)
    with replaying(stack, export):
        return run_fetch([product_id], "schedule", at, key)


def _latest(api: httpx.Client, seller: dict[str, str], tracked: str) -> dict[str, Any]:
    body = api.get(f"/v1/products/{tracked}", headers=auth(seller)).json()
    assert body["fetch_status"] == "ok", body
    return dict(body["latest"]) | {"title": body["title"], "brand": body["brand"]}


def _alert_types(api: httpx.Client, seller: dict[str, str], tracked: str) -> list[str]:
    page = api.get("/v1/alerts", params={"product_id": tracked, "limit": 500},
                   headers=auth(seller)).json()
    return [a["type"] for a in page["items"]]


def test_every_format_gives_the_seller_the_same_product(api: httpx.Client, stack: Stack) -> None:
    seller = new_seller(api)
    tracked = _track(api, seller, "https://www.amazon.com/dp/B0CWTR4K2P")
    seen = {}
    for export in (AXESSO, FULL, FREE, REDUCED):
        result = _observe(stack, export, "B0CWTR4K2P")
        assert result["stored"] == 1, (export.name, result)
        seen[export.name] = _latest(api, seller, tracked)
    axesso = seen[AXESSO.name]
    assert (axesso["price"], axesso["currency"], axesso["availability"]) == (24.99, "USD",
                                                                             "in_stock")
    assert (axesso["bsr_rank"], axesso["subcategory_bsr"], axesso["rating"]) == (312, 4, 4.7)
    assert axesso["buy_box_seller"] == "HydroPeak Direct" and axesso["brand"] == "HydroPeak"
    for name in (FULL.name, FREE.name):
        assert seen[name] == axesso, name
    reduced = seen[REDUCED.name]  # 10 fields: no seller, stock or ranks to report
    for key in ("price", "currency", "rating", "review_count", "title", "brand"):
        assert reduced[key] == axesso[key], key
    assert reduced["availability"] == "unknown" and reduced["bsr_rank"] is None


def _as(item: dict[str, Any], asin: str) -> dict[str, Any]:
    out = copy.deepcopy(item)
    out["asin"] = asin
    if "originalAsin" in out:
        out["originalAsin"] = asin
    for key in ("url", "input"):
        if key in out:
            out[key] = f"https://www.amazon.com/dp/{asin}"
    return out


@pytest.mark.parametrize("export", [AXESSO, FULL, FREE])
def test_a_page_without_a_featured_offer_is_no_stock_out(
    api: httpx.Client, stack: Stack, tmp_path: Path, export: Path
) -> None:
    items = json.loads(export.read_text(encoding="utf-8"))
    asin = "B0BZ8MWN4T"  # item 2 of every format: found, no price, no seller, no text
    in_stock = tmp_path / "in-stock.json"
    in_stock.write_text(json.dumps([_as(items[0], asin)]))  # the same page with an offer
    seller = new_seller(api)
    tracked = _track(api, seller, f"https://www.amazon.com/dp/{asin}")
    assert _observe(stack, in_stock, asin)["stored"] == 1
    assert _latest(api, seller, tracked)["availability"] == "in_stock"

    assert _observe(stack, export, asin)["stored"] == 1
    latest = _latest(api, seller, tracked)
    assert latest["availability"] == "no_featured_offer"
    assert latest["in_stock"] is None and latest["price"] is None
    assert latest["rating"] == 4.4  # the page was there: its reviews still count
    assert _observe(stack, in_stock, asin)["stored"] == 1  # the offer is back
    assert _latest(api, seller, tracked)["availability"] == "in_stock"
    types = _alert_types(api, seller, tracked)
    assert "out_of_stock" not in types and "back_in_stock" not in types, types
    assert "buy_box_suppressed" in types, types  # what a suppressed Buy Box is


@pytest.mark.parametrize(
    ("export", "url", "availability", "stock_count", "currency"),
    [
        (AXESSO, "https://www.amazon.de/dp/B0C5RTW8LM", "low_stock", 4, "EUR"),
        (AXESSO, "https://www.amazon.co.jp/dp/B0C5RTW8LM", "low_stock", 2, "JPY"),
        (AXESSO, "https://www.amazon.ca/dp/B0CWTR4K2P", "in_stock", None, "CAD"),
        (FULL, "https://www.amazon.fr/dp/B0C5RTW8LM", "low_stock", 3, "EUR"),
        (FULL, "https://www.amazon.com.au/dp/B0CWTR4K2P", "in_stock", None, "AUD"),
        (FREE, "https://www.amazon.es/dp/B0C5RTW8LM", "low_stock", 2, "EUR"),
        (FREE, "https://www.amazon.com.mx/dp/B0CWTR4K2P", "in_stock", None, "MXN"),
    ],
)
def test_low_stock_and_the_marketplace_currency_reach_the_seller(
    api: httpx.Client, stack: Stack, export: Path, url: str, availability: str,
    stock_count: int | None, currency: str,
) -> None:
    from amazon_pilot.domain.product_ref import parse_product_ref

    asin, marketplace = parse_product_ref(url)
    seller = new_seller(api)
    tracked = _track(api, seller, url)
    assert _observe(stack, export, asin, marketplace)["stored"] == 1
    latest = _latest(api, seller, tracked)
    assert (latest["availability"], latest["stock_count"], latest["currency"]) == (
        availability, stock_count, currency)
