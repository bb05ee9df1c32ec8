"""How often a tracked product is fetched, and what a seller's monthly fetch budget allows.

A seller chooses a cadence per tracked product (`refresh_every`): 12h, 1d (the default),
3d, 7d, or `auto`. The shared product is fetched when any seller (or an active competitor
group, which counts as daily) wants it: its last observation is older than the smallest
wanted interval less SLACK, because the daily plan runs once a day, not to the minute.

`auto` reads data we keep anyway: a tracking is *stable* when it has had no price, Buy Box
or BSR alert (MOVERS) for STABLE_FOR and was tracked at least that long. Alerts fire
only past the seller's thresholds, so "no such alert" means "every move stayed within
the thresholds". Stable `auto` products are fetched every 3 days; the first alert makes
them daily again (the alert moves the tracking's `moved_at`).

A budget (`monthly_fetch_budget_usd`) prices the month: results already fetched for the
seller's products this month plus the projected fetches to its end, each at the price per
result. Over budget, the plan stretches products to STRETCHED (weekly), stable ones first,
until the projection fits; it never drops a product. Plain Python: no I/O.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from amazon_pilot.domain.changes import AlertType

CADENCES: dict[str, timedelta] = {
    "12h": timedelta(hours=12),
    "1d": timedelta(days=1),
    "3d": timedelta(days=3),
    "7d": timedelta(days=7),
}
AUTO = "auto"
REFRESH_EVERY: tuple[str, ...] = (*CADENCES, AUTO)
DEFAULT = "1d"
GROUP_CADENCE = "1d"  # an active competitor group compares daily figures
AUTO_MOVING, AUTO_STABLE = "1d", "3d"
STRETCHED = "7d"  # what an over-budget seller's products are stretched to
STABLE_FOR = timedelta(days=7)
SLACK = timedelta(hours=4)  # a daily product observed 20 h ago is due again
MOVERS: frozenset[AlertType] = frozenset({
    AlertType.PRICE_CHANGE, AlertType.TARGET_PRICE_REACHED,
    AlertType.BUY_BOX_LOST, AlertType.BUY_BOX_SELLER_CHANGE, AlertType.BUY_BOX_PRICE_CHANGE,
    AlertType.BUY_BOX_REGAINED, AlertType.BUY_BOX_SUPPRESSED,
    AlertType.BSR_CHANGE, AlertType.SUBCATEGORY_BSR_CHANGE,
})


def is_stable(tracked_since: datetime, moved_at: datetime | None, now: datetime) -> bool:
    """No mover alert for STABLE_FOR, and tracked at least that long."""
    last = max(tracked_since, moved_at) if moved_at is not None else tracked_since
    return last < now - STABLE_FOR


def effective(refresh_every: str, *, stable: bool, stretched: bool = False) -> str:
    """The cadence the plan applies to one tracking."""
    if stretched:
        return STRETCHED
    if refresh_every == AUTO:
        return AUTO_STABLE if stable else AUTO_MOVING
    return refresh_every


def fetches_per_day(cadence: str) -> float:
    return timedelta(days=1) / CADENCES[cadence]


def next_due(latest_captured_at: datetime | None, cadence: str) -> datetime | None:
    """When the plan fetches the product again for this cadence (None: at the next plan,
    it was never observed)."""
    if latest_captured_at is None:
        return None
    return latest_captured_at + CADENCES[cadence] - SLACK


# ---------------------------------------------------------------- the monthly budget


def month_start(now: datetime) -> datetime:
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def days_left(now: datetime) -> float:
    """Days from `now` to the end of its month."""
    days = calendar.monthrange(now.year, now.month)[1]
    return (month_start(now) + timedelta(days=days) - now) / timedelta(days=1)


@dataclass(frozen=True)
class Tracking:
    """One of the seller's active trackings, as the budget sees it."""

    key: str
    refresh_every: str
    stable: bool


@dataclass(frozen=True)
class BudgetAnswer:
    budget_usd: float
    month_to_date_usd: float
    projected_usd: float  # with the stretching applied
    unstretched_usd: float  # what the month would cost at the chosen cadences
    stretched: tuple[str, ...]  # keys of the trackings stretched to STRETCHED
    stretched_stable: int
    reason: str | None  # why products were stretched, or why it still does not fit

    def as_dict(self) -> dict[str, object]:
        return {"budget_usd": self.budget_usd,
                "month_to_date_usd": round(self.month_to_date_usd, 4),
                "projected_usd": round(self.projected_usd, 4),
                "unstretched_usd": round(self.unstretched_usd, 4),
                "stretched_products": len(self.stretched),
                "stretched_stable": self.stretched_stable, "reason": self.reason}


def plan_budget(budget_usd: float, spent_results: int, trackings: Sequence[Tracking],
                price_per_result: float, now: datetime) -> BudgetAnswer:
    """Which trackings to stretch so the month fits the budget: stable ones first, then
    the others, the most frequent first within each (they save the most)."""
    spent = spent_results * price_per_result
    per_day = price_per_result * days_left(now)

    def rate(t: Tracking, stretched: bool = False) -> float:
        return fetches_per_day(effective(t.refresh_every, stable=t.stable, stretched=stretched))

    unstretched = spent + per_day * sum(rate(t) for t in trackings)
    projected = unstretched
    chosen: list[Tracking] = []
    order = sorted(trackings, key=lambda t: (not t.stable, -rate(t), t.key))
    for t in order:
        if projected <= budget_usd:
            break
        saving = per_day * (rate(t) - rate(t, stretched=True))
        if saving <= 0:
            continue
        chosen.append(t)
        projected -= saving
    stable = sum(1 for t in chosen if t.stable)
    reason = None
    if chosen:
        reason = (f"the month would cost ${unstretched:,.2f} against a budget of"
                  f" ${budget_usd:,.2f} (${spent:,.2f} spent so far): {len(chosen)} product(s)"
                  f" fetched weekly instead ({stable} stable first)")
    if projected > budget_usd:
        reason = ((reason + "; ") if reason else "") + (
            f"still ${projected:,.2f} projected with every product weekly: nothing is"
            " dropped; raise the budget or track fewer products")
    return BudgetAnswer(budget_usd, spent, projected, unstretched,
                        tuple(t.key for t in chosen), stable, reason)
