"""Test sellers: real accounts created in the database, signed in through the API.

Administrators sign in the way the API demands of them: password, then an authenticator
code (pyotp computes it from the secret the enrolment handed out).
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import httpx

PASSWORD = "Tracking-pass-2026"


def new_seller(api: httpx.Client, plan: str = "enterprise", role: str = "seller") -> dict[str, str]:
    """Create an account and sign in; returns {"id", "email", "Authorization"} headers.
    An admin is enrolled in MFA first (admin routes refuse a password-only session);
    its TOTP secret is under "mfa_secret"."""
    from amazon_pilot.accounts.service import create_user

    email = f"seller-{uuid.uuid4().hex[:10]}@example.com"
    user = create_user(email, PASSWORD, role=role, plan=plan)
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    seller = {"id": str(user.id), "email": email, "Authorization": f"Bearer {token}"}
    if role == "admin":
        secret, confirmed = enrol_mfa(api, token)
        seller["Authorization"] = f"Bearer {confirmed['tokens']['access_token']}"
        seller["mfa_secret"] = secret
    return seller


def auth(seller: dict[str, str]) -> dict[str, str]:
    return {"Authorization": seller["Authorization"]}


def totp_now(secret: str, *, offset_steps: int = 0) -> str:
    import pyotp

    return str(pyotp.TOTP(secret).at(int(time.time()) + 30 * offset_steps))


def enrol_mfa(api: httpx.Client, access_token: str) -> tuple[str, dict[str, Any]]:
    """Enrol an authenticator through the API; (secret, the confirm answer)."""
    headers = {"Authorization": f"Bearer {access_token}"}
    started = api.post("/v1/auth/mfa/enrol", headers=headers)
    assert started.status_code == 200, started.text
    secret = str(started.json()["secret"])
    confirmed = api.post("/v1/auth/mfa/confirm", headers=headers,
                         json={"code": totp_now(secret)})
    assert confirmed.status_code == 200, confirmed.text
    return secret, dict(confirmed.json())


def login_with_mfa(api: httpx.Client, email: str, password: str,
                   secret: str) -> dict[str, Any]:
    """Both steps. A code is accepted once: when this step's code was used already (by
    an enrolment or a sign-in moments ago), the next step's, also in the window, is."""
    first = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert first.status_code == 200 and first.json().get("mfa_required"), first.text
    for offset in (0, 1):
        second = api.post("/v1/auth/login/mfa",
                          json={"mfa_token": first.json()["mfa_token"],
                                "code": totp_now(secret, offset_steps=offset)})
        if second.status_code == 200:
            return dict(second.json())
    raise AssertionError(f"second step refused: {second.text}")
