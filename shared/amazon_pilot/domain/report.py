"""The positioning report: its schema, a deterministic writer, and LLM prompt/validation.

The LLM only words the report; every number in it comes from ``GroupComparison`` and
``FeatureComparison``. Each point and recommendation names the metric key it rests on
(``price_gap_pct``, ``main_rank.bsr``, ``features.anc`` ...) so the UI can link it and
so an answer citing a metric we never computed is rejected rather than shown.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator

from amazon_pilot.domain.comparison import (
    CompetitorComparison,
    GroupComparison,
    Metric,
    ProductMetrics,
)
from amazon_pilot.domain.features import FeatureComparison, display_name

REPORT_SCHEMA_NAME = "positioning_report"
MAX_POINTS = 6
MAX_RECOMMENDATIONS = 6
_IMPACT_ORDER = {"high": 0, "medium": 1, "low": 2}


class Point(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str
    metric: str

    @field_validator("text", "metric")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class Recommendation(BaseModel):
    model_config = ConfigDict(extra="forbid")

    priority: int
    action: str
    rationale: str
    metric: str
    expected_impact: Literal["high", "medium", "low"]

    @field_validator("priority")
    @classmethod
    def _positive(cls, value: int) -> int:
        if value < 1:
            raise ValueError("priority starts at 1")
        return value

    @field_validator("action", "rationale", "metric")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class PositioningReport(BaseModel):
    # Constraints live in validators, not in the JSON schema, so the schema stays inside
    # what OpenAI's strict structured outputs accept.
    model_config = ConfigDict(extra="forbid")

    summary: str
    strengths: list[Point]
    weaknesses: list[Point]
    threats: list[Point]
    recommendations: list[Recommendation]

    @field_validator("summary")
    @classmethod
    def _summary_not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value.strip()


class InvalidLLMOutput(ValueError):
    """The model's answer can't be shown; ``code`` says why, for metrics and fallback."""

    def __init__(
        self, code: Literal["invalid_json", "schema_violation", "unknown_metric"], reason: str
    ) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


# --------------------------------------------------------------------------- metric keys


def allowed_metric_keys(
    comparison: GroupComparison, feature_comparison: FeatureComparison | None = None
) -> list[str]:
    keys = set(comparison.metric_keys())
    if feature_comparison is not None:
        keys.update(feature_comparison.metric_keys())
    return sorted(keys)


def ensure_known_metrics(
    report: PositioningReport,
    comparison: GroupComparison,
    feature_comparison: FeatureComparison | None = None,
) -> PositioningReport:
    """Reject a report that cites a metric the comparison doesn't hold."""
    allowed = set(allowed_metric_keys(comparison, feature_comparison))
    sections: list[tuple[str, Iterable[Point | Recommendation]]] = [
        ("recommendations", report.recommendations),
        ("strengths", report.strengths),
        ("weaknesses", report.weaknesses),
        ("threats", report.threats),
    ]
    for section, items in sections:
        for i, item in enumerate(items):
            if item.metric not in allowed:
                raise InvalidLLMOutput(
                    "unknown_metric",
                    f"{section}[{i}] cites {item.metric!r}, which is not in the comparison",
                )
    return report


_FENCE_RE = re.compile(r"^\s*```(?:json)?\s*(?P<body>.*?)\s*```\s*$", re.DOTALL)


def validate_llm_report(
    raw_text: str,
    comparison: GroupComparison,
    feature_comparison: FeatureComparison | None = None,
) -> PositioningReport:
    """Parse and check a model answer; raise ``InvalidLLMOutput`` with the reason."""
    fenced = _FENCE_RE.match(raw_text or "")
    text = fenced["body"] if fenced else (raw_text or "")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidLLMOutput("invalid_json", f"{exc.msg} at char {exc.pos}") from exc
    if not isinstance(data, dict):
        raise InvalidLLMOutput("invalid_json", "top level is not a JSON object")
    try:
        report = PositioningReport.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "<root>"
        raise InvalidLLMOutput(
            "schema_violation", f"{where}: {first['msg']} ({exc.error_count()} errors)"
        ) from exc
    return ensure_known_metrics(report, comparison, feature_comparison)


