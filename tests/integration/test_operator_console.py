"""The operator console through the running local stack: a dead letter fires the
template's DLQ alarm (evaluated by `pilot run`), which `pilot alarms` and the admin API
show; the console lists the dead letter with its reason, job and what it concerns, and
redrives it, after which it is processed."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev import cli
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import auth, new_seller

T = TypeVar("T")
OPS = "/v1/admin/operations"


def wait_for(check: Callable[[], T], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.5)


def dead_letter(stack: Stack, queue: str, body: dict[str, Any], reason: str) -> None:
    """A job the consumer gave up on: in the DLQ with the reason it writes."""
    stack.client("sqs").send_message(
        QueueUrl=stack.queue_urls[queue], MessageBody=json.dumps(body),
        MessageAttributes={"failure_reason": {"DataType": "String", "StringValue": reason}})


def audit_count(key: str) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE action = 'job.record' AND target = :k"),
            {"k": key}).scalar_one())


def alarm(api: httpx.Client, admin: dict[str, str], logical_id: str) -> dict[str, Any]:
    response = api.get(f"{OPS}/alarms", headers=auth(admin))
    assert response.status_code == 200, response.text
    found = [a for a in response.json()["items"] if a["name"].endswith(f"-{logical_id}")]
    assert len(found) == 1, response.json()
    return dict(found[0])


@pytest.fixture()
def admin(api: httpx.Client) -> dict[str, str]:
    return new_seller(api, role="admin")


def test_a_dead_letter_fires_the_dlq_alarm_and_is_redriven(
        api: httpx.Client, stack: Stack, admin: dict[str, str], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    key = f"console-{uuid.uuid4().hex}"
    product_id = str(uuid.uuid4())
    dead_letter(stack, "DefaultDLQ", {"type": "record", "key": key,
                                      "payload": {"product_id": product_id}},
                "OperationalError: the database did not answer")

    # the local evaluator fires the template's DefaultDLQAlarm ...
    firing = wait_for(lambda: (a := alarm(api, admin, "DefaultDLQAlarm"))["state"] == "ALARM"
                      and a, 20, "DefaultDLQAlarm in ALARM")
    assert firing["severity"] in ("page", "ticket")
    assert "Threshold Crossed" in firing["reason"] and firing["since"]
    assert firing["metric"] == "AWS/SQS/ApproximateNumberOfMessagesVisible"
    everything = api.get(f"{OPS}/alarms", headers=auth(admin)).json()
    assert everything["firing"] >= 1 and everything["items"][0]["state"] == "ALARM"
    # every alarm the endpoint took (moto refuses composites; LocalStack takes them)
    mirror = stack.alarms.mirror  # type: ignore[union-attr]
    taken = [d for d in stack.alarms.evaluator.definitions  # type: ignore[union-attr]
             if d.name not in mirror.absent]
    assert len(everything["items"]) == len(taken)

    # ... and `pilot alarms --firing` shows it
    # main() recomputes STATE_FILE from PILOT_STATE_FILE (pilot --data-dir)
    monkeypatch.setenv("PILOT_STATE_FILE", str(tmp_path / "stack.json"))
    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "stack.json")
    cli._write_state(stack)
    assert cli.main(["alarms", "--firing"]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if x.startswith("DefaultDLQAlarm "))
    assert "ALARM" in line and "Threshold Crossed" in line
    assert "DefaultDLQAlarm" in {r["name"].rsplit("-", 1)[-1] for r in cli_json(
        capsys, ["alarms", "--firing", "--json"])}

    # the queues show it in the default DLQ
    queues = api.get(f"{OPS}/queues", headers=auth(admin)).json()["items"]
    default = next(q for q in queues if q["queue"] == "default")
    assert default["dlq"]["depth"] >= 1 and default["error"] is None

    # the dead letter: reason, job type, what it concerns
    listed = api.get(f"{OPS}/dlq/default", headers=auth(admin))
    assert listed.status_code == 200, listed.text
    mine = [m for m in listed.json()["items"] if m["job_key"] == key]
    assert len(mine) == 1
    letter = mine[0]
    assert letter["job_type"] == "record"
    assert letter["failure_reason"] == "OperationalError: the database did not answer"
    assert letter["concerns"] == {"product_id": product_id}
    # and the CLI lists it the same way
    assert key in {r["job_key"] for r in cli_json(capsys, ["dlq", "default", "--json"])}

    # redrive just this one: it is processed
    moved = api.post(f"{OPS}/dlq/default/redrive", headers=auth(admin),
                     json={"message_ids": [letter["message_id"]]})
    assert moved.status_code == 200, moved.text
    assert moved.json()["moved"] == 1 and moved.json()["method"] == "receive-send-delete"
    wait_for(lambda: audit_count(key) == 1, 30, "the redriven job to run")
    history = api.get(f"{OPS}/jobs", headers=auth(admin), params={"job_type": "record"}).json()
    run = next(j for j in history["items"] if j["key"] == key)
    assert run["status"] == "done" and run["attempts"] == 1
    again = api.get(f"{OPS}/dlq/default", headers=auth(admin)).json()["items"]
    assert key not in {m["job_key"] for m in again}

    # the redrive is in the audit log
    audit = api.get("/v1/admin/audit", headers=auth(admin),
                    params={"action": "admin.dlq_redrive", "actor_id": admin["id"]}).json()
    assert audit["items"][0]["target"] == "default"

    # an empty DLQ brings the alarm back to OK (other tests may have left letters there),
    # once a one-minute period without a letter has passed (Maximum over the period)
    if not again:
        wait_for(lambda: alarm(api, admin, "DefaultDLQAlarm")["state"] == "OK", 150,
                 "DefaultDLQAlarm back to OK")


def cli_json(capsys: pytest.CaptureFixture[str], argv: list[str]) -> list[dict[str, Any]]:
    assert cli.main(argv) == 0
    return list(json.loads(capsys.readouterr().out))


def test_the_cli_redrives_some_by_id_and_says_how(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    key = f"cli-{uuid.uuid4().hex}"
    dead_letter(stack, "LowDLQ", {"type": "record", "key": key, "payload": {}},
                "RetryableJobError: upstream down")
    # main() recomputes STATE_FILE from PILOT_STATE_FILE (pilot --data-dir)
    monkeypatch.setenv("PILOT_STATE_FILE", str(tmp_path / "stack.json"))
    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "stack.json")
    cli._write_state(stack)
    listed = wait_for(lambda: [r for r in cli_json(capsys, ["dlq", "low", "--json"])
                               if r["job_key"] == key], 10, "the letter in `pilot dlq`")
    assert cli.main(["redrive", "low", "--id", listed[0]["message_id"]]) == 0
    assert "moved 1 message(s)" in capsys.readouterr().out
    wait_for(lambda: audit_count(key) == 1, 30, "the redriven job to run")
    assert cli.main(["redrive", "low", "--id", "no-such-message"]) == 1
    assert "not in the DLQ: no-such-message" in capsys.readouterr().out


def test_the_console_is_for_administrators_only(api: httpx.Client,
                                                admin: dict[str, str]) -> None:
    for method, path in (("GET", "alarms"), ("GET", "queues"), ("GET", "dlq/default"),
                         ("POST", "dlq/default/redrive"), ("GET", "jobs"), ("GET", "outbox"),
                         ("GET", "metrics")):
        assert api.request(method, f"{OPS}/{path}", json={"all": True}).status_code == 401
    seller = new_seller(api)
    refused = api.get(f"{OPS}/queues", headers=auth(seller))
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"
    assert api.get(f"{OPS}/dlq/nosuch", headers=auth(admin)).status_code == 404
    for body in ({}, {"all": True, "message_ids": ["x"]}, {"message_ids": []},
                 {"everything": True}):
        bad = api.post(f"{OPS}/dlq/default/redrive", headers=auth(admin), json=body)
        assert bad.status_code == 422, (body, bad.text)
        assert bad.json()["error"]["code"] == "VALIDATION_ERROR"


def test_outbox_backlog_and_metrics(api: httpx.Client, admin: dict[str, str],
                                    stack: Stack) -> None:
    backlog = api.get(f"{OPS}/outbox", headers=auth(admin))
    assert backlog.status_code == 200, backlog.text
    assert set(backlog.json()) == {"pending", "oldest_pending_s", "failing", "last_error"}
    # requests made so far reach CloudWatch's AWS/ApiGateway metrics (published by the
    # runtime every few seconds)
    assert stack.alarms is not None
    stack.alarms.evaluate_now()

    def requests() -> float:
        series = api.get(f"{OPS}/metrics", headers=auth(admin)).json()["series"]
        return sum(sum(s["values"]) for s in series if s["id"] == "requests")

    assert wait_for(requests, 20, "API requests in the metrics") >= 1
    series = api.get(f"{OPS}/metrics", headers=auth(admin)).json()["series"]
    assert any(s["id"].endswith("_invocations") and "system" in s["label"] for s in series)


def test_redrive_all_says_how_it_moved_them_and_they_run(
        api: httpx.Client, stack: Stack, admin: dict[str, str]) -> None:
    keys = [f"all-{i}-{uuid.uuid4().hex}" for i in range(3)]
    for key in keys:
        dead_letter(stack, "LowDLQ", {"type": "record", "key": key, "payload": {}},
                    "RetryableJobError: upstream down")
    moved = api.post(f"{OPS}/dlq/low/redrive", headers=auth(admin), json={"all": True})
    assert moved.status_code == 200, moved.text
    # SQS's message-move task where the endpoint has one (LocalStack); moto has none, and
    # the console falls back and says so
    external = stack.moto is None  # an endpoint of its own (LocalStack), not embedded moto
    assert moved.json()["method"] == ("message-move-task" if external
                                      else "receive-send-delete")
    if not external:  # a move task runs on its own: it counts nothing when it starts
        assert moved.json()["moved"] >= len(keys)
    wait_for(lambda: all(audit_count(k) == 1 for k in keys), 30, "the redriven jobs")


def test_stage_console_finds_the_stack_queues_from_cloudformation(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, open_aws: None) -> None:
    """`--stage NAME`: the stack samconfig names, its queues from CloudFormation, the
    calls by the AWS APIs (here a moto server of its own stands for AWS)."""
    import boto3
    from moto.server import ThreadedMotoServer

    from pilot_dev import console

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        stack_name = f"pilot-stage-{uuid.uuid4().hex[:8]}"
        samconfig = tmp_path / "samconfig.toml"
        samconfig.write_text(f'version = 0.1\n[qa.deploy.parameters]\nstack_name = "{stack_name}"\n'
                             'region = "eu-west-1"\n')
        body = {"Resources": {
            "LowDLQ": {"Type": "AWS::SQS::Queue",
                       "Properties": {"QueueName": f"{stack_name}-low-dlq"}},
            "LowQueue": {"Type": "AWS::SQS::Queue", "Properties": {
                "QueueName": f"{stack_name}-low",
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": ["LowDLQ", "Arn"]},
                                  "maxReceiveCount": 3}}}}}
        cloudformation = boto3.client("cloudformation", region_name="eu-west-1")
        cloudformation.create_stack(StackName=stack_name, TemplateBody=json.dumps(body))
        target = console.stage_target("qa", samconfig)
        assert target.stack_name == stack_name and set(target.queues) == {"LowDLQ", "LowQueue"}
        sqs = target.client("sqs")
        sqs.send_message(QueueUrl=target.queues["LowDLQ"], MessageBody=json.dumps(
            {"type": "suggest", "key": "k1", "payload": {"product_id": "p-1"}}))
        assert console.queue_rows(target) == [
            {"queue": "low", "depth": 0, "in_flight": 0, "dlq_depth": 1}]
        [letter] = console.dead_letters(target, "low")
        assert letter["job_type"] == "suggest" and letter["concerns"] == {"product_id": "p-1"}
        assert "no reason recorded" in letter["failure_reason"]
        result = console.redrive(target, "low")
        assert result == {"queue": "low", "method": "receive-send-delete", "moved": 1,
                          "not_found": []}
        assert console.queue_rows(target)[0]["depth"] == 1
        with pytest.raises(console.ConsoleError, match="no stage 'prod'"):
            console.stage_target("prod", samconfig)
        with pytest.raises(console.ConsoleError, match="no queue 'urgent'"):
            console.dead_letters(target, "urgent")
    finally:
        server.stop()
