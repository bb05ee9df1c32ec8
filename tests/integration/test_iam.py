"""The production configuration, exercised by the shared test stack: every function
reads its settings from secrets by ARN and calls AWS as its own role, and the AWS
endpoint (moto) enforces IAM, so a grant missing from a role is refused by something we
did not write."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import boto3
import httpx
import pytest
from botocore.exceptions import ClientError

from amazon_pilot.platform.system import QUEUE_FAILED
from pilot_dev.runtime.stack import PLAINTEXT_SETTINGS, Stack
from tests.integration.sellers import auth, new_seller

pytestmark = pytest.mark.usefixtures("stack")


@pytest.fixture()
def enforced(stack: Stack) -> Stack:
    if stack.iam is None:
        pytest.skip("IAM is enforced on the embedded moto endpoint only")
    return stack


def _as_function(stack: Stack, logical_id: str, service: str) -> Any:
    """A client with the function's own credentials, as its code gets them."""
    env = stack.environments[logical_id]
    return boto3.session.Session(
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=env.get("AWS_SESSION_TOKEN"),
    ).client(service, region_name=stack.config.region, endpoint_url=stack.endpoint_url)


def _denied(error: ClientError) -> bool:
    # moto answers SQS's JSON protocol with an XML error body: botocore then reports
    # the status as the code, with the XML (naming AccessDenied) in the message
    return (error.response["ResponseMetadata"]["HTTPStatusCode"] in (400, 403)
            and "AccessDenied" in str(error))