# --------------------------------------------------------------------------- prompt

SYSTEM_PROMPT = """You are a senior Amazon marketplace analyst writing a positioning report \
for a seller. You are given OUR computed comparison of the seller's main product against \
competitors.

Rules:
- Use only numbers that appear in the comparison JSON. Never invent, estimate or recompute.
- A value of null means unknown (its "reason" says why). Never treat null as zero.
- Gaps are main minus competitor. For BSR a lower rank is better; bsr_log_ratio < 0 means \
the main product ranks better.
- Every strength, weakness, threat and recommendation must set "metric" to exactly one key \
from the allowed metric keys list.
- Recommendations are concrete seller actions (price, coupon, listing content, ads, stock, \
reviews), numbered by priority starting at 1, with expected_impact high, medium or low.
- Answer with a single JSON object matching the positioning_report schema, nothing else."""


def _compact(data: Any) -> str:
    # Sorted and compact so identical inputs give identical prompts (cache friendly).
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def build_report_messages(
    comparison: GroupComparison, feature_comparison: FeatureComparison | None = None
) -> list[dict[str, str]]:
    """Chat messages for the LLM: instructions, then the numbers between tags."""
    keys = allowed_metric_keys(comparison, feature_comparison)
    parts = [
        f"Main product: {comparison.main.asin}. Window: {comparison.window_days} days.",
        f"<comparison>\n{_compact(comparison.to_dict())}\n</comparison>",
    ]
    if feature_comparison is not None:
        parts.append(f"<features>\n{_compact(feature_comparison.to_dict())}\n</features>")
    parts.append(f"<metric_keys>\n{_compact(keys)}\n</metric_keys>")
    parts.append("Write the positioning report for the main product.")
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": "\n\n".join(parts)},
    ]


# --------------------------------------------------------------------------- rules report


def _money(value: float | int | None, unit: str | None) -> str:
    if value is None:
        return "n/a"
    return f"${value:,.2f}" if unit in (None, "USD") else f"{value:,.2f} {unit}"


def _fmt(value: float | int | None, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, int) or float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.{digits}f}"


def _val(metric: Metric) -> float | None:
    return float(metric.value) if metric.value is not None else None


@dataclass(slots=True)
class _Draft:
    """Points and recommendations collected before the cut to the allowed keys."""

    allowed: set[str]
    strengths: list[Point]
    weaknesses: list[Point]
    threats: list[Point]
    recs: list[tuple[str, str, str, Literal["high", "medium", "low"]]]

    def point(self, bucket: list[Point], text: str, metric: str) -> None:
        if metric in self.allowed and len(bucket) < MAX_POINTS:
            bucket.append(Point(text=text, metric=metric))

    def rec(
        self, action: str, rationale: str, metric: str, impact: Literal["high", "medium", "low"]
    ) -> None:
        if metric in self.allowed and len(self.recs) < MAX_RECOMMENDATIONS:
            self.recs.append((action, rationale, metric, impact))


def _priced(comps: Iterable[CompetitorComparison]) -> list[CompetitorComparison]:
    return [c for c in comps if c.gaps.price_gap.present]


def _price_points(g: GroupComparison, d: _Draft) -> None:
    main, rank = g.main, g.group.main_rank["price"]
    if rank.rank is None:
        if main.fetched:
            d.point(d.weaknesses, f"No price to compare: {main.price.reason}.", "availability")
        return
    priced = _priced(g.competitors)
    if not priced or rank.of < 2:
        return
    cheapest_rival = min(priced, key=lambda c: _val(c.product.price) or 0.0)
    gap_pct = cheapest_rival.gaps.price_gap_pct.value
    price = _money(main.price.value, main.price.unit)
    if rank.rank == 1:
        d.point(
            d.strengths,
            f"Cheapest of {rank.of} priced products at {price}; the next cheapest, "
            f"{cheapest_rival.asin}, costs {_money(cheapest_rival.product.price.value, None)} "
            f"({_fmt(gap_pct)}% price gap).",
            "main_rank.price",
        )
    elif rank.rank == rank.of:
        d.point(
            d.weaknesses,
            f"Most expensive of {rank.of} at {price}, {_fmt(gap_pct)}% above "
            f"{cheapest_rival.asin} ({_money(cheapest_rival.product.price.value, None)}).",
            "price_gap_pct",
        )


