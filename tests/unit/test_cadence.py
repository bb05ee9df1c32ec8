"""The cadence rules and the budget's choice of products to stretch (domain/cadence.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from amazon_pilot.domain import cadence
from amazon_pilot.domain.cadence import Tracking, plan_budget

NOW = datetime(2026, 12, 16, tzinfo=UTC)  # 16 days left in December


def test_auto_is_every_three_days_only_after_a_quiet_week() -> None:
    old = NOW - timedelta(days=30)
    assert cadence.is_stable(old, None, NOW)
    assert not cadence.is_stable(old, NOW - timedelta(days=2), NOW)  # an alert 2 days ago
    assert not cadence.is_stable(NOW - timedelta(days=3), None, NOW)  # tracked 3 days
    assert cadence.effective("auto", stable=True) == "3d"
    assert cadence.effective("auto", stable=False) == "1d"
    assert cadence.effective("12h", stable=True) == "12h"
    assert cadence.effective("12h", stable=True, stretched=True) == "7d"


def test_next_due_keeps_the_plans_slack() -> None:
    at = NOW - timedelta(hours=1)
    assert cadence.next_due(at, "1d") == at + timedelta(hours=20)
    assert cadence.next_due(None, "7d") is None


def test_a_budget_that_fits_stretches_nothing() -> None:
    trackings = [Tracking("a", "1d", stable=False)]
    answer = plan_budget(10.0, 100, trackings, 0.00125, NOW)
    # 100 results so far + 16 days x 1 a day, at $1.25 per 1,000
    assert answer.projected_usd == pytest.approx(116 * 0.00125)
    assert answer.stretched == () and answer.reason is None


def test_stable_products_are_stretched_first_and_only_as_many_as_needed() -> None:
    trackings = [Tracking("moving", "1d", stable=False), Tracking("quiet", "1d", stable=True),
                 Tracking("quiet-fast", "12h", stable=True)]
    spent, price = 0, 1.0  # a dollar a result keeps the arithmetic readable
    # unstretched: 16 days x (1 + 1 + 2) = $64; the 12-hour stable one weekly saves
    # 16 x (2 - 1/7) = $29.7 -> $34.3
    answer = plan_budget(40.0, spent, trackings, price, NOW)
    assert answer.unstretched_usd == pytest.approx(64)
    assert answer.stretched == ("quiet-fast",) and answer.stretched_stable == 1
    assert answer.projected_usd == pytest.approx(64 - 16 * (2 - 1 / 7))
    assert "fetched weekly" in (answer.reason or "")
    both = plan_budget(21.0, spent, trackings, price, NOW)  # $34.3 - 16 x 6/7 = $20.6
    assert both.stretched == ("quiet-fast", "quiet")  # then the other stable one


def test_an_impossible_budget_says_so_and_drops_nothing() -> None:
    trackings = [Tracking("a", "1d", stable=False), Tracking("b", "auto", stable=True)]
    answer = plan_budget(0.0, 10, trackings, 1.0, NOW)
    assert answer.stretched == ("b", "a")  # every product weekly, none dropped
    assert answer.projected_usd > 0
    assert "nothing is dropped" in (answer.reason or "")

