"""Attacks on accounts, run the way a hostile user would (loopback only, against the local
stack): stolen access tokens after the session ended, a stranger guessing passwords from
one address and from many, and e-mail discovery through sign-up. Counts are printed
(`pytest -s` or `make chaos` shows them).

Other addresses are real: clients bind 127.0.0.N, and the API sees that source address.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from amazon_pilot.accounts import service
from pilot_dev.runtime.stack import Stack

pytestmark = pytest.mark.chaos

PASSWORD = "Owner-pass-2026"
VOLATILE = {"date", "x-request-id", "x-ratelimit-remaining", "x-ratelimit-reset",
            "content-length", "x-amzn-requestid", "apigw-requestid"}


def _email(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:10]}@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _owner(api: httpx.Client) -> tuple[str, dict[str, Any]]:
    email = _email("owner")
    service.create_user(email, PASSWORD)
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return email, dict(response.json())


def _hammer(api: httpx.Client, token: str, n: int = 20) -> Counter[int]:
    """n concurrent uses of a (stolen) access token right after its session ended."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = list(pool.map(
            lambda _: api.get("/v1/auth/me", headers=_bearer(token)).status_code, range(n)))
    return Counter(statuses)


# ------------------------------------------------------------------ stolen access tokens


def test_a_stolen_access_token_is_refused_at_once_after_the_session_ends(
        api: httpx.Client) -> None:
    results: dict[str, Counter[int]] = {}

    email, pair = _owner(api)  # logout
    assert api.post("/v1/auth/logout",
                    json={"refresh_token": pair["refresh_token"]}).status_code == 204
    results["logout"] = _hammer(api, pair["access_token"])

    email, pair = _owner(api)  # all sessions, from another session
    other = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    api.post("/v1/auth/logout", json={"refresh_token": other["refresh_token"],
                                      "all_sessions": True}).raise_for_status()
    results["logout all sessions"] = _hammer(api, pair["access_token"])

    email, pair = _owner(api)  # password change in another session
    other = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD}).json()
    api.post("/v1/auth/password", headers=_bearer(other["access_token"]),
             json={"current_password": PASSWORD,
                   "new_password": "Changed-pass-2026"}).raise_for_status()
    results["password change"] = _hammer(api, pair["access_token"])

    email, pair = _owner(api)  # the thief replays a rotated refresh token
    rotated = api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).json()
    replay = api.post("/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert replay.status_code == 401
    results["refresh-token reuse (old)"] = _hammer(api, pair["access_token"])
    results["refresh-token reuse (rotated)"] = _hammer(api, rotated["access_token"])

    for event, counts in results.items():
        print(f"[chaos accounts] after {event}: {dict(counts)} (of 20 uses of the old "
              f"access token)")
    assert all(counts == Counter({401: 20}) for counts in results.values()), results


def test_forged_and_misused_tokens_do_not_open_admin_routes(
        api: httpx.Client, stack: Stack) -> None:
    import jwt

    email = _email("admin")
    service.create_user(email, PASSWORD, role="admin")
    password_only = api.post("/v1/auth/login",
                             json={"email": email, "password": PASSWORD}).json()
    claims = jwt.decode(password_only["access_token"], options={"verify_signature": False})
    forged = jwt.encode({**claims, "mfa": True}, "guessed-key-" * 4, algorithm="HS256")
    statuses = {
        "password-only admin": api.get("/v1/admin/users", headers=_bearer(
            password_only["access_token"])).status_code,
        "forged mfa claim": api.get("/v1/admin/users", headers=_bearer(forged)).status_code,
    }
    print(f"[chaos accounts] admin routes: {statuses}")
    assert statuses == {"password-only admin": 403, "forged mfa claim": 401}


# ------------------------------------------------------------------ password guessing


def test_a_strangers_50_wrong_passwords_do_not_keep_the_owner_out(
        api: httpx.Client, from_address: Callable[[str], httpx.Client]) -> None:
    email, _ = _owner(api)
    stranger = from_address("127.0.0.66")
    owner_elsewhere = from_address("127.0.0.67")
    guesses: Counter[int] = Counter()
    owner_ok = 0
    for n in range(50):
        guesses[stranger.post("/v1/auth/login", json={"email": email,
                                                      "password": f"Guess-{n}-2026"}
                              ).status_code] += 1
        if n % 10 == 9:  # the owner signs in while the guessing goes on
            owner = owner_elsewhere.post("/v1/auth/login",
                                         json={"email": email, "password": PASSWORD})
            owner_ok += owner.status_code == 200
    last = stranger.post("/v1/auth/login", json={"email": email, "password": "Guess-x-2026"})
    print(f"[chaos accounts] one stranger, 50 wrong passwords: {dict(guesses)}; "
          f"owner from another address signed in {owner_ok}/5; stranger now waits "
          f"{last.headers.get('retry-after')} s")
    assert guesses[401] == 5 and guesses[429] == 45  # 5 free, then waits
    assert owner_ok == 5
    assert _audit_count(email, "auth.login_throttle_notice") == 1
    assert 0 < int(last.headers["retry-after"]) <= 30  # counting down the first wait


def test_parallel_guesses_do_not_slip_past_the_wait(
        api: httpx.Client, from_address: Callable[[str], httpx.Client]) -> None:
    email, _ = _owner(api)
    stranger = from_address("127.0.0.68")

    def guess(n: int) -> int:
        return stranger.post("/v1/auth/login", json={"email": email,
                                                     "password": f"Race-{n}-2026"}).status_code

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = Counter(pool.map(guess, range(24)))
    print(f"[chaos accounts] 24 parallel wrong passwords from one address: {dict(statuses)}")
    # the count is taken before the password is checked, under the pair's row lock
    assert statuses == Counter({401: 5, 429: 19})


def test_guessing_from_many_addresses_slows_but_never_refuses_the_owner(
        api: httpx.Client, from_address: Callable[[str], httpx.Client]) -> None:
    email, _ = _owner(api)
    guesses: Counter[int] = Counter()
    for i in range(20):  # 20 addresses, 2 guesses each
        crowd = from_address(f"127.0.1.{i + 1}")
        for n in range(2):
            guesses[crowd.post("/v1/auth/login", json={
                "email": email, "password": f"Crowd-{i}-{n}-2026"}).status_code] += 1
    owner_new = from_address("127.0.2.1").post(
        "/v1/auth/login", json={"email": email, "password": PASSWORD})
    owner_home = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    print(f"[chaos accounts] 20 addresses x 2 wrong passwords: {dict(guesses)}; owner from "
          f"a new address: {owner_new.status_code}, from a known one: {owner_home.status_code}")
    # past the account-wide ceiling each new address gets one guess, then waits
    assert guesses[429] >= 10
    assert owner_new.status_code == 200 and owner_home.status_code == 200
    # the owner is told once, not once per guessing address
    assert _audit_count(email, "auth.login_throttle_notice") == 1


def _audit_count(email: str, action: str) -> int:
    from sqlalchemy import text

    from amazon_pilot.platform.db import get_engine

    with get_engine().connect() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE action = :a AND user_id ="
            " (SELECT id FROM users WHERE email = :e)"), {"a": action, "e": email}).scalar_one())


