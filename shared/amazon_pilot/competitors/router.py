"""Routes of the competitors function: competitor groups, comparison and positioning reports.

Every route is scoped to the calling seller: another seller's group answers 404 (the
OwnedGroup dependency). Each route is one call of competitors.service; the numbers come
from the comparison domain, the report is written on the low queue (competitors.jobs).
See docs/competitors.md.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Header, Query, Response

from amazon_pilot.competitors import service, store
from amazon_pilot.competitors.schemas import (
    AddCompetitor,
    Comparison,
    CreateGroup,
    Group,
    GroupPage,
    GroupProduct,
    NewReport,
    PatchGroup,
    Report,
    ReportDetail,
    ReportPage,
    Usage,
    Window,
)
from amazon_pilot.competitors.service import GroupMembers
from amazon_pilot.competitors.store import GroupProductRow, GroupRow, ReportRow
from amazon_pilot.domain.product_ref import product_url
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

router = APIRouter(tags=["competitors"])

OwnedGroup = Annotated[GroupRow, Depends(owned("group_id", store.owned_group,
                                                service.GROUP_NOT_FOUND))]


# ---------------------------------------------------------------- shaping


def _product_out(row: GroupProductRow) -> GroupProduct:
    return GroupProduct(
        asin=row.asin, marketplace=row.marketplace, url=product_url(row.asin, row.marketplace),
        role=row.role, title=row.title, brand=row.brand, image_url=row.main_image_url,
        as_of=row.latest_captured_at, fetch_status=row.last_fetch_status or "pending",
        data_source=row.data_source,
    )


def _group_out(members: GroupMembers) -> Group:
    group = members.group
    items = [_product_out(p) for p in members.products]
    return Group(
        id=group.id, name=group.name, is_active=group.is_active, main=items[0],
        competitors=items[1:], created_at=group.created_at, updated_at=group.updated_at,
        data_source=service.overall_source({p.asin: p.data_source for p in items}),
    )


def _report_fields(row: ReportRow) -> dict[str, object]:
    return dict(
        id=row.id, group_id=row.group_id, status=row.status, trigger=row.trigger,
        window_days=row.window_days, generated_by=row.generated_by, model=row.model,
        sandbox=row.sandbox, fallback_reason=row.fallback_reason, cache=row.cache,
        usage=Usage.of(row.prompt_tokens, row.completion_tokens, row.cost_usd),
        llm_latency_ms=row.llm_latency_ms, data_source=row.data_source, error=row.error,
        attempts=row.attempts, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, report=row.report,
    )


def _report_out(row: ReportRow) -> Report:
    return Report.model_validate(_report_fields(row))


def _report_detail(row: ReportRow) -> ReportDetail:
    return ReportDetail.model_validate({**_report_fields(row), "inputs": row.comparison})


# ---------------------------------------------------------------- groups


@router.post("/v1/competitor-groups", status_code=201, response_model=Group,
             summary="Compare a main product with 3-5 competitors; unknown products are"
                     " fetched at once, in one run")
async def create_group(body: CreateGroup, user: Caller) -> Group:
    return _group_out(service.create_group(user.id, user.plan, body.name, body.main,
                                           body.competitors))


@router.get("/v1/competitor-groups", response_model=GroupPage,
            summary="The seller's competitor groups, newest first")
async def list_groups(
    user: Caller,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> GroupPage:
    groups, total = service.list_groups(user.id, limit, offset)
    return GroupPage(items=[_group_out(g) for g in groups], total=total, limit=limit,
                     offset=offset, plan_groups=service.plan_groups(user.plan))


@router.get("/v1/competitor-groups/{group_id}", response_model=Group,
            summary="One competitor group and the fetch state of its products")
async def get_group(group: OwnedGroup) -> Group:
    return _group_out(service.group_members(group))


@router.patch("/v1/competitor-groups/{group_id}", response_model=Group,
              summary="Rename a group, or pause it (no daily fetch, no weekly report)")
async def patch_group(group: OwnedGroup, body: PatchGroup, user: Caller) -> Group:
    return _group_out(service.update_group(user.id, group, body.name, body.is_active))


@router.delete("/v1/competitor-groups/{group_id}", status_code=204,
               summary="Delete a group and its reports (product history is kept)")
async def delete_group(group_id: UUID, user: Caller) -> Response:
    service.delete_group(user.id, group_id)  # one owner-scoped DELETE: 404 when none
    return Response(status_code=204)


@router.post("/v1/competitor-groups/{group_id}/competitors", status_code=201,
             response_model=Group, summary="Add a competitor (a group keeps 3-5)")
async def add_competitor(group: OwnedGroup, body: AddCompetitor, user: Caller) -> Group:
    return _group_out(service.add_competitor(user.id, group, body.competitor))


@router.delete("/v1/competitor-groups/{group_id}/competitors/{asin}", response_model=Group,
               summary="Remove a competitor (a group keeps 3-5)")
async def remove_competitor(group: OwnedGroup, asin: str, user: Caller) -> Group:
    return _group_out(service.remove_competitor(user.id, group, asin))


# ---------------------------------------------------------------- comparison


@router.get("/v1/competitor-groups/{group_id}/comparison", response_model=Comparison,
            responses=CSV_RESPONSE,
            summary="Side-by-side numbers and features of the group over a window"
                    " (CSV: one row per product)")
async def comparison(
    group: OwnedGroup, window: Window = "30d", format: ExportFormat = None,
    accept: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> Response:
    """``comparison`` is ``compare_group(...).to_dict()`` (gaps are main minus competitor;
    a missing number is null with a reason, never 0); ``features`` holds each product's
    extracted features with evidence and the feature comparison."""
    answer = service.comparison(group, window)
    if wants_csv(format, accept):
        return Response(service.comparison_csv(answer.body), media_type=CSV_MEDIA_TYPE,
                        headers=attachment(f"comparison-{group.id}-{window}.csv"))
    return Response(answer.body, media_type="application/json",
                    headers={"x-cache": "hit" if answer.hit else "miss"})


# ---------------------------------------------------------------- reports


@router.post("/v1/competitor-groups/{group_id}/reports", status_code=202,
             response_model=Report,
             summary="Write a positioning report (queued on the low queue); poll its id")
async def create_report(group: OwnedGroup, user: Caller, body: NewReport | None = None
                        ) -> Report:
    return _report_out(service.create_report(user.id, group, (body or NewReport()).window))


@router.get("/v1/competitor-groups/{group_id}/reports", response_model=ReportPage,
            summary="Past reports of the group, newest first")
async def list_reports(
    group: OwnedGroup,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> ReportPage:
    rows, total = service.list_reports(group, limit, offset)
    return ReportPage(items=[_report_out(r) for r in rows], total=total, limit=limit,
                      offset=offset)


@router.get("/v1/competitor-groups/{group_id}/reports/{report_id}",
            response_model=ReportDetail,
            summary="A report's status (queued, running, done, failed) and content")
async def get_report(group: OwnedGroup, report_id: UUID) -> ReportDetail:
    return _report_detail(service.get_report(group, report_id))
