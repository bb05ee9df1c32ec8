"""Tracking's request, response and job payload models."""

from datetime import datetime
from typing import Any, Literal, Self, get_args
from uuid import UUID

from pydantic import BaseModel, Field, model_validator

from amazon_pilot.domain import cadence
from amazon_pilot.domain.changes import DEFAULT_THRESHOLDS, AlertType
from amazon_pilot.domain.product_ref import InvalidProductRef, ProductRef, parse_product_ref
from amazon_pilot.domain.tags import MAX_NOTES_LENGTH, MAX_TAGS, InvalidTag, normalize_tags
from amazon_pilot.platform.errors import ValidationFailed
from amazon_pilot.platform.models import Strict

HistoryMetric = Literal["price", "list_price", "buy_box_price", "bsr", "subcategory_bsr",
                        "rating", "review_count", "offer_count", "seller_count",
                        "bought_past_month"]
Interval = Literal["raw", "day", "week"]
Severity = Literal["info", "warning", "critical"]


# ---------------------------------------------------------------- requests


class ThresholdsIn(Strict):
    price_change_pct: float = Field(DEFAULT_THRESHOLDS.price_change_pct, gt=0, le=1000)
    subcategory_bsr_change_pct: float = Field(
        DEFAULT_THRESHOLDS.subcategory_bsr_change_pct, gt=0, le=10000)
    bsr_change_pct: float = Field(DEFAULT_THRESHOLDS.bsr_change_pct, gt=0, le=10000)
    buy_box_price_change_pct: float = Field(
        DEFAULT_THRESHOLDS.buy_box_price_change_pct, gt=0, le=1000)
    rating_change: float = Field(DEFAULT_THRESHOLDS.rating_change, gt=0, le=5)
    review_count_jump: int = Field(DEFAULT_THRESHOLDS.review_count_jump, ge=1, le=10_000_000)
    target_price: float | None = Field(None, gt=0, le=1_000_000)
    buy_box: bool = True
    stock: bool = True
    listing: bool = True
    keyword_rank_drop_places: int = Field(
        DEFAULT_THRESHOLDS.keyword_rank_drop_places, ge=1, le=48,
        description="organic places lost on a search term's first page that raise an alert")


class AddProduct(Strict):
    asin: str | None = Field(None, max_length=20, examples=["B0C33XXS56"])
    url: str | None = Field(None, max_length=2048,
                            examples=["https://www.amazon.com/dp/B0C33XXS56"])
    alias: str | None = Field(None, max_length=120)
    thresholds: ThresholdsIn | None = None

    @model_validator(mode="after")
    def one_reference(self) -> Self:
        if (self.asin is None) == (self.url is None):
            raise ValueError("give exactly one of 'asin' or 'url'")
        return self

    def reference(self) -> ProductRef:
        try:
            return parse_product_ref(self.asin or self.url or "")
        except InvalidProductRef as exc:
            field = "asin" if self.asin is not None else "url"
            raise ValidationFailed(
                str(exc), details=[{"field": field, "message": str(exc)}]
            ) from exc


class BulkAdd(Strict):
    items: list[AddProduct] = Field(min_length=1, max_length=100)


def checked_tags(tags: list[str], field: str = "tags") -> list[str]:
    try:
        return normalize_tags(tags)
    except InvalidTag as exc:
        raise ValidationFailed(str(exc), details=[{"field": field, "message": str(exc)}]
                               ) from exc


RefreshEvery = Literal["12h", "1d", "3d", "7d", "auto"]
assert get_args(RefreshEvery) == cadence.REFRESH_EVERY, "RefreshEvery lists domain.cadence's"
_REFRESH_EVERY = ("how often the daily plan fetches it: 12h, 1d (the default), 3d, 7d, or "
                  "auto (daily, every 3 days once no price/Buy Box/BSR alert for 7 days, "
                  "daily again at the next one). \"Refresh now\" still fetches on demand")


