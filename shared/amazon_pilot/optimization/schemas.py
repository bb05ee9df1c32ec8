"""Request and response models of optimization's routes.

The listing score, the suggestions' evidence and the experiment analysis are built by the
domain as plain documents (and some are stored as JSON); their models here describe them
for the OpenAPI document without changing them: a ``Document`` keeps keys it does not know
and leaves out the optional keys the domain left out (no ``null`` is added).
"""

from datetime import date, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
)

from amazon_pilot.domain.suggestions import Level, SuggestionSource
from amazon_pilot.optimization.store import CacheUse, ExperimentStatus, GeneratedBy, RunStatus
from amazon_pilot.platform.models import Strict, Usage

# domain.experiments.Verdict, repeated: that module brings numpy, which the routes import
# only with the first analysis (tests/unit/test_optimization_schemas.py keeps them equal).
Verdict = Literal["improved", "no_detectable_effect", "worse", "too_early"]
IsoDateTime = Annotated[str, Field(json_schema_extra={"format": "date-time"})]


def _no_defaults(schema: dict[str, Any]) -> None:
    # an optional key is left out, never filled in: a default would misdescribe it
    for prop in schema.get("properties", {}).values():
        prop.pop("default", None)


class Document(BaseModel):
    """A document the domain builds: unknown keys are kept, absent optional keys stay
    absent in the answer."""

    model_config = ConfigDict(extra="allow", json_schema_extra=_no_defaults)

    @model_serializer(mode="wrap")
    def _given_keys_only(self, handler: SerializerFunctionWrapHandler):
        # no return annotation on purpose: pydantic then documents the fields, not a dict
        data = handler(self)
        declared = type(self).model_fields
        return {k: v for k, v in data.items() if k not in declared or k in self.model_fields_set}


# ---------------------------------------------------------------- listing score


class GroupUsed(BaseModel):
    id: UUID
    name: str
    competitors: list[str]


class CompetitorUsed(BaseModel):
    asin: str
    title: str | None
    brand: str | None
    as_of: datetime | None


class KeywordOut(Document):
    term: str = Field(description="as competitors most often write it")
    weight: float = Field(description="sum of the competitors' strengths (BSR-based) using"
                                      " it; a title mention counts double a bullets-only one")
    competitors: int = Field(description="how many competitors use it")
    in_title: bool


class TitleLengthEvidence(Document):
    length: int


class TitleStructureEvidence(Document):
    brand_first: bool | None = Field(None, description="null: brand unknown, not checked")
    caps_words: list[str] = []
    promo: list[str] = []
    special: list[str] = []
    length: int = Field(0, description="only when there is no title (0)")


class KeywordCoverageEvidence(Document):
    """Empty when not applicable."""

    coverage: float = Field(0.0, description="share of the keywords' weight the title covers")
    present: list[str] = []
    missing: list[str] = []


class CountEvidence(Document):
    count: int


class BulletLengthEvidence(Document):
    lengths: list[int]


class DescriptionRuleEvidence(Document):
    length: int
    duplicate_share: float = Field(0.0, description="share of 4-word shingles repeated from"
                                                    " the bullets (absent with no description)")
    noise: list[str] = []


class ImageAnglesEvidence(Document):
    status: Literal["named", "partly_named", "unknown"] = Field(
        description="named: every image's data names its shot type; otherwise angles are unknown"
    )
    detected: list[str] = Field(description="angles named in the image data (file names, slots)")
    unknown_images: int = Field(description="images whose data names no shot type")
    missing: list[str] = Field(
        description="only when every image is named; competitors' shown angles first"
    )
    competitor_mean_images: float
    competitors_show: list[str]


class VideoEvidence(Document):
    videos: int
    competitors_with_video: int


class RatingEvidence(Document):
    """Empty when the product has no rating yet."""

    rating: float = 0.0
    band: str = ""


class ReviewCountEvidence(Document):
    """Empty when the review count is unknown."""

    reviews: int = 0
    tier: str = ""
    competitor_median: int | float = Field(0, description="absent without competitor counts")


class LeftOutPrice(Document):
    asin: str
    marketplace: str
    currency: str | None
    reason: str


class PricePositionEvidence(Document):
    """Empty when there is no price at all; without a same-currency competitor it holds
    only the currency and the competitors left out."""

    currency: str | None = Field(None, description="the currency of every price here")
    left_out: list[LeftOutPrice] = Field([], description="competitors in another currency"
                                                         " or without a price")
    price: float = 0.0
    median: float = 0.0
    cheapest: float = 0.0
    premium: float = Field(0.0, description="price / median - 1")
    highest: bool = False
    lead: bool = Field(False, description="a rating or review-count lead over the group")


