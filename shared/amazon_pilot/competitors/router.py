"""Routes of the competitors function: competitor groups, comparison and positioning reports.

Every route is scoped to the calling seller: another seller's group answers 404. The
numbers come from the comparison domain (amazon_pilot.domain.comparison / features); the
report is written on the low queue (amazon_pilot.competitors.service). See docs/competitors.md.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from amazon_pilot.competitors import store as db
from amazon_pilot.competitors.schemas import (
    AddCompetitor,
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
from amazon_pilot.db.tracking import cache_get, cache_put, upsert_product
from amazon_pilot.domain.normalize import InvalidProductRef, parse_product_ref, product_url
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import ApiError, NotFound, ValidationFailed
from amazon_pilot.platform.params import Offset
from amazon_pilot.platform.security import CurrentUser, current_user
from amazon_pilot.platform.settings import settings

router = APIRouter(tags=["competitors"])

User = Annotated[CurrentUser, Depends(current_user)]
MIN_COMPETITORS = 3
MAX_COMPETITORS = 5
# Groups per seller: each group's products are fetched every day.
COMPARISON_CACHE_TTL_S = 6 * 3600  # also dropped the moment new data lands for a product
WINDOW_DAYS = {"7d": 7, "30d": 30, "90d": 90}

Ref = tuple[str, str]  # (asin, marketplace)


class PlanLimitReached(ApiError):
    status, code = 403, "PLAN_LIMIT_REACHED"


# ---------------------------------------------------------------- validation (pure)


def _parse(text: str, field: str) -> Ref:
    try:
        return parse_product_ref(text)
    except InvalidProductRef as exc:
        raise ValidationFailed(f"{field}: {exc}", details=[{"field": field,
                                                           "message": str(exc)}]) from exc


def check_members(main: Ref, competitors: list[Ref], *, field: str = "competitors") -> None:
    """The group rules: 3-5 competitors, no duplicate, main is not a competitor."""
    for i, ref in enumerate(competitors):
        if ref == main:
            message = f"the main product {ref[0]} cannot also be a competitor"
            raise ValidationFailed(message, details=[{"field": f"{field}.{i}",
                                                      "message": message}])
    seen: dict[Ref, int] = {}
    for i, ref in enumerate(competitors):
        if ref in seen:
            message = f"competitor {ref[0]} is listed twice (items {seen[ref]} and {i})"
            raise ValidationFailed(message, details=[{"field": f"{field}.{i}",
                                                      "message": message}])
        seen[ref] = i
    n = len(competitors)
    if not MIN_COMPETITORS <= n <= MAX_COMPETITORS:
        message = (f"a group needs {MIN_COMPETITORS} to {MAX_COMPETITORS} competitors;"
                   f" got {n}")
        raise ValidationFailed(message, details=[{"field": field, "message": message}])


def parse_group(body: CreateGroup) -> tuple[Ref, list[Ref]]:
    main = _parse(body.main, "main")
    comps = [_parse(c, f"competitors.{i}") for i, c in enumerate(body.competitors)]
    check_members(main, comps)
    return main, comps


# ---------------------------------------------------------------- shaping


def _product_out(row: Any) -> GroupProduct:
    return GroupProduct(
        asin=row.asin, marketplace=row.marketplace, url=product_url(row.asin, row.marketplace),
        role=row.role, title=row.title, brand=row.brand, image_url=row.main_image_url,
        as_of=row.latest_captured_at, fetch_status=row.last_fetch_status or "pending",
        data_source=row.data_source,
    )


def _group_out(group: Any, products: list[Any]) -> Group:
    from amazon_pilot.competitors.service import overall_source

    items = [_product_out(p) for p in products]
    return Group(
        id=group.id, name=group.name, is_active=group.is_active, main=items[0],
        competitors=items[1:], created_at=group.created_at, updated_at=group.updated_at,
        data_source=overall_source({p.asin: p.data_source for p in items}),
    )


def _report_out(row: Any, detail: bool = False) -> Report:
    cost = None if row.cost_usd is None else float(row.cost_usd)
    fields: dict[str, Any] = dict(
        id=row.id, group_id=row.group_id, status=row.status, trigger=row.trigger,
        window_days=row.window_days, generated_by=row.generated_by, model=row.model,
        sandbox=row.sandbox, fallback_reason=row.fallback_reason, cache=row.cache,
        usage=Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                    total_tokens=row.prompt_tokens + row.completion_tokens, cost_usd=cost),
        llm_latency_ms=row.llm_latency_ms, data_source=row.data_source, error=row.error,
        attempts=row.attempts, created_at=row.created_at, started_at=row.started_at,
        finished_at=row.finished_at, report=getattr(row, "report", None),
    )
    if detail:
        return ReportDetail(**fields, inputs=getattr(row, "comparison", None))
    return Report(**fields)


def _owned(conn: Any, user: CurrentUser, group_id: UUID, *, lock: bool = False) -> Any:
    group = db.get_group(conn, user.id, group_id, lock=lock)
    if group is None:
        raise NotFound("competitor group not found")
    return group


def _load(conn: Any, group: Any) -> Group:
    return _group_out(group, db.group_products(conn, [group.id])[group.id])


# ---------------------------------------------------------------- groups


@router.post("/v1/competitor-groups", status_code=201, response_model=Group,
             summary="Compare a main product with 3-5 competitors; unknown products are"
                     " fetched at once, in one run")
async def create_group(body: CreateGroup, user: User) -> Group:
    from amazon_pilot.workers.tracking import queue_first_fetch

    main, comps = parse_group(body)
    limit = settings().plan(user.plan).competitor_groups
    to_fetch: list[int] = []
    with transaction() as conn:
        if db.count_groups(conn, user.id) >= limit:
            raise PlanLimitReached(f"the {user.plan} plan allows {limit} competitor groups;"
                                   " delete one first")
        ids: list[int] = []
        for asin, marketplace in [main, *comps]:
            product_id, fresh = upsert_product(conn, asin, marketplace)
            ids.append(product_id)
            if fresh:
                to_fetch.append(product_id)
        group_id = db.insert_group(conn, user.id, body.name.strip(), ids[0], ids[1:])
        out = _load(conn, db.get_group(conn, user.id, group_id))
    queue_first_fetch(to_fetch, trigger="group")  # one actor run for all new products
    return out


@router.get("/v1/competitor-groups", response_model=GroupPage,
            summary="The seller's competitor groups, newest first")
async def list_groups(
    user: User,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> GroupPage:
    with transaction() as conn:
        groups, total = db.list_groups(conn, user.id, limit, offset)
        products = db.group_products(conn, [g.id for g in groups])
    return GroupPage(items=[_group_out(g, products[g.id]) for g in groups], total=total,
                     limit=limit, offset=offset)


@router.get("/v1/competitor-groups/{group_id}", response_model=Group,
            summary="One competitor group and the fetch state of its products")
async def get_group(group_id: UUID, user: User) -> Group:
    with transaction() as conn:
        return _load(conn, _owned(conn, user, group_id))


@router.patch("/v1/competitor-groups/{group_id}", response_model=Group,
              summary="Rename a group, or pause it (no daily fetch, no weekly report)")
async def patch_group(group_id: UUID, body: PatchGroup, user: User) -> Group:
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "name" in changes:
        changes["name"] = changes["name"].strip()
    with transaction() as conn:
        _owned(conn, user, group_id, lock=True)
        if changes:
            db.update_group(conn, group_id, changes)
        return _load(conn, _owned(conn, user, group_id))


@router.delete("/v1/competitor-groups/{group_id}", status_code=204,
               summary="Delete a group and its reports (product history is kept)")
async def delete_group(group_id: UUID, user: User) -> Response:
    with transaction() as conn:
        if not db.delete_group(conn, user.id, group_id):
            raise NotFound("competitor group not found")
    return Response(status_code=204)


@router.post("/v1/competitor-groups/{group_id}/competitors", status_code=201,
             response_model=Group, summary="Add a competitor (a group keeps 3-5)")
async def add_competitor(group_id: UUID, body: AddCompetitor, user: User) -> Group:
    from amazon_pilot.workers.tracking import queue_first_fetch

    ref = _parse(body.competitor, "competitor")
    with transaction() as conn:
        _owned(conn, user, group_id, lock=True)
        products = db.group_products(conn, [group_id])[group_id]
        main = (products[0].asin, products[0].marketplace)
        current = [(p.asin, p.marketplace) for p in products[1:]]
        if ref == main:
            message = f"the main product {ref[0]} cannot also be a competitor"
            raise ValidationFailed(message, details=[{"field": "competitor",
                                                      "message": message}])
        if ref in current:
            message = f"{ref[0]} is already a competitor in this group"
            raise ValidationFailed(message, details=[{"field": "competitor",
                                                      "message": message}])
        if len(current) >= MAX_COMPETITORS:
            message = (f"a group has at most {MAX_COMPETITORS} competitors; remove one"
                       f" before adding {ref[0]}")
            raise ValidationFailed(message, details=[{"field": "competitor",
                                                      "message": message}])
        product_id, fresh = upsert_product(conn, *ref)
        db.add_member(conn, group_id, product_id)
        out = _load(conn, _owned(conn, user, group_id))
    if fresh:
        queue_first_fetch([product_id], trigger="group")
    return out


@router.delete("/v1/competitor-groups/{group_id}/competitors/{asin}", response_model=Group,
               summary="Remove a competitor (a group keeps 3-5)")
async def remove_competitor(group_id: UUID, asin: str, user: User) -> Group:
    wanted = asin.strip().upper()
    with transaction() as conn:
        _owned(conn, user, group_id, lock=True)
        products = db.group_products(conn, [group_id])[group_id]
        if products[0].asin == wanted:
            message = (f"{wanted} is the main product of this group; create a new group to"
                       " change it")
            raise ValidationFailed(message, details=[{"field": "asin", "message": message}])
        member = next((p for p in products[1:] if p.asin == wanted), None)
        if member is None:
            raise NotFound(f"{wanted} is not a competitor in this group")
        if len(products) - 1 <= MIN_COMPETITORS:
            message = (f"a group needs at least {MIN_COMPETITORS} competitors; add another"
                       f" before removing {wanted}")
            raise ValidationFailed(message, details=[{"field": "asin", "message": message}])
        db.remove_member(conn, group_id, member.product_id)
        return _load(conn, _owned(conn, user, group_id))


# ---------------------------------------------------------------- comparison


def _iso(moment: datetime | None) -> str | None:
    return None if moment is None else moment.isoformat()


def comparison_version(group: Any, products: list[Any]) -> str:
    parts = [str(group.updated_at.timestamp())] + [
        f"{p.product_id}:{p.latest_captured_at and p.latest_captured_at.timestamp()}:"
        f"{p.last_fetch_status}" for p in products
    ]
    return hashlib.blake2s("|".join(parts).encode(), digest_size=8).hexdigest()


@router.get("/v1/competitor-groups/{group_id}/comparison",
            summary="Side-by-side numbers and features of the group over a window")
async def comparison(group_id: UUID, user: User, window: Window = "30d") -> Response:
    """``comparison`` is ``compare_group(...).to_dict()`` (gaps are main minus competitor;
    a missing number is null with a reason, never 0); ``features`` holds each product's
    extracted features with evidence and the feature comparison."""
    from amazon_pilot.competitors.service import analyse

    days = WINDOW_DAYS[window]
    with transaction() as conn:
        group = _owned(conn, user, group_id)
        products = db.group_products(conn, [group_id])[group_id]
        # The key names the group's members and their freshness, so a membership change or
        # new data gives a new key (new snapshots also drop the entry by its tags).
        key = f"comparison:{group_id}:{days}:{comparison_version(group, products)}"
        cached = cache_get(conn, key)
        hit = cached is not None
        if cached is None:
            analysis = analyse(conn, products, days)
            body = {
                "group_id": str(group_id),
                "window": window,
                "data_source": analysis.data_source,
                "products": [
                    {"asin": p.asin, "role": p.role,
                     "fetch_status": p.last_fetch_status or "pending",
                     "as_of": _iso(analysis.as_of.get(p.asin)),
                     "data_source": analysis.data_sources.get(p.asin)}
                    for p in products
                ],
                "comparison": analysis.comparison.to_dict(),
                "features": analysis.features_dict(),
            }
            cached = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
            cache_put(conn, key, cached, COMPARISON_CACHE_TTL_S,
                      [f"product:{p.product_id}" for p in products])
    return Response(cached, media_type="application/json",
                    headers={"x-cache": "hit" if hit else "miss"})


# ---------------------------------------------------------------- reports


@router.post("/v1/competitor-groups/{group_id}/reports", status_code=202,
             response_model=Report,
             summary="Write a positioning report (queued on the low queue); poll its id")
async def create_report(group_id: UUID, user: User, body: NewReport | None = None) -> Report:
    from amazon_pilot.competitors.service import queue_report

    days = WINDOW_DAYS[(body or NewReport()).window]
    with transaction() as conn:
        _owned(conn, user, group_id)
        pending = db.in_flight_report(conn, group_id, days)
        if pending is not None:  # a double click does not write (and pay for) two reports
            return _report_out(pending)
        report_id = db.insert_report(conn, group_id, user.id, days)
        row = db.get_report(conn, group_id, report_id, with_body=False)
    queue_report(report_id)
    return _report_out(row)


@router.get("/v1/competitor-groups/{group_id}/reports", response_model=ReportPage,
            summary="Past reports of the group, newest first")
async def list_reports(
    group_id: UUID,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> ReportPage:
    with transaction() as conn:
        _owned(conn, user, group_id)
        rows, total = db.list_reports(conn, group_id, limit, offset)
    return ReportPage(items=[_report_out(r) for r in rows], total=total, limit=limit,
                      offset=offset)


@router.get("/v1/competitor-groups/{group_id}/reports/{report_id}",
            response_model=ReportDetail,
            summary="A report's status (queued, running, done, failed) and content")
async def get_report(group_id: UUID, report_id: UUID, user: User) -> ReportDetail:
    with transaction() as conn:
        _owned(conn, user, group_id)
        row = db.get_report(conn, group_id, report_id)
    if row is None:
        raise NotFound("report not found")
    out = _report_out(row, detail=True)
    assert isinstance(out, ReportDetail)
    return out