class PatchProduct(Strict):
    alias: str | None = Field(None, max_length=120)
    thresholds: ThresholdsIn | None = None
    is_paused: bool | None = None
    tags: list[str] | None = Field(None, max_length=MAX_TAGS, description="replaces the "
                                   "product's tags (normalised: trimmed, lower-case)")
    notes: str | None = Field(None, max_length=MAX_NOTES_LENGTH,
                              description="your note; null or empty clears it")
    refresh_every: RefreshEvery | None = Field(None, description=_REFRESH_EVERY)

    def changes(self) -> dict[str, Any]:
        """The fields this request sets. Thresholds null puts the defaults back; an object
        sets exactly the thresholds it names."""
        changes = self.model_dump(exclude_unset=True)
        for name, allowed in (("is_paused", "true or false"),
                              ("refresh_every", "one of " + ", ".join(cadence.REFRESH_EVERY))):
            if name in changes and changes[name] is None:
                raise ValidationFailed(f"'{name}' must be {allowed}",
                                       details=[{"field": name, "message": "null"}])
        if "thresholds" in changes:
            changes["thresholds"] = (self.thresholds.model_dump(exclude_unset=True)
                                     if self.thresholds is not None else {})
        if "tags" in changes:
            changes["tags"] = checked_tags(changes["tags"] or [])
        if "notes" in changes:
            changes["notes"] = (changes["notes"] or "").strip() or None
        return changes


BulkActionName = Literal["pause", "resume", "tag", "untag", "delete", "refresh_every"]


class BulkAction(Strict):
    """One action on a selection of tracked products."""

    action: BulkActionName
    ids: list[UUID] = Field(min_length=1, max_length=500)
    tags: list[str] = Field(default_factory=list, max_length=MAX_TAGS,
                            description="for tag and untag: the tags to add or remove")
    refresh_every: RefreshEvery | None = Field(None, description="for refresh_every: the "
                                               "cadence to set")

    @model_validator(mode="after")
    def tags_when_needed(self) -> Self:
        if self.action in ("tag", "untag") and not self.tags:
            raise ValueError(f"'{self.action}' needs at least one tag in 'tags'")
        if self.action == "refresh_every" and self.refresh_every is None:
            raise ValueError("'refresh_every' needs 'refresh_every': one of "
                             + ", ".join(cadence.REFRESH_EVERY))
        return self


# ---------------------------------------------------------------- responses


class SubRank(BaseModel):
    rank: int
    category: str


class Latest(BaseModel):
    price: float | None = None
    list_price: float | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
    buy_box_seller_id: str | None = None
    currency: str | None = None
    availability: str = "unknown"
    in_stock: bool | None = None
    stock_count: int | None = None
    rating: float | None = None
    review_count: int | None = None
    bsr_rank: int | None = None
    bsr_category: str | None = None
    subcategory_bsr: int | None = None
    subcategory_ranks: list[SubRank] = []
    image_count: int | None = None


# how latest_fields copies each of Latest's field types (None: as stored)
_LATEST_KINDS: dict[Any, Any] = {float | None: float, int | None: int, str | None: None,
                                 str: None, bool | None: None, list[SubRank]: list}
assert all(f.annotation in _LATEST_KINDS for f in Latest.model_fields.values()), (
    "latest_fields copies Latest's fields by kind: teach it the new field's type")
# (name, default, kind) in the model's order, read once (model_fields is a descriptor)
_LATEST_SPEC = tuple((name, field.default, _LATEST_KINDS[field.annotation])
                     for name, field in Latest.model_fields.items())


def latest_fields(stored: dict[str, Any]) -> dict[str, Any]:
    """Latest's fields from the stored values, as the model would give them (its field
    order, floats as floats, defaults for what is missing, unknown keys dropped), without
    building the model: the product list encodes fifty of them straight to JSON."""
    out: dict[str, Any] = {}
    for name, default, kind in _LATEST_SPEC:
        value = stored.get(name, default)
        if value is None or kind is None:
            out[name] = value
        elif kind is list:
            out[name] = [{"rank": int(r["rank"]), "category": str(r["category"])}
                         for r in value]
        else:
            out[name] = kind(value)
    return out


class MetricChange(BaseModel):
    old: float | None
    new: float | None
    change: float | None
    change_pct: float | None


