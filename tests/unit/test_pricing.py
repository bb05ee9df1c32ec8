"""Pricing: the BSR price elasticity of a product's own history (planted, noise, too little
variation, confounders), currency truth (never compare across currencies), and the pricing
assessment with and without a group."""

from __future__ import annotations

import math
import random
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from amazon_pilot.domain import elasticity
from amazon_pilot.domain.currency import money, split_by_currency
from amazon_pilot.domain.elasticity import estimate
from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import assess_pricing, suggest
from tests.unit.test_suggestions import product, rivals

T0 = datetime(2026, 3, 1, 14, tzinfo=UTC)
LEVELS = (1.0, 1.1, 0.92, 1.05)  # price levels, each held 8 days


def planted(b: float, *, days: int = 60, noise: float = 0.1, seed: int = 1,
            price0: float = 39.99, sub_only: bool = False) -> list[HistoryPoint]:
    """Daily history whose log BSR moves b times the log price, plus AR(1) noise."""
    rng, ar, out = random.Random(seed), 0.0, []
    for d in range(days):
        price = round(price0 * LEVELS[(d // 8) % 4], 2)
        ar = 0.5 * ar + rng.gauss(0, noise)
        rank = round(400 * math.exp(b * math.log(price / price0) + ar))
        out.append(HistoryPoint(T0 + timedelta(days=d), price=price, in_stock=True,
                                bsr_rank=None if sub_only else rank,
                                subcategory_bsr=rank if sub_only else None))
    return out


# ---------------------------------------------------------------- the estimate


@pytest.mark.parametrize("b", [0.5, 1.0, 2.5])
def test_a_planted_elasticity_is_recovered_with_an_interval(b: float) -> None:
    e = estimate(planted(b, noise=0.02))
    assert e.status == "estimated" and e.rank_source == "bsr"
    assert e.elasticity == pytest.approx(b, abs=0.15)
    assert e.interval is not None and e.interval[0] < b < e.interval[1]
    assert e.usable_days == 60 and len(e.price_levels) == 4


def test_the_interval_covers_the_planted_value_about_as_often_as_it_says() -> None:
    hits = sum(1 for s in range(60)
               if (i := estimate(planted(1.0, noise=0.3, seed=s)).interval) and i[0] <= 1 <= i[1])
    assert hits >= 54  # 95% nominal; 90% is the floor a 60-draw test can hold to


def test_noise_gives_no_false_estimate() -> None:
    statuses = Counter(estimate(planted(0.0, noise=0.4, seed=s)).status for s in range(60))
    assert statuses["estimated"] <= 3  # a 95% interval: about 1 in 40 by chance
    assert statuses["no_response"] >= 50
    e = estimate(planted(0.0, noise=0.4, seed=0))
    assert e.status == "no_response" and "includes 0" in e.reason


def test_too_little_price_variation_says_why() -> None:
    flat = [replace(p, price=39.99) for p in planted(1.0)]
    e = estimate(flat)
    assert e.status == "not_possible" and e.elasticity is None
    assert "too little price variation" in e.reason and "39.99-39.99" in e.reason
    # A single 2-day dip is not a price level either.
    dip = [replace(p, price=35.0 if i in (10, 11) else 39.99) for i, p in enumerate(flat)]
    assert estimate(dip).status == "not_possible"


def test_under_30_days_is_no_estimate() -> None:
    e = estimate(planted(2.0)[:25])
    assert e.status == "not_possible" and "only 25 days of history" in e.reason


def test_out_of_stock_days_are_excluded() -> None:
    hist = planted(1.5, noise=0.02)
    # Out of stock on the cheap days: the rank there is nonsense (no sales), and stays out.
    broken = [replace(p, in_stock=False, bsr_rank=99999) if 20 <= i < 24 else p
              for i, p in enumerate(hist)]
    e = estimate(broken)
    assert e.excluded["out_of_stock"] == 4 and e.usable_days == 56
    assert e.elasticity == pytest.approx(1.5, abs=0.2)


def test_deal_days_are_excluded() -> None:
    # A deal on the dear days lifts the rank there: read naively, price looks irrelevant.
    hist = planted(2.0, noise=0.02)
    dealt = [replace(p, has_deal=True, bsr_rank=150) if p.price and p.price > 42 else p
             for p in hist]
    e = estimate(dealt)
    assert e.excluded["deal"] == 16
    assert e.elasticity == pytest.approx(2.0, abs=0.2)
    assert estimate([replace(p, has_deal=None) for p in dealt]).elasticity != pytest.approx(
        2.0, abs=0.2)


def test_sub_bsr_is_the_fallback() -> None:
    e = estimate(planted(1.5, noise=0.05, sub_only=True))
    assert e.status == "estimated" and e.rank_source == "subcategory_bsr"
    assert "sub-category BSR" in e.reason


def test_rank_improving_as_price_rises_is_not_advice() -> None:
    e = estimate(planted(-2.0, noise=0.05))
    assert e.status == "implausible" and not e.usable
    assert assess_pricing(product(), [], planted(-2.0, noise=0.05)).suggestion is None


def test_the_same_history_gives_the_same_answer() -> None:
    hist = planted(1.0, noise=0.3)
    assert estimate(hist).to_dict() == estimate(list(hist)).to_dict()


def _plain_slope(rows: list[tuple[float, float, float]]) -> float | None:
    """The two-step regression in plain Python, as elasticity computed it before numpy."""
    t, lp, lr = ([r[i] for r in rows] for i in range(3))
    mt = sum(t) / len(t)
    stt = sum((a - mt) ** 2 for a in t)

    def residuals(y: list[float]) -> list[float]:
        my = sum(y) / len(t)
        sty = sum((a - mt) * (b - my) for a, b in zip(t, y, strict=True))
        slope = 0.0 if stt == 0 else sty / stt
        return [b - my - slope * (a - mt) for a, b in zip(t, y, strict=True)]

    px, ry = residuals(lp), residuals(lr)
    sxx = sum(v * v for v in px)
    return None if sxx < 1e-8 else sum(a * b for a, b in zip(px, ry, strict=True)) / sxx


@pytest.mark.parametrize("seed", range(40))
def test_the_numpy_fit_gives_the_plain_pythons_digits(seed: int) -> None:
    """_slope and the bootstrap's error read numpy vectors but add left to right, as
    Python's sum() does (and square with pow): the same bits as the plain loops."""
    rng = random.Random(seed)
    days = rng.choice([30, 61, 90, 180])
    rows = [(d + rng.choice([0.0, 0.25, 1 / 3]), math.log(rng.choice([19.99, 21.5, 24.0])),
             math.log(rng.randint(100, 90000))) for d in range(days)]
    data = np.array(rows)
    assert elasticity._slope(data[:, 0], data[:, 1], data[:, 2]) == _plain_slope(rows)
    boots, _ = elasticity._bootstrap(rows, data)
    mean = sum(boots.tolist()) / len(boots)
    plain = math.sqrt(sum((v - mean) ** 2 for v in boots.tolist()) / (len(boots) - 1))
    fit = elasticity._fit.__wrapped__(tuple(rows))
    assert fit is None or fit[1] == plain


# ---------------------------------------------------------------- currency


def test_money_says_its_currency() -> None:
    assert money(12.5, "USD") == "$12.50"
    assert money(12.5, "EUR") == "€12.50"
    assert money(1980, "JPY") == "¥1,980"
    assert money(12.5, "SEK") == "12.50 SEK"


def test_other_currencies_are_left_out_with_the_reason() -> None:
    comps = rivals()
    comps[0] = replace(comps[0], marketplace="de")
    comps[1] = replace(comps[1], marketplace="co.jp", price=5400.0)
    split = split_by_currency(product(), comps)
    assert split.currency == "USD"
    assert [c.asin for c in split.compared] == ["B0CAMPC003", "B0IRONW004"]
    assert [(x["asin"], x["currency"]) for x in split.left_out] == [
        ("B0FORGE001", "EUR"), ("B0HEARTH02", "JPY")]


def test_price_position_ranks_only_same_currency_prices() -> None:
    comps = [replace(c, marketplace="co.jp", price=c.price * 150) for c in rivals()[:2]]
    comps += rivals()[2:]
    rule = score_listing(product(price=47.99), comps).rule("price_position")
    assert rule.evidence["currency"] == "USD"
    assert rule.evidence["median"] == pytest.approx(40.0)  # 42.00 and 38.00, no yen
    assert "$47.99" in rule.detail and "$40.00" in rule.detail
    assert "B0FORGE001" in rule.detail and "JPY" in rule.detail
    mixed = [replace(c, marketplace="de") for c in rivals()]
    rule = score_listing(product(), mixed).rule("price_position")
    assert not rule.applicable
    assert "cannot compare prices in different currencies" in rule.detail


# ---------------------------------------------------------------- the assessment


def no_lead() -> Snapshot:
    return product(price=47.99, rating=4.4, review_count=1200)


def test_with_a_group_the_cut_is_to_the_same_currency_median() -> None:
    a = assess_pricing(no_lead(), rivals(), [])
    assert a.status == "advice" and a.suggestion is not None
    assert a.suggestion.change == (
        "Lower the price to $35.39-$37.25 (the same-currency median band).")
    ev = a.suggestion.evidence
    assert ev["currency"] == "USD" and ev["market"]["median"] == 37.25
    assert ev["history"]["status"] == "not_possible"


def test_a_mixed_group_says_it_cannot_compare_and_lists_them() -> None:
    mixed = [replace(c, marketplace=m) for c, m in zip(rivals(), ["de", "co.uk", "co.jp", "de"],
                                                      strict=True)]
    a = assess_pricing(no_lead(), mixed, [])
    assert a.suggestion is None and a.status == "no_assessment"
    assert "cannot compare prices in different currencies" in a.reason
    for asin, cur in [("B0FORGE001", "EUR"), ("B0HEARTH02", "GBP"), ("B0CAMPC003", "JPY")]:
        assert f"{asin} ({cur}" in a.reason
    assert a.market is not None and len(a.market["left_out"]) == 4
    got = suggest(no_lead(), mixed, score_listing(no_lead(), mixed), [])
    assert "pricing" not in {s.type for s in got}


def test_without_a_group_history_leads() -> None:
    cheap_rank = assess_pricing(product(), [], planted(2.5, noise=0.02))
    assert cheap_rank.status == "advice" and cheap_rank.suggestion is not None
    assert cheap_rank.suggestion.change == "Lower the price to $37.99-$38.99 as a test."
    ev = cheap_rank.suggestion.evidence
    assert ev["market"] is None and ev["currency"] == "USD"
    assert ev["expected_bsr_change"] < 0
    lo, hi = ev["expected_bsr_change_interval"]
    assert lo <= ev["expected_bsr_change"] <= hi
    assert "no competitor group" in cheap_rank.reason
    assert "competitors average" not in cheap_rank.reason
    flat_rank = assess_pricing(product(), [], planted(0.4, noise=0.02))
    assert flat_rank.suggestion is not None
    assert flat_rank.suggestion.change.startswith("Raise the price to $40.99-$41.99")


def test_without_a_group_and_without_variation_the_reason_is_given() -> None:
    flat = [replace(p, price=39.99) for p in planted(1.0)]
    a = assess_pricing(product(), [], flat)
    assert a.status == "no_assessment" and a.suggestion is None
    assert "too little price variation" in a.reason
    assert a.to_dict()["history"]["status"] == "not_possible"


def test_no_price_now_is_said() -> None:
    a = assess_pricing(product(price=None), rivals(), planted(1.0))
    assert a.status == "no_assessment" and "no price" in a.reason
    mixed = [replace(c, marketplace="de") for c in rivals()]
    assert "B0FORGE001 (priced in EUR" in assess_pricing(product(price=None), mixed, []).reason


def test_a_hold_says_why() -> None:
    lead = assess_pricing(product(price=47.99), rivals(), [])  # rating 4.7 leads the group
    assert lead.status == "hold" and "lead justifies the premium" in lead.reason
    in_line = assess_pricing(product(price=38.5, rating=4.4, review_count=1200), rivals(), [])
    assert in_line.status == "hold" and "within 10% of the median" in in_line.reason


def test_history_can_veto_the_groups_cut() -> None:
    # The group says cut (no lead, +29%), but the rank barely answers price.
    a = assess_pricing(no_lead(), rivals(), planted(0.3, noise=0.02, price0=47.99))
    assert a.status == "hold" and a.suggestion is None
    assert "hold the price" in a.reason


EARBUD = "Buds {} Wireless Earbuds"


def earbud(asin: str, price: float, bullets: list[str], **kw: object) -> Snapshot:
    fields: dict[str, object] = {"rating": 4.2, "review_count": 800, **kw}
    return Snapshot(asin=asin, brand=asin, title=EARBUD.format(asin), price=price,
                    currency="USD", bullet_points=bullets, **fields)  # type: ignore[arg-type]


def test_a_feature_only_one_rival_has_is_not_given_away_silently() -> None:
    main = earbud("B0MAINBUD1", 79.99, ["Hybrid active noise cancelling blocks traffic.",
                                        "Comfortable fit for all-day wear."], rating=4.0,
                  review_count=500)
    comps = [earbud("B0ANCRIVAL", 74.99, ["Active noise cancelling for flights."]),
             earbud("B0PLAIN001", 49.99, ["Comfortable fit for all-day wear."]),
             earbud("B0PLAIN002", 52.99, ["Bluetooth 5.3 for a stable link."]),
             earbud("B0PLAIN003", 55.00, ["Bluetooth 5.3 for a stable link."])]
    a = assess_pricing(main, comps, [])
    assert a.suggestion is not None
    change, reason = a.suggestion.change, a.suggestion.reason
    assert "not to the median $54.00" in change
    assert "$74.99" in change  # the one rival with ANC prices the feature
    assert "active noise cancelling" in reason and "only B0ANCRIVAL also has it" in reason
    assert "would give that premium up" in reason


def test_a_group_whose_members_are_all_out_of_stock_gets_a_reason_not_a_cut() -> None:
    from amazon_pilot.domain.snapshot import Availability

    gone = [replace(c, price=None, buy_box_price=None, buy_box_seller=None,
                    availability=Availability.OUT_OF_STOCK) for c in rivals()]
    a = assess_pricing(no_lead(), gone, [])
    assert a.status in ("hold", "no_assessment") and a.suggestion is None
    assert "no competitor has a price today" in a.reason, a.reason
    assert "different currencies" not in a.reason
    got = suggest(no_lead(), gone, score_listing(no_lead(), gone), [])
    assert "pricing" not in {s.type for s in got}
    assert all(s.change for s in got)  # every suggestion still says what to change
