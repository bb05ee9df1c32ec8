"""The operator console's API (administrators; routes of the system function):

- ``GET /v1/admin/operations/alarms``: the stack's CloudWatch alarms, firing first.
- ``GET /v1/admin/operations/queues``: each queue's depth, in-flight, delayed, age of
  the oldest message, its DLQ and its outbox backlog.
- ``GET /v1/admin/operations/dlq/{queue}``: the DLQ's messages with their failure
  reason, job type and the ids their job concerns.
- ``POST /v1/admin/operations/dlq/{queue}/redrive``: move some (``message_ids``) or all
  (``all: true``) back to the queue; audited (``admin.dlq_redrive``).
- ``GET /v1/admin/operations/jobs``: recent jobs with outcome and duration.
- ``GET /v1/admin/operations/outbox``: jobs committed but not yet sent.
- ``GET /v1/admin/operations/metrics``: API requests, 4xx/5xx, latency; each
  function's invocations and errors.

401 without a token, 403 for a seller (or an admin without two-step sign-in), 404 for a
queue that does not exist. docs/operations.md has the operator's view.
"""

from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Request

from amazon_pilot.operations import service
from amazon_pilot.operations.schemas import (
    Alarms,
    DeadLetterPage,
    JobHistory,
    Metrics,
    OutboxBacklog,
    Queues,
    RedriveRequest,
    RedriveResult,
)
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.security import AdminCaller

router = APIRouter(tags=["admin"])

_ERRORS: dict[int | str, dict[str, str]] = {
    401: {"description": "no valid access token"},
    403: {"description": "the caller is not an administrator"},
}
_QUEUE = Annotated[str, Path(pattern="^[a-z]{1,20}$", description="critical, default or low")]


@router.get("/v1/admin/operations/alarms", response_model=Alarms, responses=_ERRORS,
            summary="The stack's alarms and their state, firing first")
def read_alarms(admin: AdminCaller) -> Alarms:
    return service.alarms()


@router.get("/v1/admin/operations/queues", response_model=Queues, responses=_ERRORS,
            summary="Each queue: depth, in-flight, oldest message, DLQ, outbox backlog")
def read_queues(admin: AdminCaller) -> Queues:
    return service.queues()


@router.get("/v1/admin/operations/dlq/{queue}", response_model=DeadLetterPage,
            responses={**_ERRORS, 404: {"description": "no such queue"}},
            summary="A queue's dead letters: failure reason, job type, what they concern")
def read_dead_letters(admin: AdminCaller, queue: _QUEUE,
                      limit: Annotated[int, Query(ge=1, le=100)] = 50) -> DeadLetterPage:
    return service.dead_letters(queue, limit=limit)


@router.post("/v1/admin/operations/dlq/{queue}/redrive", response_model=RedriveResult,
             responses={**_ERRORS, 404: {"description": "no such queue"}},
             summary="Move some or all of a queue's dead letters back to it")
def redrive(request: Request, admin: AdminCaller, queue: _QUEUE,
            body: RedriveRequest) -> RedriveResult:
    return service.redrive(queue, message_ids=body.message_ids, everything=body.all,
                           admin_id=admin.id, ip=ratelimit.client_ip(request.scope),
                           request_id=request.scope.get("state", {}).get("request_id"))


@router.get("/v1/admin/operations/jobs", response_model=JobHistory, responses=_ERRORS,
            summary="Recent jobs, newest first, with outcome and duration")
def read_jobs(admin: AdminCaller,
              limit: Annotated[int, Query(ge=1, le=200)] = 50,
              status: Literal["running", "retry", "failed", "done"] | None = None,
              job_type: Annotated[str | None, Query(max_length=100)] = None) -> JobHistory:
    return service.jobs(limit=limit, status=status, job_type=job_type)


@router.get("/v1/admin/operations/outbox", response_model=OutboxBacklog, responses=_ERRORS,
            summary="Jobs committed but not yet sent to their queue")
def read_outbox(admin: AdminCaller) -> OutboxBacklog:
    return service.outbox()


@router.get("/v1/admin/operations/metrics", response_model=Metrics, responses=_ERRORS,
            summary="API requests, errors, latency; each function's invocations and errors")
def read_metrics(admin: AdminCaller,
                 minutes: Annotated[int, Query(ge=5, le=1440)] = 60) -> Metrics:
    return service.metrics(minutes=minutes)