class TrackedProduct(BaseModel):
    id: UUID
    asin: str
    marketplace: str
    url: str
    alias: str | None
    title: str | None
    brand: str | None
    image_url: str | None
    is_paused: bool
    thresholds: dict[str, Any]
    created_at: datetime
    latest: Latest | None
    as_of: datetime | None
    stale: bool
    fetch_status: str = Field(description="pending (never fetched yet) | ok | not_found (a "
                              "real 404 page) | failed (never fetched: every attempt failed)")
    fetch_error: str | None = Field(None, description="why the last fetch failed, after its "
                                    "retries (a robot check, an actor failure); null once a "
                                    "fetch succeeds. Stored data is kept")
    fetch_failed_at: datetime | None = None
    data_source: str | None  # "sandbox" for data from the offline stand-in
    tags: list[str] = Field(default_factory=list, description="your tags, sorted")
    notes: str | None = Field(None, description="your note")
    refresh_every: RefreshEvery = Field("1d", description=_REFRESH_EVERY)
    refresh_cadence: Literal["12h", "1d", "3d", "7d"] = Field(
        "1d", description="the cadence applied now: `auto` resolved (3d when "
        "stable, else 1d), 7d when your fetch budget stretched it")
    budget_stretched: bool = Field(False, description="fetched weekly because your monthly "
                                   "fetch budget would not fit (GET /v1/auth/me says why)")
    next_refresh_at: datetime | None = Field(
        None, description="when the daily plan fetches it next at your cadence (sooner "
        "if another seller or a competitor group wants it daily); null while paused")


class BuyBoxWindow(BaseModel):
    days: int = Field(description="days with a known Buy Box (a holder, or nobody because "
                      "no offer was shown), by each day's last observation")
    held_days: int | None = Field(description="of those, days you held it; null when "
                                  "ownership is unknown (no seller ids)")
    share: float | None = Field(description="held_days / days, 0 to 1; null when unknown "
                                "or no day was observed")
    unknown_days: int = Field(description="days observed without a reported seller (an "
                              "actor format that gives none): left out of the share")


class BuyBoxStatus(BaseModel):
    """Who holds the Buy Box now, whether it is the caller, and their share over time."""

    seller: str | None
    seller_id: str | None
    held_by_you: bool | None = Field(description="null when ownership is unknown or no "
                                     "observation says who holds it")
    ownership: Literal["known", "unknown"] = Field(
        description="known once the seller has told us their seller ids (PATCH /v1/auth/me)")
    note: str | None = Field(description="plain words when ownership is unknown")
    share: dict[str, BuyBoxWindow] = Field(description="windows 7d, 30d and 90d")


class ProductDetail(TrackedProduct):
    changes: dict[str, dict[str, MetricChange] | None]
    refresh_available_at: datetime | None
    buy_box: BuyBoxStatus


class ListedProduct(TrackedProduct):
    changes: dict[str, dict[str, MetricChange] | None] | None = Field(
        None, description="change since 1d and 7d, computed as the detail's `changes` "
        "(null when the product has no data yet)")


class ProductPage(BaseModel):
    items: list[ListedProduct]
    total: int
    limit: int
    offset: int
    plan_products: int | None = Field(None, description="products your plan may track")
    tracked: int | None = Field(None, description="products you track (every filter aside)")
    next_cursor: str | None = Field(
        None, description="in the created_at order: pass as `cursor` for the next page"
        " (null on the last page and in other orders)")


class BulkResult(BaseModel):
    index: int
    status: int
    product: TrackedProduct | None = None
    error: dict[str, Any] | None = None


class BulkResponse(BaseModel):
    results: list[BulkResult]
    created: int
    failed: int


class BulkActionResult(BaseModel):
    id: UUID
    status: int = Field(description="200 done, 204 deleted, 404 not one of your products,"
                        " 422 refused (the error says why)")
    product: TrackedProduct | None = None
    error: dict[str, Any] | None = None


class BulkActionResponse(BaseModel):
    action: BulkActionName
    results: list[BulkActionResult]
    succeeded: int
    failed: int


class TagCount(BaseModel):
    tag: str
    products: int


class TagList(BaseModel):
    items: list[TagCount]


class HistoryPoint(BaseModel):
    t: datetime
    v: float | None