def test_no_function_sees_a_plaintext_setting_or_the_process_credentials(stack: Stack) -> None:
    assert stack.host is not None
    for logical_id in stack.template.functions:
        view = stack.host.load(logical_id).view
        for name in PLAINTEXT_SETTINGS:
            assert view.get(name) is None, f"{logical_id} sees {name}"
        assert view["DATABASE_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert view["JWT_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
        assert view["APIFY_TOKEN_SECRET_ARN"].startswith("arn:aws:secretsmanager:")
    if stack.iam is not None:
        keys = {stack.host.load(f).view["AWS_ACCESS_KEY_ID"] for f in stack.template.functions}
        assert len(keys) == len(stack.template.functions), "each function is its own identity"


def test_each_function_is_its_own_role(enforced: Stack) -> None:
    for logical_id in ("AuthFunction", "LowWorkerFunction"):
        arn = _as_function(enforced, logical_id, "sts").get_caller_identity()["Arn"]
        assert f":assumed-role/{enforced.iam.role_name(logical_id)}/" in arn


def test_a_function_cannot_use_what_its_role_does_not_grant(enforced: Stack) -> None:
    # the web function may read the database and JWT secrets, nothing else
    web_sqs = _as_function(enforced, "WebFunction", "sqs")
    with pytest.raises(ClientError) as refused:
        web_sqs.send_message(QueueUrl=enforced.queue_urls["CriticalQueue"], MessageBody="{}")
    assert _denied(refused.value)
    web_secrets = _as_function(enforced, "WebFunction", "secretsmanager")
    apify = enforced.ctx.parameters["ApifyTokenSecretArn"]
    with pytest.raises(ClientError) as refused:
        web_secrets.get_secret_value(SecretId=apify)
    assert _denied(refused.value)
    # ... while the worker that fetches may read that one
    worker = _as_function(enforced, "CriticalWorkerFunction", "secretsmanager")
    assert worker.get_secret_value(SecretId=apify)["SecretString"]


@pytest.fixture()
def system_without_queue_grant(enforced: Stack) -> Iterator[None]:
    """The system role with its queue-depth statement removed, put back afterwards."""
    iam = enforced.client("iam")
    role = enforced.iam.role_name("SystemFunction")
    removed: dict[str, str] = {}
    for name in iam.list_role_policies(RoleName=role)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        if "sqs:GetQueueAttributes" in text:
            removed[name] = text
            iam.delete_role_policy(RoleName=role, PolicyName=name)
    assert removed, "the system role has no queue grant to remove"
    yield
    for name, text in removed.items():
        iam.put_role_policy(RoleName=role, PolicyName=name, PolicyDocument=text)


@pytest.fixture(scope="module")
def admin(api: httpx.Client) -> dict[str, str]:
    """The detailed health check is for administrators (a two-factor session)."""
    return auth(new_seller(api, role="admin"))


def test_health_is_ok_with_the_template_grants(api: httpx.Client,
                                               admin: dict[str, str]) -> None:
    response = api.get("/v1/health/details", headers=admin)
    assert response.status_code == 200, response.text
    assert all(check["ok"] for check in response.json()["checks"].values())


def test_a_removed_grant_is_refused_by_the_endpoint(api: httpx.Client, admin: dict[str, str],
                                                    system_without_queue_grant: None) -> None:
    response = api.get("/v1/health/details", headers=admin)
    assert response.status_code == 503, response.text
    checks = response.json()["checks"]
    assert checks["database"]["ok"]  # the secret grant is still there
    queue_checks = [c for name, c in checks.items() if name.startswith("queue:")]
    # moto refused GetQueueAttributes (403); the answer says so in fixed words only
    assert len(queue_checks) == 3
    assert all(not c["ok"] and c["error"] == QUEUE_FAILED for c in queue_checks), queue_checks


def test_the_grant_put_back_works_again(api: httpx.Client, admin: dict[str, str]) -> None:
    assert api.get("/v1/health/details", headers=admin).status_code == 200


def test_a_job_on_a_queue_that_does_not_run_it_is_dead_lettered(stack: Stack) -> None:
    """Each worker's role covers its own queue's jobs only (platform/jobs.py QUEUES), so
    a job sent to another queue ends in that queue's DLQ, with the reason, untried."""
    from tests.integration.test_runtime import _dlq_messages, wait_for

    key = f"wrong-queue-{time.time_ns()}"
    body = json.dumps({"type": "generate_suggestions", "key": key, "payload": {}})
    stack.client("sqs").send_message(QueueUrl=stack.queue_urls["CriticalQueue"],
                                     MessageBody=body)

    def dead() -> str | None:
        for message in _dlq_messages(stack, "CriticalDLQ"):
            if json.loads(message["Body"]).get("key") == key:
                return str(message["MessageAttributes"]["failure_reason"]["StringValue"])
        return None

    reason = wait_for(dead, 30, "the misrouted job in the critical DLQ")
    assert "generate_suggestions is not run from the critical queue" in reason
    assert "low" in reason


def test_the_queue_is_polled_as_the_consumer_role(enforced: Stack) -> None:
    """Lambda's event source mapping receives and deletes with the function's role (the
    AWSLambdaSQSQueueExecutionRole policy SAM attaches): without it, nothing is taken."""
    from tests.integration.test_runtime import wait_for

    iam = enforced.client("iam")
    role = enforced.iam.role_name("LowWorkerFunction")
    attached = [p["PolicyArn"] for p in
                iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
                if p["PolicyName"].endswith("AWSLambdaSQSQueueExecutionRole")]
    assert attached, "SAM's SQS execution policy is attached to the consumer's role"
    sqs = enforced.client("sqs")
    url = enforced.queue_urls["LowQueue"]

    def waiting() -> int:
        attributes = sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages",
                                          "ApproximateNumberOfMessagesNotVisible"])
        return sum(int(v) for v in attributes["Attributes"].values())

    iam.detach_role_policy(RoleName=role, PolicyArn=attached[0])
    try:
        time.sleep(enforced.config.poll_wait_s + 1)  # polls already let in have ended
        key = f"polled-as-role-{time.time_ns()}"
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps(
            {"type": "noop", "key": key, "payload": {}}))
        time.sleep(3)  # several polls, each refused
        assert waiting() >= 1
    finally:
        iam.attach_role_policy(RoleName=role, PolicyArn=attached[0])
    wait_for(lambda: waiting() == 0, 30, "the poller to take the message once allowed")
