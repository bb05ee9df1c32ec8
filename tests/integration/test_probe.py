"""The outside probe (platform/probe.py) against the running local stack: it signs in as
the probe user through the public URL and reads a product, and says which step failed
when it cannot; the probe function runs in the stack as the template declares it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amazon_pilot.platform.observability import lambda_entry, make_logger, make_metrics, make_tracer
from amazon_pilot.platform.probe import probe, run_probe
from amazon_pilot.platform.settings import environment_view, reset_settings
from pilot_dev.runtime.invoker import LambdaContext
from pilot_dev.runtime.stack import Stack
from pilot_dev.standins.apify_catalog import demo_asins
from tests.integration.sellers import PASSWORD, auth, new_seller


@pytest.fixture(scope="module")
def probe_user(api: httpx.Client) -> dict[str, str]:
    """A seller tracking one product: what the probe user is in a deployed stage."""
    seller = new_seller(api, plan="free")
    asin = demo_asins("headphones", 60)[57]  # tracked by no other test (test_tracking: [0])
    response = api.post("/v1/products", json={"url": f"https://www.amazon.com/dp/{asin}"},
                        headers=auth(seller))
    assert response.status_code == 202, response.text
    return {**seller, "product_id": response.json()["id"]}


def test_the_probe_signs_in_and_reads_the_product(stack: Stack,
                                                  probe_user: dict[str, str]) -> None:
    result = probe(stack.url, probe_user["email"], PASSWORD)
    assert result.ok, result
    assert result.step == "done" and result.product_id == probe_user["product_id"]
    assert result.latency_ms > 0


def test_the_probe_signs_out_after_itself(stack: Stack, api: httpx.Client,
                                          probe_user: dict[str, str]) -> None:
    before = api.get("/v1/auth/sessions", headers=auth(probe_user)).json()
    for _ in range(3):
        assert probe(stack.url, probe_user["email"], PASSWORD).ok
    after = api.get("/v1/auth/sessions", headers=auth(probe_user)).json()
    assert len(after) == len(before)  # no session per run piling up


def test_a_probe_user_who_cannot_sign_in_fails_at_sign_in(stack: Stack,
                                                          probe_user: dict[str, str]) -> None:
    result = probe(stack.url, probe_user["email"], "not-the-password-2026!")
    assert not result.ok
    assert (result.step, result.status_code) == ("sign_in", 401)
    assert result.error and "401" in result.error


def test_a_probe_user_without_products_fails_at_the_product_list(
        stack: Stack, api: httpx.Client) -> None:
    empty = new_seller(api, plan="free")
    result = probe(stack.url, empty["email"], PASSWORD)
    assert (result.ok, result.step) == (False, "list_products")
    assert "tracks no product" in (result.error or "")


def test_an_unreachable_url_fails_at_connect() -> None:
    result = probe("http://127.0.0.1:9", "someone@example.com", PASSWORD, timeout_s=2)
    assert (result.ok, result.step) == (False, "connect")


@pytest.fixture()
def probe_secret(stack: Stack, open_aws: None) -> Iterator[Any]:
    """Make the probe user's secret (as the operator would) and return a function that
    runs one scheduled probe with it, as the probe function does."""
    client = stack.client("secretsmanager")
    made: list[str] = []

    def run(email: str, password: str) -> dict[str, Any]:
        name = f"{stack.config.stack_name}/probe-{uuid.uuid4().hex[:8]}"
        arn = client.create_secret(Name=name, SecretString=json.dumps(
            {"email": email, "password": password}))["ARN"]
        made.append(arn)
        env = {**os.environ, "PROBE_API_URL": stack.url, "PROBE_SECRET_ARN": arn}
        entry = lambda_entry(make_logger("probe"), make_metrics("probe"), make_tracer("probe"))
        with environment_view(env):
            handler = entry(lambda event, context: run_probe())
            return dict(handler({}, LambdaContext("probe", 256, 60)))

    yield run
    for arn in made:
        client.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    reset_settings()


def _probe_success_values(out: str) -> list[float]:
    values: list[float] = []
    for line in out.splitlines():
        if line.startswith("{") and '"ProbeSuccess"' in line and "_aws" in line:
            values += json.loads(line)["ProbeSuccess"]
    return values


def test_a_scheduled_run_reads_its_secret_and_records_success(
        probe_secret: Any, probe_user: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    result = probe_secret(probe_user["email"], PASSWORD)
    assert result["ok"] is True and result["step"] == "done", result
    assert _probe_success_values(capsys.readouterr().out) == [1.0]


def test_a_scheduled_run_that_cannot_sign_in_records_failure(
        probe_secret: Any, probe_user: dict[str, str],
        capsys: pytest.CaptureFixture[str]) -> None:
    result = probe_secret(probe_user["email"], "wrong-password-2026!")
    assert (result["ok"], result["step"]) == (False, "sign_in"), result
    assert _probe_success_values(capsys.readouterr().out) == [0.0]


def test_the_probe_function_runs_in_the_stack_and_reports_it_is_not_configured(
        stack: Stack) -> None:
    """`pilot run` loads the new function from the template like any other; without
    ProbeSecretArn (the default) it checks nothing and says so, rather than failing
    every five minutes."""
    assert stack.host is not None
    result = stack.host.invoke("ProbeFunction", {"job": "probe"})
    assert result == {"ok": None, "step": "not_configured"}
