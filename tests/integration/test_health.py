"""GET /v1/health (public up/down) and GET /v1/health/details (administrators), through
the running local stack."""

from __future__ import annotations

import uuid

import httpx

from amazon_pilot.accounts.service import create_user
from tests.integration.sellers import enrol_mfa

PASSWORD = "Health-pass-2026!"


def token(api: httpx.Client, role: str) -> dict[str, str]:
    email = f"health-{role}-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email, PASSWORD, role=role)
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    if role == "admin":  # admin routes need a two-factor session
        access = enrol_mfa(api, access)[1]["tokens"]["access_token"]
    return {"Authorization": f"Bearer {access}"}


def test_the_public_probe_says_only_up_or_down(api: httpx.Client) -> None:
    response = api.get("/v1/health", headers=token(api, "admin"))  # a token adds nothing
    assert response.status_code == 200
    assert response.json() == {"status": "up"}
    assert "x-ratelimit-limit" not in response.headers


def test_details_are_for_administrators_only(api: httpx.Client) -> None:
    anonymous = api.get("/v1/health/details")
    assert anonymous.status_code == 401, anonymous.text
    seller = api.get("/v1/health/details", headers=token(api, "seller"))
    assert seller.status_code == 403, seller.text
    assert seller.json()["error"]["code"] == "FORBIDDEN"
    admin = api.get("/v1/health/details", headers=token(api, "admin"))
    assert admin.status_code == 200, admin.text
    body = admin.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["ok"] is True
    assert body["checks"]["database"]["detail"]["schema_version"]
    for priority in ("critical", "default", "low"):
        check = body["checks"][f"queue:{priority}"]
        assert check["ok"] is True and check["detail"]["depth"] >= 0
