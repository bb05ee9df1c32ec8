"""Pure rules of alert control (domain.notifications): quiet hours in the seller's time
zone across DST changes, snoozes, alert storms grouped per product and type, the
weekly digest, Slack URLs and Block Kit messages, and e-mail verification."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, time, timedelta

import pytest

from amazon_pilot.domain import notifications as rules

BERLIN = {"timezone": "Europe/Berlin", "quiet_hours": {"start": "22:00", "end": "07:00"}}
NEW_YORK = {"timezone": "America/New_York", "quiet_hours": {"start": "01:30", "end": "02:30"}}


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def test_quiet_hours_follow_the_local_clock_across_spring_forward() -> None:
    hours = rules.quiet_hours(BERLIN)
    assert hours == rules.QuietHours(time(22), time(7), "Europe/Berlin")
    # Saturday 28 March 2026 (CET, UTC+1): 05:30 UTC is 06:30 local, still quiet
    assert rules.in_quiet_hours(hours, utc(2026, 3, 28, 5, 30))
    # Sunday 29 March (CEST from 01:00 UTC): 05:30 UTC is 07:30 local, quiet is over
    assert not rules.in_quiet_hours(hours, utc(2026, 3, 29, 5, 30))
    # the night of the change is an hour shorter: 21:00 UTC Saturday is 22:00 local
    assert rules.in_quiet_hours(hours, utc(2026, 3, 28, 21, 0))
    assert not rules.in_quiet_hours(hours, utc(2026, 3, 28, 20, 59))
    # and the jump itself (01:59 CET → 03:00 CEST) stays quiet
    assert rules.in_quiet_hours(hours, utc(2026, 3, 29, 0, 59))
    assert rules.in_quiet_hours(hours, utc(2026, 3, 29, 1, 0))


def test_quiet_hours_follow_the_local_clock_across_fall_back() -> None:
    hours = rules.quiet_hours(BERLIN)
    # Sunday 25 October 2026 (back to CET at 01:00 UTC): 06:30 UTC is 07:30 local
    assert not rules.in_quiet_hours(hours, utc(2026, 10, 25, 6, 30))
    assert rules.in_quiet_hours(hours, utc(2026, 10, 25, 5, 59))  # 06:59 CET
    # the day before, 05:30 UTC was already 07:30 CEST
    assert not rules.in_quiet_hours(hours, utc(2026, 10, 24, 5, 30))


def test_a_window_inside_the_skipped_and_repeated_hour() -> None:
    hours = rules.quiet_hours(NEW_YORK)
    assert hours is not None
    # 8 March 2026, New York springs from 02:00 EST to 03:00 EDT (07:00 UTC): the
    # 01:30-02:30 window lasts 30 minutes (01:30 to the jump)
    assert rules.in_quiet_hours(hours, utc(2026, 3, 8, 6, 45))  # 01:45 EST
    assert not rules.in_quiet_hours(hours, utc(2026, 3, 8, 7, 0))  # 03:00 EDT
    # 1 November 2026, 01:00-02:00 happens twice: both 01:30s are quiet
    assert rules.in_quiet_hours(hours, utc(2026, 11, 1, 5, 45))  # 01:45 EDT
    assert rules.in_quiet_hours(hours, utc(2026, 11, 1, 6, 45))  # 01:45 EST
    assert not rules.in_quiet_hours(hours, utc(2026, 11, 1, 7, 45))  # 02:45 EST


def test_only_non_critical_alerts_are_held_and_bad_settings_mean_no_quiet_hours() -> None:
    hours = rules.quiet_hours(BERLIN)
    night = utc(2026, 6, 1, 23, 0)  # 01:00 CEST
    assert rules.held_for_quiet_hours("warning", hours, night)
    assert not rules.held_for_quiet_hours("critical", hours, night)
    assert not rules.held_for_quiet_hours("warning", hours, utc(2026, 6, 1, 12, 0))
    assert rules.quiet_hours({}) is None
    assert rules.quiet_hours({**BERLIN, "timezone": "Mars/Olympus"}) is None
    assert rules.quiet_hours({"quiet_hours": {"start": "25:00", "end": "07:00"}}) is None
    assert rules.quiet_hours({"quiet_hours": {"start": "07:00", "end": "07:00"}}) is None
    assert rules.quiet_hours({**BERLIN, "quiet_hours": {**BERLIN["quiet_hours"],
                                                        "enabled": False}}) is None
    # no time zone: UTC
    assert rules.quiet_hours({"quiet_hours": {"start": "09:00", "end": "17:00"}}) == \
        rules.QuietHours(time(9), time(17), "UTC")
    with pytest.raises(rules.InvalidQuietHours):
        rules.validate_timezone("../etc/passwd")


def test_snoozes_match_product_type_or_both_within_their_window() -> None:
    start, end = utc(2026, 6, 1), utc(2026, 6, 2)
    product = rules.Snooze("tp-1", None, start, end)
    kind = rules.Snooze(None, "price_change", start, end)
    both = rules.Snooze("tp-2", "bsr_change", start, end + timedelta(days=1))
    snoozes = [product, kind, both]
    noon = utc(2026, 6, 1, 12)
    assert rules.snoozed_by(snoozes, "tp-1", "rating_change", noon) == product
    assert rules.snoozed_by(snoozes, "tp-9", "price_change", noon) == kind
    assert rules.snoozed_by(snoozes, "tp-2", "bsr_change", utc(2026, 6, 2, 12)) == both
    assert rules.snoozed_by(snoozes, "tp-2", "rating_change", noon) is None
    assert rules.snoozed_by(snoozes, "tp-1", "rating_change", end) is None  # over
    now = utc(2026, 6, 1)
    assert rules.snooze_until(now, 24, None) == now + timedelta(hours=24)
    for hours, until in ((None, None), (1, now), (None, now), (None, now + timedelta(days=91))):
        with pytest.raises(ValueError):
            rules.snooze_until(now, hours, until)


def _alert(n: int, product: int, kind: str, severity: str = "warning") -> dict[str, object]:
    return {"id": f"a{n}", "product_id": product, "type": kind, "severity": severity,
            "message": f"change {n}", "asin": f"B00000000{product}", "marketplace": "com",
            "product_title": f"Product {product}", "created_at": utc(2026, 6, 1, 0, n % 60),
            "data_source": "sandbox", "metric": "price", "old_value": "1", "new_value": "2",
            "change_pct": 1.0, "threshold": 1.0}


def test_a_storm_is_one_message_per_product_and_type() -> None:
    storm = [_alert(n, n % 3, "price_change" if n % 2 else "bsr_change") for n in range(3000)]
    groups = rules.storm_groups(storm)
    assert len(groups) == 6
    assert sum(len(g) for g in groups) == 3000
    payload = rules.alert_group_payload(groups[0], "d-1", utc(2026, 6, 1))
    assert payload["event"] == "alert.grouped" and payload["count"] == 500
    assert len(payload["alerts"]) == rules.GROUP_LISTED
    assert payload["alerts"][-1]["id"] == groups[0][-1]["id"]  # the latest are listed
    single = rules.alert_group_payload(groups[0][:1], "d-2", utc(2026, 6, 1))
    assert single["event"] == "alert.created"
    subject, body = rules.alert_group_email(groups[0])
    assert "500 x" in subject and "… and 480 earlier" in body
    # mixed severities: the group is as severe as its worst alert
    assert rules.group_severity([_alert(1, 1, "x"), _alert(2, 1, "x", "critical")]) == "critical"


def test_a_storm_digest_is_one_message_that_counts_everything() -> None:
    storm = [_alert(n, n % 50, "price_change") for n in range(50_000)]
    payload = rules.digest_payload(storm, "2026-06-01", "d", utc(2026, 6, 1))
    assert payload["alert_count"] == 50_000
    assert payload["summary"] == {"alert_count": 50_000, "product_count": 50,
                                  "by_type": {"price_change": 50_000}, "listed": 500}
    assert sum(len(p["alerts"]) for p in payload["products"]) == 500
    assert len(json.dumps(payload, default=str)) < 1_000_000
    subject, text = rules.digest_text(storm, "2026-06-01")
    assert "50000 alerts on 50 products" in subject
    assert "… and 49500 more alerts on 50 products" in text


def test_weekly_digest_goes_on_mondays_only() -> None:
    monday, tuesday = date(2026, 6, 1), date(2026, 6, 2)
    assert rules.digest_due({"digest": "weekly"}, monday)
    assert not rules.digest_due({"digest": "weekly"}, tuesday)
    assert rules.digest_due({"digest": "daily"}, tuesday)
    assert not rules.digest_due({"digest": "off"}, monday)
    assert rules.wants_daily_digest({"digest": "weekly"})


def test_slack_urls_are_incoming_webhooks_unless_allowed_for_development() -> None:
    good = "https://hooks.slack.com/services/T000/B000/XXXX"
    assert rules.validate_slack_url(good) == good
    for bad in ("https://example.com/services/T/B/X", "https://hooks.slack.com/other",
                "http://hooks.slack.com/services/T/B/X",
                "https://hooks.slack.com:8443/services/T/B/X"):
        with pytest.raises(rules.InvalidChannelTarget):
            rules.validate_slack_url(bad)
    assert rules.validate_slack_url("http://127.0.0.1:9000/services/T/B/X",
                                    ["127.0.0.1:9000"])


def test_slack_messages_are_block_kit_within_its_limits() -> None:
    alert = _alert(1, 1, "price_change")
    alert["message"] = "Price <dropped> & more"
    message = rules.slack_message(rules.alert_payload(alert, "d", utc(2026, 6, 1)))
    assert message["text"].startswith("WARNING")
    assert "&lt;dropped&gt; &amp; more" in message["blocks"][0]["text"]["text"]
    assert message["blocks"][-1]["elements"][0]["text"].startswith("Sandbox")
    storm = [_alert(n, n, "price_change") for n in range(200)]
    digest = rules.slack_message(rules.digest_payload(storm, "2026-06-01", "d",
                                                      utc(2026, 6, 1)))
    assert len(digest["blocks"]) <= rules.SLACK_MAX_BLOCKS
    assert all(len(b.get("text", {}).get("text", "")) <= rules.SLACK_MAX_TEXT
               for b in digest["blocks"])
    assert rules.slack_failure(410, "channel_is_archived") == (
        "Slack HTTP 410: channel_is_archived", True)
    assert rules.slack_failure(429, "rate_limited")[1] is False
    assert rules.slack_failure(500, "")[1] is False


def test_unverified_email_channels_take_nothing() -> None:
    events = ("alert", "digest")
    assert not rules.channel_accepts("email", events, False, "alert", {})
    assert rules.channel_accepts("email", events, True, "alert", {})
    assert not rules.channel_accepts("email", events, True, "alert", {"email": False})
    assert not rules.channel_accepts("slack", events, True, "report", {})
    assert rules.channel_accepts("slack", events, True, "digest", {})
    assert rules.verify_token_hash("abc") != "abc" and len(rules.verify_token_hash("abc")) == 64
