"""The queue console and alarms of the CLI (`pilot alarms`, `pilot queues`, `pilot dlq`,
`pilot redrive`), against the running local stack or, with `--stage NAME`, a deployed
stage through the real AWS APIs (the credentials of the caller's AWS configuration).

A stage's stack is the `stack_name` samconfig.toml gives that config environment; its
queues are the stack's AWS::SQS::Queue resources (CloudFormation's physical id of a
queue is its URL), its alarms those named "<stack>-...".
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amazon_pilot.adapters.dead_letters import move_back, peek, start_move_task
from pilot_dev.runtime.template import repo_root


class ConsoleError(Exception):
    """A problem the operator can fix, said in one line."""


@dataclass
class Target:
    label: str  # "local" or the stage's name
    stack_name: str
    queues: dict[str, str]  # logical id -> URL
    session: Any  # what makes clients
    region: str
    endpoint_url: str | None = None

    def client(self, service: str) -> Any:
        return self.session.client(service, region_name=self.region,
                                   endpoint_url=self.endpoint_url)


def local_target(state: dict[str, Any]) -> Target:
    import boto3

    operator = state.get("operator") or {}
    session = boto3.session.Session(aws_access_key_id=operator.get("AWS_ACCESS_KEY_ID"),
                                    aws_secret_access_key=operator.get("AWS_SECRET_ACCESS_KEY"))
    return Target("local", state["stack_name"], dict(state["queues"]), session,
                  state["region"], state["aws_endpoint_url"])


def stage_config(stage: str, samconfig: Path | None = None) -> tuple[str, str]:
    """(stack name, region) of a samconfig config environment."""
    path = samconfig or repo_root() / "samconfig.toml"
    try:
        config = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConsoleError(f"cannot read {path}: {exc}") from None
    if stage not in config:
        known = sorted(k for k in config if isinstance(config[k], dict))
        raise ConsoleError(f"no stage {stage!r} in {path.name}; known: {', '.join(known)}")
    section = config[stage]
    default = config.get("default", {})

    def setting(name: str) -> str | None:
        for scope in (section, default):
            for command in ("deploy", "global"):
                value = (scope.get(command) or {}).get("parameters", {}).get(name)
                if value:
                    return str(value)
        return None

    stack = setting("stack_name")
    if not stack:
        raise ConsoleError(f"{path.name} names no stack_name for stage {stage!r}")
    return stack, setting("region") or "us-east-1"


def stage_target(stage: str, samconfig: Path | None = None) -> Target:
    import boto3

    stack, region = stage_config(stage, samconfig)
    session = boto3.session.Session()
    cloudformation = session.client("cloudformation", region_name=region)
    queues: dict[str, str] = {}
    try:
        for page in cloudformation.get_paginator("list_stack_resources").paginate(
                StackName=stack):
            for resource in page["StackResourceSummaries"]:
                if resource["ResourceType"] == "AWS::SQS::Queue":
                    queues[resource["LogicalResourceId"]] = resource["PhysicalResourceId"]
    except Exception as exc:
        raise ConsoleError(f"cannot read stack {stack} in {region} ({exc}); check the "
                           "AWS credentials and the stage's samconfig entry") from None
    return Target(stage, stack, queues, session, region)


# ---------------------------------------------------------------- alarms


def alarms(target: Target, firing_only: bool = False) -> list[dict[str, Any]]:
    cloudwatch = target.client("cloudwatch")
    rows = []
    params: dict[str, Any] = {"AlarmNamePrefix": f"{target.stack_name}-",
                              "AlarmTypes": ["MetricAlarm", "CompositeAlarm"]}
    while True:
        page = cloudwatch.describe_alarms(**params)
        for raw in page.get("MetricAlarms", []) + page.get("CompositeAlarms", []):
            since = raw.get("StateUpdatedTimestamp")
            rows.append({
                "name": raw["AlarmName"], "state": raw.get("StateValue", "INSUFFICIENT_DATA"),
                "since": since.astimezone(UTC).isoformat() if isinstance(since, datetime)
                else since, "reason": raw.get("StateReason", ""),
                "description": raw.get("AlarmDescription", "")})
        if not page.get("NextToken"):
            break
        params["NextToken"] = page["NextToken"]
    if firing_only:
        rows = [r for r in rows if r["state"] == "ALARM"]
    return sorted(rows, key=lambda r: (r["state"] != "ALARM", r["name"]))


def print_alarms(rows: list[dict[str, Any]], stack_name: str) -> None:
    if not rows:
        print(f"no alarms named {stack_name}-...")
        return
    width = max(len(r["name"]) - len(stack_name) - 1 for r in rows)
    print(f"{'alarm':<{width}}  {'state':<17}  {'since':<25}  reason")
    for r in rows:
        name = r["name"].removeprefix(f"{stack_name}-")
        print(f"{name:<{width}}  {r['state']:<17}  {str(r['since'])[:25]:<25}  "
              f"{(r['reason'] or '')[:160]}")


# ---------------------------------------------------------------- queues


def source_queues(target: Target) -> dict[str, str]:
    """queue name (critical, ...) -> logical id, for the queues that have a DLQ."""
    return {k.removesuffix("Queue").lower(): k for k in target.queues
            if not k.endswith("DLQ") and k.endswith("Queue")}


def resolve_queue(target: Target, wanted: str) -> tuple[str, str, str]:
    """(name, source URL, DLQ URL) of `critical`, `default` or `low`."""
    names = source_queues(target)
    logical = names.get(wanted.lower().removesuffix("queue"))
    if logical is None:
        raise ConsoleError(f"no queue {wanted!r}; choose one of {', '.join(sorted(names))}")
    sqs = target.client("sqs")
    source_url = target.queues[logical]
    attrs = sqs.get_queue_attributes(QueueUrl=source_url,
                                     AttributeNames=["RedrivePolicy"]).get("Attributes", {})
    if "RedrivePolicy" not in attrs:
        raise ConsoleError(f"queue {wanted} has no DLQ (no RedrivePolicy)")
    dlq_name = json.loads(attrs["RedrivePolicy"])["deadLetterTargetArn"].split(":")[-1]
    return logical.removesuffix("Queue").lower(), source_url, \
        sqs.get_queue_url(QueueName=dlq_name)["QueueUrl"]


def queue_rows(target: Target) -> list[dict[str, Any]]:
    sqs = target.client("sqs")
    rows = []
    for name in sorted(source_queues(target)):
        _, source_url, dlq_url = resolve_queue(target, name)
        attrs = sqs.get_queue_attributes(QueueUrl=source_url, AttributeNames=["All"])[
            "Attributes"]
        dlq = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=[
            "ApproximateNumberOfMessages"])["Attributes"]
        rows.append({"queue": name, "depth": int(attrs.get("ApproximateNumberOfMessages", 0)),
                     "in_flight": int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
                     "dlq_depth": int(dlq.get("ApproximateNumberOfMessages", 0))})
    return rows


def dead_letters(target: Target, queue: str, limit: int = 50) -> list[dict[str, Any]]:
    """The DLQ's messages, looked at with a visibility timeout of 0 (they stay
    available): id, reason, job type and key, the ids the payload names."""
    _, _, dlq_url = resolve_queue(target, queue)
    described = [describe_message(m) for m in peek(target.client("sqs"), dlq_url, limit)]
    return sorted(described, key=lambda m: m["sent_at"] or "")[:limit]


def describe_message(message: dict[str, Any]) -> dict[str, Any]:
    attrs = message.get("MessageAttributes") or {}
    system = message.get("Attributes") or {}
    try:
        body = json.loads(message["Body"])
    except ValueError:
        body = None
    job = body if isinstance(body, dict) else {}
    payload = job.get("payload") if isinstance(job.get("payload"), dict) else {}
    sent = system.get("SentTimestamp")
    return {
        "message_id": message["MessageId"],
        "sent_at": datetime.fromtimestamp(int(sent) / 1000, UTC).isoformat() if sent else None,
        "receive_count": int(system.get("ApproximateReceiveCount", 0)),
        "failure_reason": (attrs.get("failure_reason") or {}).get("StringValue")
        or "moved by the queue's redrive policy (no reason recorded)",
        "job_type": job.get("type"), "job_key": job.get("key"),
        "concerns": {k: v for k, v in (payload or {}).items()
                     if k.endswith("_id") or k.endswith("_ids")},
    }


def redrive(target: Target, queue: str, ids: list[str] | None = None) -> dict[str, Any]:
    """Move DLQ messages back: all of them with SQS's message-move task where the
    endpoint has it, else (and for some, by id) by receive/send/delete."""
    name, source_url, dlq_url = resolve_queue(target, queue)
    sqs = target.client("sqs")
    if not ids:
        handle = start_move_task(sqs, source_url, dlq_url)
        if handle is not None:
            return {"queue": name, "method": "message-move-task", "moved": None,
                    "task_handle": handle}
    moved, not_found = move_back(sqs, source_url, dlq_url, set(ids) if ids else None)
    return {"queue": name, "method": "receive-send-delete", "moved": moved,
            "not_found": not_found}
