"""Keepa as a product source: its documented product format mapped to the snapshot a
seller sees (domain/keepa_product.py), and the adapter's requests, batches, token
refills and refusals against the stand-in (adapters/keepa.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazon_pilot.adapters.keepa import KeepaProductFetcher, KeepaRejected, KeepaUnavailable
from amazon_pilot.domain.keepa_product import (
    keepa_minute_to_datetime,
    last_entry,
    map_product,
)
from amazon_pilot.domain.snapshot import Availability
from pilot_dev.standins.apify_catalog import demo_asins
from pilot_dev.standins.keepa_server import KeepaStandIn

FIXTURE = Path(__file__).parents[1] / "fixtures" / "keepa" / "product_response.json"


def _product(**fields: Any) -> dict[str, Any]:
    csv: list[Any] = [None] * 34
    for index, series in fields.pop("csv", {}).items():
        csv[index] = series
    return {"asin": "B0TEST0001", "domainId": 1, "productType": 0, "title": "A product",
            "csv": csv, **fields}


def test_keepa_minutes_are_minutes_after_keepas_epoch() -> None:
    # Product.java's own example: 411180 => 1318510800000 ms
    assert keepa_minute_to_datetime(411180) == datetime.fromtimestamp(1318510800, UTC)


def test_the_latest_entry_of_a_history_pairs_and_shipping_triples() -> None:
    csv: list[Any] = [None] * 34
    csv[1] = [100, 2599, 200, 2499]
    csv[18] = [100, 2599, 0, 200, 2499, 399]  # minute, price, shipping
    assert last_entry(csv, 1) == (200, 2499)
    assert last_entry(csv, 18) == (200, 2499, 399)
    assert last_entry(csv, 0) is None


def test_prices_in_cents_become_money_and_the_buy_box_is_the_price() -> None:
    snap = map_product(_product(csv={0: [1, 2999], 1: [1, 2799], 4: [1, 3999],
                                     18: [1, 2899, 0]}), "B0TEST0001", "com")
    assert (snap.price, snap.buy_box_price, snap.list_price) == (28.99, 28.99, 39.99)
    assert snap.currency == "USD" and snap.data_source == "keepa"
    assert snap.availability is Availability.IN_STOCK


def test_yen_prices_are_whole_units() -> None:
    snap = map_product(_product(domainId=5, csv={1: [1, 4900]}), "B0TEST0001", "co.jp")
    assert snap.price == 4900.0 and snap.currency == "JPY"


def test_minus_one_is_no_offer_not_a_price() -> None:
    snap = map_product(_product(csv={0: [1, 2999, 2, -1], 1: [1, 2799, 2, -1],
                                     18: [1, 2899, 0, 2, -1, 0]}), "B0TEST0001", "com")
    assert snap.price is None and snap.buy_box_price is None
    assert snap.availability is Availability.OUT_OF_STOCK


def test_offers_without_a_buy_box_show_as_no_featured_offer() -> None:
    snap = map_product(_product(csv={1: [1, 2799], 18: [1, -1, 0]}), "B0TEST0001", "com")
    assert snap.buy_box_price is None and snap.price == 27.99
    assert snap.availability is Availability.NO_FEATURED_OFFER


def test_rating_is_stars_times_ten_and_reviews_a_count() -> None:
    snap = map_product(_product(csv={16: [1, 44, 2, 45], 17: [1, 1200, 2, 1234]}),
                       "B0TEST0001", "com")
    assert (snap.rating, snap.review_count) == (4.5, 1234)


def test_ranks_come_from_sales_ranks_named_by_the_category_tree() -> None:
    snap = map_product(_product(
        salesRankReference=10, salesRanks={"10": [1, 900, 2, 850], "30": [1, 12],
                                           "20": [1, 40, 2, 35]},
        categoryTree=[{"catId": 10, "name": "Kitchen"}, {"catId": 20, "name": "Kettles"}]),
        "B0TEST0001", "com")
    assert (snap.bsr_rank, snap.bsr_category) == (850, "Kitchen")
    assert [(s.rank, s.category) for s in snap.subcategory_ranks] == [
        (12, "category 30"), (35, "Kettles")]
    assert snap.subcategory_bsr == 12


def test_without_sales_ranks_the_sales_history_is_the_main_rank() -> None:
    snap = map_product(_product(csv={3: [1, 5000, 2, 4200]}, rootCategory=10,
                                categoryTree=[{"catId": 10, "name": "Toys & Games"}]),
                       "B0TEST0001", "com")
    assert (snap.bsr_rank, snap.bsr_category) == (4200, "Toys & Games")


def test_an_invalid_product_is_not_found() -> None:
    invalid = {"asin": "B000000000", "domainId": 1, "productType": 4, "csv": None}
    assert map_product(invalid, "B000000000", "com").found is False


def _replay(body: dict[str, Any], status: int = 200) -> httpx.MockTransport:
    """Keepa's HTTP answer, replayed (the adapter and the mapping run for real)."""
    return httpx.MockTransport(lambda request: httpx.Response(status, json=body))


