"""The SQS consumer every queue's function runs: one job per message, partial failures.

- Before a job runs, its idempotency key is *claimed* in `processed_messages`: a row in
  state `running` with a lease as long as the invocation may last. A second copy of the
  message that arrives meanwhile (SQS delivers at least once; the outbox may send twice)
  does not run the job: it goes back to the queue for a short while and then finds the
  key `done` and is acknowledged. A lease that runs out (its holder crashed) lets the
  next delivery claim the key again.
- A job that succeeds marks its key `done`; a redelivered message with a done key is
  acknowledged without running again.
- A retryable failure is reported back to SQS (ReportBatchItemFailures) and its
  visibility is stretched exponentially, so retries back off. On the queue's last
  receive (its RedrivePolicy's maxReceiveCount) the consumer itself moves the message
  to the DLQ with the failure's reason as its `failure_reason` attribute, rather than
  leaving it to the redrive policy, which would move it without one.
- A message that can never succeed (not JSON, unknown type, PermanentJobError) is
  sent to the DLQ at once with its reason, then acknowledged: nothing is dropped.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from sqlalchemy import text

from amazon_pilot.adapters.aws import client
from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.job_errors import PermanentJobError
from amazon_pilot.platform.jobs import Delivery, UnknownJob, WrongQueue, check_queue, resolve
from amazon_pilot.platform.observability import (
    lambda_entry,
    make_logger,
    make_metrics,
    make_tracer,
    record_metric,
)
from amazon_pilot.platform.settings import settings

MAX_BACKOFF_S = 900
MAX_VISIBILITY_S = 43_200  # SQS's limit (12 h)
LEASE_MARGIN_S = 30  # a lease outlasts the invocation that holds it by this much
MAX_REASON = 1000  # characters of a failure reason kept (SQS attribute, database)


class Poison(Exception):
    """The message itself is unusable."""


class InProgress(Exception):
    """Another delivery of the same job holds its claim: this copy waits and comes back."""


def parse_job(body: str) -> tuple[str, str, dict[str, Any]]:
    try:
        message = json.loads(body)
    except (TypeError, ValueError) as exc:
        raise Poison(f"body is not JSON: {exc}") from exc
    if not isinstance(message, dict):
        raise Poison("body is not a JSON object")
    job_type, key, payload = message.get("type"), message.get("key"), message.get("payload", {})
    if not isinstance(job_type, str) or not job_type:
        raise Poison("message has no 'type'")
    if not isinstance(key, str) or not key:
        raise Poison("message has no idempotency 'key'")
    if not isinstance(payload, dict):
        raise Poison("'payload' is not an object")
    return job_type, key, payload


# ---------------------------------------------------------------- the idempotency record


@dataclass(frozen=True)
class Claim:
    state: str  # "claimed" (run the job), "done" (acknowledge), "busy" (held elsewhere)
    lease_left_s: float = 0.0  # for "busy": how long the holder's lease still runs


def claim(key: str, job_type: str, token: str, lease_s: float) -> Claim:
    """Claim a job's key before its side effect: one delivery at a time runs it."""
    with transaction() as conn:
        won = conn.execute(text(
            "INSERT INTO processed_messages AS p (idempotency_key, job_type, status,"
            "   lease_until, claim_token, attempts)"
            " VALUES (:k, :t, 'running', now() + make_interval(secs => :lease), :tok, 1)"
            " ON CONFLICT (idempotency_key) DO UPDATE SET status = 'running',"
            "   lease_until = EXCLUDED.lease_until, claim_token = EXCLUDED.claim_token,"
            "   attempts = p.attempts + 1"
            " WHERE p.status IN ('retry', 'failed')"
            "    OR (p.status = 'running' AND p.lease_until < now())"
            " RETURNING 1"), {"k": key, "t": job_type, "tok": token, "lease": lease_s}).first()
        if won is not None:
            return Claim("claimed")
        row = conn.execute(text(
            "SELECT status, greatest(0, extract(epoch FROM lease_until - now())) AS left_s"
            " FROM processed_messages WHERE idempotency_key = :k"), {"k": key}).first()
    if row is None or row.status == "done":
        return Claim("done")
    return Claim("busy", float(row.left_s or 0))


def mark_done(key: str, job_type: str, result: dict[str, Any] | None) -> None:
    with transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO processed_messages (idempotency_key, job_type, result)"
                " VALUES (:k, :t, CAST(:r AS jsonb)) ON CONFLICT (idempotency_key) DO UPDATE"
                " SET status = 'done', result = EXCLUDED.result, processed_at = now(),"
                "   lease_until = NULL, claim_token = NULL, last_error = NULL"
            ),
            {"k": key, "t": job_type, "r": json.dumps(result, default=str)},
        )


def release(key: str, token: str, status: str, reason: str) -> None:
    """Give a claim back after a failure: `retry` (the next delivery may claim it at once)
    or `failed` (the message went to the DLQ). Only the holder's own claim is touched."""
    with transaction() as conn:
        conn.execute(text(
            "UPDATE processed_messages SET status = :s, lease_until = NULL,"
            " last_error = :e WHERE idempotency_key = :k AND claim_token = :tok"
            " AND status = 'running'"),
            {"s": status, "e": reason[:MAX_REASON], "k": key, "tok": token})


