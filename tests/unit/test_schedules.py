"""Schedule expressions are validated as EventBridge validates them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pilot_dev.runtime.schedules import ScheduleError, parse_schedule


def test_rate_units_follow_eventbridge_grammar() -> None:
    assert parse_schedule("rate(1 minute)").every == timedelta(minutes=1)
    assert parse_schedule("rate(5 hours)").every == timedelta(hours=5)
    with pytest.raises(ScheduleError, match="singular"):
        parse_schedule("rate(1 minutes)")
    with pytest.raises(ScheduleError, match="singular"):
        parse_schedule("rate(2 day)")
    with pytest.raises(ScheduleError):
        parse_schedule("rate(0 minutes)")


def test_cron_needs_six_fields_and_one_question_mark() -> None:
    with pytest.raises(ScheduleError, match="6 fields"):
        parse_schedule("cron(0 6 * * *)")
    with pytest.raises(ScheduleError, match="exactly one"):
        parse_schedule("cron(0 6 * * * *)")
    with pytest.raises(ScheduleError, match="exactly one"):
        parse_schedule("cron(0 6 ? * ? *)")
    with pytest.raises(ScheduleError, match="invalid"):
        parse_schedule("cron(61 6 * * ? *)")
    with pytest.raises(ScheduleError, match="not a rate"):
        parse_schedule("every day at six")


def test_cron_next_fire_times() -> None:
    daily = parse_schedule("cron(0 6 * * ? *)")
    start = datetime(2026, 11, 23, 7, 0, tzinfo=UTC)
    assert daily.next_after(start) == datetime(2026, 11, 24, 6, 0, tzinfo=UTC)
    # day-of-week 2 is Monday in EventBridge (1 = Sunday)
    weekly = parse_schedule("cron(0 7 ? * 2 *)")
    nxt = weekly.next_after(start)
    assert nxt.weekday() == 0 and nxt.hour == 7
    named = parse_schedule("cron(0 7 ? * MON *)")
    assert named.next_after(start) == nxt
