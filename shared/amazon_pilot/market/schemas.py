"""Request and response models of market: search terms and their ranks, first-page share,
and sales estimates (docs/keywords.md, docs/sales-estimates.md)."""

from datetime import date, datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from amazon_pilot.platform.models import Strict

# ---------------------------------------------------------------- keywords


class AddKeyword(Strict):
    term: str = Field(min_length=2, max_length=200,
                      description="an Amazon search term; stored trimmed and lower-cased")


class Position(BaseModel):
    organic: int | None = Field(description="place among organic results on the first page;"
                                            " null: not on the first page")
    sponsored: int | None = Field(description="place among sponsored results; null: no ad")


class Keyword(BaseModel):
    id: UUID
    term: str
    created_at: datetime
    last_checked: date | None = Field(description="the day of the latest stored search page")
    position: Position | None = Field(description="the product's latest placement;"
                                                  " null: never searched yet")
    page_size: int | None = Field(description="results on that first page")


class KeywordList(BaseModel):
    items: list[Keyword]
    limit: int = Field(description="search terms per product the caller's plan allows")
    marketplace: str


class RankPoint(BaseModel):
    day: date
    organic: int | None
    sponsored: int | None
    page_size: int


class RankSeries(BaseModel):
    asin: str
    role: Literal["product", "competitor"]
    points: list[RankPoint]


class RankHistory(BaseModel):
    term: str
    marketplace: str
    days: int
    data_source: str | None
    series: list[RankSeries] = Field(description="the product first, then its group's"
                                                 " competitors")


class TermShare(BaseModel):
    term: str
    day: date | None
    page_size: int
    group_results: int = Field(description="cards of the group's products on the first page")
    share: float = Field(description="group_results / page_size, 0..1")
    organic_share: float
    sponsored_share: float
    positions: dict[str, Position] = Field(description="ASIN -> its placement")


class GroupShare(BaseModel):
    group_id: UUID
    asins: list[str]
    terms: list[TermShare]


# ---------------------------------------------------------------- sales estimates


class SalesPoint(BaseModel):
    day: date
    units: int | None = Field(description="estimated units per month; null: no rank that day")
    units_low: int | None
    units_high: int | None
    revenue: float | None = Field(description="units x that day's price, in `currency`")
    rank: int | None
    rank_kind: Literal["category", "subcategory"] | None
    bought_past_month: int | None = Field(description="the page's 'N+ bought in past month'"
                                                      " lower bound, when shown")
    check: Literal["consistent", "below_badge"] | None = Field(
        description="the estimate against the badge: at/above it, or under it (an"
                    " underestimate); null without a badge")


class SalesMethod(BaseModel):
    formula: str
    curve: str | None
    basis: str | None
    error_factor: float | None
    source: str


class SalesEstimates(BaseModel):
    asin: str
    currency: str | None
    category: str | None
    data_source: str | None
    latest: SalesPoint | None
    series: list[SalesPoint]
    method: SalesMethod


class GroupSalesRow(BaseModel):
    asin: str
    role: Literal["main", "competitor"]
    title: str | None
    currency: str | None
    estimate: SalesPoint | None


class GroupSales(BaseModel):
    group_id: UUID
    products: list[GroupSalesRow]
    method: SalesMethod


class KeywordPayload(Strict):
    """The fetch_search_pages job: one actor run for one marketplace's terms of a day."""

    marketplace: str = Field(min_length=2, max_length=10)
    terms: list[str] = Field(min_length=1, max_length=100)
    day: date
    captured_at: datetime
