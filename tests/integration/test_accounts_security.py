"""Accounts security over HTTP against the local stack: sessions that end at once, two-step
sign-in with real TOTP codes (pyotp), registration limited per address, and the
operators' create-admin (service, CLI, the auth function's operator task)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import jwt
import pyotp
import pytest
from sqlalchemy import text

from amazon_pilot.accounts import service
from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import enrol_mfa, login_with_mfa, totp_now

PASSWORD = "Sessions-end-2026"


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _login(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _account(role: str = "seller") -> str:
    email = _email(role)
    service.create_user(email, PASSWORD, role=role)
    return email


def _error(response: httpx.Response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] == code, response.text
    return str(response.json()["error"]["message"])


def _actions(email: str) -> list[str]:
    with get_engine().connect() as conn:
        return list(conn.execute(text(
            "SELECT action FROM audit_log WHERE user_id = (SELECT id FROM users"
            " WHERE email = :e) ORDER BY id"), {"e": email}).scalars())


# ------------------------------------------------------------------ sessions end at once


def test_logout_ends_that_sessions_access_token_at_once_and_only_that_one(
        api: httpx.Client) -> None:
    email = _account()
    laptop, phone = _login(api, email), _login(api, email)
    assert api.get("/v1/auth/me", headers=_bearer(laptop["access_token"])).status_code == 200
    assert api.post("/v1/auth/logout",
                    json={"refresh_token": laptop["refresh_token"]}).status_code == 204
    message = _error(api.get("/v1/auth/me", headers=_bearer(laptop["access_token"])), 401,
                     "UNAUTHORIZED")
    assert "session has ended" in message
    assert api.get("/v1/auth/me", headers=_bearer(phone["access_token"])).status_code == 200
    # "all sessions": the phone's access token too, at once
    assert api.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"],
                                             "all_sessions": True}).status_code == 204
    _error(api.get("/v1/auth/me", headers=_bearer(phone["access_token"])), 401, "UNAUTHORIZED")
    assert _actions(email).count("auth.session_revoked") == 2


def test_a_reused_refresh_token_kills_its_sessions_access_tokens(api: httpx.Client) -> None:
    email = _account()
    first = _login(api, email)
    other = _login(api, email)
    rotated = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert api.get("/v1/auth/me", headers=_bearer(rotated["access_token"])).status_code == 200
    replay = api.post("/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert "already used" in _error(replay, 401, "UNAUTHORIZED")
    for token in (first["access_token"], rotated["access_token"]):
        _error(api.get("/v1/auth/me", headers=_bearer(token)), 401, "UNAUTHORIZED")
    assert api.get("/v1/auth/me", headers=_bearer(other["access_token"])).status_code == 200
    assert "auth.refresh_reuse" in _actions(email)


def test_ending_a_session_from_the_list_ends_its_access_token(api: httpx.Client) -> None:
    email = _account()
    keep, end = _login(api, email), _login(api, email)
    sid = jwt.decode(end["access_token"], options={"verify_signature": False})["sid"]
    listed = api.get("/v1/auth/sessions", headers=_bearer(keep["access_token"])).json()
    assert sid in {s["id"] for s in listed}
    assert api.delete(f"/v1/auth/sessions/{sid}",
                      headers=_bearer(keep["access_token"])).status_code == 204
    _error(api.get("/v1/auth/me", headers=_bearer(end["access_token"])), 401, "UNAUTHORIZED")
    assert api.get("/v1/auth/me", headers=_bearer(keep["access_token"])).status_code == 200


# ------------------------------------------------------------------ two-step sign-in


def test_mfa_enrol_sign_in_replay_recovery_and_disable(api: httpx.Client) -> None:
    email = _account()
    session = _login(api, email)
    auth = _bearer(session["access_token"])
    assert api.get("/v1/auth/mfa", headers=auth).json() == {
        "enabled": False, "pending": False, "recovery_codes_left": 0, "required": False}
    started = api.post("/v1/auth/mfa/enrol", headers=auth).json()
    secret = started["secret"]
    assert pyotp.parse_uri(started["otpauth_uri"]).secret == secret
    assert started["qr_svg_data_uri"].startswith("data:image/svg+xml")
    with get_engine().connect() as conn:  # the seed is sealed at rest, not stored as is
        stored = conn.execute(text("SELECT m.secret FROM user_mfa m JOIN users u"
                                   " ON u.id = m.user_id WHERE u.email = :e"),
                              {"e": email}).scalar_one()
    assert stored.startswith("enc:v1:") and secret not in stored
    wrong = "000000" if totp_now(secret) != "000000" else "111111"
    _error(api.post("/v1/auth/mfa/confirm", headers=auth, json={"code": wrong}), 422,
           "VALIDATION_ERROR")
    assert api.get("/v1/auth/mfa", headers=auth).json()["pending"] is True
    confirmed = api.post("/v1/auth/mfa/confirm", headers=auth,
                         json={"code": totp_now(secret)}).json()
    codes = confirmed["recovery_codes"]
    assert len(codes) == 10
    # the enrolling session was replaced by a two-factor one
    _error(api.get("/v1/auth/me", headers=auth), 401, "UNAUTHORIZED")
    two_factor = _bearer(confirmed["tokens"]["access_token"])
    assert jwt.decode(confirmed["tokens"]["access_token"],
                      options={"verify_signature": False})["mfa"] is True
    me = api.get("/v1/auth/me", headers=two_factor).json()
    assert me["mfa_enabled"] is True
    _error(api.post("/v1/auth/mfa/enrol", headers=two_factor), 409, "CONFLICT")

    # sign-in now takes two steps; the challenge token is no access token
    challenge = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    assert challenge["mfa_required"] is True and "access_token" not in challenge
    assert "not an access token" in _error(
        api.get("/v1/auth/me", headers=_bearer(challenge["mfa_token"])), 401, "UNAUTHORIZED")
    _error(api.post("/v1/auth/login/mfa", json={"mfa_token": challenge["mfa_token"],
                                                "code": wrong}), 401, "UNAUTHORIZED")
    used = None
    for offset in (0, 1):  # this step's code was spent by the enrolment
        code = totp_now(secret, offset_steps=offset)
        answer = api.post("/v1/auth/login/mfa", json={"mfa_token": challenge["mfa_token"],
                                                      "code": code})
        if answer.status_code == 200:
            used = code
            break
    assert used is not None
    # the same code again (a fresh challenge): refused, a code works once
    again = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    _error(api.post("/v1/auth/login/mfa", json={"mfa_token": again["mfa_token"], "code": used}),
           401, "UNAUTHORIZED")
    # a recovery code, once
    by_recovery = api.post("/v1/auth/login/mfa", json={"mfa_token": again["mfa_token"],
                                                       "recovery_code": codes[0].upper()})
    assert by_recovery.status_code == 200, by_recovery.text
    third = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    _error(api.post("/v1/auth/login/mfa", json={"mfa_token": third["mfa_token"],
                                                "recovery_code": codes[0]}), 401,
           "UNAUTHORIZED")
    assert api.get("/v1/auth/mfa", headers=two_factor).json()["recovery_codes_left"] == 9

    # turning it off needs the password and a code; it ends every other session
    _error(api.post("/v1/auth/mfa/disable", headers=two_factor,
                    json={"password": "Not-the-password-1", "code": codes[1]}),
           422, "VALIDATION_ERROR")
    _error(api.post("/v1/auth/mfa/disable", headers=two_factor,
                    json={"password": PASSWORD, "code": wrong}), 422, "VALIDATION_ERROR")
    off = api.post("/v1/auth/mfa/disable", headers=two_factor,
                   json={"password": PASSWORD, "code": codes[1]})
    assert off.status_code == 200, off.text
    _error(api.get("/v1/auth/me", headers=two_factor), 401, "UNAUTHORIZED")
    _error(api.get("/v1/auth/me", headers=_bearer(by_recovery.json()["access_token"])), 401,
           "UNAUTHORIZED")
    assert api.get("/v1/auth/me", headers=_bearer(off.json()["access_token"])).json()[
        "mfa_enabled"] is False
    assert "access_token" in _login(api, email)  # one step again
    actions = _actions(email)
    for action in ("auth.mfa_enabled", "auth.mfa_failed", "auth.mfa_recovery_code_used",
                   "auth.mfa_disabled", "auth.login"):
        assert action in actions, action
    with get_engine().connect() as conn:
        stored = conn.execute(text("SELECT count(*) FROM mfa_recovery_codes r JOIN users u"
                                   " ON u.id = r.user_id WHERE u.email = :e"),
                              {"e": email}).scalar_one()
    assert stored == 0  # gone with the factor


def test_wrong_codes_are_limited_per_challenge(api: httpx.Client) -> None:
    email = _account()
    secret, _ = enrol_mfa(api, _login(api, email)["access_token"])
    challenge = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    valid = {totp_now(secret, offset_steps=o) for o in (-1, 0, 1)}
    wrong = [c for c in (f"{n:06d}" for n in range(100)) if c not in valid][:6]
    statuses = [api.post("/v1/auth/login/mfa", json={"mfa_token": challenge["mfa_token"],
                                                     "code": c}).status_code for c in wrong]
    assert statuses == [401] * 5 + [429]
    # even the right code is refused on a challenge that was guessed at
    right = api.post("/v1/auth/login/mfa", json={"mfa_token": challenge["mfa_token"],
                                                 "code": totp_now(secret, offset_steps=1)})
    _error(right, 429, "RATE_LIMITED")
    assert "auth.mfa_throttled" in _actions(email)
    assert _actions(email).count("auth.mfa_failed_notice") == 1  # the owner is told


def test_admins_must_enrol_before_admin_routes(api: httpx.Client) -> None:
    email = _account("admin")
    password_only = _login(api, email)
    refused = api.get("/v1/admin/users", headers=_bearer(password_only["access_token"]))
    assert "second factor" in _error(refused, 403, "MFA_REQUIRED")
    assert api.get("/v1/auth/mfa", headers=_bearer(password_only["access_token"])).json()[
        "required"] is True
    secret, confirmed = enrol_mfa(api, password_only["access_token"])
    ok = api.get("/v1/admin/users", headers=_bearer(confirmed["tokens"]["access_token"]))
    assert ok.status_code == 200, ok.text
    # a refreshed two-factor session stays two-factor; a new sign-in needs the code
    refreshed = api.post("/v1/auth/refresh",
                         json={"refresh_token": confirmed["tokens"]["refresh_token"]}).json()
    assert api.get("/v1/admin/users",
                   headers=_bearer(refreshed["access_token"])).status_code == 200
    signed_in = login_with_mfa(api, email, PASSWORD, secret)
    assert api.get("/v1/admin/users",
                   headers=_bearer(signed_in["access_token"])).status_code == 200


# ------------------------------------------------------------------ registration


def test_registration_is_limited_per_address(
        stack: Stack, from_address: Callable[[str], httpx.Client],
        monkeypatch: pytest.MonkeyPatch) -> None:
    from amazon_pilot.platform.settings import reset_settings

    # the stack's own value (tests/conftest.py) is in the function's environment
    monkeypatch.setitem(stack.host.environments["AuthFunction"], "REGISTER_PER_IP", "3")
    reset_settings()
    crowd = from_address("127.0.0.3")
    statuses = [crowd.post("/v1/auth/register",
                           json={"email": _email("bulk"), "password": PASSWORD}).status_code
                for _ in range(5)]
    assert statuses == [202, 202, 202, 429, 429]
    refused = crowd.post("/v1/auth/register", json={"email": _email("bulk"),
                                                   "password": PASSWORD})
    assert int(refused.headers["retry-after"]) > 0
    other = from_address("127.0.0.4")
    assert other.post("/v1/auth/register", json={"email": _email("other"),
                                                 "password": PASSWORD}).status_code == 202
    monkeypatch.undo()
    reset_settings()


# ------------------------------------------------------------------ create-admin


def test_create_admin_creates_promotes_and_says_so(stack: Stack) -> None:
    new_email = _email("first-admin")
    created = service.create_admin(new_email)
    assert created.outcome == "created" and created.user.role == "admin"
    assert created.generated_password and len(created.generated_password) >= 20
    again = service.create_admin(new_email)
    assert (again.outcome, again.generated_password) == ("already_admin", None)
    seller = _account()
    promoted = service.create_admin(seller)
    assert (promoted.outcome, promoted.user.role) == ("promoted", "admin")
    assert "admin.created" in _actions(seller) and "admin.created" in _actions(new_email)
    with pytest.raises(service.ValidationFailed):
        service.create_admin("not-an-email")


def test_pilot_create_admin_cli(database_url: str, api: httpx.Client) -> None:
    email = _email("cli-admin")
    env = {**os.environ, "DATABASE_URL": database_url}
    done = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "create-admin", email,
                           "--generate-password"], env=env, capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert f"created administrator {email}" in done.stdout
    password = done.stdout.split("generated password")[1].split(": ", 1)[1].split()[0]
    assert "access_token" in _login(api, email, password)  # the printed password works
    given = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "create-admin",
                            _email("cli-given"), "--password-stdin"], env=env,
                           input="Given-pass-2026\n", capture_output=True, text=True,
                           timeout=120, check=False)
    assert given.returncode == 0 and "generated" not in given.stdout, given.stderr
    promoted = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "create-admin", email],
                              env=env, capture_output=True, text=True, timeout=120, check=False)
    assert "administrator already" in promoted.stdout
    bad = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "create-admin", "nope",
                          "--generate-password"], env=env, capture_output=True, text=True,
                         timeout=120, check=False)
    assert bad.returncode == 2 and "email" in bad.stderr


def test_operator_task_of_the_auth_function(stack: Stack, api: httpx.Client) -> None:
    email = _email("lambda-admin")
    answer = stack.host.invoke("AuthFunction", {"operator_task": "create-admin",
                                                "email": email})
    assert answer["ok"] is True and answer["outcome"] == "created", answer
    assert "access_token" in _login(api, email, answer["generated_password"])
    unknown = stack.host.invoke("AuthFunction", {"operator_task": "drop-tables"})
    assert unknown["ok"] is False and "unknown operator_task" in unknown["error"]
    # the API never reaches it: a body with the key is just a bad request body
    response = api.post("/v1/auth/register", json={"operator_task": "create-admin",
                                                   "email": email})
    assert response.status_code == 422
