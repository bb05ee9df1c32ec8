"""The local runtime behaves like Lambda + API Gateway + SQS + EventBridge would."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.gateway import MAX_PAYLOAD, Gateway
from pilot_dev.runtime.http_server import HttpServer
from pilot_dev.runtime.invoker import FunctionHost
from pilot_dev.runtime.routes import RouteTable
from pilot_dev.runtime.stack import Stack
from pilot_dev.runtime.template import load_template

ROOT = Path(__file__).resolve().parents[2]


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what or condition}")


@pytest.fixture(scope="module")
def echo_url() -> Iterator[str]:
    """A gateway on a real port in front of the fixture template's echo functions."""
    template = load_template(ROOT / "tests/fixtures/runtime-template.yaml")
    names = {k: f"echo-{k}" for k in template.functions}
    envs = {k: {str(n): str(v) for n, v in s.environment.items()}
            for k, s in template.functions.items()}
    gateway = Gateway(FunctionHost(names, envs, template.functions), RouteTable(template.routes))
    server = HttpServer(gateway, host="127.0.0.1", port=0, max_body=MAX_PAYLOAD,
                        too_large=gateway.too_large).start()
    yield f"http://127.0.0.1:{server.port}"
    server.stop()


def test_request_reaches_the_function_owning_the_route_with_a_v2_event(echo_url: str) -> None:
    response = httpx.get(f"{echo_url}/items/42?q=1&q=2", headers={"x-trace": "t1"})
    assert response.status_code == 200
    payload = response.json()
    event = payload["event"]
    assert payload["function"] == "echo-ItemFunction"
    assert payload["flavour"] == "item"  # the function's own environment at cold start
    assert event["version"] == "2.0"
    assert event["routeKey"] == "GET /items/{id}"
    assert event["pathParameters"] == {"id": "42"}
    assert event["queryStringParameters"] == {"q": "1,2"}
    assert event["headers"]["x-trace"] == "t1"
    assert event["headers"]["x-forwarded-proto"] == "http"  # as API Gateway says https
    assert event["requestContext"]["http"]["method"] == "GET"
    assert response.cookies.get("seen") == "1"


def test_greedy_route_goes_to_the_other_function(echo_url: str) -> None:
    response = httpx.post(f"{echo_url}/items/42/notes", json={"a": 1})
    payload = response.json()
    assert payload["function"] == "echo-CatchAllFunction"
    assert payload["event"]["pathParameters"] == {"proxy": "42/notes"}
    assert json.loads(payload["event"]["body"]) == {"a": 1}