def _bsr_points(g: GroupComparison, d: _Draft) -> None:
    rank = g.group.main_rank["bsr"]
    ranked = [c for c in g.competitors if c.gaps.bsr_log_ratio.present]
    if rank.rank is None or not ranked or rank.of < 2:
        return
    bsr = _fmt(g.main.bsr_rank.value)
    cat = g.main.bsr_category or "its category"
    if rank.rank == 1:
        nearest = min(ranked, key=lambda c: abs(_val(c.gaps.bsr_log_ratio) or 0.0))
        d.point(
            d.strengths,
            f"Best sales rank in the group: #{bsr} in {cat}; the closest rival "
            f"{nearest.asin} is #{_fmt(nearest.product.bsr_rank.value)} "
            f"(ratio {_fmt(nearest.gaps.bsr_ratio.value, 2)}).",
            "main_rank.bsr",
        )
    elif rank.rank == rank.of:
        best = max(ranked, key=lambda c: _val(c.gaps.bsr_log_ratio) or 0.0)
        d.point(
            d.weaknesses,
            f"Weakest sales rank in the group: #{bsr} in {cat} vs #"
            f"{_fmt(best.product.bsr_rank.value)} for {best.asin}, "
            f"{_fmt(best.gaps.bsr_ratio.value, 1)}x behind (log10 gap "
            f"{_fmt(best.gaps.bsr_log_ratio.value, 2)}).",
            "bsr_log_ratio",
        )


def _rating_points(g: GroupComparison, d: _Draft) -> None:
    rank = g.group.main_rank["rating"]
    rated = [c for c in g.competitors if c.gaps.rating_gap.present]
    if rank.rank is None or not rated or rank.of < 2:
        return
    rating = _fmt(g.main.rating.value, 1)
    if rank.rank == 1:
        d.point(
            d.strengths,
            f"Highest rated in the group at {rating} stars "
            f"({', '.join(f'{c.asin} {_fmt(c.product.rating.value)}' for c in rated)}).",
            "rating_gap",
        )
    elif rank.rank == rank.of:
        top = max(rated, key=lambda c: _val(c.product.rating) or 0.0)
        d.point(
            d.weaknesses,
            f"Lowest rating in the group: {rating} stars vs {_fmt(top.product.rating.value)} "
            f"for {top.asin} (gap {_fmt(top.gaps.rating_gap.value, 2)}).",
            "rating_gap",
        )


def _review_points(g: GroupComparison, d: _Draft) -> None:
    counted = [c for c in g.competitors if c.gaps.review_count_gap.present]
    main_count = _val(g.main.review_count)
    if main_count is None or not counted:
        return
    top = max(counted, key=lambda c: _val(c.product.review_count) or 0.0)
    top_count = _val(top.product.review_count) or 0.0
    if g.group.main_rank["review_count"].rank == 1:
        d.point(
            d.strengths,
            f"Most reviews in the group: {_fmt(main_count)}, social proof rivals lack.",
            "review_count_gap",
        )
    elif main_count < 0.5 * top_count:
        d.point(
            d.weaknesses,
            f"{_fmt(main_count)} reviews vs {_fmt(top_count)} for {top.asin}: "
            f"{_fmt(abs(_val(top.gaps.review_count_gap) or 0.0))} fewer.",
            "review_count_gap",
        )
    for c in g.competitors:
        gap, theirs = _val(c.gaps.review_velocity_gap), _val(c.product.review_velocity)
        if gap is not None and theirs is not None and gap < 0 and theirs > 0.5:
            d.point(
                d.threats,
                f"{c.asin} gains {_fmt(theirs, 1)} reviews/day vs "
                f"{_fmt(_val(g.main.review_velocity), 1)} for you over {g.window_days} days.",
                "review_velocity_gap",
            )


