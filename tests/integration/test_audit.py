"""GET /v1/admin/audit through the running local stack: admins read the security events
that sign-ins and admin actions wrote, filtered and paged; nobody else reads anything."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from amazon_pilot.accounts.service import create_user
from tests.integration.sellers import enrol_mfa

PASSWORD = "Audit-pass-2026!"


def login(api: httpx.Client, role: str) -> dict[str, Any]:
    email = f"audit-{role}-{uuid.uuid4().hex[:8]}@example.com"
    user = create_user(email, PASSWORD, role=role)
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    access = response.json()["access_token"]
    if role == "admin":  # admin routes need a two-factor session
        access = enrol_mfa(api, access)[1]["tokens"]["access_token"]
    return {"id": str(user.id), "email": email,
            "headers": {"Authorization": f"Bearer {access}"}}


def read(api: httpx.Client, admin: dict[str, Any], **params: Any) -> httpx.Response:
    return api.get("/v1/admin/audit", params=params, headers=admin["headers"])


def test_only_administrators_read_the_audit_log(api: httpx.Client) -> None:
    assert api.get("/v1/admin/audit").status_code == 401
    seller = login(api, "seller")
    refused = api.get("/v1/admin/audit", headers=seller["headers"])
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "FORBIDDEN"


def test_security_events_filtered_and_paged(api: httpx.Client) -> None:
    admin = login(api, "admin")
    seller = login(api, "seller")
    wrong = api.post("/v1/auth/login", json={"email": seller["email"], "password": "Nope-1234!"})
    assert wrong.status_code == 401
    api.patch(f"/v1/admin/users/{seller['id']}", json={"plan": "pro"},
              headers=admin["headers"]).raise_for_status()

    about_seller = read(api, admin, user_id=seller["id"]).json()["items"]
    actions = [e["action"] for e in about_seller]
    assert "auth.login" in actions and "auth.login_failed" in actions
    assert any(e["actor_id"] == admin["id"] for e in about_seller)  # the admin's change
    assert [e["id"] for e in about_seller] == sorted((e["id"] for e in about_seller),
                                                    reverse=True)
    logins = read(api, admin, user_id=seller["id"], action="auth.login").json()["items"]
    assert [e["action"] for e in logins] == ["auth.login"]
    assert logins[0]["ip"] == "127.0.0.1"

    # pages of one, by cursor, until the end: every event once, newest first
    seen: list[int] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"user_id": seller["id"], "action_prefix": "auth.",
                                  "limit": 1}
        if cursor:
            params["cursor"] = cursor
        page = read(api, admin, **params).json()
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    expected = [e["id"] for e in about_seller if e["action"].startswith("auth.")]
    assert seen == expected and len(seen) >= 2

    now = datetime.now(UTC)
    later = read(api, admin, user_id=seller["id"], since=(now + timedelta(hours=1)).isoformat())
    assert later.json()["items"] == []
    # the prefix is a prefix, not a pattern
    assert read(api, admin, action_prefix="%").json()["items"] == []

    # who read the log is in the log
    reads = read(api, admin, actor_id=admin["id"], action="admin.audit_read").json()["items"]
    assert len(reads) >= 5 and reads[0]["details"]["filters"]


def test_malformed_filters_are_422(api: httpx.Client) -> None:
    admin = login(api, "admin")
    for params in ({"cursor": "abc"}, {"limit": 0}, {"limit": 500}, {"user_id": "x"},
                   {"since": "2026-01-02T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
                   {"since": "yesterday"}):
        response = read(api, admin, **params)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == "VALIDATION_ERROR"