def test_unknown_route_is_a_404_in_the_error_format(echo_url: str) -> None:
    response = httpx.delete(f"{echo_url}/nothing/here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_the_public_health_probe_says_up(api: httpx.Client) -> None:
    response = api.get("/v1/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "up"}  # nothing more (details: test_health.py)
    # the request id the gateway put in the event comes back to the client
    assert len(response.headers["x-request-id"]) >= 16
    assert response.headers["x-content-type-options"] == "nosniff"


def _log_messages(stack: Stack, group: str) -> list[str]:
    """Every message of the group, all pages (a long test session writes more than
    one page of access lines)."""
    logs = stack.client("logs")
    try:
        pages = logs.get_paginator("filter_log_events").paginate(logGroupName=group)
        return [e["message"] for page in pages for e in page["events"]]
    except logs.exceptions.ResourceNotFoundException:
        return []


def test_each_request_has_an_access_line_in_the_template_format(api: httpx.Client,
                                                                stack: Stack) -> None:
    rid = api.get("/v1/health/live").headers["x-request-id"]
    assert stack.access_log_group == f"/aws/apigateway/{stack.config.stack_name}-http-api"

    def line() -> dict[str, Any] | None:
        for message in _log_messages(stack, str(stack.access_log_group)):
            entry = json.loads(message)  # the template's Format is JSON
            if entry["requestId"] == rid:
                return dict(entry)
        return None

    entry = wait_for(line, 15, "the access line carrying the request id")
    assert entry["route"] == "GET /v1/health/live"
    assert (entry["method"], entry["path"], entry["status"]) == ("GET", "/v1/health/live", "200")
    assert int(entry["integrationLatency"]) >= 0 and entry["integrationError"] == "-"
    if stack.moto is not None:  # lines went straight into the in-process endpoint's store
        assert stack.shipper is not None and stack.shipper.direct is not None


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_invocations_write_lambda_platform_lines_to_the_function_log_group(
    api: httpx.Client, stack: Stack
) -> None:
    group = f"/aws/lambda/{stack.function_names['SystemFunction']}"
    before = sum(m.startswith("REPORT RequestId: ") for m in _log_messages(stack, group))
    for _ in range(3):
        assert api.get("/v1/health/live").status_code == 200

    def reports() -> list[str]:
        found = [m for m in _log_messages(stack, group) if m.startswith("REPORT RequestId: ")]
        return found if len(found) >= before + 3 else []

    report = wait_for(reports, 15, "three more REPORT lines")[-1]
    assert "\tDuration: " in report and "\tMemory Size: " in report


def test_pilot_logs_reads_the_access_log_and_a_function_log_group(
    api: httpx.Client, stack: Stack, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    import pilot_dev.cli as cli

    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "stack.json")
    cli._write_state(stack)  # what `pilot run` writes for the other commands
    rid = api.get("/v1/health/live").headers["x-request-id"]

    def printed(*argv: str) -> str:
        assert cli.main(list(argv)) == 0
        return capsys.readouterr().out

    wait_for(lambda: rid in printed("logs", "api", "--since", "5m"), 15, "the access line")
    assert "REPORT RequestId: " in printed("logs", "system", "--since", "5m")


def _send(stack: Stack, queue: str, body: str) -> None:
    stack.client("sqs").send_message(QueueUrl=stack.queue_urls[queue], MessageBody=body)


def _dlq_messages(stack: Stack, dlq: str) -> list[dict[str, Any]]:
    sqs = stack.client("sqs")
    messages: list[dict[str, Any]] = []
    for _ in range(3):
        batch = sqs.receive_message(QueueUrl=stack.queue_urls[dlq], MaxNumberOfMessages=10,
                                    WaitTimeSeconds=1, VisibilityTimeout=1,
                                    MessageAttributeNames=["All"],
                                    AttributeNames=["All"]).get("Messages", [])
        messages.extend(batch)
    return messages


def _audit_count(key: str) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE action = 'job.record' AND target = :k"),
            {"k": key}).scalar_one())


def _job(job_type: str, key: str, **payload: Any) -> str:
    return json.dumps({"type": job_type, "key": key, "payload": payload})


def test_failing_job_retries_then_lands_in_the_dlq_and_nothing_else_is_lost(stack: Stack) -> None:
    keys = [f"ok-{i}-{time.time_ns()}" for i in range(5)]
    failing = f"fail-{time.time_ns()}"
    _send(stack, "CriticalQueue", _job("fail", failing, reason="upstream down"))
    for key in keys:
        _send(stack, "CriticalQueue", _job("record", key))
    wait_for(lambda: all(_audit_count(k) == 1 for k in keys), 30, "the good jobs")

    def in_dlq() -> list[dict[str, Any]]:
        return [m for m in _dlq_messages(stack, "CriticalDLQ") if failing in m["Body"]]

    dead = wait_for(in_dlq, 60, "the failing job in the DLQ")
    # redrive policy: delivered maxReceiveCount (3) times before the move
    assert int(dead[0]["Attributes"]["ApproximateReceiveCount"]) >= 1
    with get_engine().connect() as conn:
        done = conn.execute(text("SELECT count(*) FROM processed_messages WHERE idempotency_key"
                                 " = ANY(:k)"), {"k": keys}).scalar_one()
    assert done == len(keys)


def test_a_message_processed_twice_leaves_one_result(stack: Stack) -> None:
    key = f"twice-{time.time_ns()}"
    _send(stack, "DefaultQueue", _job("record", key))
    _send(stack, "DefaultQueue", _job("record", key))
    wait_for(lambda: _audit_count(key) == 1, 30, "the first delivery")
    time.sleep(2.5)  # give the second delivery every chance to run
    assert _audit_count(key) == 1