# ------------------------------------------------------------------ e-mail discovery


def _register(client: httpx.Client, email: str) -> tuple[httpx.Response, float]:
    started = time.perf_counter()
    response = client.post("/v1/auth/register", json={"email": email, "password": PASSWORD})
    return response, time.perf_counter() - started


def test_registration_answers_the_same_for_existing_and_new_emails(
        api: httpx.Client, stack: Stack) -> None:
    ses = stack.client("ses")
    sent_before = ses.get_send_quota()["SentLast24Hours"]
    existing = [_owner(api)[0] for _ in range(5)]
    fresh = [_email("fresh") for _ in range(5)]
    answers: dict[str, list[tuple[httpx.Response, float]]] = {
        "existing": [_register(api, e) for e in existing],
        "new": [_register(api, e) for e in fresh],
    }
    shapes = set()
    for results in answers.values():
        for response, _ in results:
            headers = tuple(sorted((k, v) for k, v in response.headers.items()
                                   if k not in VOLATILE))
            shapes.add((response.status_code, response.text, headers))
    medians = {kind: statistics.median(t for _, t in results)
               for kind, results in answers.items()}
    sent = ses.get_send_quota()["SentLast24Hours"] - sent_before
    print(f"[chaos accounts] sign-up with 5 existing and 5 new e-mails: {len(shapes)} "
          f"distinct answer(s); median time existing {medians['existing'] * 1000:.0f} ms, "
          f"new {medians['new'] * 1000:.0f} ms; e-mails sent {sent:g}")
    assert len(shapes) == 1, shapes  # status, body and headers all identical
    assert answers["existing"][0][0].status_code == 202
    assert sent >= 10  # a notice to each existing owner, a welcome to each new one
    # both paths hash the password and send one e-mail: no timing tell worth the name
    slow, fast = max(medians.values()), min(medians.values())
    assert slow < fast * 2, medians