class _Rule(Document):
    rule_id: str
    name: str
    weight: float = Field(description="points at stake (weights sum to 100)")
    score: float = Field(description="0..1")
    points: float
    passed: bool
    applicable: bool = Field(description="false: the data to judge it is missing; left out"
                                         " of the total")
    detail: str = Field(description="what was measured")
    advice: str = Field(description="what would raise it; empty when maxed")
    evidence: Document


class TitleLengthRule(_Rule):
    rule_id: Literal["title_length"]
    evidence: TitleLengthEvidence


class TitleStructureRule(_Rule):
    rule_id: Literal["title_structure"]
    evidence: TitleStructureEvidence


class KeywordCoverageRule(_Rule):
    rule_id: Literal["keyword_coverage"]
    evidence: KeywordCoverageEvidence


class BulletCountRule(_Rule):
    rule_id: Literal["bullet_count"]
    evidence: CountEvidence


class BulletLengthRule(_Rule):
    rule_id: Literal["bullet_length"]
    evidence: BulletLengthEvidence


class DescriptionRule(_Rule):
    rule_id: Literal["description"]
    evidence: DescriptionRuleEvidence


class ImageCountRule(_Rule):
    rule_id: Literal["image_count"]
    evidence: CountEvidence


class ImageAnglesRule(_Rule):
    rule_id: Literal["image_angles"]
    evidence: ImageAnglesEvidence


class VideoRule(_Rule):
    rule_id: Literal["video"]
    evidence: VideoEvidence


class RatingRule(_Rule):
    rule_id: Literal["rating"]
    evidence: RatingEvidence


class ReviewCountRule(_Rule):
    rule_id: Literal["review_count"]
    evidence: ReviewCountEvidence


class PricePositionRule(_Rule):
    rule_id: Literal["price_position"]
    evidence: PricePositionEvidence


RuleOut = Annotated[
    TitleLengthRule | TitleStructureRule | KeywordCoverageRule | BulletCountRule
    | BulletLengthRule | DescriptionRule | ImageCountRule | ImageAnglesRule | VideoRule
    | RatingRule | ReviewCountRule | PricePositionRule,
    Field(discriminator="rule_id"),
]
RULES: TypeAdapter[list[RuleOut]] = TypeAdapter(list[RuleOut])


class ScoreDocument(Document):
    """score_listing's result, as a suggestion run stores it."""

    asin: str
    total: float = Field(description="0..100")
    grade: str = Field(description="A (>= 85) | B (>= 70) | C (>= 55) | D")
    rules: list[RuleOut]
    keywords: list[KeywordOut] = Field(description="high-value keywords, best first")
    missing_keywords: list[str] = Field(description="by weight, best first")
    missing_angles: list[str]


class ListingScoreOut(Document):
    product_id: UUID
    asin: str
    total: float = Field(description="0..100")
    grade: str = Field(description="A (>= 85) | B (>= 70) | C (>= 55) | D")
    rules: list[RuleOut]
    keywords: list[KeywordOut] = Field(description="high-value keywords, best first")
    missing_keywords: list[str] = Field(description="by weight, best first")
    missing_angles: list[str]
    as_of: datetime | None
    data_source: str | None
    competitor_group: GroupUsed | None
    competitors: list[CompetitorUsed]
    notes: list[str]


# ---------------------------------------------------------------- suggestions


class TitleEvidence(Document):
    brand: str | None
    current_title: str
    current_length: int
    suggested_title: str
    suggested_length: int
    keywords_added: list[str]
    missing_keywords: list[str]
    keyword_coverage: float | None
    points_lost: float
    keywords_not_grounded: dict[str, str] = Field(description="missing keywords left out"
                                                  " of the title, and why")
    term_sources: dict[str, str] = Field(description="every term the suggestion adds ->"
                                         " 'own title' / 'own bullets' / 'own description' /"
                                         " 'own details' / 'competitor titles (N)'")
    llm_title: str = Field("", description="the model's title (when its copy was used)")
    llm_rejected: list[str] = Field([], description="why the model's copy was refused")
    llm_repaired: list[str] = Field([], description="what was dropped from the model's"
                                                    " copy to ground it")