class History(BaseModel):
    product_id: UUID
    metric: str
    interval: str
    start: datetime
    end: datetime
    count: int
    points: list[HistoryPoint]
    data_source: str | None


class Alert(BaseModel):
    id: UUID
    product_id: UUID
    asin: str
    product_title: str | None
    type: AlertType
    severity: str
    metric: str | None
    old_value: str | None
    new_value: str | None
    change_pct: float | None
    threshold: float | None
    message: str
    snapshot_captured_at: datetime
    created_at: datetime
    acknowledged_at: datetime | None
    data_source: str | None


class AlertPage(BaseModel):
    items: list[Alert]
    total: int
    limit: int
    offset: int


# ---------------------------------------------------------------- scrape runs

RunProblemKind = Literal["unattributed", "duplicate", "unusable", "redirected", "no_item",
                         "skipped"]
RunOutcome = Literal["requested", "stored", "not_found", "unusable", "no_item", "skipped"]


class ScrapeRun(BaseModel):
    """One actor run. An administrator's counts cover the whole run (`scope` "all"); a
    seller's cover only their own products (`scope` "yours"), and their `cost_usd` is
    their products' share of the run's cost."""

    id: UUID
    trigger: str = Field(description="schedule | add | refresh | group | backfill | demo")
    status: str = Field(description="running | succeeded | failed | timed_out")
    scope: Literal["all", "yours"]
    actor_id: str | None
    data_source: str | None = Field(description='"sandbox" when the offline stand-in answered')
    attempts: int
    captured_at: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_s: float | None
    cost_usd: float | None = Field(description="Apify's charge (a seller: their share of it)")
    requested: int = Field(description="product URLs the run requested")
    returned: int | None = Field(description="items the actor returned")
    attributed: int | None = Field(description="items used for a requested product")
    not_found: int | None = Field(description="requested products whose page was a real 404")
    no_data: int | None = Field(
        description="requested products without a usable item: nothing stored changed")
    unattributed: int | None = Field(
        description="items that named no requested URL (null for a seller)")
    duplicates: int | None = Field(description="further items for a URL; the first is kept")
    malformed: int | None = Field(description="items of a requested URL without product data")
    problem_count: int | None
    error: str | None


class ScrapeRunPage(BaseModel):
    items: list[ScrapeRun]
    total: int
    limit: int
    offset: int


class RunProblem(BaseModel):
    """One problem on a run's record: an item (its position in the dataset, its url, the
    ASIN it reported) or a requested product, and why."""

    kind: RunProblemKind
    reason: str
    index: int | None = None
    url: str | None = None
    asin: str | None = Field(None, description="the requested product's ASIN")
    marketplace: str | None = None
    item_asin: str | None = Field(None, description="the ASIN the item reported")
    product_id: UUID | None = Field(None, description="your tracked product, when it is one")


class RunProduct(BaseModel):
    asin: str
    marketplace: str
    title: str | None
    outcome: RunOutcome
    served_asin: str | None = Field(description="the ASIN the page showed instead")
    duplicates: int
    reason: str | None
    product_id: UUID | None = Field(description="your tracked product, when it is one")
    attempt: int = Field(1, description="which attempt at this product's fetch the run was "
                         "(1: the first; a fetch without usable data is tried again)")
    retry_at: datetime | None = Field(None, description="when the product's next attempt "
                                      "is due; null when this outcome is final")


class ScrapeRunDetail(ScrapeRun):
    problems: list[RunProblem] = Field(
        description="an administrator's list keeps the first 100 of problem_count")
    products: list[RunProduct]
    cost_per_product_usd: float | None


# ---------------------------------------------------------------- jobs


class FetchPayload(Strict):
    """A fetch_products job: fetch these shared products for one observation time."""

    product_ids: list[int]
    trigger: str = "schedule"  # schedule | add | refresh | group | backfill | demo
    captured_at: datetime  # from the message, never the clock: replays store nothing twice
    # 1 for a fetch as planned; a product re-fetched because its item was unusable (a robot
    # check, a malformed item, no item) comes back with the next attempt number
    attempt: int = Field(default=1, ge=1, le=20)
