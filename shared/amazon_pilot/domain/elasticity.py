"""How a product's sales rank answered its own price changes: a BSR price elasticity with an
interval, from its daily history.

Model: ln(rank) = a + b ln(price) + c t over the usable days (t in days). ``b`` is the BSR
elasticity to price (b > 0: a dearer price gave a worse, higher rank); the trend term keeps
a season or a slow slide from being read as a price effect. ``b`` is the slope of the
residuals of ln(rank) on the residuals of ln(price), both after regressing out [1, t].
The 95% interval is b +/- t * se: se from a moving-block bootstrap (7-day blocks keep a
week's autocorrelation and price levels together; the seed is fixed by the data, so the
same history always gives the same answer), and t from Student's t with one degree of
freedom per price change less two, because a few price changes are a few experiments, not
one per day (a percentile interval covered ~90% in simulations; this one ~95%).

Days are left out when the product was out of stock (rank then reflects no sales at all),
ran a deal (a deal badge moves rank beyond its price: placement, urgency), or had no price
or rank. Where the history does not say whether a day had a deal, it cannot be excluded.
The main-category BSR is used; the sub-category BSR only when the main one is missing on
too many days.

An estimate is given only when it is there: with < 30 days of history, too few usable days,
or too little price variation there is none, and when the interval includes 0 the answer
says the rank did not measurably respond. The bootstrap is numpy arithmetic on block sums
(well under a millisecond for 90 days).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from amazon_pilot.domain.snapshot import HistoryPoint, daily_last

MIN_HISTORY_DAYS = 30
MIN_USABLE_DAYS = 20
MIN_LEVEL_DAYS = 5  # a price level must hold this many usable days to count
MIN_PRICE_SPREAD = 0.05  # the highest held level at least 5% above the lowest
BLOCK_DAYS = 7
N_BOOT = 400
LEVEL = 0.95
MAX_WIDTH = 6.0  # an interval wider than this says nothing usable

Status = Literal["estimated", "no_response", "implausible", "not_possible"]


@dataclass(slots=True)
class Elasticity:
    status: Status
    reason: str
    days: int  # calendar days of history looked at
    usable_days: int = 0
    rank_source: Literal["bsr", "subcategory_bsr"] | None = None
    elasticity: float | None = None
    interval: tuple[float, float] | None = None
    price_levels: list[float] = field(default_factory=list)
    excluded: dict[str, int] = field(default_factory=dict)

    @property
    def usable(self) -> bool:
        """An estimate advice may rest on (a measured, plausible response)."""
        return self.status == "estimated"

    def bsr_change(self, price_ratio: float) -> tuple[float, float, float] | None:
        """Expected BSR change (central, low, high) for a price ratio new/old."""
        if self.elasticity is None or self.interval is None:
            return None
        x = math.log(price_ratio)
        ends = sorted(math.expm1(e * x) for e in self.interval)
        return math.expm1(self.elasticity * x), ends[0], ends[1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "days": self.days,
            "usable_days": self.usable_days,
            "rank_source": self.rank_source,
            "elasticity": None if self.elasticity is None else round(self.elasticity, 4),
            "interval": None if self.interval is None else [round(v, 4) for v in self.interval],
            "interval_level": LEVEL,
            "price_levels": self.price_levels,
            "excluded_days": dict(self.excluded),
        }


def _total(values: Any) -> float:
    """The sum of a numpy vector left to right, as Python's sum() adds: numpy's pairwise sum
    can differ in the last bit, and the fit's digits are pinned by the golden outputs."""
    return sum(values.tolist())


def _squares(values: Any) -> float:
    """The sum of squares as `sum(v ** 2 for v in values)` gives it: ** is libm's pow, which
    differs from v * v (what numpy squares with) in the last bit for ~0.1% of values."""
    return sum(map(pow, values.tolist(), itertools.repeat(2.0)))


def _residuals(dt: Any, y: Any, stt: float) -> Any:
    """y minus its least-squares line on t (t's deviations from its mean and their sum of
    squares given); numpy vectors."""
    my = _total(y) / len(y)
    slope = 0.0 if stt == 0 else _total(dt * (y - my)) / stt
    return y - my - slope * dt


def _slope(t: Any, lp: Any, lr: Any) -> float | None:
    """The slope of ln rank on ln price after regressing both on [1, t] (numpy vectors)."""
    dt = t - _total(t) / len(t)
    stt = _squares(dt)  # once for both regressions on t
    px, ry = _residuals(dt, lp, stt), _residuals(dt, lr, stt)
    sxx = _total(px * px)
    if sxx < 1e-8:  # no price variation left once the trend is out
        return None
    return _total(px * ry) / sxx