def _trend_points(g: GroupComparison, d: _Draft) -> None:
    for c in g.competitors:
        p = c.product
        if "cutting_prices" in p.trend_labels:
            d.point(
                d.threats,
                f"{c.asin} cut its price {_fmt(abs(_val(p.price_change_pct) or 0.0))}% over "
                f"{g.window_days} days, now {_money(p.price.value, p.price.unit)}.",
                "cutting_prices",
            )
        if "bsr_improving" in p.trend_labels:
            d.point(
                d.threats,
                f"{c.asin} is climbing: BSR improved "
                f"{_fmt(abs(_val(p.bsr_change_pct) or 0.0))}% over {g.window_days} days.",
                "bsr_improving",
            )
    main = g.main
    change = _fmt(abs(_val(main.bsr_change_pct) or 0.0))
    if "bsr_declining" in main.trend_labels:
        d.point(
            d.weaknesses,
            f"Your BSR worsened {change}% over {g.window_days} days.",
            "bsr_change_pct",
        )
    if "bsr_improving" in main.trend_labels:
        d.point(
            d.strengths,
            f"Your BSR improved {change}% over {g.window_days} days.",
            "bsr_change_pct",
        )
    if main.availability == "out_of_stock":
        d.point(
            d.weaknesses, "Your listing is out of stock: no sales, rank will slide.", "availability"
        )


def _feature_points(f: FeatureComparison | None, d: _Draft) -> None:
    if f is None:
        return
    for gap in f.main_lacks[:3]:
        shown = ", ".join(f"{a} ({label})" for a, label in gap.labels.items())
        d.point(
            d.weaknesses,
            f"Competitors advertise {display_name(gap.name)} and your listing does not: {shown}.",
            f"features.{gap.name}",
        )
    for name in f.main_only[:2]:
        d.point(
            d.strengths,
            f"Only your listing claims {display_name(name)} ({f.labels[name]}).",
            f"features.{name}",
        )
    for s in f.numeric:
        rivals = ", ".join(f"{a} {_fmt(v)}" for a, v in s.values.items())
        text = f"{display_name(s.name)}: yours {f.labels[s.name]} vs {rivals}."
        if s.position == "best":
            d.point(d.strengths, f"Best {text}", f"features.{s.name}")
        elif s.position == "worst":
            d.point(d.weaknesses, f"Worst {text}", f"features.{s.name}")


def _recommendations(g: GroupComparison, f: FeatureComparison | None, d: _Draft) -> None:
    main, ranks = g.main, g.group.main_rank
    if main.availability == "out_of_stock":
        d.rec(
            "Restock the main ASIN before anything else.",
            "Out-of-stock listings earn no sales and lose rank daily.",
            "availability",
            "high",
        )
    price_rank, rating_rank = ranks["price"], ranks["rating"]
    priced = _priced(g.competitors)
    if price_rank.rank and price_rank.rank == price_rank.of and price_rank.of > 1 and priced:
        cheapest = min(priced, key=lambda c: _val(c.product.price) or 0.0)
        if rating_rank.rank == 1:
            d.rec(
                "Defend the premium: lead images and title with your top rating.",
                f"You are the priciest but also the best rated ({_fmt(main.rating.value)}).",
                "rating_gap",
                "medium",
            )
        else:
            d.rec(
                f"Test a coupon or price step toward {cheapest.asin}'s "
                f"{_money(cheapest.product.price.value, None)}.",
                f"You are {_fmt(cheapest.gaps.price_gap_pct.value)}% more expensive without "
                "a rating edge.",
                "price_gap_pct",
                "high",
            )
    if g.group.cutting_prices and main.asin not in g.group.cutting_prices:
        who = ", ".join(a for a in g.group.cutting_prices if a != main.asin)
        d.rec(
            f"Watch {who}'s price cut; answer with a time-boxed coupon, not a list-price cut.",
            "A coupon protects margin and Buy Box eligibility while the rival tests a lower price.",
            "cutting_prices",
            "medium",
        )
    if rating_rank.rank and rating_rank.rank == rating_rank.of and rating_rank.of > 1:
        d.rec(
            "Read the 1-3 star reviews and fix the most cited complaint in product or listing.",
            "Your rating is the lowest in the group.",
            "rating_gap",
            "high",
        )
    _review_and_rank_recs(g, d)
    # A rival's stock-out is a window that closes; it outranks listing copy work.
    for asin in g.group.out_of_stock:
        if asin != main.asin:
            d.rec(
                f"Raise bids on {asin}'s branded and category keywords while it is out of stock.",
                "Its shoppers need an alternative right now.",
                "out_of_stock",
                "medium",
            )
    if f is not None:
        for gap in f.main_lacks[:2]:
            d.rec(
                f"If the product has {display_name(gap.name)}, say so in the bullets; "
                "otherwise weigh it for the next revision.",
                f"{len(gap.holders)} competitor(s) advertise it.",
                f"features.{gap.name}",
                "medium",
            )
    if not d.recs:
        d.rec(
            "Hold the current price and keep monitoring the group daily.",
            "No metric shows a gap worth acting on in this window.",
            "main_rank.price" if "main_rank.price" in d.allowed else "availability",
            "low",
        )


