"""Routes of the optimization function: listing score, suggestions and experiments.

Every route is scoped to the calling seller: another seller's ids answer 404. Product ids
are tracked-product ids (as in /v1/products). Competitors are the seller's competitor
group whose main product this is; with no such group none are used, and answers say so.
Each route is one call into service.py (policy and orchestration); scoring, ranking and
statistics live in the domain.
"""

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from amazon_pilot.optimization import service, store
from amazon_pilot.optimization.schemas import (
    Candidates,
    ExperimentDetail,
    ExperimentPage,
    ListingScoreOut,
    NewExperiment,
    RunDetail,
    RunPage,
    Summary,
)
from amazon_pilot.platform.ownership import owned
from amazon_pilot.platform.params import Offset
from amazon_pilot.platform.security import Caller

router = APIRouter(tags=["optimization"])

OwnedProduct = Annotated[store.TrackedProduct, Depends(
    owned("product_id", store.owned_tracked, "no such tracked product"))]
OwnedRun = Annotated[store.RunRow, Depends(
    owned("run_id", store.owned_run, "no such suggestion run"))]
OwnedExperiment = Annotated[store.ExperimentRow, Depends(
    owned("experiment_id", store.owned_experiment, "no such experiment"))]


# ---------------------------------------------------------------- listing score


@router.get("/v1/products/{product_id}/listing-score", response_model=ListingScoreOut,
            summary="Rule-based listing score against the product's competitor group, every"
                    " rule with its weight, result and what would raise it")
async def get_listing_score(product: OwnedProduct) -> ListingScoreOut:
    return service.listing_score(product)


# ---------------------------------------------------------------- suggestions


@router.post("/v1/products/{product_id}/optimizations", status_code=202,
             response_model=RunDetail,
             summary="Generate ranked suggestions (title, pricing, description, images);"
                     " queued, poll GET /v1/optimizations/{id}")
async def request_suggestions(product: OwnedProduct) -> RunDetail:
    return service.request_suggestions(product)


@router.get("/v1/products/{product_id}/optimizations", response_model=RunPage,
            summary="Past suggestion runs of a product, newest first")
async def list_runs(
    product: OwnedProduct,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Offset = 0,
) -> RunPage:
    return service.list_runs(product, limit, offset)


@router.get("/v1/optimizations/{run_id}", response_model=RunDetail,
            summary="A suggestion run: status (queued / running / done / failed) and its"
                    " suggestions by priority")
async def get_run(run: OwnedRun) -> RunDetail:
    return service.run_detail(run)


@router.get("/v1/products/{product_id}/optimizations/summary", response_model=Summary,
            summary="Dashboard: current score, open suggestions, experiments and verdicts")
async def get_summary(product: OwnedProduct) -> Summary:
    return service.summary(product)


# ---------------------------------------------------------------- experiments


@router.get("/v1/experiments/candidates", response_model=Candidates,
            summary="Past price, list-price and title changes found in the product's history"
                    " (open an experiment on one with its changed_at)")
async def experiment_candidates(
    user: Caller,
    product_id: UUID,
    days: Annotated[int, Query(ge=7, le=365)] = service.CANDIDATE_DAYS,
) -> Candidates:
    return service.experiment_candidates(user.id, product_id, days)


@router.post("/v1/experiments", status_code=201, response_model=ExperimentDetail,
             summary="Start measuring a change (changed_at may be in the past: retroactive)")
async def create_experiment(body: NewExperiment, user: Caller) -> ExperimentDetail:
    return service.create_experiment(user.id, body)


@router.get("/v1/experiments", response_model=ExperimentPage,
            summary="The seller's experiments, newest first (verdict as of analyzed_at)")
async def list_experiments(
    user: Caller,
    product_id: UUID | None = None,
    status: Literal["running", "stopped"] | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Offset = 0,
) -> ExperimentPage:
    return service.list_experiments(user.id, product_id, status, limit, offset)


@router.get("/v1/experiments/{experiment_id}", response_model=ExperimentDetail,
            summary="An experiment with a fresh analysis (the frozen one once stopped)")
async def get_experiment(experiment: OwnedExperiment) -> ExperimentDetail:
    return service.experiment_detail(experiment)


@router.post("/v1/experiments/{experiment_id}/stop", response_model=ExperimentDetail,
             summary="Stop an experiment: its final analysis is stored and no longer changes")
async def stop_experiment(experiment: OwnedExperiment) -> ExperimentDetail:
    return service.stop_experiment(experiment)