class PriceElasticity(Document):
    """How the product's sales rank answered its own price changes (domain.elasticity)."""

    status: Literal["estimated", "no_response", "implausible", "not_possible"] = Field(
        description="estimated: a measured, plausible response; no_response: the interval"
                    " includes 0; implausible: rank improved as price rose; not_possible:"
                    " too little history, usable days or price variation")
    reason: str = Field(description="why, with the numbers")
    days: int = Field(description="calendar days of history read")
    usable_days: int = Field(description="days with price, rank and stock")
    rank_source: Literal["bsr", "subcategory_bsr"] | None
    elasticity: float | None = Field(description="dln(BSR) / dln(price), trend removed;"
                                                 " > 0: dearer -> worse rank")
    interval: list[float] | None = Field(description="bootstrap interval [low, high]")
    interval_level: float
    price_levels: list[float] = Field(description="price levels held 5+ usable days")
    excluded_days: dict[str, int] = Field(description="out_of_stock, deal, no_price,"
                                                         " no_rank")


class PriceAdvantage(Document):
    feature: str
    label: str
    rivals: list[str] = Field(description="the (at most one) competitor that also has it")


class PriceMarket(Document):
    """Same-currency competitors only; the others are in left_out with the reason."""

    currency: str | None
    compared: list[str]
    left_out: list[LeftOutPrice]
    median: float = Field(0.0, description="absent when no competitor shares the currency")
    cheapest: float = 0.0
    highest: float = 0.0
    premium: float = Field(0.0, description="price / median - 1")
    position: int = Field(0, description="1 = cheapest")
    group_size: int = 0
    lead: bool = Field(False, description="a rating or review-count lead over the group")
    advantages: list[PriceAdvantage] = Field([], description="features at most one rival has")
    rival_prices: dict[str, float | None] = {}


class PricingEvidence(Document):
    currency: str | None = Field(description="the currency of every price here")
    price: float
    suggested_range: list[float] = Field(min_length=2, max_length=2)
    history: PriceElasticity
    market: PriceMarket | None = Field(description="null without a competitor group")
    expected_bsr_change: float = Field(0.0, description="at the suggested price (absent"
                                                        " without a usable elasticity)")
    expected_bsr_change_interval: list[float] = Field([], description="from the interval")


class PricingAssessmentOut(Document):
    """Every product gets one: advice (a pricing suggestion), hold, or why none."""

    status: Literal["advice", "hold", "no_assessment"]
    reason: str
    currency: str | None
    price: float | None
    history: PriceElasticity
    market: PriceMarket | None


class DescriptionEvidence(Document):
    differentiators: list[str]
    missing_features: list[str]
    feature_source: Literal["feature_gaps", "bullet keywords"]
    bullet_count: int
    description_length: int
    points_lost: float
    suggested_bullets: list[str] = Field(description="bullets built from the listing's own"
                                                     " facts ([] when they would not change)")
    term_sources: dict[str, str] = Field(description="every term the suggestion adds ->"
                                         " 'own title' / 'own bullets' / 'own description' /"
                                         " 'own details' / 'competitor titles (N)'")
    llm_rejected: list[str] = Field([], description="why the model's copy was refused")
    llm_repaired: list[str] = Field([], description="what was dropped from the model's"
                                                    " copy to ground it")


class ImagesEvidence(Document):
    image_count: int
    competitor_mean_images: float | None
    missing_angles: list[str]
    video: int = Field(description="videos the listing has")
    competitors_with_video: int
    points_lost: float


class _Suggestion(BaseModel):
    id: UUID
    type: str
    change: str
    reason: str
    impact: Level
    impact_score: float
    effort: Level
    effort_score: float
    priority: int
    source: SuggestionSource
    evidence: Document
    experiment_id: UUID | None = None


class TitleSuggestion(_Suggestion):
    type: Literal["title"]
    evidence: TitleEvidence


class PricingSuggestion(_Suggestion):
    type: Literal["pricing"]
    evidence: PricingEvidence


class DescriptionSuggestion(_Suggestion):
    type: Literal["description"]
    evidence: DescriptionEvidence


class ImagesSuggestion(_Suggestion):
    type: Literal["images"]
    evidence: ImagesEvidence


SuggestionOut = Annotated[
    TitleSuggestion | PricingSuggestion | DescriptionSuggestion | ImagesSuggestion,
    Field(discriminator="type"),
]
SUGGESTION: TypeAdapter[SuggestionOut] = TypeAdapter(SuggestionOut)


class Run(BaseModel):
    id: UUID
    product_id: UUID
    status: RunStatus
    trigger: str
    generated_by: GeneratedBy | None
    fallback_reason: str | None
    model: str | None
    sandbox: bool | None
    cache: CacheUse | None
    usage: Usage
    llm_latency_ms: int | None
    data_source: str | None
    error: str | None
    attempts: int
    suggestion_count: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class StoredCompetitor(Document):
    asin: str
    title: str | None
    brand: str | None
    as_of: IsoDateTime | None