def release_orphaned_claims(keys: list[str] | None = None) -> int:
    """Free every claim still `running` (or those of `keys`): for a runtime starting up
    that is the only consumer of its database (`pilot run` after a crash), every such
    claim belongs to a process that is gone, and waiting out its lease would only delay
    the redelivered work. Never call it where another live consumer may hold claims
    (AWS): there the leases do this. Returns how many claims were freed."""
    with transaction() as conn:
        freed = conn.execute(text(
            "UPDATE processed_messages SET status = 'retry', lease_until = NULL,"
            " last_error = coalesce(last_error, 'its consumer stopped while running it')"
            " WHERE status = 'running'"
            + ("" if keys is None else " AND idempotency_key = ANY(:keys)")),
            {"keys": keys}).rowcount
    return int(freed or 0)


def describe(exc: BaseException) -> str:
    """A failure's reason for people: the error's class and first line, no traceback."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"[:MAX_REASON] if first else type(exc).__name__


# ---------------------------------------------------------------- the consumer


class JobConsumer:
    def __init__(self, priority: str, logger: Logger, metrics: Any) -> None:
        self.priority = priority
        self.logger = logger
        self.metrics = metrics
        cfg = settings()
        self.dlq_url = cfg.dlq_urls.get(priority)
        self.retry_base_s = cfg.retry_base_s
        self.default_lease_s = cfg.job_lease_s
        self._max_receives: int | None = None
        self._invocation = threading.local()  # .deadline: this invocation's end (monotonic)

    def begin_invocation(self, context: Any) -> None:
        """Note when the invocation must end: a claim lasts that long (plus a margin), so
        a crashed holder blocks its job no longer than the invocation could have run."""
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        try:
            millis = int(remaining()) if remaining is not None else None
        except Exception:
            millis = None
        self._invocation.deadline = time.monotonic() + millis / 1000 if millis else None

    def lease_seconds(self) -> float:
        deadline = getattr(self._invocation, "deadline", None)
        if deadline is None:
            return float(self.default_lease_s)
        return max(1.0, deadline - time.monotonic()) + LEASE_MARGIN_S

    def max_receives(self, record: SQSRecord) -> int:
        """The source queue's maxReceiveCount, from its RedrivePolicy (template.yaml's,
        as deployed): read once per cold start, so no job repeats the number."""
        if self._max_receives is None:
            attributes = client("sqs").get_queue_attributes(
                QueueUrl=_queue_url_from_arn(record.event_source_arn),
                AttributeNames=["RedrivePolicy"],
            )["Attributes"]
            self._max_receives = int(json.loads(attributes["RedrivePolicy"])["maxReceiveCount"])
        return self._max_receives

    def handle_record(self, record: SQSRecord) -> None:
        self.logger.set_correlation_id(record.message_id)
        try:
            job_type, key, payload = parse_job(record.body)
            job = resolve(job_type)
            check_queue(job_type, self.priority)
        except (Poison, UnknownJob, WrongQueue) as exc:
            self.dead_letter(record, str(exc))
            return
        receives = int(record.attributes.approximate_receive_count or 1)
        delivery = Delivery(key, receives, self.max_receives(record))
        token = f"{record.message_id}:{receives}"
        try:
            claimed = claim(key, job_type, token, self.lease_seconds())
        except Exception as exc:  # the database is unavailable: try again later
            if delivery.is_last:
                self.dead_letter(record, f"{job_type}: the job could not be started:"
                                         f" {describe(exc)} (after {receives} attempts)")
                return
            self.fail(record, job_type, key, receives, exc)
            raise
        if claimed.state == "done":
            self.logger.info("duplicate delivery ignored", extra={"job": job_type, "key": key})
            return
        if claimed.state == "busy":
            self.wait_for_holder(record, job_type, key, delivery, claimed)
            return
        started = time.monotonic()
        try:
            result = job(payload, delivery)
        except PermanentJobError as exc:
            reason = f"{job_type}: {exc}"
            self._release(key, token, "failed", reason)
            self.dead_letter(record, reason)
            return
        except Exception as exc:
            reason = f"{job_type}: {describe(exc)}"
            if delivery.is_last:
                # The last receive: the reason must travel with the message.
                self._release(key, token, "failed", reason)
                record_metric("JobFailures")
                self.dead_letter(record, f"{reason} (after {receives} attempts)")
                return
            self._release(key, token, "retry", reason)
            self.fail(record, job_type, key, receives, exc)
            raise
        mark_done(key, job_type, result)
        record_metric("JobsProcessed")
        # what the saved Logs Insights queries read (template.yaml): the job, how long it
        # took, the products it concerned and its outcome's counts
        self.logger.info("job done", extra={
            "job": job_type, "key": key,
            "duration_ms": round((time.monotonic() - started) * 1000, 1),
            **subject_of(payload), **counts_of(result)})

    def wait_for_holder(self, record: SQSRecord, job_type: str, key: str, delivery: Delivery,
                        claimed: Claim) -> None:
        """Another delivery is running this job: this copy comes back later and then finds
        the key done. Early receives come back after the usual back-off (a duplicate of a
        short job is settled at once); the second-to-last waits out the holder's whole
        lease, so the last receive finds the job done, or its holder dead and the key free
        to claim: a crashed holder's work is never dropped as a "duplicate". A copy still
        finding the key held on its last receive is acknowledged (a newer holder is alive,
        and its own message stays queued until it succeeds)."""
        extra = {"job": job_type, "key": key, "receive_count": delivery.receive_count,
                 "lease_left_s": round(claimed.lease_left_s, 1)}
        if delivery.is_last:
            self.logger.info("duplicate delivery dropped while the job runs elsewhere",
                             extra=extra)
            return
        self.logger.info("job in progress elsewhere; this copy will come back", extra=extra)
        record_metric("DuplicatesDeferred")
        until_free = int(claimed.lease_left_s) + 1
        if delivery.receive_count >= delivery.max_receives - 1:
            delay = until_free
        else:
            delay = min(self.backoff_s(delivery.receive_count), until_free)
        self.set_visibility(record, max(1, min(delay, MAX_VISIBILITY_S)))
        raise InProgress(f"{job_type} {key} is being processed by another delivery")

    def fail(self, record: SQSRecord, job_type: str, key: str, receives: int,
             exc: BaseException) -> None:
        self.logger.warning(
            "job failed; will retry",
            extra={"job": job_type, "key": key, "receive_count": receives, "error": repr(exc)},
        )
        record_metric("JobFailures")
        self.back_off(record, receives)

    def _release(self, key: str, token: str, status: str, reason: str) -> None:
        try:
            release(key, token, status, reason)
        except Exception as exc:  # the lease runs out on its own
            self.logger.warning("could not release the claim", extra={"key": key,
                                                                       "error": repr(exc)})

    def backoff_s(self, receives: int) -> int:
        return int(min(MAX_BACKOFF_S, self.retry_base_s * 2 ** (receives - 1)))

    def back_off(self, record: SQSRecord, receives: int) -> None:
        self.set_visibility(record, self.backoff_s(receives))

    def set_visibility(self, record: SQSRecord, seconds: int) -> None:
        queue_url = _queue_url_from_arn(record.event_source_arn)
        try:
            client("sqs").change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=seconds
            )
        except Exception as exc:  # the queue's own visibility timeout still applies
            self.logger.warning("could not set back-off", extra={"error": repr(exc)})

    def dead_letter(self, record: SQSRecord, reason: str) -> None:
        self.logger.error(
            "message sent to the DLQ", extra={"reason": reason, "message_id": record.message_id}
        )
        record_metric("DeadLettered")
        if not self.dlq_url:
            raise RuntimeError(f"no DLQ configured; leaving the message to redrive: {reason}")
        receives = str(record.attributes.approximate_receive_count or 1)
        client("sqs").send_message(
            QueueUrl=self.dlq_url,
            MessageBody=record.body,
            MessageAttributes={
                "failure_reason": {"DataType": "String", "StringValue": reason[:MAX_REASON]},
                "source_message_id": {"DataType": "String", "StringValue": record.message_id},
                "receive_count": {"DataType": "Number", "StringValue": receives},
            },
        )


def subject_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The products or report a job's payload concerns, for its log line."""
    found: dict[str, Any] = {}
    ids = payload.get("product_ids")
    if isinstance(ids, list) and ids:
        found["product_ids"] = ids[:100]
    for name in ("product_id", "report_id", "group_id", "user_id"):
        if isinstance(payload.get(name), (str, int)):
            found[name] = payload[name]
    return found


