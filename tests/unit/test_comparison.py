"""Group comparison numbers as a seller reads them, on hand-built histories."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from amazon_pilot.domain.comparison import ProductView, compare_group
from amazon_pilot.domain.snapshot import Availability, HistoryPoint, Snapshot, SubcategoryRank

START = datetime(2025, 3, 1, 6, 0, tzinfo=UTC)


def snap(asin: str, **kw: Any) -> Snapshot:
    base: dict[str, Any] = {
        "price": 39.99,
        "availability": Availability.IN_STOCK,
        "rating": 4.3,
        "review_count": 1000,
        "bsr_rank": 1000,
        "bsr_category": "Electronics",
    }
    base.update(kw)
    return Snapshot(asin=asin, **base)


def daily(days: int, **series: list[Any]) -> list[HistoryPoint]:
    """One point a day; each keyword gives a list of values (None = not seen that day)."""
    points = []
    for i in range(days):
        values = {k: v[i] for k, v in series.items()}
        points.append(HistoryPoint(captured_at=START + timedelta(days=i), **values))
    return points


def view(asin: str, history: list[HistoryPoint] | None = None, **kw: Any) -> ProductView:
    return ProductView(
        asin=asin, title=f"{asin} earbuds", snapshot=snap(asin, **kw), history=history or []
    )


def test_price_gap_is_main_minus_competitor_in_money_and_percent() -> None:
    main = view("MAIN", price=49.99)
    g = compare_group(main, [view("CHEAP", price=39.99), view("PRICEY", price=59.99)], 30)

    cheap = g.competitor("CHEAP").gaps
    assert cheap.price_gap.value == 10.0
    assert cheap.price_gap_pct.value == 25.0  # 10 / 39.99
    assert cheap.price_gap.leader == "competitor"
    assert cheap.price_gap.unit == "USD"

    pricey = g.competitor("PRICEY").gaps
    assert pricey.price_gap.value == -10.0
    assert pricey.price_gap_pct.value == -16.7
    assert pricey.price_gap.leader == "main"


def test_buy_box_gap_uses_buy_box_prices() -> None:
    main = view("MAIN", price=49.99, buy_box_price=47.00)
    comp = view("C1", price=49.99, buy_box_price=50.00)
    gaps = compare_group(main, [comp], 7).competitor("C1").gaps
    assert gaps.price_gap.value == 0.0 and gaps.price_gap.leader == "tie"
    assert gaps.buy_box_gap.value == -3.0
    assert gaps.buy_box_gap_pct.value == -6.0


def test_price_rank_and_percentile_across_group_with_ties() -> None:
    main = view("MAIN", price=30.0)
    comps = [view("A", price=20.0), view("B", price=30.0), view("C", price=45.0)]
    g = compare_group(main, comps, 30)

    assert g.competitor("A").product.price_rank.value == 1
    assert g.competitor("A").product.price_percentile.value == 0.0
    # MAIN and B tie for second: same rank, same percentile.
    assert g.main.price_rank.value == 2
    assert g.competitor("B").product.price_rank.value == 2
    assert g.main.price_percentile.value == pytest.approx(33.3)
    assert g.competitor("C").product.price_rank.value == 4
    assert g.competitor("C").product.price_percentile.value == 100.0
    assert g.group.main_rank["price"].rank == 2 and g.group.main_rank["price"].of == 4
    assert g.group.cheapest.asins == ("A",) and g.group.cheapest.value == 20


def test_bsr_gap_ratio_and_log_ratio_say_who_ranks_better() -> None:
    main = view("MAIN", bsr_rank=1000)
    g = compare_group(main, [view("TOP", bsr_rank=100), view("TAIL", bsr_rank=10000)], 30)

    top = g.competitor("TOP").gaps
    assert top.bsr_gap.value == 900  # main is 900 ranks behind
    assert top.bsr_ratio.value == 10.0
    assert top.bsr_log_ratio.value == pytest.approx(1.0)
    assert top.bsr_log_ratio.leader == "competitor"

    tail = g.competitor("TAIL").gaps
    assert tail.bsr_log_ratio.value == pytest.approx(-1.0)
    assert tail.bsr_gap.leader == "main"
    assert g.group.best_bsr.asins == ("TOP",)
    assert g.group.main_rank["bsr"].rank == 2


def test_bsr_in_different_main_categories_is_not_compared() -> None:
    main = view("MAIN", bsr_rank=1000, bsr_category="Electronics")
    comp = view("C1", bsr_rank=50, bsr_category="Cell Phones & Accessories")
    gaps = compare_group(main, [comp], 30).competitor("C1").gaps
    assert gaps.bsr_gap.value is None
    assert gaps.bsr_ratio.reason == "different main categories"


def test_subcategory_gap_only_within_the_same_subcategory() -> None:
    main = view("MAIN", subcategory_ranks=[SubcategoryRank(40, "Earbud & In-Ear Headphones")])
    same = view("SAME", subcategory_ranks=[SubcategoryRank(12, "Earbud & In-Ear Headphones")])
    other = view("OTHER", subcategory_ranks=[SubcategoryRank(3, "Over-Ear Headphones")])
    # A rival listing the shared subcategory second is still compared on it.
    second = view(
        "SECOND",
        subcategory_ranks=[
            SubcategoryRank(5, "Sports Headphones"),
            SubcategoryRank(60, "earbud & in-ear headphones"),
        ],
    )
    g = compare_group(main, [same, other, second], 30)

    assert g.competitor("SAME").gaps.subcategory_bsr_gap.value == 28
    assert g.competitor("SAME").gaps.subcategory_bsr_gap.leader == "competitor"
    mismatch = g.competitor("OTHER").gaps.subcategory_bsr_gap
    assert mismatch.value is None and mismatch.reason == "different subcategories"
    assert g.competitor("SECOND").gaps.subcategory_bsr_gap.value == -20


def test_rating_and_review_count_gaps() -> None:
    main = view("MAIN", rating=4.6, review_count=850)
    comp = view("C1", rating=4.2, review_count=12000)
    g = compare_group(main, [comp], 30)
    gaps = g.competitor("C1").gaps
    assert gaps.rating_gap.value == pytest.approx(0.4)
    assert gaps.rating_gap.leader == "main"
    assert gaps.review_count_gap.value == -11150
    assert gaps.review_count_gap.leader == "competitor"
    assert g.group.highest_rated.asins == ("MAIN",)
    assert g.group.most_reviewed.asins == ("C1",)
    assert g.group.main_rank["rating"].rank == 1
    assert g.group.main_rank["review_count"].rank == 2


def test_missing_data_is_a_reason_never_zero() -> None:
    main = view("MAIN", price=49.99)
    oos = view("OOS", price=None, buy_box_price=None, availability=Availability.OUT_OF_STOCK)
    no_bsr = view("NOBSR", bsr_rank=None, bsr_category=None)
    never = ProductView("NEVER", "never fetched", None, [])
    g = compare_group(main, [oos, no_bsr, never], 30)

    oos_c = g.competitor("OOS")
    assert oos_c.product.price.value is None
    assert oos_c.product.price.reason == "no price: out of stock"
    assert oos_c.gaps.price_gap.reason == "competitor: no price: out of stock"
    assert oos_c.product.availability == "out_of_stock"
    assert g.group.out_of_stock == ("OOS",)

    assert g.competitor("NOBSR").product.bsr_rank.reason == "no BSR on page"
    assert g.competitor("NOBSR").gaps.bsr_log_ratio.reason == "competitor: no BSR on page"

    nev = g.competitor("NEVER")
    assert nev.product.fetched is False
    assert nev.product.availability == "never_fetched"
    assert nev.product.rating.reason == "never fetched"
    assert nev.gaps.review_count_gap.reason == "competitor: never fetched"

    # In the serialized form, unknowns are null with a reason, not 0.
    d = g.to_dict()
    oos_dict = d["competitors"][0]
    assert oos_dict["product"]["price"] == {"value": None, "reason": "no price: out of stock"}
    assert oos_dict["gaps"]["price_gap_pct"]["value"] is None
    json.dumps(d)  # serializable as is


def test_main_never_fetched_keeps_reasons_on_every_gap() -> None:
    main = ProductView("MAIN", "mine", None, [])
    g = compare_group(main, [view("C1")], 30)
    assert g.group.main_rank["price"].rank is None
    assert g.group.main_rank["price"].reason == "never fetched"
    assert g.competitor("C1").gaps.rating_gap.reason == "main: never fetched"


def test_prices_in_different_currencies_are_not_subtracted() -> None:
    main = view("MAIN", price=49.99)
    uk = view("UK", price=39.99, marketplace="co.uk")
    gaps = compare_group(main, [uk], 30).competitor("UK").gaps
    assert gaps.price_gap.value is None
    assert gaps.price_gap.reason == "different currencies (USD vs GBP)"


def test_review_velocity_is_reviews_per_day_from_first_to_last_point() -> None:
    reviews = [1000 + 10 * i for i in range(31)]  # +10 a day
    hist = daily(31, review_count=reviews)
    rival_hist = daily(31, review_count=[5000 + 40 * i for i in range(31)])
    g = compare_group(view("MAIN", hist), [view("C1", rival_hist)], 30)
    assert g.main.review_velocity.value == 10.0
    assert g.main.review_velocity.unit == "reviews/day"
    assert g.competitor("C1").gaps.review_velocity_gap.value == -30.0
    assert g.group.fastest_review_growth.asins == ("C1",)


def test_review_velocity_needs_two_days_of_counts() -> None:
    g = compare_group(view("MAIN", daily(1, review_count=[1000])), [view("C1")], 30)
    assert g.main.review_velocity.value is None
    assert g.main.review_velocity.reason == "only one day of review counts in window"
    assert g.competitor("C1").product.review_velocity.reason == "no history in window"


def test_review_velocity_skips_days_without_a_count() -> None:
    reviews = [None, 1000, None, 1010, 1020, None]
    g = compare_group(view("MAIN", daily(6, review_count=reviews)), [view("C1")], 30)
    assert g.main.review_velocity.value == pytest.approx(20 / 3, abs=0.01)


def test_trend_labels_over_the_window() -> None:
    days = 30
    cutter = daily(days, price=[49.99] * 20 + [39.99] * 10, bsr_rank=[800] * days)
    raiser = daily(days, price=[19.99] * 25 + [24.99] * 5, bsr_rank=[800] * days)
    climber = daily(days, price=[30.0] * days, bsr_rank=[2000 - 50 * i for i in range(days)])
    slider = daily(days, price=[30.0] * days, bsr_rank=[500 + 40 * i for i in range(days)])
    steady = daily(days, price=[30.0] * days, bsr_rank=[1000 + (i % 3) * 20 for i in range(days)])
    g = compare_group(
        view("MAIN", steady),
        [view("CUT", cutter), view("RAISE", raiser), view("CLIMB", climber), view("SLIDE", slider)],
        30,
    )
    cut = g.competitor("CUT").product
    assert cut.price_change_pct.value == -20.0
    assert cut.trend_labels == ("cutting_prices",)
    assert g.competitor("RAISE").product.trend_labels == ("raising_prices",)
    assert g.competitor("RAISE").product.price_change_pct.value == 25.0
    assert g.competitor("CLIMB").product.trend_labels == ("bsr_improving",)
    assert g.competitor("SLIDE").product.trend_labels == ("bsr_declining",)
    assert g.main.trend_labels == ("stable",)
    assert g.group.cutting_prices == ("CUT",)
    assert g.group.raising_prices == ("RAISE",)
    assert g.group.bsr_improving == ("CLIMB",)
    assert g.group.bsr_declining == ("SLIDE",)


def test_one_noisy_bsr_day_does_not_make_a_trend() -> None:
    bsr = [1000] * 29 + [3000]  # a single bad day at the end
    g = compare_group(view("MAIN", daily(30, bsr_rank=bsr, price=[30.0] * 30)), [], 30)
    assert g.main.bsr_change_pct.value == 0.0
    assert g.main.trend_labels == ("stable",)


def test_window_only_reads_the_last_n_days() -> None:
    # 90 days: a big cut 60 days ago, flat for the last 30.
    prices = [80.0] * 30 + [50.0] * 60
    hist = daily(90, price=prices)
    g7 = compare_group(view("MAIN", hist), [], 7)
    g90 = compare_group(view("MAIN", hist), [], 90)
    assert g7.main.price_change_pct.value == 0.0
    assert g7.main.history_points == 8  # both ends of a 7-day window are included
    assert g90.main.price_change_pct.value == -37.5
    assert "cutting_prices" in g90.main.trend_labels
    assert g7.window_end == START + timedelta(days=89)
    assert g7.window_start == START + timedelta(days=82)


def test_window_is_shared_across_the_group() -> None:
    # The rival's history stopped 20 days before ours: in a 7-day window it has none.
    ours = daily(40, price=[30.0] * 40)
    theirs = daily(20, price=[50.0] * 10 + [40.0] * 10)
    g = compare_group(view("MAIN", ours), [view("C1", theirs)], 7)
    assert g.competitor("C1").product.price_change_pct.reason == "no history in window"


def test_trend_without_history_has_no_label_and_a_reason() -> None:
    g = compare_group(view("MAIN"), [], 30)
    assert g.main.trend_labels == ()
    assert g.main.price_change_pct.reason == "no history in window"


def test_metric_keys_only_name_metrics_with_data() -> None:
    main = view("MAIN", bsr_rank=None, bsr_category=None)
    g = compare_group(main, [view("C1", bsr_rank=None, bsr_category=None)], 30)
    keys = g.metric_keys()
    assert "price_gap_pct" in keys and "main_rank.price" in keys and "availability" in keys
    assert "bsr_gap" not in keys and "bsr_log_ratio" not in keys and "main_rank.bsr" not in keys
    assert g.to_dict()["metric_keys"] == keys


def test_to_dict_shape() -> None:
    hist = daily(8, price=[30.0] * 8, review_count=list(range(100, 108)))
    g = compare_group(view("MAIN", hist), [view("C1", price=25.0)], 7)
    d = json.loads(json.dumps(g.to_dict()))
    assert d["window_days"] == 7
    assert set(d) >= {"main", "competitors", "group", "metric_keys", "window_start"}
    assert d["main"]["price"] == {"value": 39.99, "reason": None, "unit": "USD"}
    assert d["competitors"][0]["gaps"]["price_gap"]["leader"] == "competitor"
    assert d["group"]["cheapest"] == {"asins": ["C1"], "value": 25, "reason": None}
    assert d["group"]["main_rank"]["price"] == {"rank": 2, "of": 2, "reason": None}
    assert math.isclose(d["main"]["review_velocity"]["value"], 1.0)


def test_window_days_must_be_positive() -> None:
    with pytest.raises(ValueError):
        compare_group(view("MAIN"), [], 0)
