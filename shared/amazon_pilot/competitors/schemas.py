"""Request and response models of the competitors API (docs/competitors.md).

The comparison models describe what ``domain.comparison`` and ``domain.features`` put in
their ``to_dict()``: the comparison route answers that JSON as it was cached, and a
report's ``inputs`` is that JSON as it was stored, so these models only document and
re-serialise it; tests/unit/test_competitor_reports.py checks that a round trip through
them gives the same JSON.
"""

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import BaseModel, Field, WithJsonSchema

from amazon_pilot.domain.comparison import MetricValue
from amazon_pilot.domain.features import FeatureValue
from amazon_pilot.domain.groups import MAX_COMPETITORS, MIN_COMPETITORS
from amazon_pilot.domain.report import PositioningReport
from amazon_pilot.platform.models import Strict, Usage

Window = Literal["7d", "30d", "90d"]
# The domain writes its moments with isoformat(); kept as text so they round-trip exactly.
IsoMoment = Annotated[str, WithJsonSchema({"type": "string", "format": "date-time"})]


class CreateGroup(Strict):
    name: str = Field(min_length=1, max_length=120, examples=["Earbuds vs top rivals"])
    main: str = Field(max_length=2048, description="ASIN or Amazon product URL",
                      examples=["B0C33XXS56"])
    competitors: list[str] = Field(
        max_length=50, description="3 to 5 ASINs or Amazon product URLs",
        examples=[["B0BXYZ1234", "https://www.amazon.com/dp/B09ABC1234", "B08QWE1234"]])


class PatchGroup(Strict):
    name: str | None = Field(None, min_length=1, max_length=120)
    is_active: bool | None = Field(
        None, description="false: no daily fetch for the group, no weekly report")


class AddCompetitor(Strict):
    competitor: str = Field(max_length=2048, description="ASIN or Amazon product URL")


class NewReport(Strict):
    window: Window = "30d"


class GroupProduct(BaseModel):
    asin: str
    marketplace: str
    url: str
    role: Literal["main", "competitor"]
    title: str | None
    brand: str | None
    image_url: str | None
    as_of: datetime | None
    fetch_status: str  # pending | ok | not_found | failed
    data_source: str | None


class Group(BaseModel):
    id: UUID
    name: str
    is_active: bool
    main: GroupProduct
    competitors: list[GroupProduct]
    created_at: datetime
    updated_at: datetime
    data_source: str | None  # "sandbox" when any product's data came from the stand-in
    min_competitors: int = Field(default=MIN_COMPETITORS,
                                 description="a group keeps at least this many")
    max_competitors: int = Field(default=MAX_COMPETITORS, description="and at most this many")


class GroupPage(BaseModel):
    items: list[Group]
    total: int
    limit: int
    plan_groups: int | None = Field(None, description="groups your plan allows (the"
                                    " dashboard shows “2 of 5 groups” before the limit bites)")
    offset: int


# ---------------------------------------------------------------- the comparison


def _absent_when_none(value: object) -> bool:
    return value is None


class ComparisonMetric(BaseModel):
    """A number, or null with the reason it is unknown (never 0 for unknown)."""

    value: MetricValue
    reason: str | None
    unit: str | None = Field(None, exclude_if=_absent_when_none,
                             description="absent when the number has no unit")
    leader: Literal["main", "competitor", "tie"] | None = Field(
        None, exclude_if=_absent_when_none,
        description="gaps only: who is ahead under the metric's direction")


class ProductMetrics(BaseModel):
    asin: str
    title: str | None
    fetched: bool
    currency: str | None
    availability: str = Field(description="an availability, or never_fetched / not_found")
    stock_count: int | None
    price: ComparisonMetric
    buy_box_price: ComparisonMetric
    price_rank: ComparisonMetric = Field(description="1 = cheapest in the group")
    price_percentile: ComparisonMetric = Field(description="0 = cheapest, 100 = dearest")
    bsr_rank: ComparisonMetric
    bsr_category: str | None
    subcategory_rank: ComparisonMetric
    subcategory: str | None
    rating: ComparisonMetric
    review_count: ComparisonMetric
    review_velocity: ComparisonMetric = Field(description="reviews per day over the window")
    price_change_pct: ComparisonMetric
    bsr_change_pct: ComparisonMetric = Field(description="negative: selling better")
    trend_labels: list[str]
    history_points: int


class CompetitorGaps(BaseModel):
    """Main minus this competitor, metric by metric."""

    price_gap: ComparisonMetric
    price_gap_pct: ComparisonMetric
    buy_box_gap: ComparisonMetric
    buy_box_gap_pct: ComparisonMetric
    bsr_gap: ComparisonMetric
    bsr_ratio: ComparisonMetric
    bsr_log_ratio: ComparisonMetric
    subcategory_bsr_gap: ComparisonMetric
    rating_gap: ComparisonMetric
    review_count_gap: ComparisonMetric
    review_velocity_gap: ComparisonMetric


