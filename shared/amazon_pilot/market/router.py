"""Routes of market: search terms of a tracked product and their ranks, sales estimates
(products function), and a group's first-page share and sales (competitors function).

HTTP only: each route parses its request and calls one function of market.service.
"""

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from amazon_pilot.competitors.store import GroupRow, owned_group
from amazon_pilot.market import service
from amazon_pilot.market.schemas import (
    AddKeyword,
    GroupSales,
    GroupShare,
    Keyword,
    KeywordList,
    RankHistory,
    SalesEstimates,
)
from amazon_pilot.platform.ownership import owned
from amazon_pilot.platform.security import Caller
from amazon_pilot.tracking.store import TrackedRow, load_tracked

router = APIRouter(tags=["keywords and sales"])
group_router = APIRouter(tags=["keywords and sales"])

OwnedTracked = Annotated[
    TrackedRow, Depends(owned("product_id", load_tracked, "no such tracked product"))]
OwnedGroup = Annotated[GroupRow, Depends(owned("group_id", owned_group, "no such group"))]
Days = Annotated[int, Query(ge=1, le=365)]


@router.get("/v1/products/{product_id}/keywords", response_model=KeywordList,
            summary="The product's search terms, each with its latest organic and sponsored"
                    " position")
async def list_keywords(tracked: OwnedTracked, user: Caller) -> KeywordList:
    return service.list_keywords(user, tracked)


@router.post("/v1/products/{product_id}/keywords", status_code=201, response_model=Keyword,
             summary="Track a search term for the product (a plan-dependent number per"
                     " product); today's results page is fetched unless already stored")
async def add_keyword(tracked: OwnedTracked, body: AddKeyword, user: Caller) -> Keyword:
    return service.add_keyword(user, tracked, body)


@router.delete("/v1/products/{product_id}/keywords/{keyword_id}", status_code=204,
               summary="Stop tracking a search term (stored pages stay: they are shared)")
async def delete_keyword(tracked: OwnedTracked, keyword_id: UUID, user: Caller) -> Response:
    service.delete_keyword(user, tracked, keyword_id)
    return Response(status_code=204)


@router.get("/v1/products/{product_id}/keywords/{keyword_id}/ranks",
            response_model=RankHistory,
            summary="Daily organic and sponsored positions for the term: the product and its"
                    " groups' competitors")
async def keyword_ranks(tracked: OwnedTracked, keyword_id: UUID, user: Caller,
                        days: Days = 30) -> RankHistory:
    return service.rank_history(user, tracked, keyword_id, days)


@router.get("/v1/products/{product_id}/sales-estimates", response_model=SalesEstimates,
            summary="Estimated units and revenue per month from the best-seller rank, daily,"
                    " with the page's 'bought in past month' figure beside it")
async def sales_estimates(tracked: OwnedTracked, days: Days = 90) -> SalesEstimates:
    return service.sales_estimates(tracked, days)


@group_router.get("/v1/competitor-groups/{group_id}/keyword-share", response_model=GroupShare,
                  summary="Share of each term's first page held by the group's products")
async def group_keyword_share(group: OwnedGroup, user: Caller) -> GroupShare:
    return service.group_share(user, group)


@group_router.get("/v1/competitor-groups/{group_id}/sales-estimates",
                  response_model=GroupSales,
                  summary="The latest sales estimate of each product of the group")
async def group_sales(group: OwnedGroup) -> GroupSales:
    return service.group_sales(group)
