"""Test sellers: real accounts created in the database, signed in through the API."""

from __future__ import annotations

import uuid

import httpx


def new_seller(api: httpx.Client, plan: str = "enterprise", role: str = "seller") -> dict[str, str]:
    """Create an account and sign in; returns {"id", "email", "Authorization"} headers."""
    from amazon_pilot.accounts.service import create_user

    email = f"seller-{uuid.uuid4().hex[:10]}@example.com"
    password = "Tracking-pass-2026"
    user = create_user(email, password, role=role, plan=plan)
    response = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    return {"id": str(user.id), "email": email, "Authorization": f"Bearer {token}"}


def auth(seller: dict[str, str]) -> dict[str, str]:
    return {"Authorization": seller["Authorization"]}