class CompetitorComparison(BaseModel):
    asin: str
    title: str | None
    product: ProductMetrics
    gaps: CompetitorGaps


class GroupLeader(BaseModel):
    """Who leads the group on one metric; several ASINs when tied, none with a reason."""

    asins: list[str]
    value: MetricValue
    reason: str | None


class RankPosition(BaseModel):
    """The main product's place in the group: 1 = best under the metric's direction."""

    rank: int | None
    of: int
    reason: str | None


class MainRank(BaseModel):
    price: RankPosition
    buy_box_price: RankPosition
    bsr: RankPosition
    rating: RankPosition
    review_count: RankPosition
    review_velocity: RankPosition


class GroupSummary(BaseModel):
    cheapest: GroupLeader
    best_bsr: GroupLeader
    highest_rated: GroupLeader
    most_reviewed: GroupLeader
    fastest_review_growth: GroupLeader
    cutting_prices: list[str]
    raising_prices: list[str]
    bsr_improving: list[str]
    bsr_declining: list[str]
    out_of_stock: list[str]
    main_rank: MainRank


class ComparisonConventions(BaseModel):
    gaps: str
    bsr: str
    missing: str


class GroupComparison(BaseModel):
    window_days: int
    window_start: IsoMoment | None
    window_end: IsoMoment | None
    conventions: ComparisonConventions
    main: ProductMetrics
    competitors: list[CompetitorComparison]
    group: GroupSummary
    metric_keys: list[str] = Field(description="the metric names a report may cite")


class FeatureEvidence(BaseModel):
    source: Literal["details", "bullet", "title"]
    bullet_index: int | None = Field(
        description="0-based bullet (or details-table row for source details); null for the title"
    )
    text: str = Field(description="the matched span exactly as written")
    start: int
    end: int
    row_name: str | None = Field(
        default=None, description="the details-table row's name (\"Capacity\"); null otherwise"
    )


class ProductFeature(BaseModel):
    value: FeatureValue
    unit: str | None
    kind: Literal["number", "flag", "text", "theme"]
    label: str
    rule: str
    evidence: FeatureEvidence


class ProductFeatures(BaseModel):
    asin: str
    features: dict[str, ProductFeature]


class FeatureGap(BaseModel):
    """A feature the main product lacks, and which competitors claim it."""

    name: str
    holders: list[str]
    labels: dict[str, str] = Field(description="asin -> how that competitor states it")


class MainOnlyFeature(BaseModel):
    name: str
    label: str


class NumericStanding(BaseModel):
    name: str
    unit: str | None
    better: Literal["higher", "lower"]
    main_value: float
    values: dict[str, float] = Field(description="the competitors that state it")
    position: Literal["best", "worst", "middle", "tied"]
    best_asins: list[str]


class FeatureComparison(BaseModel):
    main_asin: str
    main_lacks: list[FeatureGap]
    main_only: list[MainOnlyFeature]
    shared: list[str]
    numeric: list[NumericStanding]
    metric_keys: list[str]


class ComparisonFeatures(BaseModel):
    comparison: FeatureComparison
    products: list[ProductFeatures]


class ComparisonProduct(BaseModel):
    asin: str
    role: Literal["main", "competitor"]
    fetch_status: str  # pending | ok | not_found | failed
    as_of: IsoMoment | None
    data_source: str | None


class Comparison(BaseModel):
    group_id: UUID
    window: Window
    data_source: str | None
    products: list[ComparisonProduct]
    comparison: GroupComparison
    features: ComparisonFeatures


class ReportInputs(BaseModel):
    comparison: GroupComparison
    features: FeatureComparison


# ---------------------------------------------------------------- reports


class Report(BaseModel):
    id: UUID
    group_id: UUID
    status: Literal["queued", "running", "done", "failed"]
    trigger: str
    window_days: int
    generated_by: Literal["llm", "rules"] | None
    model: str | None
    sandbox: bool | None = Field(description="true when the words came from the offline model")
    fallback_reason: str | None
    cache: Literal["hit", "miss"] | None
    usage: Usage
    llm_latency_ms: int | None
    data_source: str | None
    error: str | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    report: PositioningReport | None = None


class ReportDetail(Report):
    inputs: ReportInputs | None = Field(
        None, description="the comparison and feature comparison the report was built from")


class ReportPage(BaseModel):
    items: list[Report]
    total: int
    limit: int
    offset: int
