"""Routes of the products function: tracked products, their history, and alerts.

Every route is scoped to the calling seller: another seller's id answers 404.
Product-level data (shared by every seller tracking an ASIN) is cached in Postgres
until new data lands for that product; see docs/caching.md.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from amazon_pilot.domain.changes import DEFAULT_THRESHOLDS
from amazon_pilot.domain.product_ref import InvalidProductRef, parse_product_ref, product_url
from amazon_pilot.platform.cache import cache_put
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import (
    ApiError,
    Conflict,
    NotFound,
    TooManyRequests,
    ValidationFailed,
)
from amazon_pilot.platform.params import Offset
from amazon_pilot.platform.security import CurrentUser, current_user
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking import store as db

router = APIRouter(tags=["products"])

User = Annotated[CurrentUser, Depends(current_user)]
REFRESH_COOLDOWN_S = 15 * 60
STALE_AFTER = timedelta(hours=36)
CACHE_TTL_S = 6 * 3600  # also dropped the moment new data lands for the product
ALERT_TYPES = Literal[
    "price_change", "target_price_reached", "subcategory_bsr_change", "bsr_change",
    "buy_box_lost", "buy_box_seller_change", "buy_box_price_change", "out_of_stock",
    "back_in_stock", "rating_change", "review_count_jump", "title_change", "images_change",
    "delisted",
]


class PlanLimitReached(ApiError):
    status, code = 403, "PLAN_LIMIT_REACHED"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


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


class AddProduct(Strict):
    asin: str | None = Field(None, max_length=20, examples=["B0C33XXS56"])
    url: str | None = Field(None, max_length=2048,
                            examples=["https://www.amazon.com/dp/B0C33XXS56"])
    alias: str | None = Field(None, max_length=120)
    thresholds: ThresholdsIn | None = None

    @model_validator(mode="after")
    def one_reference(self) -> AddProduct:
        if (self.asin is None) == (self.url is None):
            raise ValueError("give exactly one of 'asin' or 'url'")
        return self

    def reference(self) -> tuple[str, str]:
        try:
            return parse_product_ref(self.asin or self.url or "")
        except InvalidProductRef as exc:
            field = "asin" if self.asin is not None else "url"
            raise ValidationFailed(
                str(exc), details=[{"field": field, "message": str(exc)}]
            ) from exc


class BulkAdd(Strict):
    items: list[AddProduct] = Field(min_length=1, max_length=100)


class PatchProduct(Strict):
    alias: str | None = Field(None, max_length=120)
    thresholds: ThresholdsIn | None = None
    is_paused: bool | None = None


class SubRank(BaseModel):
    rank: int
    category: str


class Latest(BaseModel):
    price: float | None = None
    list_price: float | None = None
    buy_box_price: float | None = None
    buy_box_seller: str | None = None
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
    fetch_status: str  # pending | ok | not_found
    data_source: str | None  # "sandbox" for data from the offline stand-in


class MetricChange(BaseModel):
    old: float | None
    new: float | None
    change: float | None
    change_pct: float | None


class ProductDetail(TrackedProduct):
    changes: dict[str, dict[str, MetricChange] | None]
    refresh_available_at: datetime | None


class ProductPage(BaseModel):
    items: list[TrackedProduct]
    total: int
    limit: int
    offset: int


class BulkResult(BaseModel):
    index: int
    status: int
    product: TrackedProduct | None = None
    error: dict[str, Any] | None = None


class BulkResponse(BaseModel):
    results: list[BulkResult]
    created: int
    failed: int


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
    type: str
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


def _stale(as_of: datetime | None) -> bool:
    return as_of is None or datetime.now(UTC) - as_of > STALE_AFTER


def _tracked_out(row: Any) -> TrackedProduct:
    latest = Latest(**row.latest) if row.latest else None
    status = row.last_fetch_status or "pending"
    return TrackedProduct(
        id=row.id, asin=row.asin, marketplace=row.marketplace,
        url=product_url(row.asin, row.marketplace), alias=row.alias, title=row.title,
        brand=row.brand, image_url=row.main_image_url, is_paused=row.is_paused,
        thresholds={**DEFAULT_THRESHOLDS.to_dict(), **(row.thresholds or {})},
        created_at=row.created_at, latest=latest, as_of=row.latest_captured_at,
        stale=_stale(row.latest_captured_at), fetch_status=status, data_source=row.data_source,
    )


def _add(user: CurrentUser, body: AddProduct) -> tuple[TrackedProduct, int | None]:
    """Track one product; returns it and the product id when a first fetch is needed."""
    asin, marketplace = body.reference()
    thresholds = body.thresholds.model_dump(exclude_unset=True) if body.thresholds else {}
    with transaction() as conn:
        limit = settings().plan(user.plan).tracked_products
        if db.count_tracked(conn, user.id) >= limit:
            raise PlanLimitReached(
                f"the {user.plan} plan tracks at most {limit} products; stop tracking one or"
                " ask for a larger plan")
        product_id, fresh = db.upsert_product(conn, asin, marketplace)
        tracked_id = db.insert_tracked(conn, user.id, product_id, body.alias, thresholds)
        if tracked_id is None:
            raise Conflict(f"you already track {asin} on amazon.{marketplace}")
        row = db.get_tracked(conn, user.id, tracked_id)
    return _tracked_out(row), (product_id if fresh else None)


@router.post("/v1/products", status_code=202, response_model=TrackedProduct,
             summary="Track a product by ASIN or Amazon URL; its first fetch is queued")
async def add_product(body: AddProduct, user: User) -> TrackedProduct:
    from amazon_pilot.tracking.service import queue_first_fetch

    product, needs_fetch = _add(user, body)
    if needs_fetch is not None:
        queue_first_fetch([needs_fetch])
    return product


@router.post("/v1/products/bulk", response_model=BulkResponse,
             summary="Track up to 100 products at once; one result per item")
async def add_products(body: BulkAdd, user: User) -> BulkResponse:
    from amazon_pilot.tracking.service import queue_first_fetch

    results: list[BulkResult] = []
    to_fetch: list[int] = []
    for index, item in enumerate(body.items):
        try:
            product, needs_fetch = _add(user, item)
        except ApiError as exc:
            results.append(BulkResult(index=index, status=exc.status,
                                      error={"code": exc.code, "message": exc.message}))
            continue
        results.append(BulkResult(index=index, status=202, product=product))
        if needs_fetch is not None:
            to_fetch.append(needs_fetch)
    queue_first_fetch(to_fetch)  # one actor run for every new product of the request
    created = sum(1 for r in results if r.status == 202)
    return BulkResponse(results=results, created=created, failed=len(results) - created)


@router.get("/v1/products", response_model=ProductPage, summary="The seller's tracked products")
async def list_products(
    user: User,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    q: Annotated[str | None, Query(max_length=100, description="ASIN, title or alias")] = None,
    paused: bool | None = None,
    sort: Annotated[str, Query(pattern="^-?(" + "|".join(db.SORT_KEYS) + ")$")] = "created_at",
) -> ProductPage:
    with reading() as conn:
        rows, total = db.list_tracked(conn, user.id, q=q, paused=paused, sort=sort, limit=limit,
                                      offset=offset)
    return ProductPage(items=[_tracked_out(r) for r in rows], total=total, limit=limit,
                       offset=offset)


def _owned(conn: Any, user: CurrentUser, tracked_id: UUID) -> Any:
    row = db.get_tracked(conn, user.id, tracked_id)
    if row is None:
        raise NotFound("no such tracked product")
    return row


def _changes(conn: Any, row: Any) -> dict[str, dict[str, MetricChange] | None]:
    now = datetime.now(UTC)
    moments = {"1d": now - timedelta(days=1), "7d": now - timedelta(days=7),
               "30d": now - timedelta(days=30)}
    then = db.values_at(conn, row.product_id, moments)
    latest = row.latest or {}
    out: dict[str, dict[str, MetricChange] | None] = {}
    for label, past in then.items():
        if past is None:
            out[label] = None
            continue
        metrics = {}
        for name in ("price", "list_price", "buy_box_price", "bsr_rank", "subcategory_bsr",
                     "rating", "review_count"):
            old = None if past[name] is None else float(past[name])
            new = latest.get(name)
            change = None if old is None or new is None else round(new - old, 2)
            pct = None if change is None or not old else round(change / old * 100, 2)
            metrics[name] = MetricChange(old=old, new=new, change=change, change_pct=pct)
        out[label] = metrics
    return out


@router.get("/v1/products/{product_id}", response_model=ProductDetail,
            summary="Latest values, change since 1/7/30 days, and freshness")
async def get_product(product_id: UUID, user: User) -> ProductDetail:
    with reading() as conn:
        row = _owned(conn, user, product_id)
        changes = _changes(conn, row)
    base = _tracked_out(row).model_dump()
    requested = row.last_refresh_requested_at
    available = requested + timedelta(seconds=REFRESH_COOLDOWN_S) if requested else None
    if available is not None and available <= datetime.now(UTC):
        available = None
    return ProductDetail(**base, changes=changes, refresh_available_at=available)


@router.patch("/v1/products/{product_id}", response_model=TrackedProduct,
              summary="Change alias, thresholds, or pause tracking")
async def patch_product(product_id: UUID, body: PatchProduct, user: User) -> TrackedProduct:
    changes = body.model_dump(exclude_unset=True)
    if "is_paused" in changes and changes["is_paused"] is None:
        raise ValidationFailed("'is_paused' must be true or false",
                               details=[{"field": "is_paused", "message": "null"}])
    if "thresholds" in changes:
        # null puts the defaults back; an object sets exactly the thresholds it names
        changes["thresholds"] = (body.thresholds.model_dump(exclude_unset=True)
                                 if body.thresholds is not None else {})
    with transaction() as conn:
        if not db.update_tracked(conn, user.id, product_id, changes):
            raise NotFound("no such tracked product")
        row = _owned(conn, user, product_id)
    return _tracked_out(row)


@router.delete("/v1/products/{product_id}", status_code=204,
               summary="Stop tracking (the shared product's history is kept)")
async def delete_product(product_id: UUID, user: User) -> Response:
    with transaction() as conn:
        if not db.delete_tracked(conn, user.id, product_id):
            raise NotFound("no such tracked product")
    return Response(status_code=204)


@router.post("/v1/products/{product_id}/refresh", status_code=202,
             summary="Fetch now (at most once per 15 minutes per product)")
async def refresh_product(product_id: UUID, user: User) -> dict[str, Any]:
    from amazon_pilot.tracking.service import queue_first_fetch

    with transaction() as conn:
        row = _owned(conn, user, product_id)
        wait = db.claim_refresh(conn, row.product_id, REFRESH_COOLDOWN_S)
    if wait is not None:
        raise TooManyRequests(
            f"this product was refreshed less than 15 minutes ago; try again in {int(wait)} s",
            headers={"Retry-After": str(int(wait))})
    queue_first_fetch([row.product_id], trigger="refresh")
    return {"status": "queued", "queue": "critical", "product_id": str(product_id)}


@router.get("/v1/products/{product_id}/history", response_model=History,
            summary="Time series of one metric, for charts (a year of daily points at once)")
async def product_history(
    product_id: UUID,
    user: User,
    metric: Literal["price", "list_price", "buy_box_price", "bsr", "subcategory_bsr", "rating",
                    "review_count"] = "price",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    interval: Literal["raw", "day", "week"] = "day",
) -> Response:
    # Open-ended ranges share one cache entry; new data for the product drops it.
    key_range = f"{start.isoformat() if start else 'year'}:{end.isoformat() if end else 'now'}"
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=365)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if start > end:
        raise ValidationFailed("'from' must be before 'to'",
                               details=[{"field": "from", "message": "after 'to'"}])
    if end - start > timedelta(days=3 * 366):
        raise ValidationFailed("ask for at most 3 years at once",
                               details=[{"field": "from", "message": "range over 3 years"}])
    key_of = f"history:{{product}}:{metric}:{interval}:{key_range}"
    with reading() as conn:  # one round trip when the answer is cached
        row, cached = db.get_tracked_with_cached(conn, user.id, product_id, key_of)
        if row is None:
            raise NotFound("no such tracked product")
        hit = cached is not None
        if cached is None:
            points = db.history(conn, row.product_id, metric, start, end, interval)
            body = History.model_construct(
                product_id=product_id, metric=metric, interval=interval, start=start, end=end,
                count=len(points), points=[HistoryPoint.model_construct(t=t, v=v)
                                           for t, v in points],
                data_source=row.data_source)
            cached = body.model_dump_json()
            cache_put(conn, key_of.replace("{product}", str(row.product_id)), cached,
                         CACHE_TTL_S, [f"product:{row.product_id}"])
    return Response(cached, media_type="application/json",
                    headers={"x-cache": "hit" if hit else "miss"})


@router.get("/v1/alerts", response_model=AlertPage, summary="The seller's alerts, newest first")
async def list_alerts(
    user: User,
    product_id: UUID | None = None,
    type: ALERT_TYPES | None = None,  # the public filter name
    severity: Literal["info", "warning", "critical"] | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
) -> AlertPage:
    filters = {"product_id": product_id, "type": type, "severity": severity, "since": since,
               "until": until, "acknowledged": acknowledged}
    with reading() as conn:
        rows, total = db.list_alerts(conn, user.id, filters, limit, offset)
    items = [Alert(id=r.id, product_id=r.tracked_product_id, asin=r.asin,
                   product_title=r.product_title, type=r.type, severity=r.severity,
                   metric=r.metric, old_value=r.old_value, new_value=r.new_value,
                   change_pct=r.change_pct, threshold=r.threshold, message=r.message,
                   snapshot_captured_at=r.snapshot_captured_at, created_at=r.created_at,
                   acknowledged_at=r.acknowledged_at, data_source=r.data_source) for r in rows]
    return AlertPage(items=items, total=total, limit=limit, offset=offset)


@router.post("/v1/alerts/{alert_id}/ack", summary="Acknowledge an alert")
async def ack_alert(alert_id: UUID, user: User) -> dict[str, Any]:
    with transaction() as conn:
        row = db.acknowledge_alert(conn, user.id, alert_id)
    if row is None:
        raise NotFound("no such alert")
    return {"id": str(row.id), "acknowledged_at": row.acknowledged_at.isoformat()}
