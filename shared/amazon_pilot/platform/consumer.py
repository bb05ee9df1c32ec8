"""The SQS consumer every queue's function runs: one job per message, partial failures.

- A job that succeeds is recorded under its idempotency key; a redelivered message
  with a recorded key is acknowledged without running again.
- A retryable failure is reported back to SQS (ReportBatchItemFailures) and its
  visibility is stretched exponentially, so retries back off; after the queue's
  maxReceiveCount the redrive policy moves it to the DLQ.
- A message that can never succeed (not JSON, unknown type, PermanentJobError) is
  sent to the DLQ at once with its reason, then acknowledged: nothing is dropped.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.metrics import MetricUnit
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
from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.settings import settings

MAX_BACKOFF_S = 900


class Poison(Exception):
    """The message itself is unusable."""


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


def already_done(key: str) -> bool:
    with transaction() as conn:
        found = conn.execute(
            text("SELECT 1 FROM processed_messages WHERE idempotency_key = :k"), {"k": key}
        ).first()
    return found is not None


def mark_done(key: str, job_type: str, result: dict[str, Any] | None) -> None:
    with transaction() as conn:
        conn.execute(
            text(
                "INSERT INTO processed_messages (idempotency_key, job_type, result)"
                " VALUES (:k, :t, CAST(:r AS jsonb)) ON CONFLICT (idempotency_key) DO NOTHING"
            ),
            {"k": key, "t": job_type, "r": json.dumps(result, default=str)},
        )


class JobConsumer:
    def __init__(self, priority: str, logger: Logger, metrics: Any) -> None:
        self.priority = priority
        self.logger = logger
        self.metrics = metrics
        cfg = settings()
        self.dlq_url = cfg.dlq_urls.get(priority)
        self.retry_base_s = cfg.retry_base_s
        self._max_receives: int | None = None

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
        if already_done(key):
            self.logger.info("duplicate delivery ignored", extra={"job": job_type, "key": key})
            return
        receives = int(record.attributes.approximate_receive_count or 1)
        try:
            result = job(payload, Delivery(key, receives, self.max_receives(record)))
        except PermanentJobError as exc:
            self.dead_letter(record, f"{job_type}: {exc}")
            return
        except Exception as exc:
            self.logger.warning(
                "job failed; will retry",
                extra={"job": job_type, "key": key, "receive_count": receives, "error": repr(exc)},
            )
            self.metrics.add_metric(name="JobFailures", unit=MetricUnit.Count, value=1)
            self.back_off(record, receives)
            raise
        mark_done(key, job_type, result)
        self.metrics.add_metric(name="JobsProcessed", unit=MetricUnit.Count, value=1)
        self.logger.info("job done", extra={"job": job_type, "key": key})

    def back_off(self, record: SQSRecord, receives: int) -> None:
        delay = min(MAX_BACKOFF_S, self.retry_base_s * 2 ** (receives - 1))
        queue_url = _queue_url_from_arn(record.event_source_arn)
        try:
            client("sqs").change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record.receipt_handle, VisibilityTimeout=delay
            )
        except Exception as exc:  # the queue's own visibility timeout still applies
            self.logger.warning("could not set back-off", extra={"error": repr(exc)})

    def dead_letter(self, record: SQSRecord, reason: str) -> None:
        self.logger.error(
            "message sent to the DLQ", extra={"reason": reason, "message_id": record.message_id}
        )
        self.metrics.add_metric(name="DeadLettered", unit=MetricUnit.Count, value=1)
        if not self.dlq_url:
            raise RuntimeError(f"no DLQ configured; leaving the message to redrive: {reason}")
        client("sqs").send_message(
            QueueUrl=self.dlq_url,
            MessageBody=record.body,
            MessageAttributes={
                "failure_reason": {"DataType": "String", "StringValue": reason[:1000]},
                "source_message_id": {"DataType": "String", "StringValue": record.message_id},
            },
        )


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
    # The whole batch failing is reported as a list too (not raised), so SQS keeps
    # the same per-message accounting in every case.
    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)

    @lambda_entry(logger, metrics, tracer)
    def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
        return dict(
            process_partial_response(
                event=event,
                record_handler=consumer.handle_record,
                processor=processor,
                context=context,
            )
        )

    return handler
