"""The operator console (administrators): alarms, queues, dead letters and their
redrive, job history, the outbox backlog and the key metrics.

Everything AWS-side goes through the AWS APIs the function's role grants (template.yaml,
SystemFunction): `describe_alarms` and `get_metric_data` of CloudWatch, and SQS. The
same code runs against a deployed stage and against `pilot run`, whose runtime keeps the
template's alarms in its endpoint's CloudWatch (devtools/pilot_dev/runtime/alarms.py).
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from amazon_pilot.adapters.aws import client
from amazon_pilot.adapters.dead_letters import move_back, peek, start_move_task
from amazon_pilot.operations import store
from amazon_pilot.operations.schemas import (
    Alarm,
    Alarms,
    DeadLetter,
    DeadLetterPage,
    DeadLetters,
    JobHistory,
    JobRun,
    Metrics,
    MetricSeries,
    OutboxBacklog,
    Queues,
    QueueState,
    RedriveResult,
)
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import NotFound, ValidationFailed
from amazon_pilot.platform.settings import settings

QUEUE_FAILED = "the queue could not be read"
_BODY_CHARS = 2000
_SEVERITY = re.compile(r"\[(page|ticket)\]|severity[:=]\s*(page|ticket)", re.I)


# ---------------------------------------------------------------- alarms


def _prefix() -> str:
    """The stack's resources (alarms, functions) are named "<stack>-..."."""
    name = settings().stack_name
    return f"{name}-" if name else ""


def severity(description: str, actions: list[str]) -> str:
    """Read leniently: "[page]" / "severity: page" in the description, else an action
    topic whose name says page; "ticket" otherwise."""
    match = _SEVERITY.search(description or "")
    if match:
        return (match.group(1) or match.group(2)).lower()
    if any("page" in a.rsplit(":", 1)[-1].lower() for a in actions):
        return "page"
    return "ticket"