def test_the_documented_format_fixture_becomes_a_normalized_snapshot() -> None:
    body = json.loads(FIXTURE.read_text())
    fetcher = KeepaProductFetcher("key", transport=_replay(body))
    result = fetcher.fetch([("B0088PUEPK", "com"), ("B000000000", "com")])
    assert result.data_source == "keepa" and result.tokens_consumed == 6
    assert result.not_found == [("B000000000", "com")] and result.no_data == []
    [snap] = result.snapshots
    assert (snap.asin, snap.marketplace, snap.found) == ("B0088PUEPK", "com", True)
    assert snap.title == "Example 1TB Internal Hard Drive - 7200 RPM, SATA 6 Gb/s"
    assert snap.brand == "ExampleBrand"
    assert (snap.price, snap.buy_box_price, snap.list_price) == (51.99, 51.99, 69.99)
    assert snap.buy_box_seller_id == "A2L77EE7U53NWQ"
    assert (snap.rating, snap.review_count, snap.offer_count) == (4.6, 20587, 12)
    assert (snap.bsr_rank, snap.bsr_category) == (1520, "Electronics")
    assert [(s.rank, s.category) for s in snap.subcategory_ranks] == [
        (17, "Internal Hard Drives")]
    assert snap.bullet_points[0] == "Reliable everyday computing"  # HTML dropped
    assert snap.description == "An internal drive for desktop computers."
    assert snap.image_count == 3
    assert snap.image_urls[0] == "https://images-na.ssl-images-amazon.com/images/I/41aaaaaaaaL.jpg"
    assert snap.availability is Availability.IN_STOCK


def test_a_product_keepa_does_not_answer_has_no_data() -> None:
    body = json.loads(FIXTURE.read_text())
    result = KeepaProductFetcher("key", transport=_replay(body)).fetch(
        [("B0088PUEPK", "com"), ("B0MISSING1", "com")])
    assert result.no_data == [("B0MISSING1", "com")]
    assert [p.kind for p in result.problems] == ["unattributed", "no_item"]


@pytest.fixture
def standin() -> Any:
    with KeepaStandIn(api_key="sandbox-key") as server:
        yield server


def test_requests_carry_at_most_100_asins(standin: KeepaStandIn) -> None:
    standin.set_tokens(1000)
    asins = demo_asins("wireless earbuds", 150)
    result = KeepaProductFetcher("sandbox-key", standin.url).fetch([(a, "com") for a in asins])
    assert len(result.snapshots) == 150
    assert [len(r["asins"]) for r in standin.requests()] == [100, 50]
    assert result.tokens_consumed == 150 * 3  # 1 per product + 2 for the Buy Box


def test_a_429_is_retried_after_refill_in_and_nothing_is_lost(standin: KeepaStandIn) -> None:
    standin.set_tokens(0, refill_rate=500, refill_interval_s=0.3)
    slept: list[float] = []
    asins = demo_asins("wireless earbuds", 5)

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        time.sleep(seconds)

    result = KeepaProductFetcher("sandbox-key", standin.url, sleep=sleep).fetch(
        [(a, "com") for a in asins])
    assert [r["status"] for r in standin.requests()] == [429, 200]
    assert 0.1 <= slept[0] <= 0.5  # refillIn (≤ 300 ms) + 100 ms
    assert sorted(s.asin for s in result.snapshots) == sorted(asins)


def test_tokens_that_do_not_refill_in_time_fail_retryably(standin: KeepaStandIn) -> None:
    standin.set_tokens(0, refill_rate=20, refill_interval_s=60)
    fetcher = KeepaProductFetcher("sandbox-key", standin.url, max_wait_s=1,
                                  sleep=lambda s: None)
    with pytest.raises(KeepaUnavailable, match="429") as raised:
        fetcher.fetch([("B0YWXK1YAS", "com")])
    assert raised.value.retryable


def test_a_bad_key_or_domain_is_refused_for_good(standin: KeepaStandIn) -> None:
    with pytest.raises(KeepaRejected, match="400") as raised:
        KeepaProductFetcher("wrong-key", standin.url).fetch([("B0YWXK1YAS", "com")])
    assert not raised.value.retryable
    body = {"error": {"type": "REQUEST_REJECTED", "message": "invalid domain"}}
    with pytest.raises(KeepaRejected, match="invalid domain"):
        KeepaProductFetcher("key", transport=_replay(body, 400)).fetch([("B0YWXK1YAS", "de")])


def test_the_standin_answers_an_asin_with_the_apify_standins_values(
        standin: KeepaStandIn) -> None:
    from amazon_pilot.domain.normalize import normalize_item
    from pilot_dev.standins.apify_catalog import item_for

    asin = demo_asins("wireless earbuds", 1)[0]
    [keepa] = KeepaProductFetcher("sandbox-key", standin.url).fetch([(asin, "com")]).snapshots
    apify = normalize_item(item_for(asin, "com", datetime.now(UTC).date()))
    for name in ("title", "price", "buy_box_price", "rating", "review_count", "bsr_rank",
                 "bsr_category", "subcategory_ranks", "buy_box_seller_id"):
        assert getattr(keepa, name) == getattr(apify, name), name
