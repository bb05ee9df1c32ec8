"""Request and response models of optimization's routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field

from amazon_pilot.platform.models import Strict


class RuleOut(BaseModel):
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
    evidence: dict[str, Any]


class GroupUsed(BaseModel):
    id: UUID
    name: str
    competitors: list[str]


class CompetitorUsed(BaseModel):
    asin: str
    title: str | None
    brand: str | None
    as_of: datetime | None


class ListingScoreOut(BaseModel):
    product_id: UUID
    asin: str
    total: float
    grade: str
    rules: list[RuleOut]
    keywords: list[dict[str, Any]]
    missing_keywords: list[str]
    missing_angles: list[str]
    as_of: datetime | None
    data_source: str | None
    competitor_group: GroupUsed | None
    competitors: list[CompetitorUsed]
    notes: list[str]


class SuggestionOut(BaseModel):
    id: UUID
    type: Literal["title", "pricing", "description", "images"]
    change: str
    reason: str
    impact: Literal["high", "medium", "low"]
    impact_score: float
    effort: Literal["high", "medium", "low"]
    effort_score: float
    priority: int
    source: Literal["rules", "llm"]
    evidence: dict[str, Any]
    experiment_id: UUID | None = None


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float | None


class Run(BaseModel):
    id: UUID
    product_id: UUID
    status: Literal["queued", "running", "done", "failed"]
    trigger: str
    generated_by: Literal["llm", "rules"] | None
    fallback_reason: str | None
    model: str | None
    sandbox: bool | None
    cache: Literal["hit", "miss"] | None
    usage: Usage
    llm_latency_ms: int | None
    data_source: str | None
    error: str | None
    attempts: int
    suggestion_count: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetail(Run):
    notice: str | None
    suggestions: list[SuggestionOut]
    score: dict[str, Any] | None
    inputs: dict[str, Any] | None


class RunPage(BaseModel):
    items: list[Run]
    total: int
    limit: int
    offset: int


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
    status: Literal["running", "stopped"]
    verdict: str | None = Field(description="improved | no_detectable_effect | worse |"
                                            " too_early, as of analyzed_at")
    analyzed_at: datetime | None
    created_at: datetime
    stopped_at: datetime | None


class ExperimentDetail(Experiment):
    analysis: dict[str, Any]


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
