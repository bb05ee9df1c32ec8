"""Before/after experiments on synthetic series with known planted effects."""

from __future__ import annotations

import json
import math
import re
from datetime import date, datetime, timedelta

import numpy as np
import pytest

from amazon_pilot.domain.experiments import (
    analyze_experiment,
    find_past_changes,
    series_from_history,
)
from amazon_pilot.domain.snapshot import HistoryPoint

START = date(2026, 1, 1)


def ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    """Stationary AR(1) noise with innovation sd `sd`."""
    e = rng.standard_normal(n) * sd
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1 - rho * rho)
    for i in range(1, n):
        x[i] = rho * x[i - 1] + e[i]
    return x


def days(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def bsr_world(
    seed: int,
    *,
    n_before: int = 60,
    n_after: int = 30,
    effect: float = 0.0,
    control_shift: float = 0.0,
    rho: float = 0.5,
    sd: float = 0.08,
    n_controls: int = 4,
) -> tuple[dict, list[dict], date]:
    """Log-BSR around 5,000 with AR(1) noise; the change lands on day n_before. `effect` is
    the relative BSR change after it (-0.3 = rank number 30% lower = better)."""
    rng = np.random.default_rng(seed)
    n = n_before + 1 + n_after
    ds = days(n)
    changed_at = ds[n_before]
    log_p = math.log(5000) + ar1(rng, n, rho, sd)
    log_p[n_before + 1 :] += math.log1p(effect)
    product = {"bsr": [(d, float(math.exp(v))) for d, v in zip(ds, log_p, strict=True)]}
    controls = []
    for j in range(n_controls):
        log_c = math.log(2000 * (j + 1)) + ar1(rng, n, rho, sd)
        log_c[n_before + 1 :] += math.log1p(control_shift)
        controls.append({"bsr": [(d, float(math.exp(v))) for d, v in zip(ds, log_c, strict=True)]})
    return product, controls, changed_at


def test_planted_improvement_is_found() -> None:
    product, controls, changed_at = bsr_world(1, effect=-0.3)
    result = analyze_experiment(product, controls, changed_at)
    bsr = result.metrics["bsr"]
    assert result.verdict == "improved" and bsr.verdict == "improved"
    assert result.primary_metric == "bsr"
    assert bsr.effect_pct == pytest.approx(-0.3, abs=0.06)
    assert bsr.ci_high is not None and bsr.ci_high < 0
    assert bsr.ci_low is not None and bsr.ci_low < math.log(0.7) < bsr.ci_high
    assert bsr.p_value is not None and bsr.p_value < 0.1
    assert bsr.n_before == 60 and bsr.n_after == 30 and bsr.n_controls == 4
    assert abs(bsr.control_change or 0) < 0.05
    assert not any("control moved" in w for w in result.warnings)


def test_planted_worsening_is_found() -> None:
    product, controls, changed_at = bsr_world(2, effect=0.3)
    result = analyze_experiment(product, controls, changed_at)
    assert result.verdict == "worse"
    assert result.metrics["bsr"].effect_pct == pytest.approx(0.3, abs=0.08)


def test_false_positive_rate_on_pure_noise() -> None:
    confidence, seeds = 0.9, 200
    flagged = 0
    for seed in range(seeds):
        product, controls, changed_at = bsr_world(1000 + seed, n_before=45, n_after=30)
        result = analyze_experiment(
            product, controls, changed_at, n_boot=300, seed=seed, confidence=confidence
        )
        flagged += result.verdict in ("improved", "worse")
    rate = flagged / seeds
    # Nominal 10%; binomial sd at 200 seeds is ~2.1 points, so allow about 3 sd.
    assert rate <= (1 - confidence) + 0.06, rate


def test_ci_and_p_value_agree() -> None:
    for seed in range(20):
        product, controls, changed_at = bsr_world(seed, effect=-0.04)
        bsr = analyze_experiment(product, controls, changed_at, n_boot=500).metrics["bsr"]
        assert bsr.ci_low is not None and bsr.ci_high is not None and bsr.p_value is not None
        excludes_zero = bsr.ci_low > 0 or bsr.ci_high < 0
        assert excludes_zero == (bsr.p_value < 0.1)


def test_too_early_when_after_window_is_short() -> None:
    product, controls, changed_at = bsr_world(3, effect=-0.3, n_after=5)
    result = analyze_experiment(product, controls, changed_at, min_days_each_side=7)
    assert result.verdict == "too_early"
    bsr = result.metrics["bsr"]
    assert bsr.verdict == "too_early" and bsr.n_after == 5
    assert bsr.effect is not None and bsr.p_value is None  # estimate shown, no verdict


def test_too_early_when_before_window_is_short() -> None:
    product, controls, changed_at = bsr_world(4, n_before=4)
    assert analyze_experiment(product, controls, changed_at).verdict == "too_early"


def test_control_moved_warning_says_by_how_much() -> None:
    # The whole market got 40% worse ranks; our product moved with it: no effect of ours.
    product, controls, changed_at = bsr_world(5, effect=0.4, control_shift=0.4)
    result = analyze_experiment(product, controls, changed_at)
    moved = [w for w in result.warnings if w.startswith("control moved")]
    assert moved and "bsr" in moved[0]
    pct = re.search(r"changed by ([+-]\d+)%", moved[0])
    assert pct is not None and 30 <= int(pct.group(1)) <= 50  # planted +40%
    assert result.metrics["bsr"].control_change == pytest.approx(math.log(1.4), abs=0.05)
    assert result.verdict == "no_detectable_effect"


def test_mid_experiment_change_warning() -> None:
    product, controls, changed_at = bsr_world(6, effect=-0.3)
    others = [
        (changed_at + timedelta(days=12), "price 24.99 -> 21.99"),
        (changed_at - timedelta(days=20), "title edited"),  # before the window: irrelevant
    ]
    result = analyze_experiment(product, controls, changed_at, other_changes=others)
    mid = [w for w in result.warnings if w.startswith("another change")]
    assert len(mid) == 1 and "price 24.99 -> 21.99" in mid[0]


def test_missing_days_warning() -> None:
    product, controls, changed_at = bsr_world(7, effect=-0.3)
    after = [(d, v) for d, v in product["bsr"] if d > changed_at]
    kept = [(d, v if i % 5 not in (1, 3) else None) for i, (d, v) in enumerate(after)]
    product["bsr"] = [(d, v) for d, v in product["bsr"] if d <= changed_at] + kept
    result = analyze_experiment(product, controls, changed_at)
    assert any("40% of the days after the change have no data" in w for w in result.warnings)
    assert result.metrics["bsr"].n_after == 18


def test_no_control_is_plain_before_after_with_warning() -> None:
    product, _, changed_at = bsr_world(8, effect=-0.3)
    result = analyze_experiment(product, [], changed_at)
    assert result.verdict == "improved"
    assert any(w.startswith("no control series") for w in result.warnings)


def test_direction_aware_for_higher_is_better_metrics() -> None:
    rng = np.random.default_rng(9)
    ds = days(61)
    changed_at = ds[40]
    rating = 4.1 + 0.02 * rng.standard_normal(61)
    rating[41:] += 0.3
    won = np.r_[rng.random(40) < 0.3, [1.0], rng.random(20) < 0.9].astype(float)
    reviews = np.cumsum(np.r_[rng.poisson(3, 41), rng.poisson(9, 20)]).astype(float)
    product: dict[str, list[tuple[date, float | None]]] = {
        "rating": [(d, float(v)) for d, v in zip(ds, rating, strict=True)],
        "buy_box_share": [(d, float(v)) for d, v in zip(ds, won, strict=True)],
        "review_count": [(d, float(v)) for d, v in zip(ds, reviews, strict=True)],
        "price": [(d, 29.99 if i <= 40 else 24.99) for i, d in enumerate(ds)],
    }
    result = analyze_experiment(product, [], changed_at)
    m = result.metrics
    assert m["rating"].verdict == "improved" and m["rating"].effect == pytest.approx(0.3, abs=0.05)
    assert m["buy_box_share"].verdict == "improved"
    assert m["review_velocity"].verdict == "improved"
    assert m["review_velocity"].effect == pytest.approx(6, abs=1.5)
    assert m["price"].informational and m["price"].effect_pct == pytest.approx(-0.1667, abs=1e-3)
    # With no BSR the first non-informational metric decides.
    assert result.primary_metric == "review_velocity"


def test_reproducible_and_json_ready() -> None:
    product, controls, changed_at = bsr_world(10, effect=-0.2)
    a = analyze_experiment(product, controls, changed_at, seed=3).to_dict()
    b = analyze_experiment(product, controls, changed_at, seed=3).to_dict()
    assert a == b
    assert json.loads(json.dumps(a)) == a
    assert a["after_window"] == {"start": "2026-03-03", "end": "2026-04-01"}
    assert a["before_window"] == {"start": "2026-01-01", "end": "2026-03-01"}


def test_block_len_override_is_used() -> None:
    product, controls, changed_at = bsr_world(11, effect=-0.3)
    result = analyze_experiment(product, controls, changed_at, block_len=7)
    assert result.metrics["bsr"].block_len == 7


def _hp(day: int, hour: int = 12, **kw: object) -> HistoryPoint:
    return HistoryPoint(captured_at=datetime(2026, 5, 1, hour) + timedelta(days=day), **kw)  # type: ignore[arg-type]


def test_find_past_changes() -> None:
    title = "Emberline Cast Iron Skillet 12 Inch"
    history = [
        _hp(0, price=39.99, list_price=49.99, title=title),
        _hp(1, price=39.49, list_price=49.99, title=title),  # -1.3%: repricer noise
        _hp(2, price=None, title=None),  # unknown is not a change
        _hp(3, 8, price=29.99, title=title),  # intraday flap, the day's last value wins
        _hp(3, 20, price=35.99, title="Emberline  Cast Iron Skillet 12 Inch"),
        _hp(5, price=35.99, list_price=44.99, title=title + ", Pre-Seasoned"),
    ]
    changes = find_past_changes(history)
    assert [(c.date.isoformat(), c.kind, c.old, c.new) for c in changes] == [
        ("2026-05-04", "price", 39.49, 35.99),
        ("2026-05-06", "list_price", 49.99, 44.99),
        ("2026-05-06", "title", title, title + ", Pre-Seasoned"),
    ]
    assert changes[0].to_dict()["date"] == "2026-05-04"


def test_series_from_history_feeds_an_experiment() -> None:
    history = [
        _hp(
            i,
            price=20.0,
            bsr_rank=3000 if i < 20 else 2000,
            review_count=100 + i,
            rating=4.5,
            buy_box_seller="Emberline Direct" if i % 2 else "Other Seller",
        )
        for i in range(40)
    ]
    series = series_from_history(history, our_seller="emberline direct")
    assert series["buy_box_share"][:2] == [(date(2026, 5, 1), 0.0), (date(2026, 5, 2), 1.0)]
    changed = find_past_changes(history)
    assert changed == []
    result = analyze_experiment(series, [], date(2026, 5, 20))
    assert result.metrics["bsr"].effect_pct == pytest.approx(-1 / 3, abs=1e-6)
    assert result.metrics["review_velocity"].effect == pytest.approx(0.0)
