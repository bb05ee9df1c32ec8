"""Shapes of the operator console (GET/POST /v1/admin/operations/...)."""

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from amazon_pilot.platform.models import Strict


class Alarm(BaseModel):
    name: str
    state: str = Field(description="OK | ALARM | INSUFFICIENT_DATA")
    severity: str = Field(description="page | ticket (from the alarm's description)")
    description: str
    reason: str
    since: datetime | None = Field(None, description="when the alarm entered this state")
    metric: str | None = Field(None, description="Namespace/MetricName, or 'metric math'")


class Alarms(BaseModel):
    items: list[Alarm] = Field(description="firing first (page before ticket), then by name")
    firing: int


class DeadLetters(BaseModel):
    depth: int
    in_flight: int


class QueueState(BaseModel):
    queue: str = Field(description="critical | default | low")
    depth: int = Field(description="messages waiting (ApproximateNumberOfMessages)")
    in_flight: int = Field(description="received, not yet deleted")
    delayed: int
    oldest_age_s: float | None = Field(
        None, description="age of the oldest message (CloudWatch's "
                          "ApproximateAgeOfOldestMessage, last 5 minutes); null: no datapoint")
    dlq: DeadLetters | None
    outbox_pending: int = Field(description="jobs committed but not yet sent to this queue")
    error: str | None = Field(None, description="set when the queue could not be read")


class Queues(BaseModel):
    items: list[QueueState]


class DeadLetter(BaseModel):
    message_id: str
    sent_at: datetime | None = Field(None, description="when it reached the DLQ")
    receive_count: int
    failure_reason: str
    job_type: str | None
    job_key: str | None
    concerns: dict[str, Any] = Field(
        default_factory=dict,
        description="the ids the job's payload names (product_id, group_id, report_id...)")
    body: str = Field(description="the message body, cut at 2000 characters")


class DeadLetterPage(BaseModel):
    queue: str
    depth: int
    items: list[DeadLetter]


class RedriveRequest(Strict):
    message_ids: list[str] | None = Field(
        None, min_length=1, max_length=100,
        description="move these messages back (from GET .../dlq/{queue}); omit with all=true")
    all: bool = Field(False, description="move every message of the DLQ back")


class RedriveResult(BaseModel):
    queue: str
    method: Literal["message-move-task", "receive-send-delete"]
    moved: int | None = Field(None, description="messages moved (null: the move task "
                                                "runs in the background)")
    task_handle: str | None = None
    not_found: list[str] = Field(default_factory=list,
                                 description="requested ids no longer in the DLQ")


class JobRun(BaseModel):
    key: str
    job_type: str
    status: str = Field(description="running | retry | failed | done")
    attempts: int
    last_error: str | None
    queued_at: datetime | None = Field(None, description="when the outbox took the job")
    finished_at: datetime | None = Field(None, description="when it was done or last failed")
    duration_s: float | None = Field(
        None, description="from sending to the queue to done (queue wait included)")
    priority: str | None = None


class JobHistory(BaseModel):
    items: list[JobRun]
    counts: dict[str, int] = Field(description="per status, last 24 hours")


class OutboxBacklog(BaseModel):
    pending: dict[str, int] = Field(description="unsent jobs per queue")
    oldest_pending_s: float | None
    failing: int = Field(description="unsent jobs whose last send failed")
    last_error: str | None


class MetricSeries(BaseModel):
    id: str
    label: str
    unit: str
    timestamps: list[datetime]
    values: list[float]


class Metrics(BaseModel):
    period_s: int
    series: list[MetricSeries]
