"""Routes of the products function: tracked products, their history, alerts, and the
scrape runs that fetched them.

HTTP only: each route parses its request and calls one function of tracking.service.
"""

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Depends, Header, Query, Response
from fastapi.responses import StreamingResponse

from amazon_pilot.domain.changes import AlertType
from amazon_pilot.platform.ownership import owned
from amazon_pilot.platform.params import (
    CSV_MEDIA_TYPE,
    CSV_RESPONSE,
    ExportFormat,
    Offset,
    attachment,
    wants_csv,
)
from amazon_pilot.platform.security import Caller
from amazon_pilot.tracking import exports, service, store
from amazon_pilot.tracking.schemas import (
    AddProduct,
    AlertPage,
    BulkAction,
    BulkActionResponse,
    BulkAdd,
    BulkResponse,
    History,
    HistoryMetric,
    Interval,
    PatchProduct,
    ProductDetail,
    ProductPage,
    ScrapeRunDetail,
    ScrapeRunPage,
    Severity,
    TagList,
    TrackedProduct,
)
from amazon_pilot.tracking.store import TrackedRow

router = APIRouter(tags=["products"])

OwnedTracked = Annotated[
    TrackedRow, Depends(owned("product_id", store.load_tracked, "no such tracked product"))]


@router.post("/v1/products", status_code=202, response_model=TrackedProduct,
             summary="Track a product by ASIN or Amazon URL; its first fetch is queued")
async def add_product(body: AddProduct, user: Caller) -> TrackedProduct:
    return service.add_product(user, body)


@router.post("/v1/products/bulk", response_model=BulkResponse,
             summary="Track up to 100 products at once; one result per item")
async def add_products(body: BulkAdd, user: Caller) -> BulkResponse:
    return service.add_products(user, body)


Accept = Annotated[str | None, Header(include_in_schema=False)]
TagFilter = Annotated[str | None, Query(max_length=32, description="only products with this tag")]


def _csv(lines: Any, filename: str) -> StreamingResponse:
    return StreamingResponse(lines, media_type=CSV_MEDIA_TYPE, headers=attachment(filename))


@router.get("/v1/products", response_model=ProductPage, responses=CSV_RESPONSE,
            summary="The seller's tracked products (CSV: every matching product, streamed)")
async def list_products(
    user: Caller,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    q: Annotated[str | None, Query(max_length=100, description="ASIN, title or alias")] = None,
    paused: bool | None = None,
    sort: Annotated[str, Query(pattern="^-?(" + "|".join(store.SORT_KEYS) + ")$")] = "created_at",
    tag: TagFilter = None,
    format: ExportFormat = None,
    accept: Accept = None,
    cursor: Annotated[str | None, Query(
        max_length=200, description="next_cursor of the previous page (created_at order);"
        " the page starts after it (offset is added on top)")] = None,
) -> Any:
    tag = tag.strip().lower() if tag else None
    if wants_csv(format, accept):
        return _csv(exports.products_csv(user, q=q, paused=paused, tag=tag), "products.csv")
    page = service.list_products(user, q=q, paused=paused, sort=sort, limit=limit,
                                 offset=offset, tag=tag, cursor=cursor)
    # already ProductPage's values and order: encoded as the model would, unvalidated
    return Response(orjson.dumps(page, option=orjson.OPT_UTC_Z), media_type="application/json")


@router.post("/v1/products/bulk-actions", response_model=BulkActionResponse,
             summary="Pause, resume, tag, untag or delete a selection; one result per id")
async def bulk_action(body: BulkAction, user: Caller) -> BulkActionResponse:
    return service.bulk_action(user, body)


@router.get("/v1/products/tags", response_model=TagList,
            summary="The tags you use, with how many products carry each")
async def list_tags(user: Caller) -> TagList:
    return service.list_tags(user)


@router.get("/v1/products/{product_id}", response_model=ProductDetail,
            summary="Latest values, change since 1/7/30 days, and freshness")
async def get_product(tracked: OwnedTracked) -> ProductDetail:
    return service.product_detail(tracked)


@router.patch("/v1/products/{product_id}", response_model=TrackedProduct,
              summary="Change alias, thresholds, or pause tracking")
async def patch_product(tracked: OwnedTracked, body: PatchProduct,
                        user: Caller) -> TrackedProduct:
    return service.update_product(user, tracked.id, body)


@router.delete("/v1/products/{product_id}", status_code=204,
               summary="Stop tracking (the shared product's history is kept)")
async def delete_product(product_id: UUID, user: Caller) -> Response:
    service.stop_tracking(user, product_id)  # the scoped DELETE is the ownership check
    return Response(status_code=204)


@router.post("/v1/products/{product_id}/refresh", status_code=202,
             summary="Fetch now (at most once per 15 minutes per product)")
async def refresh_product(tracked: OwnedTracked) -> dict[str, Any]:
    return service.refresh_product(tracked)


@router.get("/v1/products/{product_id}/history", response_model=History,
            responses=CSV_RESPONSE,
            summary="Time series of one metric, for charts (a year of daily points at once);"
                    " CSV: every metric per row, streamed")
async def product_history(
    product_id: UUID,
    user: Caller,
    metric: HistoryMetric = "price",
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    interval: Interval = "day",
    format: ExportFormat = None,
    accept: Accept = None,
) -> Response:
    if wants_csv(format, accept):
        name, lines = exports.history_csv(user, product_id, start, end, interval)
        return _csv(lines, name)
    # Ownership is checked in the same round trip as the cache lookup (service.history).
    body, hit = service.history(user, product_id, metric, start, end, interval)
    return Response(body, media_type="application/json",
                    headers={"x-cache": "hit" if hit else "miss"})


@router.get("/v1/alerts", response_model=AlertPage, responses=CSV_RESPONSE,
            summary="The seller's alerts, newest first (CSV: every matching alert, streamed)")
async def list_alerts(
    user: Caller,
    product_id: UUID | None = None,
    type: AlertType | None = None,  # the public filter name
    severity: Severity | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    acknowledged: bool | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Offset = 0,
    format: ExportFormat = None,
    accept: Accept = None,
) -> Any:
    if wants_csv(format, accept):
        filters = {"product_id": product_id, "type": type and type.value,
                   "severity": severity, "since": since, "until": until,
                   "acknowledged": acknowledged}
        return _csv(exports.alerts_csv(user, filters), "alerts.csv")
    return service.list_alerts(user, product_id=product_id, type=type, severity=severity,
                               since=since, until=until, acknowledged=acknowledged,
                               limit=limit, offset=offset)


@router.post("/v1/alerts/{alert_id}/ack", summary="Acknowledge an alert")
async def ack_alert(alert_id: UUID, user: Caller) -> dict[str, Any]:
    return service.acknowledge_alert(user, alert_id)


@router.get("/v1/scrape-runs", response_model=ScrapeRunPage, tags=["scrape runs"],
            summary="Actor runs, newest first: all of them for an administrator, those that"
                    " fetched your products (counted over your products) for a seller")
async def list_scrape_runs(
    user: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ScrapeRunPage:
    return service.list_runs(user, limit=limit, offset=offset)


@router.get("/v1/scrape-runs/{run_id}", response_model=ScrapeRunDetail, tags=["scrape runs"],
            summary="One run: its counts, its problems and what became of each product")
async def get_scrape_run(run_id: UUID, user: Caller) -> ScrapeRunDetail:
    return service.run_detail(user, run_id)
