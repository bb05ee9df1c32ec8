"""The per-address ceiling on authenticated traffic, through the running local stack:
accounts opened side by side on one address cannot add their plan allowances up."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable

import httpx

from amazon_pilot.accounts.service import create_user
from amazon_pilot.platform import ratelimit
from pilot_dev.runtime.stack import Stack

PASSWORD = "Ceiling-pass-2026!"


def signed_in(api: httpx.Client, plan: str = "free") -> dict[str, str]:
    email = f"ceiling-{uuid.uuid4().hex[:10]}@example.com"
    create_user(email, PASSWORD, plan=plan)
    response = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def fresh_window(need: float) -> None:
    window = ratelimit.window_seconds()
    into = time.time() % window
    if window - into < need:
        time.sleep(window - into + 0.05)
    ratelimit.clear("ipauth:127.0.0.1")


def test_five_accounts_on_one_address_share_one_ceiling(
    api: httpx.Client, stack: Stack, stack_env: Callable[[str, str], None]
) -> None:
    # (the suite lifts the free plan's limit for good, so the five use another plan)
    stack_env("RATE_LIMIT_PRO", "10")
    stack_env("RATE_LIMIT_IP_AUTHENTICATED", "20")
    accounts = [signed_in(api, plan="pro") for _ in range(5)]
    fresh_window(20)
    per_account: list[Counter[int]] = []
    messages: set[str] = set()
    for headers in accounts:
        seen: Counter[int] = Counter()
        for _ in range(10):  # each within its own plan limit of 10
            response = api.get("/v1/auth/me", headers=headers)
            seen[response.status_code] += 1
            if response.status_code == 429:
                assert int(response.headers["retry-after"]) > 0
                messages.add(response.json()["error"]["message"].split(";")[0])
        per_account.append(seen)
    print("per account (status: count):", [dict(c) for c in per_account])
    assert sum(c[200] for c in per_account) == 20  # not 50
    assert sum(c[429] for c in per_account) == 30
    assert messages == {"rate limit exceeded: 20 requests per 60 s from this address for "
                        "all its accounts"}


def test_one_paying_user_is_never_capped_below_the_plan(
    api: httpx.Client, stack_env: Callable[[str, str], None]
) -> None:
    stack_env("RATE_LIMIT_ENTERPRISE", "30")
    stack_env("RATE_LIMIT_IP_AUTHENTICATED", "20")
    headers = signed_in(api, plan="enterprise")
    fresh_window(20)
    statuses = Counter(api.get("/v1/auth/me", headers=headers).status_code for _ in range(35))
    assert statuses == {200: 30, 429: 5}
    last = api.get("/v1/auth/me", headers=headers)
    assert "from this address" not in last.json()["error"]["message"]  # the plan's limit
