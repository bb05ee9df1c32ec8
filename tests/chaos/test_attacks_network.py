"""Network attacks, repeatable and loopback only, against the session's local stack
(real products function, SQS pollers, Postgres): SSRF through webhooks, DNS rebinding,
port mapping through the delivery log, and splitting rate limits across accounts.

Each case prints its counts. The name resolver and the outward TCP connect are the only
stand-ins (a test may not depend on the internet's DNS or reach a public address); both
are replaced at the library boundary, below everything we wrote.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from amazon_pilot.accounts.service import create_user
from amazon_pilot.adapters import crypto, notify
from amazon_pilot.notifications.service import SECRET_PURPOSE, fan_out
from amazon_pilot.platform import ratelimit
from amazon_pilot.platform.db import transaction
from pilot_dev.runtime.stack import Stack
from tests.integration.test_notifications import IMMEDIATE, new_alert, new_product, new_user
from tests.integration.test_runtime import wait_for

pytestmark = pytest.mark.chaos


def report(capsys: pytest.CaptureFixture[str], case: str, **counts: Any) -> None:
    with capsys.disabled():
        print(f"\n[chaos] {case}: " + ", ".join(f"{k}={v}" for k, v in counts.items()),
              flush=True)


class Canary:
    """A loopback listener that only counts connections: nothing may reach it."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.running = False
        self.thread.join(timeout=2)
        self.sock.close()


@pytest.fixture()
def canary() -> Iterator[Canary]:
    listener = Canary()
    yield listener
    listener.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def planted_channel(user: dict[str, Any], url: str) -> str:
    """A channel stored without the API's check (as if created before it existed, or
    by a name that has since been re-pointed): delivery must refuse it on its own."""
    sealed = crypto.seal("whsec_planted", SECRET_PURPOSE)
    with transaction() as conn:
        return str(conn.execute(text(
            "INSERT INTO notification_channels (user_id, kind, target, secret, secret_key_id)"
            " VALUES (:u, 'webhook', :t, :s, :k) RETURNING id"),
            {"u": user["id"], "t": url, "s": sealed.value, "k": sealed.key_id}).scalar_one())


def finished(api: httpx.Client, user: dict[str, Any], channel_id: str) -> dict[str, Any]:
    def done() -> Any:
        items = api.get(f"/v1/notification-channels/{channel_id}/deliveries",
                        headers=user["headers"]).json()["items"]
        return next((d for d in items if d["status"] in ("failed", "delivered")), None)

    return dict(wait_for(done, 60, "the delivery to finish"))


def scheduled_runs() -> int:
    with transaction() as conn:
        return int(conn.execute(text(
            "SELECT count(*) FROM scrape_runs WHERE trigger = 'schedule'")).scalar_one())


def test_ssrf_targets_are_refused_at_creation_and_at_delivery(
    api: httpx.Client, stack: Stack, canary: Canary, capsys: pytest.CaptureFixture[str]
) -> None:
    port = stack.config.port
    targets = [
        f"http://127.0.0.1:{port}/_pilot/schedules/DailyRefresh/fire",
        f"https://127.0.0.1:{port}/_pilot/schedules/DailyRefresh/fire",
        f"https://localhost:{port}/_pilot/status",
        "https://169.254.169.254/latest/meta-data/iam/security-credentials/",
        "http://169.254.169.254/latest/meta-data/",
        f"https://[::1]:{port}/_pilot/status",
        f"https://[::ffff:127.0.0.1]:{canary.port}/",
        f"https://127.0.0.1:{canary.port}/",
        "https://10.0.0.1/hook", "https://[fd00::1]/hook", "https://0.0.0.0/hook",
    ]
    seller = new_user(api, IMMEDIATE)
    refused_at_creation = 0
    for url in targets:
        response = api.post("/v1/notification-channels", json={"kind": "webhook", "url": url},
                            headers=seller["headers"])
        assert response.status_code == 422, (url, response.text)
        refused_at_creation += 1
    runs_before = scheduled_runs()
    planted = [planted_channel(seller, url) for url in targets]
    assert fan_out([new_alert(new_product(seller))]) == len(planted)
    logs = [finished(api, seller, channel) for channel in planted]
    errors = Counter(log["last_error"] for log in logs)
    report(capsys, "SSRF targets", targets=len(targets), refused_at_creation=refused_at_creation,
           refused_at_delivery=sum(1 for log in logs if log["status"] == "failed"),
           attempts=sum(log["attempts"] for log in logs), canary_connections=canary.connections,
           scheduled_runs_started=scheduled_runs() - runs_before)
    assert all(log["status"] == "failed" and log["response_code"] is None for log in logs)
    assert all(log["attempts"] == 1 for log in logs)  # refused for good, not retried
    assert all(str(e).startswith("target refused") for e in errors)
    assert canary.connections == 0
    assert scheduled_runs() == runs_before  # the daily refresh was not fired


