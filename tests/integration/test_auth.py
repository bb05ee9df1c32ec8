"""Accounts, tokens, roles, ownership and rate limits, over HTTP against the local stack."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import jwt
import pytest
from sqlalchemy import text

from amazon_pilot.accounts.service import create_user
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.db import get_engine
from pilot_dev.runtime.stack import Stack
from tests.integration.sellers import enrol_mfa

PASSWORD = "correct horse 42"


def _email(tag: str = "u") -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@Example.COM"


def _login(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, Any]:
    response = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _error(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["request_id"] == response.headers["x-request-id"]
    assert "Traceback" not in response.text and "SELECT" not in response.text
    return dict(error)


def _audit(user_id: str, action: str) -> list[dict[str, Any]]:
    with get_engine().connect() as conn:
        rows = conn.execute(text("SELECT action, actor_id, target, details FROM audit_log"
                                 " WHERE user_id = :u AND action = :a ORDER BY id"),
                            {"u": user_id, "a": action}).all()
    return [dict(r._mapping) for r in rows]


@pytest.fixture(scope="module")
def signing_key(stack: Stack) -> str:
    secret = stack.client("secretsmanager").get_secret_value(
        SecretId=f"{stack.config.stack_name}/jwt-signing-key")
    return str(secret["SecretString"])


@pytest.fixture(scope="module")
def admin(stack: Stack) -> dict[str, Any]:
    email = _email("admin")
    user = create_user(email, PASSWORD, role="admin")
    return {"user": user, "email": email}


@pytest.fixture(scope="module")
def admin_token(api: httpx.Client, admin: dict[str, Any]) -> str:
    """An administrator's two-factor session (admin routes refuse a password-only one)."""
    _, confirmed = enrol_mfa(api, str(_login(api, admin["email"])["access_token"]))
    return str(confirmed["tokens"]["access_token"])


def _seller(api: httpx.Client, **extra: Any) -> dict[str, Any]:
    email = _email("seller")
    response = api.post("/v1/auth/register", json={"email": email, "password": PASSWORD, **extra})
    assert response.status_code == 202, response.text
    tokens = _login(api, email)
    # the id from the token, not GET /me: that would count against the user's rate limit
    claims = jwt.decode(tokens["access_token"], options={"verify_signature": False})
    return {"user": {"id": claims["sub"], "email": email.lower()}, "email": email, **tokens}