def _review_and_rank_recs(g: GroupComparison, d: _Draft) -> None:
    if any(p.metric == "review_count_gap" for p in d.weaknesses) or any(
        p.metric == "review_velocity_gap" for p in d.threats
    ):
        d.rec(
            "Grow reviews: enrol in Vine and send Request a Review on every eligible order.",
            "Competitors are ahead on review count or review velocity.",
            "review_count_gap" if "review_count_gap" in d.allowed else "review_velocity_gap",
            "medium",
        )
    if any(p.metric == "bsr_log_ratio" for p in d.weaknesses):
        d.rec(
            "Increase Sponsored Products spend on the keywords the top-ranked rival wins.",
            "Your BSR trails the group leader.",
            "bsr_log_ratio",
            "medium",
        )


def _describe(p: ProductMetrics) -> str:
    bits = [
        f"price {_money(p.price.value, p.price.unit)}"
        if p.price.present
        else f"no price ({p.price.reason})"
    ]
    if p.bsr_rank.present:
        bits.append(f"BSR #{_fmt(p.bsr_rank.value)} in {p.bsr_category or 'its category'}")
    if p.rating.present:
        bits.append(f"{_fmt(p.rating.value)} stars from {_fmt(p.review_count.value)} reviews")
    return ", ".join(bits)


def _summary(g: GroupComparison) -> str:
    main = g.main
    if not main.fetched:
        return (
            f"{main.asin} has not been fetched yet, so it cannot be positioned against "
            f"{len(g.competitors)} competitors."
        )
    r = g.group.main_rank
    lines = [f"Over the last {g.window_days} days {main.asin}: {_describe(main)}."]
    place = [
        f"{label} rank {r[k].rank} of {r[k].of}"
        for k, label in (("price", "price (1 = cheapest)"), ("bsr", "BSR"), ("rating", "rating"))
        if r[k].rank
    ]
    if place:
        lines.append(f"In the group of {len(g.competitors) + 1}: {', '.join(place)}.")
    unfetched = [c.asin for c in g.competitors if not c.product.fetched]
    if unfetched:
        lines.append(f"Not fetched yet: {', '.join(unfetched)}.")
    return " ".join(lines)


def rules_report(
    comparison: GroupComparison, feature_comparison: FeatureComparison | None = None
) -> PositioningReport:
    """A complete report from the numbers alone: the fallback when the model fails."""
    d = _Draft(set(allowed_metric_keys(comparison, feature_comparison)), [], [], [], [])
    _price_points(comparison, d)
    _bsr_points(comparison, d)
    _rating_points(comparison, d)
    _review_points(comparison, d)
    _trend_points(comparison, d)
    _feature_points(feature_comparison, d)
    _recommendations(comparison, feature_comparison, d)
    return PositioningReport(
        summary=_summary(comparison),
        strengths=d.strengths,
        weaknesses=d.weaknesses,
        threats=d.threats,
        recommendations=[
            Recommendation(priority=i, action=a, rationale=r, metric=m, expected_impact=impact)
            # High-impact actions first; ties keep the order the rules ranked them in.
            for i, (a, r, m, impact) in enumerate(
                sorted(d.recs, key=lambda rec: _IMPACT_ORDER[rec[3]]), start=1
            )
        ],
    )
