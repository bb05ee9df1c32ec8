"""The smoke suite's HTTP-only part: what a user of any deployment sees first. The same
code runs against the local stack (`pytest -m smoke`, `make smoke-from-build`) and, with
PILOT_SMOKE_URL, against a deployed stage (the pipeline runs it after deploying staging;
docs/deploy.md, "Pipeline"). Only the public API: no database, queue or stand-in."""

from __future__ import annotations

import uuid

import httpx
import pytest

pytestmark = [pytest.mark.smoke, pytest.mark.stage]
PASSWORD = "smoke test passphrase 42"


def _error(response: httpx.Response, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text
    body = response.json()["error"]
    assert body["code"] == code and body["message"] and body["request_id"]
    return dict(body)


def test_the_service_says_it_is_up(api: httpx.Client) -> None:
    response = api.get("/v1/health")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "up"}
    assert len(response.headers["x-request-id"]) >= 16


def test_a_new_seller_signs_up_signs_in_and_out(api: httpx.Client) -> None:
    email = f"smoke-{uuid.uuid4().hex[:12]}@example.com"
    registered = api.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    assert registered.status_code == 202, registered.text
    login = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert login.status_code == 200, login.text
    tokens = login.json()
    bearer = {"Authorization": f"Bearer {tokens['access_token']}"}
    me = api.get("/v1/auth/me", headers=bearer)
    assert me.status_code == 200 and me.json()["email"] == email

    products = api.get("/v1/products", headers=bearer)
    assert products.status_code == 200, products.text
    _error(api.get(f"/v1/products/{uuid.uuid4()}", headers=bearer), 404, "NOT_FOUND")
    _error(api.get("/v1/products"), 401, "UNAUTHORIZED")

    out = api.post("/v1/auth/logout", json={"refresh_token": tokens["refresh_token"]})
    assert out.status_code == 204
    again = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    _error(again, 401, "UNAUTHORIZED")


def test_the_api_docs_are_served(api: httpx.Client) -> None:
    spec = api.get("/v1/openapi.json")
    assert spec.status_code == 200 and "/v1/auth/login" in spec.json()["paths"]
    assert api.get("/v1/docs").status_code == 200