# ------------------------------------------------------------------ register / login cycle


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_register_login_refresh_logout_cycle(api: httpx.Client) -> None:
    email = _email("cycle")
    response = api.post("/v1/auth/register",
                        json={"email": f"  {email} ", "password": PASSWORD,
                              "company_name": "Acme"})
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"
    assert response.headers["x-ratelimit-limit"]

    # unique, case-insensitively; the answer does not tell (tests/chaos checks it whole)
    duplicate = api.post("/v1/auth/register", json={"email": email.upper(), "password": PASSWORD})
    assert duplicate.status_code == 202 and duplicate.json() == response.json()

    tokens = _login(api, email.upper())
    user = api.get("/v1/auth/me", headers=_bearer(tokens["access_token"])).json()
    assert user["email"] == email.lower()
    assert (user["plan"], user["role"], user["is_active"]) == ("free", "seller", True)
    assert user["company_name"] == "Acme"
    assert "password" not in response.text and "argon2" not in response.text
    assert _audit(user["id"], "auth.register_existing")

    assert tokens["token_type"] == "bearer" and tokens["expires_in"] == 900
    me = api.get("/v1/auth/me", headers=_bearer(tokens["access_token"]))
    assert me.status_code == 200 and me.json()["id"] == user["id"]
    for header in ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset",
                   "x-request-id", "x-content-type-options", "strict-transport-security"):
        assert header in me.headers

    # refresh rotates: a new pair, and the old refresh token is spent
    refreshed = api.post("/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text
    pair = refreshed.json()
    assert pair["refresh_token"] != tokens["refresh_token"]
    assert api.get("/v1/auth/me", headers=_bearer(pair["access_token"])).status_code == 200

    # logout revokes the session: its refresh token stops working
    out = api.post("/v1/auth/logout", json={"refresh_token": pair["refresh_token"]})
    assert out.status_code == 204
    again = api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert "revoked" in _error(again, 401, "UNAUTHORIZED")["message"]
    assert _audit(user["id"], "auth.login") and _audit(user["id"], "auth.logout")


def test_reusing_a_refresh_token_revokes_its_whole_family(api: httpx.Client) -> None:
    seller = _seller(api)
    first = seller["refresh_token"]
    second = api.post("/v1/auth/refresh", json={"refresh_token": first}).json()["refresh_token"]
    # an attacker replays the spent token: refused, and the family is revoked ...
    replay = api.post("/v1/auth/refresh", json={"refresh_token": first})
    assert "already used" in _error(replay, 401, "UNAUTHORIZED")["message"]
    # ... so the legitimate holder of the newest token is logged out too
    _error(api.post("/v1/auth/refresh", json={"refresh_token": second}), 401, "UNAUTHORIZED")
    # another login (another family) is unaffected
    other = _login(api, seller["email"])
    assert api.post("/v1/auth/refresh",
                    json={"refresh_token": other["refresh_token"]}).status_code == 200
    reuse = _audit(seller["user"]["id"], "auth.refresh_reuse")
    assert len(reuse) == 1


def test_the_browser_session_keeps_its_refresh_token_in_an_httponly_cookie(
    api: httpx.Client, stack: Stack
) -> None:
    seller = _seller(api)
    session = {"x-session-cookie": "1"}
    # a client of its own: the cookie jar is the browser's
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        login = browser.post("/v1/auth/login", headers=session,
                             json={"email": seller["email"], "password": PASSWORD})
        assert login.status_code == 200, login.text
        assert login.json()["refresh_token"] is None  # nothing a script could read
        cookie = login.headers["set-cookie"]
        assert cookie.startswith("ap_refresh=")
        for attribute in ("HttpOnly", "Path=/v1/auth", "SameSite=strict", "Max-Age=2592000"):
            assert attribute.lower() in cookie.lower(), cookie
        assert "secure" not in cookie.lower()  # pilot run speaks HTTP; in AWS it is Secure
        first = browser.cookies["ap_refresh"]

        refreshed = browser.post("/v1/auth/refresh", headers=session, json={})
        assert refreshed.status_code == 200, refreshed.text
        assert refreshed.json()["refresh_token"] is None
        assert browser.cookies["ap_refresh"] != first  # rotated
        access = refreshed.json()["access_token"]
        assert browser.get("/v1/auth/me", headers=_bearer(access)).status_code == 200

        # without the header the cookie is not honoured (a cross-site form cannot add it)
        _error(browser.post("/v1/auth/refresh", json={}), 401, "UNAUTHORIZED")
        _error(browser.post("/v1/auth/logout", json={}), 401, "UNAUTHORIZED")

        out = browser.post("/v1/auth/logout", headers=session, json={})
        assert out.status_code == 204
        assert "max-age=0" in out.headers["set-cookie"].lower()
        assert "ap_refresh" not in browser.cookies
        # the session is over: its last cookie value is refused
        last = {**session, "cookie": f"ap_refresh={refreshed.cookies.get('ap_refresh')}"}
        gone = httpx.post(f"{stack.url}/v1/auth/refresh", headers=last, json={})
        assert "revoked" in _error(gone, 401, "UNAUTHORIZED")["message"]
        assert "max-age=0" in gone.headers["set-cookie"].lower()  # and cleared


def test_register_validates_input(api: httpx.Client) -> None:
    short = api.post("/v1/auth/register", json={"email": _email(), "password": "Ab1"})
    error = _error(short, 422, "VALIDATION_ERROR")
    assert error["details"] == [{"field": "password",
                                 "message": "password must be at least 10 characters long"}]
    one_class = api.post("/v1/auth/register", json={"email": _email(), "password": "abcdefghijkl"})
    assert "two kinds" in _error(one_class, 422, "VALIDATION_ERROR")["message"]
    bad_email = api.post("/v1/auth/register", json={"email": "no-at-sign", "password": PASSWORD})
    assert _error(bad_email, 422, "VALIDATION_ERROR")["details"][0]["field"] == "email"
    # a user cannot choose a plan or a role: unknown fields are refused
    for field, value in (("plan", "enterprise"), ("role", "admin")):
        sneaky = api.post("/v1/auth/register",
                          json={"email": _email(), "password": PASSWORD, field: value})
        assert _error(sneaky, 422, "VALIDATION_ERROR")["details"][0]["field"] == field
    malformed = api.post("/v1/auth/register", content=b'{"email": ',
                         headers={"content-type": "application/json"})
    _error(malformed, 422, "VALIDATION_ERROR")
    nul = api.post("/v1/auth/register", json={"email": _email(), "password": PASSWORD,
                                               "company_name": "Acme\u0000"})
    _error(nul, 422, "VALIDATION_ERROR")
    not_an_object = api.post("/v1/auth/login", json=["a", "b"])
    _error(not_an_object, 422, "VALIDATION_ERROR")


# ------------------------------------------------------------------ bad tokens


def _claims(user_id: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {"sub": user_id, "type": "access", "ver": 0, "iat": now, "exp": now + 600,
              "iss": "amazon-pilot", "aud": "amazon-pilot-api"}
    claims.update(overrides)
    return claims


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_expired_tampered_none_and_wrong_type_tokens_get_401(
    api: httpx.Client, signing_key: str
) -> None:
    seller = _seller(api)
    uid = seller["user"]["id"]
    good = jwt.encode(_claims(uid), signing_key, algorithm="HS256")
    assert api.get("/v1/auth/me", headers=_bearer(good)).status_code == 200

    head, body, sig = seller["access_token"].split(".")
    forged_body = _b64({**json.loads(base64.urlsafe_b64decode(body + "==")), "sub": str(
        uuid.uuid4())})
    cases = {
        "missing": ({}, "Authorization"),
        "not bearer": ({"Authorization": "Basic Zm9vOmJhcg=="}, "Bearer"),
        "garbage": (_bearer("not-a-jwt"), "malformed"),
        "expired": (_bearer(jwt.encode(_claims(uid, iat=int(time.time()) - 3600,
                                                exp=int(time.time()) - 60),
                                        signing_key, algorithm="HS256")), "expired"),
        "wrong key": (_bearer(jwt.encode(_claims(uid), "another-key-" * 4, algorithm="HS256")),
                      "signature"),
        "tampered payload": (_bearer(f"{head}.{forged_body}.{sig}"), "signature"),
        "tampered signature": (_bearer(f"{head}.{body}.{sig[:-4]}AAAA"), "signature"),
        "alg none": (_bearer(f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims(uid))}."),
                     "algorithm"),
        "refresh token as access token": (_bearer(seller["refresh_token"]), "malformed"),
        "refresh-type jwt": (_bearer(jwt.encode(_claims(uid, type="refresh"), signing_key,
                                                algorithm="HS256")), "not an access token"),
        "unknown user": (_bearer(jwt.encode(_claims(str(uuid.uuid4())), signing_key,
                                            algorithm="HS256")), "no longer exists"),
    }
    for name, (headers, words) in cases.items():
        response = api.get("/v1/auth/me", headers=headers)
        error = _error(response, 401, "UNAUTHORIZED")
        assert words in error["message"], (name, error["message"])
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert signing_key not in response.text


# ------------------------------------------------------------------ roles and ownership


def test_sellers_get_403_on_admin_routes_and_admins_manage_plans_and_roles(
    api: httpx.Client, admin_token: str
) -> None:
    seller = _seller(api)
    other = _seller(api)
    sid = other["user"]["id"]
    as_seller = _bearer(seller["access_token"])
    _error(api.get("/v1/admin/users", headers=as_seller), 403, "FORBIDDEN")
    _error(api.patch(f"/v1/admin/users/{sid}", json={"plan": "enterprise"}, headers=as_seller),
           403, "FORBIDDEN")
    _error(api.patch(f"/v1/admin/users/{seller['user']['id']}", json={"role": "admin"},
                     headers=as_seller), 403, "FORBIDDEN")

    as_admin = _bearer(admin_token)
    page = api.get("/v1/admin/users", params={"limit": 2, "offset": 0}, headers=as_admin)
    assert page.status_code == 200, page.text
    assert len(page.json()["items"]) == 2 and page.json()["total"] >= 3
    changed = api.patch(f"/v1/admin/users/{sid}", json={"plan": "pro", "role": "admin"},
                        headers=as_admin)
    assert changed.status_code == 200, changed.text
    assert (changed.json()["plan"], changed.json()["role"]) == ("pro", "admin")
    me = api.get("/v1/auth/me", headers=_bearer(other["access_token"])).json()
    assert me["plan"] == "pro"  # effective at once, without a new token
    assert _audit(sid, "admin.plan_changed")[0]["details"] == {"from": "free", "to": "pro"}
    assert _audit(sid, "admin.role_changed")[0]["details"] == {"from": "seller", "to": "admin"}
    _error(api.patch(f"/v1/admin/users/{uuid.uuid4()}", json={"plan": "pro"}, headers=as_admin),
           404, "NOT_FOUND")
    _error(api.patch(f"/v1/admin/users/{sid}", json={}, headers=as_admin), 422,
           "VALIDATION_ERROR")
    _error(api.patch(f"/v1/admin/users/{sid}", json={"plan": "platinum"}, headers=as_admin),
           422, "VALIDATION_ERROR")

    # deactivation: the user's access token and logins stop working at once
    off = api.patch(f"/v1/admin/users/{seller['user']['id']}", json={"is_active": False},
                    headers=as_admin)
    assert off.status_code == 200 and off.json()["is_active"] is False
    assert "deactivated" in _error(api.get("/v1/auth/me", headers=as_seller), 401,
                                   "UNAUTHORIZED")["message"]
    denied = api.post("/v1/auth/login", json={"email": seller["email"], "password": PASSWORD})
    _error(denied, 401, "UNAUTHORIZED")
    _error(api.post("/v1/auth/refresh", json={"refresh_token": seller["refresh_token"]}), 401,
           "UNAUTHORIZED")


def test_admin_cannot_lock_themselves_out(api: httpx.Client, admin: dict[str, Any],
                                          admin_token: str) -> None:
    response = api.patch(f"/v1/admin/users/{admin['user'].id}", json={"role": "seller"},
                         headers=_bearer(admin_token))
    _error(response, 409, "CONFLICT")


def test_another_sellers_object_answers_404(api: httpx.Client) -> None:
    alice, bob = _seller(api), _seller(api)
    sessions = api.get("/v1/auth/sessions", headers=_bearer(alice["access_token"]))
    assert sessions.status_code == 200, sessions.text
    session_id = sessions.json()[0]["id"]
    # Bob cannot see that Alice's session exists: the same 404 as an unknown id
    foreign = api.delete(f"/v1/auth/sessions/{session_id}", headers=_bearer(bob["access_token"]))
    unknown = api.delete(f"/v1/auth/sessions/{uuid.uuid4()}",
                         headers=_bearer(bob["access_token"]))
    assert _error(foreign, 404, "NOT_FOUND")["message"] == \
        _error(unknown, 404, "NOT_FOUND")["message"]
    # Alice can end it, after which its refresh token is refused
    own = api.delete(f"/v1/auth/sessions/{session_id}", headers=_bearer(alice["access_token"]))
    assert own.status_code == 204
    _error(api.post("/v1/auth/refresh", json={"refresh_token": alice["refresh_token"]}), 401,
           "UNAUTHORIZED")


# ------------------------------------------------------------------ profile and password


def test_update_profile_and_notification_preferences(api: httpx.Client) -> None:
    seller = _seller(api, company_name="Old Co")
    auth = _bearer(seller["access_token"])
    me = api.get("/v1/auth/me", headers=auth).json()
    assert (me["company_name"], me["mfa_enabled"]) == ("Old Co", False)
    assert me["notification_prefs"] == {
        "digest": "off", "max_notifications_per_product_per_day": 5, "email": True,
        "timezone": "UTC", "quiet_hours": None}
    first = api.patch("/v1/auth/me", headers=auth,
                      json={"company_name": "New Co", "notification_prefs": {"digest": "daily"}})
    assert first.status_code == 200, first.text
    second = api.patch("/v1/auth/me", headers=auth, json={
        "notification_prefs": {"max_notifications_per_product_per_day": 2, "email": False}})
    body = second.json()
    assert body["company_name"] == "New Co"
    assert body["notification_prefs"] == {
        "digest": "daily", "max_notifications_per_product_per_day": 2, "email": False,
        "timezone": "UTC", "quiet_hours": None}
    for bad in ({"notification_prefs": {"digest": "monthly"}},
                {"notification_prefs": {"timezone": "Mars/Olympus"}},
                {"notification_prefs": {"quiet_hours": {"start": "25:00", "end": "07:00"}}},
                {"notification_prefs": {"sms": True}},
                {"notification_prefs": {"max_notifications_per_product_per_day": -1}},
                {"plan": "enterprise"}, {"email": "x@example.com"}):
        _error(api.patch("/v1/auth/me", headers=auth, json=bad), 422, "VALIDATION_ERROR")
    assert api.get("/v1/auth/me", headers=auth).json()["plan"] == "free"


def test_password_change_ends_other_sessions(api: httpx.Client) -> None:
    seller = _seller(api)
    other_device = _login(api, seller["email"])
    auth = _bearer(seller["access_token"])
    wrong = api.post("/v1/auth/password", headers=auth,
                     json={"current_password": "nope nope 1", "new_password": "Brand new 99"})
    assert _error(wrong, 422, "VALIDATION_ERROR")["details"][0]["field"] == "current_password"
    weak = api.post("/v1/auth/password", headers=auth,
                    json={"current_password": PASSWORD, "new_password": "short"})
    assert _error(weak, 422, "VALIDATION_ERROR")["details"][0]["field"] == "new_password"

    changed = api.post("/v1/auth/password", headers=auth,
                       json={"current_password": PASSWORD, "new_password": "Brand new 99"})
    assert changed.status_code == 200, changed.text
    fresh = changed.json()
    # every earlier session ends: access tokens (via the epoch) and refresh tokens
    for token in (seller["access_token"], other_device["access_token"]):
        _error(api.get("/v1/auth/me", headers=_bearer(token)), 401, "UNAUTHORIZED")
    for token in (seller["refresh_token"], other_device["refresh_token"]):
        _error(api.post("/v1/auth/refresh", json={"refresh_token": token}), 401, "UNAUTHORIZED")
    assert api.get("/v1/auth/me", headers=_bearer(fresh["access_token"])).status_code == 200
    _error(api.post("/v1/auth/login", json={"email": seller["email"], "password": PASSWORD}),
           401, "UNAUTHORIZED")
    _login(api, seller["email"], "Brand new 99")
    assert _audit(seller["user"]["id"], "auth.password_changed")


# ------------------------------------------------------------------ login throttling


def test_failed_logins_are_throttled_without_revealing_the_account(
    api: httpx.Client, stack_env: Callable[[str, str], None]
) -> None:
    stack_env("LOGIN_MAX_FAILURES", "3")
    seller = _seller(api)
    responses: dict[str, list[httpx.Response]] = {}
    for email in (seller["email"], _email("ghost")):
        responses[email] = [api.post("/v1/auth/login",
                                     json={"email": email, "password": "Wrong password 1"})
                            for _ in range(4)]
    known, unknown = responses.values()
    for a, b in zip(known, unknown, strict=True):
        assert a.status_code == b.status_code
        # the same message (up to the seconds left) for an account that does not exist
        assert re.sub(r"\d+", "N", a.json()["error"]["message"]) == \
            re.sub(r"\d+", "N", b.json()["error"]["message"])
    assert [r.status_code for r in known] == [401, 401, 401, 429]
    assert int(known[-1].headers["retry-after"]) > 0
    # while this address waits, even the right password from it is refused ...
    right = api.post("/v1/auth/login", json={"email": seller["email"], "password": PASSWORD})
    _error(right, 429, "RATE_LIMITED")
    # ... but the owner from another address signs in (no lock on the account alone)
    with httpx.Client(base_url=str(api.base_url), timeout=30,
                      transport=httpx.HTTPTransport(local_address="127.0.0.2")) as elsewhere:
        assert elsewhere.post("/v1/auth/login", json={"email": seller["email"],
                                                      "password": PASSWORD}).status_code == 200
    failed = _audit(seller["user"]["id"], "auth.login_failed")
    assert len(failed) == 3 and failed[0]["details"]["reason"] == "bad_password"
    assert _audit(seller["user"]["id"], "auth.login_throttle_notice")


# ------------------------------------------------------------------ rate limits


def _wait_for_fresh_window(window: int, need: float) -> None:
    into = time.time() % window
    if window - into < need:
        time.sleep(window - into + 0.05)


def test_plan_rate_limit_is_shared_by_concurrent_clients(
    api: httpx.Client, stack: Stack, admin_token: str, stack_env: Callable[[str, str], None]
) -> None:
    seller = _seller(api)
    api.patch(f"/v1/admin/users/{seller['user']['id']}", json={"plan": "pro"},
              headers=_bearer(admin_token)).raise_for_status()
    stack_env("RATE_LIMIT_PRO", "25")
    _wait_for_fresh_window(ratelimit.window_seconds(), 20)
    statuses: Counter[int] = Counter()
    retry_after: list[str] = []
    lock = threading.Lock()

    def hammer() -> None:
        with httpx.Client(base_url=stack.url, timeout=30) as client:
            for _ in range(20):
                response = client.get("/v1/auth/me", headers=_bearer(seller["access_token"]))
                with lock:
                    statuses[response.status_code] += 1
                    if response.status_code == 429:
                        retry_after.append(response.headers["retry-after"])
                        assert response.headers["x-ratelimit-remaining"] == "0"
                        assert response.json()["error"]["code"] == "RATE_LIMITED"

    threads = [threading.Thread(target=hammer) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == {200: 25, 429: 15}
    assert all(0 < int(value) <= 60 for value in retry_after)


_HAMMER = """
import sys
from amazon_pilot.platform import ratelimit
bucket, limit, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
print(sum(ratelimit.hit(bucket, limit, 60).allowed for _ in range(n)))
"""


def test_limit_holds_across_processes(database_url: str) -> None:
    _wait_for_fresh_window(60, 15)
    bucket = f"test:{uuid.uuid4()}"
    env = {**os.environ, "DATABASE_URL": database_url}
    processes = [subprocess.Popen([sys.executable, "-c", _HAMMER, bucket, "40", "30"],
                                  stdout=subprocess.PIPE, env=env, text=True)
                 for _ in range(2)]
    allowed = [int(p.communicate(timeout=60)[0].strip()) for p in processes]
    assert sum(allowed) == 40, allowed
    assert ratelimit.peek(bucket, 60) == 60


def test_limit_resets_after_the_window(stack: Stack) -> None:
    window = 2
    _wait_for_fresh_window(window, 1.5)
    bucket = f"test:{uuid.uuid4()}"
    decisions = [ratelimit.hit(bucket, 2, window) for _ in range(3)]
    assert [d.allowed for d in decisions] == [True, True, False]
    assert decisions[-1].remaining == 0 and 1 <= decisions[-1].reset_in() <= window
    time.sleep(decisions[-1].reset_at - time.time() + 0.05)
    assert ratelimit.hit(bucket, 2, window).allowed


def test_exempt_routes_carry_no_limit(api: httpx.Client) -> None:
    response = api.get("/v1/health")
    assert "x-ratelimit-limit" not in response.headers
    assert "x-ratelimit-limit" in api.post("/v1/auth/login", json={}).headers


# ------------------------------------------------------------------ edge behaviour


def test_oversized_bodies_get_413_with_or_without_content_length(api: httpx.Client) -> None:
    big = b'{"email": "' + b"a" * (1024 * 1024 + 10) + b'"}'
    with_length = api.post("/v1/auth/register", content=big,
                           headers={"content-type": "application/json"})
    _error(with_length, 413, "PAYLOAD_TOO_LARGE")

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    chunked = api.post("/v1/auth/register", content=chunks(),
                       headers={"content-type": "application/json"})
    _error(chunked, 413, "PAYLOAD_TOO_LARGE")


@pytest.mark.smoke  # also runs against pilot run --from-build
def test_docs_are_served_offline_with_a_self_only_csp(api: httpx.Client) -> None:
    page = api.get("/v1/docs")
    assert page.status_code == 200
    assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no absolute URL
    csp = page.headers["content-security-policy"]
    assert "default-src 'self'" in csp and "http" not in csp
    for asset in ("swagger-ui-bundle.js", "swagger-ui.css", "init.js"):
        response = api.get(f"/v1/docs/{asset}")
        assert response.status_code == 200 and len(response.content) > 100, asset
    _error(api.get("/v1/docs/..%2Fpyproject.toml"), 404, "NOT_FOUND")
    spec = api.get("/v1/openapi.json")
    assert spec.status_code == 200 and "/v1/auth/login" in spec.json()["paths"]