def counts_of(result: Any) -> dict[str, Any]:
    """A job result's numbers (stored, not_found, alerts...) under `outcome`."""
    if not isinstance(result, dict):
        return {}
    counts = {k: v for k, v in result.items()
              if isinstance(v, (int, float)) and not isinstance(v, bool)}
    return {"outcome": counts} if counts else {}


def _queue_url_from_arn(arn: str | None) -> str:
    # arn:aws:sqs:region:account:name -> the queue URL on the configured endpoint
    name = (arn or "").split(":")[-1]
    return str(client("sqs").get_queue_url(QueueName=name)["QueueUrl"])


def make_consumer_handler(priority: str) -> Any:
    service = f"worker-{priority}"
    logger = make_logger(service)
    metrics = make_metrics(service)
    tracer = make_tracer(service)
    consumer = JobConsumer(priority, logger, metrics)

    @lambda_entry(logger, metrics, tracer)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        consumer.begin_invocation(context)
        # A processor per invocation: it holds the batch's outcomes, and the local runtime
        # runs several invocations of one function at once (Lambda runs one per process).
        # The whole batch failing is reported as a list too (not raised), so SQS keeps
        # the same per-message accounting in every case.
        processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
        return dict(
            process_partial_response(
                event=event,
                record_handler=consumer.handle_record,
                processor=processor,
                context=context,
            )
        )

    return handler
