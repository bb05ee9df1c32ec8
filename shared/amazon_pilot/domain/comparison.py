"""Side-by-side numbers for a main product and its 3-5 competitors.

Pure: takes snapshots and daily history, returns typed results. Conventions a caller can
rely on:

* Every gap is **main minus competitor**. A positive ``price_gap`` means the main product
  is more expensive; a negative ``bsr_gap`` means the main product ranks better.
* ``bsr_ratio`` is main rank / competitor rank and ``bsr_log_ratio`` its log10: below 1
  (resp. below 0) the main product sells better. BSR is roughly a power law of sales,
  so the log-ratio is the fairer "how far apart" number (-1 = ten times better rank).
* Gap metrics carry ``leader`` ("main" | "competitor" | "tie"): who is ahead under the
  metric's direction (cheaper, lower rank, higher rating, more reviews, faster growth).
* A missing number is ``Metric(value=None, reason=...)``, never 0.
* The window ends at the newest history point of the whole group (so every product is
  judged on the same days) unless ``as_of`` is given; no clock is read here.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Literal

from amazon_pilot.domain.snapshot import (
    MARKETPLACE_CURRENCY,
    Availability,
    HistoryPoint,
    Snapshot,
)

Direction = Literal["lower", "higher"]
MetricValue = float | int | None

# A price move of 3% is what a shopper notices in a listing; BSR swings daily, so it
# needs a wider band before we call it a trend.
PRICE_TREND_THRESHOLD_PCT = 3.0
BSR_TREND_THRESHOLD_PCT = 15.0
# BSR endpoints are the median of this many days at each end to damp one noisy day.
BSR_EDGE_POINTS = 3

NEVER_FETCHED = "never fetched"
NOT_FOUND = "product not found on Amazon"


@dataclass(slots=True)
class ProductView:
    """One product of a group as the comparison reads it."""

    asin: str
    title: str | None
    snapshot: Snapshot | None
    history: list[HistoryPoint] = field(default_factory=list)


@dataclass(slots=True, frozen=True)
class Metric:
    """A number or the reason it is unknown."""

    value: MetricValue
    reason: str | None = None
    unit: str | None = None
    leader: str | None = None  # gaps only: "main" | "competitor" | "tie"

    @property
    def present(self) -> bool:
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"value": self.value, "reason": self.reason}
        if self.unit is not None:
            out["unit"] = self.unit
        if self.leader is not None:
            out["leader"] = self.leader
        return out


def missing(reason: str) -> Metric:
    return Metric(value=None, reason=reason)


@dataclass(slots=True, frozen=True)
class ProductMetrics:
    asin: str
    title: str | None
    fetched: bool
    currency: str | None
    availability: str  # Availability value, or "never_fetched" / "not_found"
    stock_count: int | None
    price: Metric
    buy_box_price: Metric
    price_rank: Metric  # 1 = cheapest in the group
    price_percentile: Metric  # 0 = cheapest, 100 = most expensive
    bsr_rank: Metric
    bsr_category: str | None
    subcategory_rank: Metric
    subcategory: str | None
    rating: Metric
    review_count: Metric
    review_velocity: Metric  # reviews/day over the window
    price_change_pct: Metric
    bsr_change_pct: Metric  # negative = rank number fell = selling better
    trend_labels: tuple[str, ...]
    history_points: int

    def to_dict(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "title": self.title,
            "fetched": self.fetched,
            "currency": self.currency,
            "availability": self.availability,
            "stock_count": self.stock_count,
            "price": self.price.to_dict(),
            "buy_box_price": self.buy_box_price.to_dict(),
            "price_rank": self.price_rank.to_dict(),
            "price_percentile": self.price_percentile.to_dict(),
            "bsr_rank": self.bsr_rank.to_dict(),
            "bsr_category": self.bsr_category,
            "subcategory_rank": self.subcategory_rank.to_dict(),
            "subcategory": self.subcategory,
            "rating": self.rating.to_dict(),
            "review_count": self.review_count.to_dict(),
            "review_velocity": self.review_velocity.to_dict(),
            "price_change_pct": self.price_change_pct.to_dict(),
            "bsr_change_pct": self.bsr_change_pct.to_dict(),
            "trend_labels": list(self.trend_labels),
            "history_points": self.history_points,
        }


PRODUCT_METRIC_FIELDS: tuple[str, ...] = (
    "price",
    "buy_box_price",
    "price_rank",
    "price_percentile",
    "bsr_rank",
    "subcategory_rank",
    "rating",
    "review_count",
    "review_velocity",
    "price_change_pct",
    "bsr_change_pct",
)


@dataclass(slots=True, frozen=True)
class CompetitorGaps:
    """Main minus this competitor, metric by metric."""

    price_gap: Metric
    price_gap_pct: Metric
    buy_box_gap: Metric
    buy_box_gap_pct: Metric
    bsr_gap: Metric
    bsr_ratio: Metric
    bsr_log_ratio: Metric
    subcategory_bsr_gap: Metric
    rating_gap: Metric
    review_count_gap: Metric
    review_velocity_gap: Metric

    def items(self) -> list[tuple[str, Metric]]:
        return [(name, getattr(self, name)) for name in GAP_FIELDS]

    def to_dict(self) -> dict[str, Any]:
        return {name: metric.to_dict() for name, metric in self.items()}


GAP_FIELDS: tuple[str, ...] = (
    "price_gap",
    "price_gap_pct",
    "buy_box_gap",
    "buy_box_gap_pct",
    "bsr_gap",
    "bsr_ratio",
    "bsr_log_ratio",
    "subcategory_bsr_gap",
    "rating_gap",
    "review_count_gap",
    "review_velocity_gap",
)


@dataclass(slots=True, frozen=True)
class CompetitorComparison:
    asin: str
    title: str | None
    product: ProductMetrics
    gaps: CompetitorGaps

    def to_dict(self) -> dict[str, Any]:
        return {
            "asin": self.asin,
            "title": self.title,
            "product": self.product.to_dict(),
            "gaps": self.gaps.to_dict(),
        }


@dataclass(slots=True, frozen=True)
class Leader:
    """Who leads the group on one metric; several ASINs when tied."""

    asins: tuple[str, ...]
    value: MetricValue
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"asins": list(self.asins), "value": self.value, "reason": self.reason}


@dataclass(slots=True, frozen=True)
class RankPosition:
    """The main product's place in the group: 1 = best under the metric's direction."""

    rank: int | None
    of: int
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"rank": self.rank, "of": self.of, "reason": self.reason}


LEADER_FIELDS: tuple[str, ...] = (
    "cheapest",
    "best_bsr",
    "highest_rated",
    "most_reviewed",
    "fastest_review_growth",
)
MOVER_FIELDS: tuple[str, ...] = (
    "cutting_prices",
    "raising_prices",
    "bsr_improving",
    "bsr_declining",
    "out_of_stock",
)


@dataclass(slots=True, frozen=True)
class GroupSummary:
    cheapest: Leader
    best_bsr: Leader  # only among products ranked in the main product's category
    highest_rated: Leader
    most_reviewed: Leader
    fastest_review_growth: Leader
    cutting_prices: tuple[str, ...]
    raising_prices: tuple[str, ...]
    bsr_improving: tuple[str, ...]
    bsr_declining: tuple[str, ...]
    out_of_stock: tuple[str, ...]
    main_rank: dict[str, RankPosition]  # price, buy_box_price, bsr, rating, ...

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {name: getattr(self, name).to_dict() for name in LEADER_FIELDS}
        out.update({name: list(getattr(self, name)) for name in MOVER_FIELDS})
        out["main_rank"] = {k: v.to_dict() for k, v in self.main_rank.items()}
        return out


@dataclass(slots=True, frozen=True)
class GroupComparison:
    window_days: int
    window_start: datetime | None
    window_end: datetime | None
    main: ProductMetrics
    competitors: tuple[CompetitorComparison, ...]
    group: GroupSummary

    def competitor(self, asin: str) -> CompetitorComparison:
        for comp in self.competitors:
            if comp.asin == asin:
                return comp
        raise KeyError(asin)

    def metric_keys(self) -> list[str]:
        """Metric names that hold at least one known value: what a report may cite.

        A key is a leaf key of ``to_dict()`` (``price_gap_pct``) or ``main_rank.<m>``.
        """
        keys: set[str] = {"availability", "out_of_stock"}
        products = [self.main, *(c.product for c in self.competitors)]
        for name in PRODUCT_METRIC_FIELDS:
            if any(getattr(p, name).present for p in products):
                keys.add(name)
        if any(p.trend_labels for p in products):
            keys.add("trend_labels")
        for comp in self.competitors:
            keys.update(name for name, metric in comp.gaps.items() if metric.present)
        keys.update(n for n in LEADER_FIELDS if getattr(self.group, n).asins)
        if "price_change_pct" in keys:
            keys.update(("cutting_prices", "raising_prices"))
        if "bsr_change_pct" in keys:
            keys.update(("bsr_improving", "bsr_declining"))
        keys.update(f"main_rank.{k}" for k, v in self.group.main_rank.items() if v.rank)
        return sorted(keys)

    def to_dict(self) -> dict[str, Any]:
        return {
            "window_days": self.window_days,
            "window_start": self.window_start.isoformat() if self.window_start else None,
            "window_end": self.window_end.isoformat() if self.window_end else None,
            "conventions": {
                "gaps": "main minus competitor",
                "bsr": "lower rank is better; bsr_log_ratio < 0 means main ranks better",
                "missing": "value null with a reason; never zero",
            },
            "main": self.main.to_dict(),
            "competitors": [c.to_dict() for c in self.competitors],
            "group": self.group.to_dict(),
            "metric_keys": self.metric_keys(),
        }


# --------------------------------------------------------------------------- helpers


def _currency(snap: Snapshot) -> str | None:
    return snap.currency or MARKETPLACE_CURRENCY.get(snap.marketplace)


def _unavailable_reason(snap: Snapshot | None) -> str | None:
    if snap is None:
        return NEVER_FETCHED
    if not snap.found:
        return NOT_FOUND
    return None


def _price_metric(snap: Snapshot | None, attr: str, label: str) -> Metric:
    reason = _unavailable_reason(snap)
    if reason or snap is None:
        return missing(reason or NEVER_FETCHED)
    value: float | None = getattr(snap, attr)
    if value is None:
        if snap.availability is Availability.OUT_OF_STOCK:
            return missing(f"no {label}: out of stock")
        if snap.availability is Availability.NO_FEATURED_OFFER:
            return missing(f"no {label}: no featured offer (Buy Box suppressed)")
        return missing(f"no {label} on page")
    return Metric(round(value, 2), unit=_currency(snap))


def _snap_metric(snap: Snapshot | None, value: MetricValue, empty: str) -> Metric:
    reason = _unavailable_reason(snap)
    if reason:
        return missing(reason)
    return missing(empty) if value is None else Metric(value)


def _availability(snap: Snapshot | None) -> str:
    if snap is None:
        return "never_fetched"
    if not snap.found:
        return "not_found"
    return snap.availability.value


def _leader(main: float, other: float, direction: Direction) -> str:
    if math.isclose(main, other, rel_tol=1e-9, abs_tol=1e-9):
        return "tie"
    main_ahead = main < other if direction == "lower" else main > other
    return "main" if main_ahead else "competitor"


def _window(
    history: Sequence[HistoryPoint], start: datetime | None, end: datetime | None
) -> list[HistoryPoint]:
    points = sorted(history, key=lambda p: p.captured_at)
    return [
        p
        for p in points
        if (start is None or p.captured_at >= start) and (end is None or p.captured_at <= end)
    ]


def _days_between(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 86400.0


def _series(
    points: Sequence[HistoryPoint], get: Callable[[HistoryPoint], float | int | None]
) -> list[tuple[datetime, float]]:
    out: list[tuple[datetime, float]] = []
    for p in points:
        v = get(p)
        if v is not None:
            out.append((p.captured_at, float(v)))
    return out


def _series_reason(points: Sequence[HistoryPoint], what: str) -> str:
    return "no history in window" if not points else f"no {what} in history window"


def _change_pct(
    points: Sequence[HistoryPoint],
    get: Callable[[HistoryPoint], float | int | None],
    what: str,
    edge: int = 1,
) -> Metric:
    series = _series(points, get)
    if len(series) < 2:
        if series:
            return missing(f"only one day of {what} in window")
        return missing(_series_reason(points, what))
    if _days_between(series[0][0], series[-1][0]) < 1.0:
        return missing(f"less than a day of {what} history")
    k = max(1, min(edge, len(series) // 2))
    first = statistics.median(v for _, v in series[:k])
    last = statistics.median(v for _, v in series[-k:])
    if first == 0:
        return missing(f"first {what} in window is zero")
    return Metric(round((last - first) / first * 100.0, 1), unit="%")


def _review_velocity(points: Sequence[HistoryPoint]) -> Metric:
    series = _series(points, lambda p: p.review_count)
    if len(series) < 2:
        if series:
            return missing("only one day of review counts in window")
        return missing(_series_reason(points, "review counts"))
    days = _days_between(series[0][0], series[-1][0])
    if days < 1.0:
        return missing("less than a day of review history")
    return Metric(round((series[-1][1] - series[0][1]) / days, 2), unit="reviews/day")


def _trend_labels(price_pct: Metric, bsr_pct: Metric) -> tuple[str, ...]:
    labels: list[str] = []
    if isinstance(price_pct.value, int | float):
        if price_pct.value <= -PRICE_TREND_THRESHOLD_PCT:
            labels.append("cutting_prices")
        elif price_pct.value >= PRICE_TREND_THRESHOLD_PCT:
            labels.append("raising_prices")
    if isinstance(bsr_pct.value, int | float):
        if bsr_pct.value <= -BSR_TREND_THRESHOLD_PCT:
            labels.append("bsr_improving")
        elif bsr_pct.value >= BSR_TREND_THRESHOLD_PCT:
            labels.append("bsr_declining")
    if not labels and (price_pct.present or bsr_pct.present):
        labels.append("stable")
    return tuple(labels)


def _subcategory(snap: Snapshot | None) -> tuple[Metric, str | None]:
    reason = _unavailable_reason(snap)
    if reason or snap is None:
        return missing(reason or NEVER_FETCHED), None
    if not snap.subcategory_ranks:
        return missing("no subcategory rank on page"), None
    first = snap.subcategory_ranks[0]
    return Metric(first.rank), first.category


def _product_metrics(
    view: ProductView, start: datetime | None, end: datetime | None
) -> ProductMetrics:
    snap = view.snapshot
    points = _window(view.history, start, end)
    sub_rank, sub_name = _subcategory(snap)
    price_pct = _change_pct(points, lambda p: p.price, "prices")
    bsr_pct = _change_pct(points, lambda p: p.bsr_rank, "BSR", edge=BSR_EDGE_POINTS)
    usable = snap is not None and snap.found
    return ProductMetrics(
        asin=view.asin,
        title=view.title or (snap.title if snap else None),
        fetched=snap is not None,
        currency=_currency(snap) if snap else None,
        availability=_availability(snap),
        stock_count=snap.stock_count if snap else None,
        price=_price_metric(snap, "price", "price"),
        buy_box_price=_price_metric(snap, "buy_box_price", "Buy Box price"),
        price_rank=missing("not ranked yet"),
        price_percentile=missing("not ranked yet"),
        bsr_rank=_snap_metric(snap, snap.bsr_rank if snap else None, "no BSR on page"),
        bsr_category=snap.bsr_category if usable and snap else None,
        subcategory_rank=sub_rank,
        subcategory=sub_name,
        rating=_snap_metric(snap, snap.rating if snap else None, "no rating on page"),
        review_count=_snap_metric(
            snap, snap.review_count if snap else None, "no review count on page"
        ),
        review_velocity=_review_velocity(points),
        price_change_pct=price_pct,
        bsr_change_pct=bsr_pct,
        trend_labels=_trend_labels(price_pct, bsr_pct),
        history_points=len(points),
    )


# --------------------------------------------------------------------------- gaps


def _num(metric: Metric) -> float | None:
    return float(metric.value) if metric.value is not None else None


def _first_reason(*metrics: Metric) -> str:
    for side, metric in zip(("main", "competitor"), metrics, strict=False):
        if metric.value is None:
            return f"{side}: {metric.reason}"
    return "unknown"


def _money_gaps(main: ProductMetrics, comp: ProductMetrics, attr: str) -> tuple[Metric, Metric]:
    m: Metric = getattr(main, attr)
    c: Metric = getattr(comp, attr)
    a, b = _num(m), _num(c)
    if a is None or b is None:
        reason = _first_reason(m, c)
        return missing(reason), missing(reason)
    if m.unit and c.unit and m.unit != c.unit:
        reason = f"different currencies ({m.unit} vs {c.unit})"
        return missing(reason), missing(reason)
    lead = _leader(a, b, "lower")
    gap = Metric(round(a - b, 2), unit=m.unit, leader=lead)
    if b == 0:
        return gap, missing("competitor price is zero")
    return gap, Metric(round((a - b) / b * 100.0, 1), unit="%", leader=lead)


def _bsr_gaps(main: ProductMetrics, comp: ProductMetrics) -> tuple[Metric, Metric, Metric]:
    a, b = _num(main.bsr_rank), _num(comp.bsr_rank)
    if a is None or b is None:
        reason = _first_reason(main.bsr_rank, comp.bsr_rank)
        return missing(reason), missing(reason), missing(reason)
    if _norm(main.bsr_category) != _norm(comp.bsr_category):
        reason = "different main categories"
        return missing(reason), missing(reason), missing(reason)
    lead = _leader(a, b, "lower")
    ratio = a / b
    return (
        Metric(int(a - b), unit="ranks", leader=lead),
        Metric(round(ratio, 3), leader=lead),
        Metric(round(math.log10(ratio), 3), leader=lead),
    )


def _norm(name: str | None) -> str:
    return " ".join((name or "").lower().split())


def _subcategory_gap(
    main_view: ProductView, comp_view: ProductView, main: ProductMetrics, comp: ProductMetrics
) -> Metric:
    if main.subcategory_rank.value is None or comp.subcategory_rank.value is None:
        return missing(_first_reason(main.subcategory_rank, comp.subcategory_rank))
    assert main_view.snapshot is not None and comp_view.snapshot is not None
    # Products often show two subcategory ranks; compare on the first name both share.
    comp_ranks = {_norm(s.category): s.rank for s in comp_view.snapshot.subcategory_ranks}
    for sub in main_view.snapshot.subcategory_ranks:
        other = comp_ranks.get(_norm(sub.category))
        if other is not None:
            return Metric(
                sub.rank - other,
                unit=f"ranks in {sub.category}",
                leader=_leader(sub.rank, other, "lower"),
            )
    return missing("different subcategories")


def _simple_gap(
    m: Metric, c: Metric, direction: Direction, digits: int, unit: str | None = None
) -> Metric:
    a, b = _num(m), _num(c)
    if a is None or b is None:
        return missing(_first_reason(m, c))
    diff = a - b
    value: float | int = int(diff) if digits == 0 else round(diff, digits)
    return Metric(value, unit=unit, leader=_leader(a, b, direction))


def _gaps(
    main_view: ProductView, comp_view: ProductView, main: ProductMetrics, comp: ProductMetrics
) -> CompetitorGaps:
    price_gap, price_pct = _money_gaps(main, comp, "price")
    bb_gap, bb_pct = _money_gaps(main, comp, "buy_box_price")
    bsr_gap, bsr_ratio, bsr_log = _bsr_gaps(main, comp)
    return CompetitorGaps(
        price_gap=price_gap,
        price_gap_pct=price_pct,
        buy_box_gap=bb_gap,
        buy_box_gap_pct=bb_pct,
        bsr_gap=bsr_gap,
        bsr_ratio=bsr_ratio,
        bsr_log_ratio=bsr_log,
        subcategory_bsr_gap=_subcategory_gap(main_view, comp_view, main, comp),
        rating_gap=_simple_gap(main.rating, comp.rating, "higher", 2, "stars"),
        review_count_gap=_simple_gap(main.review_count, comp.review_count, "higher", 0),
        review_velocity_gap=_simple_gap(
            main.review_velocity, comp.review_velocity, "higher", 2, "reviews/day"
        ),
    )


# --------------------------------------------------------------------------- group


def _ranks(values: dict[str, float | None], direction: Direction) -> dict[str, int]:
    """Competition ranking (1, 2, 2, 4) of the known values; 1 = best."""
    known = {k: v for k, v in values.items() if v is not None}
    ranks: dict[str, int] = {}
    for asin, v in known.items():
        better = sum(1 for o in known.values() if (o < v if direction == "lower" else o > v))
        ranks[asin] = better + 1
    return ranks


def _leader_of(values: dict[str, float | None], direction: Direction, empty: str) -> Leader:
    ranks = _ranks(values, direction)
    best = [asin for asin, r in ranks.items() if r == 1]
    if not best:
        return Leader((), None, empty)
    value = values[best[0]]
    out: MetricValue = int(value) if value is not None and value.is_integer() else value
    return Leader(tuple(best), out)


def _price_values(products: Sequence[ProductMetrics], attr: str) -> dict[str, float | None]:
    # Prices in a currency other than the main product's can't be ranked against it.
    currency = products[0].currency
    out: dict[str, float | None] = {}
    for p in products:
        metric: Metric = getattr(p, attr)
        same = metric.unit is None or currency is None or metric.unit == currency
        out[p.asin] = _num(metric) if same else None
    return out


def _bsr_values(products: Sequence[ProductMetrics]) -> dict[str, float | None]:
    # BSR numbers only compare inside one category: use the main product's, or the
    # most common one when the main product shows none.
    cats = [_norm(p.bsr_category) for p in products if p.bsr_rank.present and p.bsr_category]
    main_cat = _norm(products[0].bsr_category) if products[0].bsr_rank.present else None
    target = main_cat or (max(sorted(set(cats)), key=cats.count) if cats else None)
    return {p.asin: _num(p.bsr_rank) if _norm(p.bsr_category) == target else None for p in products}


def _with_price_position(p: ProductMetrics, ranks: dict[str, int]) -> ProductMetrics:
    rank = ranks.get(p.asin)
    if rank is None:
        reason = p.price.reason or "price in another currency"
        return replace(p, price_rank=missing(reason), price_percentile=missing(reason))
    n = len(ranks)
    if n < 2:
        pct = missing("no other priced product in group")
    else:
        cheaper = rank - 1  # competition ranking: products strictly cheaper
        pct = Metric(round(cheaper / (n - 1) * 100.0, 1), unit="percentile")
    return replace(p, price_rank=Metric(rank, unit=f"of {n}"), price_percentile=pct)


def _main_rank(
    main_asin: str, values: dict[str, float | None], direction: Direction, missing_reason: str
) -> RankPosition:
    ranks = _ranks(values, direction)
    if main_asin not in ranks:
        return RankPosition(None, len(ranks), missing_reason)
    return RankPosition(ranks[main_asin], len(ranks))


def _labelled(products: Iterable[ProductMetrics], label: str) -> tuple[str, ...]:
    return tuple(p.asin for p in products if label in p.trend_labels)


def _summary(products: Sequence[ProductMetrics]) -> GroupSummary:
    main = products[0]
    prices = _price_values(products, "price")
    buy_box = _price_values(products, "buy_box_price")
    bsr = _bsr_values(products)
    rating = {p.asin: _num(p.rating) for p in products}
    reviews = {p.asin: _num(p.review_count) for p in products}
    velocity = {p.asin: _num(p.review_velocity) for p in products}
    return GroupSummary(
        cheapest=_leader_of(prices, "lower", "no prices in group"),
        best_bsr=_leader_of(bsr, "lower", "no BSR in a shared category"),
        highest_rated=_leader_of(rating, "higher", "no ratings in group"),
        most_reviewed=_leader_of(reviews, "higher", "no review counts in group"),
        fastest_review_growth=_leader_of(velocity, "higher", "no review history in group"),
        cutting_prices=_labelled(products, "cutting_prices"),
        raising_prices=_labelled(products, "raising_prices"),
        bsr_improving=_labelled(products, "bsr_improving"),
        bsr_declining=_labelled(products, "bsr_declining"),
        out_of_stock=tuple(p.asin for p in products if p.availability == "out_of_stock"),
        main_rank={
            "price": _main_rank(main.asin, prices, "lower", main.price.reason or "no price"),
            "buy_box_price": _main_rank(
                main.asin, buy_box, "lower", main.buy_box_price.reason or "no Buy Box price"
            ),
            "bsr": _main_rank(main.asin, bsr, "lower", main.bsr_rank.reason or "no BSR"),
            "rating": _main_rank(main.asin, rating, "higher", main.rating.reason or ""),
            "review_count": _main_rank(
                main.asin, reviews, "higher", main.review_count.reason or ""
            ),
            "review_velocity": _main_rank(
                main.asin, velocity, "higher", main.review_velocity.reason or ""
            ),
        },
    )


def _window_bounds(
    views: Sequence[ProductView], window_days: int, as_of: datetime | None
) -> tuple[datetime | None, datetime | None]:
    end = as_of
    if end is None:
        stamps = [p.captured_at for v in views for p in v.history]
        end = max(stamps) if stamps else None
    if end is None:
        return None, None
    return end - timedelta(days=window_days), end


def compare_group(
    main: ProductView,
    competitors: list[ProductView],
    window_days: int,
    *,
    as_of: datetime | None = None,
) -> GroupComparison:
    """Compare ``main`` with each competitor and summarise the group over the window."""
    if window_days < 1:
        raise ValueError("window_days must be at least 1")
    views = [main, *competitors]
    start, end = _window_bounds(views, window_days, as_of)
    products = [_product_metrics(v, start, end) for v in views]
    price_ranks = _ranks(_price_values(products, "price"), "lower")
    products = [_with_price_position(p, price_ranks) for p in products]
    main_m = products[0]
    comps = tuple(
        CompetitorComparison(
            asin=p.asin,
            title=p.title,
            product=p,
            gaps=_gaps(main, view, main_m, p),
        )
        for view, p in zip(competitors, products[1:], strict=True)
    )
    return GroupComparison(
        window_days=window_days,
        window_start=start,
        window_end=end,
        main=main_m,
        competitors=comps,
        group=_summary(products),
    )