def _levels(prices: Sequence[float]) -> list[float]:
    """Price levels (within 1% of each other count as one) held on MIN_LEVEL_DAYS+ days."""
    groups: list[list[float]] = []
    for p in sorted(prices):
        if groups and p <= groups[-1][0] * 1.01:
            groups[-1].append(p)
        else:
            groups.append([p])
    return [round(g[len(g) // 2], 2) for g in groups if len(g) >= MIN_LEVEL_DAYS]


def _seed(rows: Sequence[tuple[float, float, float]]) -> int:
    # %-formatting writes the same digits as three f-string fields a row, 2x faster; one
    # format string for all the rows saves a Python step per row
    fmt = ";".join(("%.4f,%.6f,%.6f",) * len(rows))
    raw = (fmt % tuple(itertools.chain.from_iterable(rows))).encode()
    return int.from_bytes(hashlib.blake2s(raw, digest_size=8).digest(), "big")


def _bootstrap(rows: Sequence[tuple[float, float, float]], data: Any) -> tuple[Any, int]:
    """Slopes of moving-block resamples, and how many resamples had no price variation.

    A resample is blocks laid end to end, so its sums (of t, ln price, ln rank and their
    products) are sums of block sums, read from prefix sums: _slope's two-step regression
    for all N_BOOT resamples from those sums, without building one (a Python loop over
    400 x 90 values was ~70% of a suggestion run). `data` is the rows as an (n, 3) array;
    the slopes come back as a numpy vector."""
    import numpy as np  # on first use: the API's cold start does without it (issue 2)

    n = len(rows)
    block = min(BLOCK_DAYS, n)
    starts = n - block + 1
    per = -(-n // block)  # blocks per resample; the last one cut to fit
    last = n - (per - 1) * block
    rng = np.random.default_rng(_seed(rows))
    first = rng.integers(0, starts, size=(N_BOOT, per))
    centred = data - data.mean(axis=0)  # the sums below lose no precision
    # the columns t, p, r, t*t, t*p, t*r, p*p, p*r and their prefix sums (a 0 column first)
    pairs = centred[:, [0, 0, 0, 1, 1]] * centred[:, [0, 1, 2, 1, 2]]
    prefix = np.zeros((8, n + 1))
    np.cumsum(np.hstack([centred, pairs]).T, axis=1, out=prefix[:, 1:])
    blocks = prefix[:, block:block + starts] - prefix[:, :starts]  # (8, starts)
    cuts = prefix[:, last:last + starts] - prefix[:, :starts]
    # how often each resample drew each whole block, times the block sums, plus its cut one
    drawn = (np.arange(N_BOOT)[:, None] * starts + first[:, :-1]).ravel()
    # counted as floats (a weight of 1 a draw): an integer matrix times a float one is cast
    # first, a copy of the whole (N_BOOT, starts) matrix that cost more than the product;
    # the counts are small integers either way, so the product is the same
    counts = np.bincount(drawn, weights=np.ones(drawn.size), minlength=N_BOOT * starts)
    counts = counts.reshape(N_BOOT, starts)
    sums = counts @ blocks.T + cuts.T[first[:, -1]]  # (N_BOOT, 8)
    # centred sums of each resample (tt - t * t / n, tp - t * p / n, ... for the five
    # products, in one pass over the columns), then the residuals after the trend
    plain = sums[:, :3]  # t, p, r
    ctt, ctp, ctr, cpp, cpr = (sums[:, 3:] - plain[:, [0, 0, 0, 1, 1]]
                               * plain[:, [0, 1, 2, 1, 2]] / n).T
    flat = ctt == 0  # no time spread: _residuals takes the slope on t as 0
    trend = np.where(flat, 1.0, ctt)
    sxx = np.where(flat, cpp, cpp - ctp * ctp / trend)
    sxy = np.where(flat, cpr, cpr - ctp * ctr / trend)
    varied = sxx >= 1e-8  # as _slope: no price variation left once the trend is out
    slopes = sxy[varied] / sxx[varied]
    return slopes, int(N_BOOT - varied.sum())


@functools.lru_cache(maxsize=2048)
def _fit(rows: tuple[tuple[float, float, float], ...]) -> tuple[float, float] | None:
    """The slope and its bootstrap standard error, None when the price cannot be told from
    the trend. Cached by the rows (≈ 100 bytes an entry): the score page read after a
    suggestion run, or a re-run on the same history, fits the same days again."""
    import numpy as np  # on first use, as in _bootstrap

    # the same array as np.asarray(rows), built from the flat values (half the time)
    data = np.fromiter(itertools.chain.from_iterable(rows), float, 3 * len(rows))
    data = data.reshape(len(rows), 3)
    b = _slope(data[:, 0], data[:, 1], data[:, 2])
    boots, failed = _bootstrap(rows, data)
    if b is None or failed > N_BOOT // 5 or len(boots) < N_BOOT // 2:
        return None
    mean = _total(boots) / len(boots)
    return b, math.sqrt(_squares(boots - mean) / (len(boots) - 1))


# Student's t, two-sided 95%, by degrees of freedom (1..30); 1.96 beyond.
T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179,
       2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064,
       2.060, 2.056, 2.052, 2.048, 2.045, 2.042)


def _t95(df: int) -> float:
    return T95[max(1, df) - 1] if df <= len(T95) else 1.96


def _price_changes(prices: Sequence[float]) -> int:
    """Day-to-day moves of more than 1% (the experiments the history ran)."""
    return sum(1 for a, b in itertools.pairwise(prices) if abs(b / a - 1.0) > 0.01)


def estimate(history: Sequence[HistoryPoint]) -> Elasticity:
    """The BSR price elasticity of the product's own history (see the module docstring)."""
    days = daily_last(history)
    if not days:
        return Elasticity("not_possible", "no history yet", 0)
    span = (days[-1].captured_at.date() - days[0].captured_at.date()).days + 1
    if span < MIN_HISTORY_DAYS:
        return Elasticity("not_possible", f"only {span} days of history; an estimate needs"
                                          f" {MIN_HISTORY_DAYS}", span)
    excluded = {"out_of_stock": 0, "deal": 0, "no_price": 0, "no_rank": 0}
    usable: list[HistoryPoint] = []
    for p in days:
        if p.in_stock is False:
            excluded["out_of_stock"] += 1
        elif p.has_deal:
            excluded["deal"] += 1
        elif p.price is None or p.price <= 0:
            excluded["no_price"] += 1
        else:
            usable.append(p)
    with_bsr = [p for p in usable if p.bsr_rank and p.bsr_rank > 0]
    with_sub = [p for p in usable if p.subcategory_bsr and p.subcategory_bsr > 0]
    source: Literal["bsr", "subcategory_bsr"] = "bsr"
    chosen, ranks = with_bsr, [float(p.bsr_rank or 0) for p in with_bsr]
    if len(with_bsr) < MIN_USABLE_DAYS and len(with_sub) > len(with_bsr):
        source = "subcategory_bsr"
        chosen, ranks = with_sub, [float(p.subcategory_bsr or 0) for p in with_sub]
    excluded["no_rank"] = len(usable) - len(chosen)
    base = Elasticity("not_possible", "", span, len(chosen), source, excluded=excluded)
    if len(chosen) < MIN_USABLE_DAYS:
        base.reason = (f"only {len(chosen)} of {span} days have a price, a sales rank and stock"
                       f" (out of stock: {excluded['out_of_stock']}, deal: {excluded['deal']},"
                       f" no price:"
                       f" {excluded['no_price']}, no rank: {excluded['no_rank']}); an estimate"
                       f" needs {MIN_USABLE_DAYS}")
        return base
    prices = [float(p.price or 0) for p in chosen]
    levels = _levels(prices)
    base.price_levels = levels
    if len(levels) < 2 or levels[-1] / levels[0] - 1.0 < MIN_PRICE_SPREAD:
        low, high = min(prices), max(prices)
        base.reason = (f"too little price variation: over {len(chosen)} usable days the price"
                       f" ran {low:.2f}-{high:.2f} ({high / low - 1:.0%}) with"
                       f" {len(levels)} level(s) held {MIN_LEVEL_DAYS}+ days; an estimate needs"
                       f" two levels at least {MIN_PRICE_SPREAD:.0%} apart, each held"
                       f" {MIN_LEVEL_DAYS}+ days")
        return base
    t0 = chosen[0].captured_at
    offsets = [(p.captured_at - t0).total_seconds() / 86400.0 for p in chosen]
    rows = list(zip(offsets, map(math.log, prices), map(math.log, ranks), strict=True))
    fit = _fit(tuple(rows))
    if fit is None:
        base.reason = ("the price moved with the trend (the price changes are confounded with"
                       " the rank's slow drift), so their effect cannot be separated")
        return base
    b, se = fit
    half = _t95(_price_changes(prices) - 1) * se
    lo, hi = b - half, b + half
    base.elasticity, base.interval = b, (lo, hi)
    where = (f"BSR elasticity to price {b:+.2f} ({LEVEL:.0%} interval {lo:+.2f} to {hi:+.2f};"
             f" {len(chosen)} usable days of {span}, {len(levels)} price levels"
             + (", sub-category BSR" if source == "subcategory_bsr" else "") + ")")
    if hi - lo > MAX_WIDTH:
        base.status = "no_response"
        base.reason = f"{where}: too uncertain to act on"
    elif lo <= 0.0 <= hi:
        base.status = "no_response"
        base.reason = f"{where}: the interval includes 0, so no measurable rank response"
    elif hi < 0.0:
        base.status = "implausible"
        base.reason = (f"{where}: the rank improved when the price rose, so something else"
                       " (a deal, ads, a season) moved it; no advice rests on this")
    else:
        base.status = "estimated"
        base.reason = where
    return base
