"""Routes of the optimization function: listing score, suggestions and experiments.

Every route is scoped to the calling seller: another seller's ids answer 404. Product ids
are tracked-product ids (as in /v1/products). Competitors are the seller's competitor
group whose main product this is; with no such group none are used, and answers say so.
Scoring, ranking and statistics live in the domain (workers/optimization.py is the glue).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from amazon_pilot.optimization import service as svc
from amazon_pilot.optimization import store as db
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import Conflict, NotFound, ServiceUnavailable, ValidationFailed
from amazon_pilot.platform.params import Offset
from amazon_pilot.platform.security import CurrentUser, current_user

router = APIRouter(tags=["optimization"])

User = Annotated[CurrentUser, Depends(current_user)]
CLOCK_SKEW = timedelta(minutes=5)
MAX_PAST = timedelta(days=365)
SUMMARY_EXPERIMENTS = 10
SANDBOX_NOTICE = ("sandbox output: written by the offline OpenAI stand-in, not a real model;"
                  " do not publish it as is")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# ---------------------------------------------------------------- models


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


# ---------------------------------------------------------------- helpers


def _owned_product(conn: Any, user: CurrentUser, tracked_id: UUID) -> Any:
    row = db.get_tracked(conn, tracked_id)
    if row is None or row.user_id != user.id:
        raise NotFound("no such tracked product")
    return row


def _run_out(row: Any, count: int) -> Run:
    cost = None if row.cost_usd is None else float(row.cost_usd)
    return Run(
        id=row.id, product_id=row.tracked_product_id, status=row.status, trigger=row.trigger,
        generated_by=row.generated_by, fallback_reason=row.fallback_reason, model=row.model,
        sandbox=row.sandbox, cache=row.cache,
        usage=Usage(prompt_tokens=row.prompt_tokens, completion_tokens=row.completion_tokens,
                    total_tokens=row.prompt_tokens + row.completion_tokens, cost_usd=cost),
        llm_latency_ms=row.llm_latency_ms, data_source=row.data_source, error=row.error,
        attempts=row.attempts, suggestion_count=count, created_at=row.created_at,
        started_at=row.started_at, finished_at=row.finished_at,
    )


def _suggestion_out(row: Any) -> SuggestionOut:
    return SuggestionOut(
        id=row.id, type=row.type, change=row.change, reason=row.reason, impact=row.impact,
        impact_score=row.impact_score, effort=row.effort, effort_score=row.effort_score,
        priority=row.priority, source=row.source, evidence=row.evidence or {},
        experiment_id=row.experiment_id,
    )


def _run_detail(row: Any, suggestions: list[Any]) -> RunDetail:
    base = _run_out(row, len(suggestions)).model_dump()
    sandbox = bool(row.sandbox) or row.data_source == "sandbox"
    return RunDetail(**base, notice=SANDBOX_NOTICE if row.sandbox else (
        "sandbox data: the product data came from the offline stand-in" if sandbox else None),
        suggestions=[_suggestion_out(s) for s in suggestions], score=row.score,
        inputs=row.inputs)


def _experiment_out(row: Any) -> Experiment:
    return Experiment(
        id=row.id, product_id=row.tracked_product_id, asin=row.asin,
        suggestion_id=row.suggestion_id, change=row.change, changed_at=row.changed_at,
        status=row.status, verdict=row.verdict, analyzed_at=row.analyzed_at,
        created_at=row.created_at, stopped_at=row.stopped_at,
    )


def _owned_experiment(conn: Any, user: CurrentUser, exp_id: UUID, *, lock: bool = False) -> Any:
    row = db.get_experiment(conn, exp_id, lock=lock)
    if row is None or row.user_id != user.id:
        raise NotFound("no such experiment")
    return row


def _fresh(conn: Any, row: Any) -> ExperimentDetail:
    """The experiment with its analysis: frozen when stopped, else computed now."""
    if row.status == "stopped" and row.final_analysis is not None:
        return ExperimentDetail(**_experiment_out(row).model_dump(), analysis=row.final_analysis)
    analysis, _ = svc.experiment_analysis(conn, row)
    db.record_verdict(conn, row.id, analysis["verdict"])
    out = _experiment_out(row).model_dump()
    out.update(verdict=analysis["verdict"], analyzed_at=datetime.now(UTC))
    return ExperimentDetail(**out, analysis=analysis)


def _no_data(exc: svc.NoData) -> Conflict:
    return Conflict(str(exc))


# ---------------------------------------------------------------- listing score


@router.get("/v1/products/{product_id}/listing-score", response_model=ListingScoreOut,
            summary="Rule-based listing score against the product's competitor group, every"
                    " rule with its weight, result and what would raise it")
async def get_listing_score(product_id: UUID, user: User) -> dict[str, Any]:
    with transaction() as conn:
        tracked = _owned_product(conn, user, product_id)
        try:
            return svc.listing_score(conn, tracked)
        except svc.NoData as exc:
            raise _no_data(exc) from exc


# ---------------------------------------------------------------- suggestions


@router.post("/v1/products/{product_id}/optimizations", status_code=202,
             response_model=RunDetail,
             summary="Generate ranked suggestions (title, pricing, description, images);"
                     " queued, poll GET /v1/optimizations/{id}")
async def request_suggestions(product_id: UUID, user: User) -> RunDetail:
    with transaction() as conn:
        tracked = _owned_product(conn, user, product_id)
        if tracked.latest_captured_at is None:
            raise Conflict("no observation of this product yet: wait for its first fetch")
        running = db.in_flight_run(conn, product_id)
        if running is not None:  # one run at a time per product: answer with that one
            return _run_detail(db.get_run(conn, running.id), [])
        run_id = db.insert_run(conn, user.id, product_id, tracked.product_id)
        row = db.get_run(conn, run_id)
    try:
        svc.queue_suggestions(run_id)  # after the commit: the job must find its row
    except Exception as exc:
        with transaction() as conn:
            db.fail_run(conn, run_id, f"could not queue: {type(exc).__name__}", True)
        raise ServiceUnavailable("could not queue the suggestion run; retry shortly") from exc
    return _run_detail(row, [])


@router.get("/v1/products/{product_id}/optimizations", response_model=RunPage,
            summary="Past suggestion runs of a product, newest first")
async def list_runs(
    product_id: UUID,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> RunPage:
    with transaction() as conn:
        _owned_product(conn, user, product_id)
        rows, total = db.list_runs(conn, product_id, limit, offset)
        counts = db.suggestion_counts(conn, [r.id for r in rows])
    return RunPage(items=[_run_out(r, counts.get(r.id, 0)) for r in rows], total=total,
                   limit=limit, offset=offset)


@router.get("/v1/optimizations/{run_id}", response_model=RunDetail,
            summary="A suggestion run: status (queued / running / done / failed) and its"
                    " suggestions by priority")
async def get_run(run_id: UUID, user: User) -> RunDetail:
    with transaction() as conn:
        row = db.get_run(conn, run_id)
        if row is None or row.user_id != user.id:
            raise NotFound("no such suggestion run")
        suggestions = db.run_suggestions(conn, [row.id])[row.id]
    return _run_detail(row, suggestions)


@router.get("/v1/products/{product_id}/optimizations/summary", response_model=Summary,
            summary="Dashboard: current score, open suggestions, experiments and verdicts")
async def get_summary(product_id: UUID, user: User) -> Summary:
    with transaction() as conn:
        tracked = _owned_product(conn, user, product_id)
        notes: list[str] = []
        score: ScoreBrief | None = None
        group: dict[str, Any] | None = None
        try:
            full = svc.listing_score(conn, tracked)
        except svc.NoData as exc:
            notes.append(str(exc))
        else:
            failing = [RuleOut(**r) for r in full["rules"] if r["applicable"] and not r["passed"]]
            score = ScoreBrief(total=full["total"], grade=full["grade"], failing_rules=failing)
            group, notes = full["competitor_group"], list(full["notes"])
        latest = db.latest_done_run(conn, product_id)
        open_: list[SuggestionOut] = []
        latest_out: Run | None = None
        if latest is not None:
            rows = db.run_suggestions(conn, [latest.id])[latest.id]
            latest_out = _run_out(latest, len(rows))
            open_ = [_suggestion_out(s) for s in rows if s.experiment_id is None]
        exps, _ = db.list_experiments(conn, user.id, tracked_id=product_id, status=None,
                                      limit=SUMMARY_EXPERIMENTS, offset=0)
        experiments = [
            _fresh(conn, e) if e.status == "running" else _experiment_out(e) for e in exps
        ]
    return Summary(
        product_id=product_id, asin=tracked.asin, score=score, latest_run=latest_out,
        open_suggestions=open_,
        experiments=[Experiment(**e.model_dump(exclude={"analysis"})) for e in experiments],
        competitor_group=None if group is None else GroupUsed(**group), notes=notes,
    )


# ---------------------------------------------------------------- experiments


@router.get("/v1/experiments/candidates", response_model=Candidates,
            summary="Past price, list-price and title changes found in the product's history"
                    " (open an experiment on one with its changed_at)")
async def experiment_candidates(
    user: User,
    product_id: UUID,
    days: Annotated[int, Query(ge=7, le=365)] = svc.CANDIDATE_DAYS,
) -> Candidates:
    with transaction() as conn:
        tracked = _owned_product(conn, user, product_id)
        items, inputs = svc.past_changes(conn, tracked, days)
    return Candidates(product_id=product_id, asin=tracked.asin, days=days,
                      items=[Candidate(**i) for i in items],
                      data_source=inputs.data.data_source)


@router.post("/v1/experiments", status_code=201, response_model=ExperimentDetail,
             summary="Start measuring a change (changed_at may be in the past: retroactive)")
async def create_experiment(body: NewExperiment, user: User) -> ExperimentDetail:
    now = datetime.now(UTC)
    changed_at = body.changed_at or now
    if changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    if changed_at > now + CLOCK_SKEW:
        raise ValidationFailed("changed_at is in the future: an experiment measures a change"
                               " that has happened",
                               details=[{"field": "changed_at", "message": "in the future"}])
    if changed_at < now - MAX_PAST:
        raise ValidationFailed("changed_at is more than 365 days ago",
                               details=[{"field": "changed_at", "message": "over 365 days ago"}])
    change = body.change.strip()
    if "\x00" in change:
        raise ValidationFailed("change must not contain NUL characters",
                               details=[{"field": "change", "message": "contains NUL"}])
    if not change:
        raise ValidationFailed("change must describe what was changed",
                               details=[{"field": "change", "message": "blank"}])
    with transaction() as conn:
        tracked = _owned_product(conn, user, body.product_id)
        if body.suggestion_id is not None:
            s = db.get_suggestion(conn, body.suggestion_id)
            if s is None or s.user_id != user.id or s.tracked_product_id != body.product_id:
                message = f"unknown suggestion id {body.suggestion_id} for this product"
                raise ValidationFailed(message, details=[{"field": "suggestion_id",
                                                          "message": "unknown suggestion id"}])
        exp_id = db.insert_experiment(conn, user.id, body.product_id, tracked.product_id,
                                      body.suggestion_id, change, min(changed_at, now))
        return _fresh(conn, db.get_experiment(conn, exp_id))


@router.get("/v1/experiments", response_model=ExperimentPage,
            summary="The seller's experiments, newest first (verdict as of analyzed_at)")
async def list_experiments(
    user: User,
    product_id: UUID | None = None,
    status: Literal["running", "stopped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ExperimentPage:
    with transaction() as conn:
        rows, total = db.list_experiments(conn, user.id, tracked_id=product_id, status=status,
                                          limit=limit, offset=offset)
    return ExperimentPage(items=[_experiment_out(r) for r in rows], total=total, limit=limit,
                          offset=offset)


@router.get("/v1/experiments/{experiment_id}", response_model=ExperimentDetail,
            summary="An experiment with a fresh analysis (the frozen one once stopped)")
async def get_experiment(experiment_id: UUID, user: User) -> ExperimentDetail:
    with transaction() as conn:
        return _fresh(conn, _owned_experiment(conn, user, experiment_id))


@router.post("/v1/experiments/{experiment_id}/stop", response_model=ExperimentDetail,
             summary="Stop an experiment: its final analysis is stored and no longer changes")
async def stop_experiment(experiment_id: UUID, user: User) -> ExperimentDetail:
    with transaction() as conn:
        row = _owned_experiment(conn, user, experiment_id, lock=True)
        if row.status == "running":
            now = datetime.now(UTC)
            analysis, _ = svc.experiment_analysis(conn, row, until=now)
            db.stop_experiment(conn, row.id, now, analysis)
            row = db.get_experiment(conn, row.id)
        return _fresh(conn, row)