def test_a_name_resolving_to_loopback_and_a_rebinding_resolver(
    api: httpx.Client, canary: Canary, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import httpcore
    import httpcore._backends.sync as backend

    lookups: Counter[str] = Counter()
    rebinding = "rebind.attacker.example"
    real_resolver = socket.getaddrinfo
    real_connect = backend.SyncBackend.connect_tcp

    def resolver(host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if not str(host).endswith(".attacker.example"):
            return real_resolver(host, port, *args, **kwargs)  # moto, Postgres, the API
        lookups[host] += 1
        if host == rebinding:  # public for two questions (creation, one check), then loopback
            address = "93.184.216.34" if lookups[host] <= 2 else "127.0.0.1"
        else:
            address = "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    connected: list[tuple[str, int]] = []

    def connect_tcp(self: Any, host: str, port: int, *args: Any, **kwargs: Any) -> Any:
        if port == canary.port or host == "93.184.216.34":
            connected.append((host, port))
        if host == "93.184.216.34":  # never leave the machine
            raise httpcore.ConnectError("no outward network in the chaos suite")
        return real_connect(self, host, port, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    monkeypatch.setattr(backend.SyncBackend, "connect_tcp", connect_tcp)
    seller = new_user(api, IMMEDIATE)
    created = api.post("/v1/notification-channels", headers=seller["headers"], json={
        "kind": "webhook", "url": f"https://loopback.attacker.example:{canary.port}/x"})
    assert created.status_code == 422 and "private" in created.json()["error"]["message"]

    lookups.clear()
    # the rebinding name passes the check at creation (first answer: public) ...
    accepted = api.post("/v1/notification-channels", headers=seller["headers"], json={
        "kind": "webhook", "url": f"https://{rebinding}:{canary.port}/x"})
    assert accepted.status_code == 201, accepted.text
    loopback = planted_channel(seller, f"https://loopback.attacker.example:{canary.port}/x")
    assert fan_out([new_alert(new_product(seller))]) == 2
    rebound = finished(api, seller, accepted.json()["id"])
    pinned = finished(api, seller, loopback)
    report(capsys, "DNS", lookups=dict(lookups), connects=connected,
           canary_connections=canary.connections, rebound=rebound["last_error"],
           loopback_name=pinned["last_error"])
    # ... the first delivery attempt's one question got the public answer and connected
    # to that address, not to whatever a second question would have said (loopback: the
    # canary); the retry asked again, got loopback, and was refused for good
    assert pinned["status"] == "failed" and pinned["last_error"] == notify.TARGET_REFUSED
    assert rebound["status"] == "failed" and rebound["last_error"] == notify.TARGET_REFUSED
    assert rebound["attempts"] == 2 and lookups[rebinding] == 3
    assert connected == [("93.184.216.34", canary.port)]
    assert canary.connections == 0


def test_the_delivery_log_maps_no_ports(
    api: httpx.Client, canary: Canary, capsys: pytest.CaptureFixture[str]
) -> None:
    seller = new_user(api, IMMEDIATE)
    open_port, shut_port = canary.port, closed_port()
    channels = {state: planted_channel(seller, f"https://127.0.0.1:{port}/probe")
                for state, port in (("open", open_port), ("closed", shut_port))}
    assert fan_out([new_alert(new_product(seller))]) == 2
    seen = {state: finished(api, seller, channel) for state, channel in channels.items()}
    shown = {state: (log["status"], log["response_code"], log["last_error"], log["attempts"])
             for state, log in seen.items()}
    report(capsys, "port probe", **{k: v for k, v in shown.items()},
           canary_connections=canary.connections)
    assert shown["open"] == shown["closed"]  # nothing tells them apart
    assert canary.connections == 0


def test_five_accounts_from_one_address_share_one_ceiling(
    api: httpx.Client, stack: Stack, stack_env: Callable[[str, str], None],
    capsys: pytest.CaptureFixture[str],
) -> None:
    per_account, ceiling, accounts = 60, 120, 5
    stack_env("RATE_LIMIT_PRO", str(per_account))
    stack_env("RATE_LIMIT_IP_AUTHENTICATED", str(ceiling))
    tokens = []
    for _ in range(accounts):
        email = f"split-{uuid.uuid4().hex[:8]}@example.com"
        create_user(email, "Split-pass-2026!", plan="pro")
        login = api.post("/v1/auth/login", json={"email": email, "password": "Split-pass-2026!"})
        tokens.append({"Authorization": f"Bearer {login.json()['access_token']}"})
    window = ratelimit.window_seconds()
    if window - time.time() % window < 30:
        time.sleep(window - time.time() % window + 0.05)
    ratelimit.clear("ipauth:127.0.0.1")
    statuses: list[Counter[int]] = []
    for headers in tokens:
        statuses.append(Counter(api.get("/v1/auth/me", headers=headers).status_code
                                for _ in range(per_account)))
    allowed = sum(c[200] for c in statuses)
    report(capsys, "rate-limit split", accounts=accounts, requests=accounts * per_account,
           allowed=allowed, refused=sum(c[429] for c in statuses),
           per_account=[dict(c) for c in statuses])
    assert allowed == ceiling  # not accounts x per_account = 300
    assert all(c[429] == per_account for c in statuses[2:])  # each later account refused