class FeatureGaps(Document):
    only_main: list[str] = Field(description="what only this listing states")
    missing: list[str] = Field(description="what competitors state and it does not")


class RunInputs(Document):
    competitor_group: GroupUsed | None
    competitors: list[StoredCompetitor]
    feature_gaps: FeatureGaps | None = Field(description="null: no feature found in any"
                                                         " listing (bullet keywords used)")
    feature_source: Literal["features", "bullet keywords"]
    history_days: int
    notes: list[str]
    as_of: IsoDateTime | None
    pricing: PricingAssessmentOut | None = Field(None, description="absent in runs made"
                                                                   " before it existed")


class RunDetail(Run):
    notice: str | None
    suggestions: list[SuggestionOut]
    score: ScoreDocument | None = Field(description="the listing score it was built from")
    inputs: RunInputs | None


class RunPage(BaseModel):
    items: list[Run]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- experiments


class NewExperiment(Strict):
    product_id: UUID = Field(description="the tracked product's id")
    suggestion_id: UUID | None = Field(None, description="a suggestion of this product")
    change: str = Field(min_length=1, max_length=2000, description="what was changed")
    changed_at: datetime | None = Field(None, description="when (defaults to now; may be in"
                                                          " the past, not the future)")


class Experiment(BaseModel):
    id: UUID
    product_id: UUID
    asin: str
    suggestion_id: UUID | None
    change: str
    changed_at: datetime
    status: ExperimentStatus
    verdict: str | None = Field(description="improved | no_detectable_effect | worse |"
                                            " too_early, as of analyzed_at")
    analyzed_at: datetime | None
    created_at: datetime
    stopped_at: datetime | None


class Window(Document):
    start: date
    end: date


class MetricEffect(Document):
    """One metric's difference in differences against the control (analysis units)."""

    metric: str
    verdict: Verdict
    effect: float | None
    ci_low: float | None
    ci_high: float | None
    effect_pct: float | None = Field(description="exp(effect) - 1 for log metrics")
    p_value: float | None
    product_change: float | None = Field(description="the product's own after - before")
    control_change: float | None = Field(description="the control mean's after - before")
    n_before: int = Field(description="days with data")
    n_after: int
    missing_before: float = Field(description="share of calendar days without data")
    missing_after: float
    n_controls: int
    unit: str
    lower_is_better: bool
    informational: bool = Field(description="reported, never decides the verdict")
    block_len: int | None
    ar1: float | None = Field(description="lag-1 autocorrelation of the difference series")


class DetectedChange(Document):
    date: date
    kind: Literal["price", "title", "list_price"]
    old: float | str
    new: float | str


class ControlPoint(BaseModel):
    date: date
    value: float


class Analysis(Document):
    changed_at: date
    verdict: Verdict = Field(description="from the primary metric (BSR)")
    primary_metric: str | None
    confidence: float
    n_boot: int = Field(description="bootstrap resamples")
    before_window: Window | None
    after_window: Window | None
    metrics: dict[str, MetricEffect]
    warnings: list[str]
    other_changes: list[DetectedChange] = Field(description="changes found inside the"
                                                            " after window")
    analysed_until: IsoDateTime
    data_source: str | None
    competitor_group: GroupUsed | None
    control_series: dict[str, list[ControlPoint]] | None = Field(
        None, description="per metric, the control's daily mean (the group's competitors"
        " with a value that day), for charts; absent in analyses frozen before it existed")


class ExperimentDetail(Experiment):
    analysis: Analysis


class ExperimentPage(BaseModel):
    items: list[Experiment]
    total: int
    limit: int
    offset: int


class Candidate(BaseModel):
    date: str
    kind: Literal["price", "title", "list_price"]
    old: float | str
    new: float | str
    changed_at: datetime
    change: str


class Candidates(BaseModel):
    product_id: UUID
    asin: str
    days: int
    items: list[Candidate]
    data_source: str | None


# ---------------------------------------------------------------- summary


class ScoreBrief(BaseModel):
    total: float
    grade: str
    failing_rules: list[RuleOut]


class Summary(BaseModel):
    product_id: UUID
    asin: str
    score: ScoreBrief | None
    latest_run: Run | None
    open_suggestions: list[SuggestionOut]
    experiments: list[Experiment]
    competitor_group: GroupUsed | None
    notes: list[str]

