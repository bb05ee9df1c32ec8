"""Request and response models of the competitors API (docs/competitors.md)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from amazon_pilot.platform.models import Strict

Window = Literal["7d", "30d", "90d"]


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


class GroupPage(BaseModel):
    items: list[Group]
    total: int
    limit: int
    offset: int


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None


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
    report: dict[str, Any] | None = None


class ReportDetail(Report):
    inputs: dict[str, Any] | None = Field(
        None, description="the comparison and feature comparison the report was built from")


class ReportPage(BaseModel):
    items: list[Report]
    total: int
    limit: int
    offset: int