def test_a_consumer_s_metrics_reach_its_log_group_as_emf(stack: Stack) -> None:
    key = f"emf-{time.time_ns()}"
    _send(stack, "DefaultQueue", _job("record", key))
    wait_for(lambda: _audit_count(key) == 1, 30, "the job")
    group = f"/aws/lambda/{stack.function_names['DefaultWorkerFunction']}"

    def emf() -> list[dict[str, Any]]:
        return [json.loads(m) for m in _log_messages(stack, group)
                if m.startswith('{"_aws"') and "JobsProcessed" in m]

    document = wait_for(emf, 15, "an EMF document with JobsProcessed")[-1]
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "AmazonPilot"
    assert document["JobsProcessed"]


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_unparseable_message_goes_to_the_dlq_at_once_with_its_reason(stack: Stack) -> None:
    marker = f"not json {time.time_ns()}"
    _send(stack, "LowQueue", marker)

    def dead() -> list[dict[str, Any]]:
        return [m for m in _dlq_messages(stack, "LowDLQ") if m["Body"] == marker]

    messages = wait_for(dead, 30, "the poison message in the low DLQ")
    reason = messages[0]["MessageAttributes"]["failure_reason"]["StringValue"]
    assert "not JSON" in reason


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_schedule_fires_the_scheduler_which_queues_its_job(
    api: httpx.Client, stack: Stack, operator: httpx.Client
) -> None:
    response = operator.post("/_pilot/schedules/PartitionMaintenance/fire")
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["queued_on"] == "low"

    def processed() -> bool:
        with get_engine().connect() as conn:
            return bool(conn.execute(text("SELECT 1 FROM processed_messages WHERE"
                                          " idempotency_key = :k"), {"k": result["key"]}).first())

    wait_for(processed, 30, "the maintenance job to run on the low queue")
    assert operator.post("/_pilot/schedules/Nope/fire").status_code == 404


def test_a_scheduled_run_that_fails_lands_in_the_schedule_dlq(stack: Stack) -> None:
    from pilot_dev.runtime.template import ScheduleEvent
    from pilot_dev.runtime.workers import ScheduleClock

    # The real schedules all name known jobs; this one, built like them, does not.
    real = {s.name: s for s in stack.template.schedules}["DailyRefresh"]
    broken = ScheduleEvent("Broken", real.function, "rate(1 day)", {"job": "no_such_job"},
                           dead_letter_queue=real.dead_letter_queue)
    assert real.dead_letter_queue == "ScheduleDLQ"
    clock = ScheduleClock(stack.host, [broken], stack.config.region, stack.config.stack_name,
                          dead_letter=stack._dead_letter)
    assert clock.fire_on_time("Broken") is None

    def dead() -> list[dict[str, Any]]:
        return [json.loads(m["Body"]) for m in _dlq_messages(stack, "ScheduleDLQ")
                if "no_such_job" in m["Body"]]

    (record, *_) = wait_for(dead, 10, "the failed run in the schedule DLQ")
    assert record["requestPayload"] == {"job": "no_such_job"}
    assert record["responsePayload"]["errorType"] == "UnknownScheduledJob"
    assert record["requestContext"]["functionArn"].endswith("-scheduler")


def test_the_control_surface_needs_the_operator_token(api: httpx.Client, stack: Stack) -> None:
    """A webhook or a web page that reaches the API port cannot fire a schedule."""
    for headers in ({}, {"X-Pilot-Operator-Token": "guess"},
                    {"X-Pilot-Operator-Token": stack.operator_token[:-1]}):
        for method, path in (("POST", "/_pilot/schedules/DailyRefresh/fire"),
                             ("GET", "/_pilot/status")):
            response = api.request(method, path, headers=headers)
            assert response.status_code == 401, (method, path, response.text)
            assert "X-Pilot-Operator-Token" in response.json()["error"]["message"]
    assert api.get("/_pilot/status", headers=stack.operator_headers).status_code == 200


def test_the_operator_token_file_is_private(stack: Stack, tmp_path: Path) -> None:
    token_file = tmp_path / "nested" / "operator-token"
    token_file.parent.mkdir()
    token_file.write_text("old")
    token_file.chmod(0o644)
    stack.write_operator_token(token_file)
    assert token_file.read_text() == stack.operator_token
    assert token_file.stat().st_mode & 0o777 == 0o600


def test_pilot_fire_sends_the_operator_token(stack: Stack, tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import os

    from pilot_dev import cli

    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "stack.json")
    (tmp_path / "stack.json").write_text(json.dumps({"api": stack.url, "pid": os.getpid()}))
    assert cli.main(["fire", "PartitionMaintenance"]) == 2  # no token file yet: one line
    assert "operator-token" in capsys.readouterr().err
    stack.write_operator_token(cli.operator_token_file())
    assert cli.main(["fire", "PartitionMaintenance"]) == 0
    assert '"fired": "PartitionMaintenance"' in capsys.readouterr().out
