"""The synthetic catalog behind the offline Apify stand-in behaves like real daily scrapes."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, timedelta
from itertools import pairwise

import pytest

from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.snapshot import Availability
from pilot_dev.standins.apify_catalog import CATEGORIES, demo_asins, item_for

START = date(2025, 3, 1)
DAYS = [START + timedelta(days=i) for i in range(30)]


@pytest.fixture(scope="module")
def asins() -> list[str]:
    return [a for category in CATEGORIES for a in demo_asins(category, 30)]


def test_same_question_same_answer_even_in_another_process() -> None:
    asin = demo_asins("wireless earbuds", 1)[0]
    here = item_for(asin, "com", START)
    code = (
        "import json, datetime; from pilot_dev.standins.apify_catalog import item_for; "
        f"print(json.dumps(item_for({asin!r}, 'com', datetime.date(2025, 3, 1))))"
    )
    there = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert json.loads(there) == here
    assert item_for(asin, "com", START) == here


def test_items_use_the_actor_format() -> None:
    raw = item_for(demo_asins("headphones", 1)[0], "com", START)
    assert raw is not None
    assert raw["sandbox"] is True
    assert raw["statusCode"] == 200 and raw["statusMessage"] == "FOUND"
    assert isinstance(raw["productRating"], str) and raw["productRating"].endswith("out of 5 stars")
    assert "videoeUrlList" in raw and "videoUrlList" not in raw
    assert isinstance(raw["countReview"], int)
    assert "currency" not in raw and "brand" not in raw and "rating" not in raw


def test_demo_asins_are_stable_known_and_of_their_category() -> None:
    earbuds = demo_asins("wireless earbuds", 8)
    assert earbuds == demo_asins("wireless earbuds", 8)
    assert len(set(earbuds)) == 8
    for asin in earbuds:
        assert len(asin) == 10 and asin.startswith("B0") and not asin.endswith("0000")
        snap = normalize_item(item_for(asin, "com", START))
        assert snap.title is not None and "Earbuds" in snap.title
    with pytest.raises(ValueError, match="unknown category"):
        demo_asins("spaceships", 1)


def test_unknown_asins_have_no_page() -> None:
    assert item_for("B0ABCD0000", "com", START) is None
    assert item_for("not-an-asin", "com", START) is None


def test_prices_move_and_sometimes_jump(asins: list[str]) -> None:
    jumps = 0
    for asin in asins[:40]:
        prices = [normalize_item(item_for(asin, "com", d)).price for d in DAYS]
        offered = [p for p in prices if p is not None]
        assert len(set(offered)) > 3, f"{asin}: price never moves"
        jumps += sum(1 for a, b in pairwise(prices) if a and b and abs(b - a) / a >= 0.12)
    assert jumps >= 5


def test_reviews_accumulate_and_rating_moves_slowly(asins: list[str]) -> None:
    for asin in asins[:40]:
        snaps = [normalize_item(item_for(asin, "com", d)) for d in DAYS]
        reviews = [s.review_count or 0 for s in snaps]
        assert all(s.review_count is not None for s in snaps)
        assert reviews == sorted(reviews), f"{asin}: reviews went down"
        ratings = [s.rating or 0.0 for s in snaps]
        assert all(s.rating is not None for s in snaps)
        assert max(abs(b - a) for a, b in pairwise(ratings)) <= 0.1 + 1e-9


def test_bsr_swings_and_buy_box_changes_hands(asins: list[str]) -> None:
    seller_changes = 0
    for asin in asins[:40]:
        snaps = [normalize_item(item_for(asin, "com", d)) for d in DAYS]
        ranks = {s.bsr_rank for s in snaps if s.bsr_rank is not None}
        if ranks:
            assert len(ranks) > 5
        sellers = [s.buy_box_seller for s in snaps if s.buy_box_seller]
        seller_changes += sum(1 for a, b in pairwise(sellers) if a != b)
    assert seller_changes > 0


def test_stock_outs_and_products_without_bsr_exist(asins: list[str]) -> None:
    stock_outs = 0
    low_stock = 0
    no_bsr: set[str] = set()
    for asin in asins:
        for day in DAYS[:10]:
            raw = item_for(asin, "com", day)
            assert raw is not None
            snap = normalize_item(raw)
            if raw["price"] == 0:
                stock_outs += 1
                assert raw["soldBy"] is None and raw["warehouseAvailability"]  # it says so
                assert snap.availability is Availability.OUT_OF_STOCK and snap.price is None
            if snap.availability is Availability.LOW_STOCK:
                low_stock += 1
                assert snap.stock_count is not None and snap.stock_count > 0
            if snap.bsr_rank is None:
                no_bsr.add(asin)
    assert stock_outs > 0 and low_stock > 0
    assert 0 < len(no_bsr) < len(asins) / 4


@pytest.mark.parametrize(
    ("marketplace", "currency", "rating_marker"),
    [("de", "EUR", "von 5 Sternen"), ("co.jp", "JPY", "5つ星のうち"), ("co.uk", "GBP", "out of 5")],
)
def test_marketplace_pages(
    asins: list[str], marketplace: str, currency: str, rating_marker: str
) -> None:
    localized = 0
    for asin in asins[:30]:
        raw = item_for(asin, marketplace, START)
        assert raw is not None
        snap = normalize_item(raw)
        assert snap.currency == currency
        assert snap.rating is not None
        localized += rating_marker in raw["productRating"]
        assert snap.parse_warnings == []
    assert localized > 10


def test_every_item_normalizes_cleanly(asins: list[str]) -> None:
    books = set(demo_asins("books", 30))  # book pages have no feature bullets, as on Amazon
    for asin in asins[::3]:
        for marketplace in ("com", "de", "co.jp", "fr"):
            for day in DAYS[::7]:
                snap = normalize_item(item_for(asin, marketplace, day))
                assert snap.parse_warnings == [], (asin, marketplace, day, snap.parse_warnings)
                assert snap.found and snap.data_source == "sandbox"
                assert snap.brand and snap.title and snap.image_count
                assert snap.bullet_points or asin in books
                if snap.in_stock:
                    assert snap.price is not None and snap.buy_box_seller is not None


def test_bullets_carry_extractable_features() -> None:
    text = " ".join(
        " ".join(normalize_item(item_for(a, "com", START)).bullet_points)
        for a in demo_asins("wireless earbuds", 20)
    )
    for feature in ("H playtime", "IPX", "Bluetooth 5.", "Active Noise Cancelling", "-month"):
        assert feature.lower() in text.lower()
