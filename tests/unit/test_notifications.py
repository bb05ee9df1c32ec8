"""Notification rules: signatures, payloads, the cap, digests and channel targets."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta

import pytest

from amazon_pilot.domain import notifications as rules

SECRET = "whsec_unit-test-secret"
NOW = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def _alert(**overrides: object) -> dict[str, object]:
    alert: dict[str, object] = {
        "id": "4f6c1a52-2a4e-4c1e-9d3a-6a1f0b9c8d7e",
        "type": "price_change",
        "severity": "warning",
        "metric": "price",
        "old_value": "19.99",
        "new_value": "15.99",
        "change_pct": -20.01,
        "threshold": 10.0,
        "message": "Price dropped 20.0% (19.99 → 15.99)",
        "created_at": NOW,
        "asin": "B0C33XXS56",
        "marketplace": "com",
        "product_title": "Steel water bottle",
        "data_source": "apify",
    }
    alert.update(overrides)
    return alert


# ------------------------------------------------------------------ signing


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"event":"alert.created"}'
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert rules.sign(body, SECRET, 1700000000) == f"sha256={expected}"
    assert rules.sign(body, SECRET, "1700000000") == f"sha256={expected}"


def test_verify_accepts_the_signature_and_rejects_tampering() -> None:
    body = json.dumps({"event": "alert.created", "alert": {"id": "x"}}).encode()
    signature = rules.sign(body, SECRET, 1700000000)
    assert rules.verify(body, SECRET, "1700000000", signature)
    assert not rules.verify(body + b" ", SECRET, "1700000000", signature)  # tampered body
    assert not rules.verify(body.replace(b"x", b"y"), SECRET, "1700000000", signature)
    assert not rules.verify(body, "another-secret", "1700000000", signature)
    assert not rules.verify(body, SECRET, "1700000001", signature)  # timestamp is signed
    assert not rules.verify(body, SECRET, "not-a-number", signature)
    assert not rules.verify(body, SECRET, "1700000000", "sha256=" + "0" * 64)
    assert not rules.verify(body, SECRET, "1700000000", signature.removeprefix("sha256="))


def test_verify_with_a_clock_rejects_old_timestamps() -> None:
    body = b"{}"
    signature = rules.sign(body, SECRET, 1700000000)
    assert rules.verify(body, SECRET, 1700000000, signature, now=1700000000 + 299)
    assert not rules.verify(body, SECRET, 1700000000, signature, now=1700000000 + 301)
    assert not rules.verify(body, SECRET, 1700000000, signature, now=1700000000 - 301)
    assert rules.verify(body, SECRET, 1700000000, signature, now=1700000000 + 900,
                        tolerance_s=1000)


# ------------------------------------------------------------------ payloads


def test_alert_payload_shape() -> None:
    payload = rules.alert_payload(_alert(), "d-1", NOW)
    assert payload["event"] == "alert.created"
    assert payload["version"] == 1
    assert payload["delivery_id"] == "d-1"
    assert payload["sent_at"] == NOW.isoformat()
    assert payload["data_source"] == "apify"
    alert = payload["alert"]
    assert set(alert) == {"id", "type", "severity", "metric", "product", "old_value",
                          "new_value", "change_pct", "threshold", "message", "created_at"}
    assert alert["product"] == {"asin": "B0C33XXS56", "marketplace": "com",
                                "title": "Steel water bottle"}
    assert alert["created_at"] == NOW.isoformat()
    assert alert["change_pct"] == -20.01 and alert["threshold"] == 10.0
    json.dumps(payload)  # JSON-able as is


def test_sandbox_data_is_labelled_in_payloads_and_mails() -> None:
    sandbox = _alert(data_source="sandbox")
    assert rules.alert_payload(sandbox, "d", NOW)["data_source"] == "sandbox"
    assert "sandbox" in rules.alert_email(sandbox)[1]
    assert "sandbox" not in rules.alert_email(_alert())[1]
    mixed = [_alert(), _alert(id="b", data_source="sandbox")]
    assert rules.digest_payload(mixed, "2026-03-14", "d", NOW)["data_source"] == "sandbox"


def test_digest_groups_alerts_by_product() -> None:
    alerts = [
        _alert(id="a1"),
        _alert(id="b1", asin="B000000002", product_title="Mug", message="Out of stock",
               severity="critical"),
        _alert(id="a2", message="Rating fell 4.5 → 4.2"),
    ]
    payload = rules.digest_payload(alerts, "2026-03-14", "d-9", NOW)
    assert payload["event"] == "alert.digest"
    assert payload["alert_count"] == 3
    assert [p["asin"] for p in payload["products"]] == ["B0C33XXS56", "B000000002"]
    assert [a["id"] for a in payload["products"][0]["alerts"]] == ["a1", "a2"]
    subject, body = rules.digest_text(alerts, "2026-03-14")
    assert "3 alerts on 2 products" in subject
    assert body.index("Steel water bottle") < body.index("Rating fell") < body.index("Mug")
    assert "[critical] Out of stock" in body


def test_alert_email_subject_is_one_line() -> None:
    subject, body = rules.alert_email(_alert(message="line one\nline two", product_title=None))
    assert "\n" not in subject and "B0C33XXS56" in subject
    assert "Change: 19.99 → 15.99" in body


# ------------------------------------------------------------------ severities, prefs, cap


def test_severity_threshold() -> None:
    assert rules.severity_passes("critical", "warning")
    assert rules.severity_passes("warning", "warning")
    assert not rules.severity_passes("info", "warning")
    assert rules.severity_passes("info", "info")


def test_prefs() -> None:
    assert rules.wants_daily_digest({"digest": "daily"})
    assert not rules.wants_daily_digest({"digest": "off"})
    assert not rules.wants_daily_digest({})
    assert rules.cap_per_product_per_day({}) == 5
    assert rules.cap_per_product_per_day({"max_notifications_per_product_per_day": 2}) == 2
    assert rules.cap_per_product_per_day({"max_notifications_per_product_per_day": 0}) == 0
    assert rules.cap_per_product_per_day({"max_notifications_per_product_per_day": -1}) == 5
    assert rules.cap_per_product_per_day({"max_notifications_per_product_per_day": "x"}) == 5
    assert rules.cap_per_product_per_day({"max_notifications_per_product_per_day": True}) == 5
    assert not rules.channel_enabled("email", {"email": False})
    assert rules.channel_enabled("webhook", {"email": False})
    assert rules.channel_enabled("email", {})


def _candidates(n: int, severity: str = "info") -> list[rules.CapCandidate]:
    return [rules.CapCandidate(f"a{i}", severity, NOW + timedelta(minutes=i)) for i in range(n)]


def test_cap_lets_five_through_and_suppresses_the_sixth() -> None:
    send, suppress = rules.apply_cap(_candidates(6), already_sent_today=0, cap=5)
    assert send == ["a0", "a1", "a2", "a3", "a4"]
    assert suppress == ["a5"]


def test_cap_counts_what_was_already_sent_today() -> None:
    send, suppress = rules.apply_cap(_candidates(3), already_sent_today=4, cap=5)
    assert send == ["a0"] and suppress == ["a1", "a2"]
    send, suppress = rules.apply_cap(_candidates(2), already_sent_today=9, cap=5)
    assert send == [] and suppress == ["a0", "a1"]
    assert rules.apply_cap(_candidates(2), 0, 0) == ([], ["a0", "a1"])


def test_cap_keeps_the_most_severe_when_only_some_fit() -> None:
    candidates = [*_candidates(3), rules.CapCandidate("crit", "critical", NOW + timedelta(hours=1))]
    send, suppress = rules.apply_cap(reversed(candidates), already_sent_today=3, cap=5)
    assert send == ["crit", "a0"]
    assert suppress == ["a1", "a2"]


# ------------------------------------------------------------------ channel targets


@pytest.mark.parametrize("url", [
    "https://example.com/hooks/pilot",
    "https://hooks.example.co.uk:8443/a/b?token=abc",
    "https://93.184.216.34/hook",
    "https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
    "HTTPS://Example.COM/Hook",
    "  https://example.com/padded  ",
])
def test_webhook_urls_that_are_accepted(url: str) -> None:
    assert rules.validate_webhook_url(url) == url.strip()


@pytest.mark.parametrize(("url", "message"), [
    ("http://example.com/hook", "plain http is not allowed"),
    ("http://93.184.216.34/hook", "plain http is not allowed"),
    ("http://127.0.0.1:8080/hook", "plain http is not allowed"),
    ("https://127.0.0.1:3000/_pilot/schedules/DailyRefresh/fire", "loopback"),
    ("https://127.10.20.30/hook", "loopback"),
    ("https://localhost:9000/hook", "loopback"),
    ("https://[::1]:9000/hook", "loopback"),
    ("https://[::ffff:127.0.0.1]/hook", "loopback"),
    ("https://[::ffff:169.254.169.254]/hook", "private or reserved address"),
    ("https://[2002:a00:1::]/hook", "private or reserved address"),  # 6to4 of 10.0.0.1
    ("https://[64:ff9b::7f00:1]/hook", "private or reserved address"),  # NAT64 127.0.0.1
    ("https://[ff02::1]/hook", "private or reserved address"),
    ("https://240.0.0.1/hook", "private or reserved address"),
    ("https://192.0.2.1/hook", "private or reserved address"),
    ("https://10.0.0.5/hook", "private or reserved address"),
    ("https://192.168.1.10/hook", "private or reserved address"),
    ("https://172.16.0.1/hook", "private or reserved address"),
    ("https://169.254.169.254/latest/meta-data", "private or reserved address"),
    ("https://100.64.0.1/hook", "private or reserved address"),
    ("https://0.0.0.0/hook", "private or reserved address"),
    ("https://[fd00::1]/hook", "private or reserved address"),
    ("https://[fe80::1]/hook", "private or reserved address"),
    ("https://[::ffff:10.0.0.1]/hook", "private or reserved address"),
    ("https://224.0.0.1/hook", "private or reserved address"),
    ("https://user:pass@example.com/hook", "must not contain credentials"),
    ("https://token@example.com/hook", "must not contain credentials"),
    ("https://user@127.0.0.1/hook", "must not contain credentials"),
    ("javascript:alert(1)", "scheme 'javascript:' is not allowed"),
    ("ftp://example.com/file", "scheme 'ftp:' is not allowed"),
    ("file:///etc/passwd", "scheme 'file:' is not allowed"),
    ("data:text/plain,hi", "scheme 'data:' is not allowed"),
    ("example.com/hook", "must use https"),
    ("https://", "has no host"),
    ("https:///path", "has no host"),
    ("https://example.com/" + "a" * 2040, "longer than 2048 characters"),
    ("https://exa mple.com/", "spaces or control characters"),
    ("https://example.com/\r\nX-Injected: 1", "spaces or control characters"),
    ("https://2130706433/hook", "numeric form"),
    ("https://0x7f.0.0.1/hook", "numeric form"),
    ("https://intranet/hook", "fully qualified domain name"),
    ("https://bad_host.example.com/", "not a valid host name"),
    ("https://app.localhost/hook", "*.localhost"),
    ("https://example.com:99999/hook", "cannot be parsed"),
    ("", "is empty"),
])
def test_webhook_urls_that_are_refused_with_a_specific_message(url: str, message: str) -> None:
    with pytest.raises(rules.InvalidChannelTarget) as caught:
        rules.validate_webhook_url(url)
    assert message in caught.value.message
    assert caught.value.field == "url"


def test_an_operator_allow_list_admits_only_the_named_host_and_port() -> None:
    allowed = ("127.0.0.1:8787", "sink.internal.test")
    assert rules.validate_webhook_url("http://127.0.0.1:8787/hook", allowed)
    assert rules.validate_webhook_url("https://sink.internal.test/x", allowed)
    for url in ("http://127.0.0.1:3000/_pilot/status", "http://127.0.0.2:8787/hook",
                "http://localhost:8787/hook"):
        with pytest.raises(rules.InvalidChannelTarget):
            rules.validate_webhook_url(url, allowed)
    assert rules.validate_webhook_url("http://[::1]:9/x", ("[::1]:9",))


def test_loopback_hosts() -> None:
    assert rules.is_loopback_host("127.0.0.1")
    assert rules.is_loopback_host("127.255.0.9")
    assert rules.is_loopback_host("[::1]")
    assert rules.is_loopback_host("LOCALHOST")
    assert not rules.is_loopback_host("128.0.0.1")
    assert not rules.is_loopback_host("localhost.example.com")


@pytest.mark.parametrize(("raw", "expected"), [
    ("Seller@Example.COM", "Seller@example.com"),
    (" ops+alerts@shop.example.org ", "ops+alerts@shop.example.org"),
])
def test_email_addresses_that_are_accepted(raw: str, expected: str) -> None:
    assert rules.validate_email_address(raw) == expected


@pytest.mark.parametrize("raw", [
    "", "no-at-sign", "a@b", "two@@example.com", "a@-bad-.com", ".dot@example.com",
    "a..b@example.com", "x@example.com\r\nBcc: victim@example.com", "sp ace@example.com",
    "a@" + "b" * 250 + ".com",
])
def test_email_addresses_that_are_refused(raw: str) -> None:
    with pytest.raises(rules.InvalidChannelTarget) as caught:
        rules.validate_email_address(raw)
    assert caught.value.field == "email"


# ------------------------------------------------------------------ the sending adapter


def _fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> list[str]:
    """Replace the system resolver (a boundary we cannot steer) with fixed answers;
    returns the names looked up, in order."""
    import socket

    from amazon_pilot.adapters import notify

    asked: list[str] = []

    real_dns = socket.getaddrinfo

    def resolve(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        if host in ("127.0.0.1", "localhost", "::1") and host not in answers:
            return real_dns(host, port, *args, **kwargs)  # a session stack's own threads
        asked.append(host)
        if host not in answers:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers[host]]

    monkeypatch.setattr(notify.socket, "getaddrinfo", resolve)
    return asked


def test_a_public_name_resolving_to_a_private_address_is_never_contacted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from amazon_pilot.adapters import notify

    _fake_dns(monkeypatch, {"hooks.example.com": ["10.1.2.3"],
                            "mixed.example.com": ["93.184.216.34", "127.0.0.1"]})

    def no_connection(*args: object, **kwargs: object) -> None:
        raise AssertionError("the adapter tried to connect")

    import httpx

    monkeypatch.setattr(httpx, "Client", no_connection)
    for url in ("https://hooks.example.com/x", "https://mixed.example.com/x"):
        result = notify.post_webhook(url, b"{}", {})
        assert not result.delivered and result.permanent
        assert result.error == notify.TARGET_REFUSED  # no address, no port: one answer
    refused = notify.post_webhook("http://example.com/x", b"{}", {})
    assert refused.permanent and refused.error is not None and "https" in refused.error


def test_the_connection_goes_to_the_address_that_was_checked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Resolve once, connect to that IP: a second (rebinding) answer is never used."""
    from amazon_pilot.adapters import notify

    asked = _fake_dns(monkeypatch, {"hooks.example.com": ["93.184.216.34"]})
    target = notify.resolve_webhook("https://hooks.example.com:8443/in?x=1", ())
    assert asked == ["hooks.example.com"]
    assert target.address == "93.184.216.34" and target.port == 8443
    assert notify._pinned_request_url(target) == "https://93.184.216.34:8443/in?x=1"
    _fake_dns(monkeypatch, {"v6.example.com": ["2606:2800:220:1::1"]})
    six = notify.resolve_webhook("https://v6.example.com/in", ())
    assert notify._pinned_request_url(six) == "https://[2606:2800:220:1::1]/in"


def test_unreachable_and_unresolvable_look_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from amazon_pilot.adapters import notify

    _fake_dns(monkeypatch, {})
    assert notify.post_webhook("https://nowhere.example.com/", b"{}", {}).error == \
        notify.TARGET_UNREACHABLE
    # a closed port on an allowed development host: the same words, no "refused"
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    monkeypatch.setattr(notify, "allowed_hosts", lambda: (f"127.0.0.1:{closed}",))
    result = notify.post_webhook(f"http://127.0.0.1:{closed}/", b"{}", {})
    assert result.error == notify.TARGET_UNREACHABLE and not result.permanent


def test_channel_creation_check_resolves_the_name(monkeypatch: pytest.MonkeyPatch) -> None:
    from amazon_pilot.adapters import notify

    _fake_dns(monkeypatch, {"inside.example.com": ["192.168.1.4"],
                            "ok.example.com": ["93.184.216.34"]})
    with pytest.raises(rules.InvalidChannelTarget, match="resolves to a private"):
        notify.check_webhook_target("https://inside.example.com/h")
    assert notify.check_webhook_target("https://ok.example.com/h") == "https://ok.example.com/h"
    # not resolvable yet: accepted, every delivery checks again
    assert notify.check_webhook_target("https://later.example.com/h")