def alarms() -> Alarms:
    prefix = _prefix()
    cloudwatch = client("cloudwatch")
    found: list[Alarm] = []
    params: dict[str, Any] = {"AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    if prefix:
        params["AlarmNamePrefix"] = prefix
    while True:
        page = cloudwatch.describe_alarms(**params)
        for raw in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            metric = (f"{raw['Namespace']}/{raw['MetricName']}" if raw.get("MetricName")
                      else "metric math" if raw.get("Metrics") else None)
            found.append(Alarm(
                name=raw["AlarmName"], state=raw.get("StateValue", "INSUFFICIENT_DATA"),
                severity=severity(raw.get("AlarmDescription", ""),
                                  list(raw.get("AlarmActions") or [])),
                description=raw.get("AlarmDescription") or "",
                reason=raw.get("StateReason") or "",
                since=raw.get("StateUpdatedTimestamp"), metric=metric))
        token = page.get("NextToken")
        if not token:
            break
        params["NextToken"] = token
    found.sort(key=lambda a: (a.state != "ALARM", a.severity != "page", a.name))
    return Alarms(items=found, firing=sum(1 for a in found if a.state == "ALARM"))


# ---------------------------------------------------------------- queues


def _urls(queue: str) -> tuple[str, str]:
    cfg = settings()
    if queue not in cfg.queue_urls or queue not in cfg.dlq_urls:
        raise NotFound(f"no queue {queue!r}; the queues are "
                       f"{', '.join(sorted(cfg.queue_urls))}")
    return cfg.queue_urls[queue], cfg.dlq_urls[queue]


def _name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def queues() -> Queues:
    cfg = settings()
    sqs = client("sqs")
    with reading() as conn:
        outbox = store.outbox_backlog(conn)["pending"]
    ages = _oldest_ages([_name(u) for u in cfg.queue_urls.values()])
    items = []
    for queue, url in cfg.queue_urls.items():
        try:
            attrs = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=[
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed"])["Attributes"]
            dlq = None
            if queue in cfg.dlq_urls:
                dattrs = sqs.get_queue_attributes(QueueUrl=cfg.dlq_urls[queue], AttributeNames=[
                    "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
                ])["Attributes"]
                dlq = DeadLetters(depth=int(dattrs.get("ApproximateNumberOfMessages", 0)),
                                  in_flight=int(dattrs.get(
                                      "ApproximateNumberOfMessagesNotVisible", 0)))
        except Exception:  # one unreadable queue does not hide the others
            items.append(QueueState(queue=queue, depth=0, in_flight=0, delayed=0,
                                    oldest_age_s=None, dlq=None,
                                    outbox_pending=outbox.get(queue, 0), error=QUEUE_FAILED))
            continue
        items.append(QueueState(
            queue=queue, depth=int(attrs.get("ApproximateNumberOfMessages", 0)),
            in_flight=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            oldest_age_s=ages.get(_name(url)), dlq=dlq, outbox_pending=outbox.get(queue, 0),
            error=None))
    return Queues(items=items)


def _oldest_ages(names: list[str]) -> dict[str, float]:
    """ApproximateAgeOfOldestMessage per queue, the latest datapoint of 5 minutes."""
    if not names:
        return {}
    end = datetime.now(UTC) + timedelta(minutes=1)
    queries = [{"Id": f"q{i}", "ReturnData": True, "MetricStat": {
        "Metric": {"Namespace": "AWS/SQS", "MetricName": "ApproximateAgeOfOldestMessage",
                   "Dimensions": [{"Name": "QueueName", "Value": name}]},
        "Period": 60, "Stat": "Maximum"}} for i, name in enumerate(names)]
    try:
        answer = client("cloudwatch").get_metric_data(
            MetricDataQueries=queries, StartTime=end - timedelta(minutes=6), EndTime=end,
            ScanBy="TimestampDescending")
    except Exception:  # no metrics is not an error of the console
        return {}
    ages = {}
    for result in answer.get("MetricDataResults", []):
        if result.get("Values"):
            ages[names[int(result["Id"][1:])]] = float(result["Values"][0])
    return ages


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attrs = message.get("MessageAttributes") or {}
    reason = (attrs.get("failure_reason") or {}).get("StringValue") or (
        "moved by the queue's redrive policy (no reason recorded)")
    body = message.get("Body", "")
    job_type = job_key = None
    concerns: dict[str, Any] = {}
    try:
        parsed = json.loads(body)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        job_type = parsed.get("type") if isinstance(parsed.get("type"), str) else None
        job_key = parsed.get("key") if isinstance(parsed.get("key"), str) else None
        payload = parsed.get("payload")
        if isinstance(payload, dict):
            concerns = {k: v for k, v in payload.items()
                        if (k.endswith("_id") or k.endswith("_ids"))
                        and isinstance(v, str | int | list)}
    system = message.get("Attributes") or {}
    sent = system.get("SentTimestamp")
    return DeadLetter(
        message_id=message["MessageId"],
        sent_at=datetime.fromtimestamp(int(sent) / 1000, UTC) if sent else None,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        failure_reason=reason, job_type=job_type, job_key=job_key, concerns=concerns,
        body=body[:_BODY_CHARS])


def dead_letters(queue: str, *, limit: int) -> DeadLetterPage:
    """A look at the DLQ's messages: received with a visibility timeout of 0, so they
    stay available to a redrive at once."""
    _, dlq_url = _urls(queue)
    sqs = client("sqs")
    depth = int(sqs.get_queue_attributes(
        QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"],
    )["Attributes"].get("ApproximateNumberOfMessages", 0))
    items = sorted((_dead_letter(m) for m in peek(sqs, dlq_url, limit)),
                   key=lambda d: d.sent_at or datetime.min.replace(tzinfo=UTC))
    return DeadLetterPage(queue=queue, depth=depth, items=items[:limit])


def redrive(queue: str, *, message_ids: list[str] | None, everything: bool,
            admin_id: UUID, ip: str | None = None,
            request_id: str | None = None) -> RedriveResult:
    """Move DLQ messages back to their queue: all of them with SQS's message-move task
    where the endpoint has it (else receive/send/delete), some by id with
    receive/send/delete. Audited."""
    if everything == bool(message_ids):
        raise ValidationFailed("give either message_ids or all=true", details=[
            {"field": "message_ids", "message": "give either message_ids or all=true"}])
    source_url, dlq_url = _urls(queue)
    sqs = client("sqs")
    handle = start_move_task(client("sqs", quick=True), source_url, dlq_url) if everything \
        else None
    if handle is not None:
        result = RedriveResult(queue=queue, method="message-move-task", moved=None,
                               task_handle=handle)
    else:
        moved, not_found = move_back(sqs, source_url, dlq_url,
                                     None if everything else set(message_ids or []))
        result = RedriveResult(queue=queue, method="receive-send-delete", moved=moved,
                               not_found=not_found)
    from amazon_pilot.accounts.store import audit

    with transaction() as conn:
        audit(conn, "admin.dlq_redrive", actor_id=admin_id, target=queue, ip=ip,
              request_id=request_id, details={
                  "method": result.method, "moved": result.moved, "all": everything,
                  "message_ids": (message_ids or [])[:100], "task_handle": result.task_handle})
    return result


# ---------------------------------------------------------------- jobs and outbox


def jobs(*, limit: int, status: str | None, job_type: str | None) -> JobHistory:
    with reading() as conn:
        rows = store.recent_jobs(conn, limit=limit, status=status, job_type=job_type)
        counts = store.job_counts(conn)
    return JobHistory(items=[JobRun(**r) for r in rows], counts=counts)


def outbox() -> OutboxBacklog:
    with reading() as conn:
        return OutboxBacklog(**store.outbox_backlog(conn))


# ---------------------------------------------------------------- metrics

_PANELS = (  # id, label, unit, namespace, metric, stat, dimension
    ("requests", "API requests", "count", "AWS/ApiGateway", "Count", "Sum", "ApiId"),
    ("errors_4xx", "API 4xx", "count", "AWS/ApiGateway", "4xx", "Sum", "ApiId"),
    ("errors_5xx", "API 5xx", "count", "AWS/ApiGateway", "5xx", "Sum", "ApiId"),
    ("latency_avg", "API latency (average)", "ms", "AWS/ApiGateway", "Latency", "Average",
     "ApiId"),
    ("latency_max", "API latency (max)", "ms", "AWS/ApiGateway", "Latency", "Maximum",
     "ApiId"),
)


def metrics(*, minutes: int) -> Metrics:
    """Requests, errors and latency of the API, and each function's invocations and
    errors, from CloudWatch, per 60 s (to 60 minutes) or 300 s."""
    cfg = settings()
    period = 60 if minutes <= 60 else 300
    end = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)
    queries: list[dict[str, Any]] = []
    labels: dict[str, tuple[str, str]] = {}
    if cfg.api_id:
        for pid, label, unit, ns, name, stat, dim in _PANELS:
            queries.append({"Id": pid, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": ns, "MetricName": name,
                           "Dimensions": [{"Name": dim, "Value": cfg.api_id}]},
                "Period": period, "Stat": stat}})
            labels[pid] = (label, unit)
    prefix = _prefix()
    cloudwatch = client("cloudwatch")
    functions: set[str] = set()
    listing: dict[str, Any] = {"Namespace": "AWS/Lambda", "MetricName": "Invocations"}
    while True:
        page = cloudwatch.list_metrics(**listing)
        for metric in page.get("Metrics", []):
            for dim in metric.get("Dimensions", []):
                if dim["Name"] == "FunctionName" and dim["Value"].startswith(prefix):
                    functions.add(dim["Value"])
        if not page.get("NextToken"):
            break
        listing["NextToken"] = page["NextToken"]
    for i, function in enumerate(sorted(functions)[:40]):
        for metric, stat in (("Invocations", "Sum"), ("Errors", "Sum")):
            qid = f"f{i}_{metric.lower()}"
            queries.append({"Id": qid, "ReturnData": True, "MetricStat": {
                "Metric": {"Namespace": "AWS/Lambda", "MetricName": metric,
                           "Dimensions": [{"Name": "FunctionName", "Value": function}]},
                "Period": period, "Stat": stat}})
            short = function.removeprefix(prefix) if prefix else function
            labels[qid] = (f"{short} {metric.lower()}", "count")
    series = []
    if queries:
        answer = cloudwatch.get_metric_data(
            MetricDataQueries=queries, StartTime=end - timedelta(minutes=minutes), EndTime=end,
            ScanBy="TimestampAscending")
        for result in answer.get("MetricDataResults", []):
            label, unit = labels[result["Id"]]
            series.append(MetricSeries(id=result["Id"], label=label, unit=unit,
                                       timestamps=list(result.get("Timestamps", [])),
                                       values=[float(v) for v in result.get("Values", [])]))
    return Metrics(period_s=period, series=series)
