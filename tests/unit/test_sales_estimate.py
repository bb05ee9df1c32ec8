"""Sales estimates from a best-seller rank: the curve's shape, its categories and their
fallbacks, and the page's "bought in past month" figure as a check."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from amazon_pilot.domain import sales_estimate as se
from amazon_pilot.domain.normalize import normalize_item

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "apify"


def _fixture(name: str) -> dict[str, Any]:
    """The first item of a recorded dataset export (a real actor's shape)."""
    return dict(json.loads((FIXTURES / name).read_text())[0])


@pytest.mark.parametrize("category", [None, "Books", "Electronics", "Home & Kitchen",
                                      "Something Amazon adds next year"])
def test_a_better_rank_never_sells_less(category: str | None) -> None:
    units = [se.estimate(rank, category).units_per_month  # type: ignore[union-attr]
             for rank in (1, 2, 10, 100, 1_000, 10_000, 100_000, 1_000_000)]
    assert units == sorted(units, reverse=True)
    assert units[0] > units[-1] >= 0


def test_the_book_curve_is_the_published_fit() -> None:
    # Brynjolfsson, Hu & Smith (2003): weekly units = exp(10.526 - 0.871 ln rank)
    weekly = math.exp(10.526 - 0.871 * math.log(1_000))
    estimate = se.estimate(1_000, "Books")
    assert estimate is not None and estimate.curve == "books"
    assert estimate.units_per_month == pytest.approx(weekly * 30.44 / 7, rel=0.01)
    assert "Brynjolfsson" in estimate.basis


@pytest.mark.parametrize(("name", "curve"), [
    ("Electronics", "electronics"), ("Elektronik & Foto", "electronics"),
    ("Home & Kitchen", "home_kitchen"), ("Küche, Haushalt & Wohnen", "home_kitchen"),
    ("Cell Phones & Accessories", "cell_phones"), ("Bücher", "books"),
    ("Kindle Store", "books"), ("Toys & Games", "toys_games"),
    ("Clothing, Shoes & Jewelry", "clothing"), ("  sports &  OUTDOORS ", "sports_outdoors"),
    ("Musical Instruments", "default"), ("", "default"), (None, "default"),
])
def test_categories_and_their_fallback(name: str | None, curve: str) -> None:
    assert se.curve_for(name).key == curve


def test_categories_differ_at_the_same_rank() -> None:
    kitchen = se.estimate(500, "Home & Kitchen")
    books = se.estimate(500, "Books")
    assert kitchen is not None and books is not None
    assert kitchen.units_per_month > books.units_per_month


def test_a_subcategory_rank_is_the_fallback_and_a_rougher_one() -> None:
    main = se.estimate(2_000, "Electronics", subcategory_rank=15)
    assert main is not None and main.rank_kind == "category" and main.rank == 2_000
    sub = se.estimate(None, "Electronics", subcategory_rank=15)
    assert sub is not None and sub.rank_kind == "subcategory" and sub.rank == 15
    assert sub.error_factor > main.error_factor
    assert [se.estimate(None, None, r).units_per_month for r in (1, 10, 100)] == sorted(  # type: ignore[union-attr]
        [se.estimate(None, None, r).units_per_month for r in (1, 10, 100)], reverse=True)  # type: ignore[union-attr]


def test_no_rank_no_estimate() -> None:
    assert se.estimate(None, "Books") is None
    assert se.estimate(0, "Books", 0) is None


def test_revenue_and_range() -> None:
    estimate = se.estimate(1_000, "Electronics", price=20.0)
    assert estimate is not None
    assert estimate.revenue_per_month == pytest.approx(estimate.units_per_month * 20.0, abs=20)
    assert estimate.units_low < estimate.units_per_month < estimate.units_high
    assert estimate.units_high / estimate.units_per_month == pytest.approx(se.ERROR_FACTOR,
                                                                          rel=0.01)
    assert se.estimate(1_000, "Electronics", price=None).revenue_per_month is None  # type: ignore[union-attr]


def test_the_badge_checks_the_estimate() -> None:
    assert se.badge_check(1_500, 1_000) == "consistent"
    assert se.badge_check(600, 1_000) == "below_badge"
    assert se.badge_check(600, None) is None
    assert se.badge_check(None, 1_000) is None


@pytest.mark.parametrize(("text", "units"), [
    ("10K+ bought in past month", 10_000),
    ("1K+ bought in past month", 1_000),
    ("200+ bought in past month", 200),
    ("5K+ Mal im letzten Monat gekauft", 5_000),
    ("過去1か月で3000点以上購入されました", 3_000),
])
def test_bought_in_past_month_is_read_from_both_actor_formats(text: str, units: int) -> None:
    axesso = normalize_item({**_fixture("axesso-water-bottles.json"), "pastSales": text})
    assert axesso.bought_past_month == units and axesso.past_sales == text
    junglee = normalize_item({**_fixture("junglee-crawler-full.json"),
                              "monthlyPurchaseVolume": text})
    assert junglee.bought_past_month == units


def test_no_badge_is_no_figure() -> None:
    item = {**_fixture("axesso-water-bottles.json"), "pastSales": None}
    assert normalize_item(item).bought_past_month is None
