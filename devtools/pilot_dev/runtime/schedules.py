"""EventBridge schedule expressions: rate(...) and cron(...), next fire times."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from croniter import croniter

_RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
_CRON = re.compile(r"^cron\(([^)]*)\)$")
_DOW = {"1": "SUN", "2": "MON", "3": "TUE", "4": "WED", "5": "THU", "6": "FRI", "7": "SAT"}


class ScheduleError(ValueError):
    pass


@dataclass(frozen=True)
class Schedule:
    expression: str
    every: timedelta | None = None
    cron: str | None = None  # five-field form croniter understands

    def next_after(self, moment: datetime) -> datetime:
        if self.every is not None:
            return moment + self.every
        assert self.cron is not None
        return croniter(self.cron, moment).get_next(datetime)


def parse_schedule(expression: str) -> Schedule:
    """Validate like EventBridge: rate(1 minute) not rate(1 minutes); 6-field cron with ?."""
    expression = expression.strip()
    rate = _RATE.match(expression)
    if rate:
        value, unit = int(rate.group(1)), rate.group(2)
        if value <= 0:
            raise ScheduleError(f"{expression}: the rate must be positive")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleError(f"{expression}: use the singular unit for 1, plural otherwise")
        seconds = {"minute": 60, "hour": 3600, "day": 86400}[unit.rstrip("s")]
        return Schedule(expression, every=timedelta(seconds=value * seconds))
    cron = _CRON.match(expression)
    if not cron:
        raise ScheduleError(f"{expression}: not a rate(...) or cron(...) expression")
    fields = cron.group(1).split()
    if len(fields) != 6:
        raise ScheduleError(f"{expression}: cron needs 6 fields (min hour dom month dow year)")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleError(f"{expression}: exactly one of day-of-month and day-of-week is '?'")
    if year not in ("*",) and not re.fullmatch(r"\d{4}(-\d{4})?", year):
        raise ScheduleError(f"{expression}: unsupported year field {year!r}")
    dow = re.sub(r"\b([1-7])\b", lambda m: _DOW[m.group(1)], dow)
    five = " ".join([minute, hour, "*" if dom == "?" else dom, month, "*" if dow == "?" else dow])
    if not croniter.is_valid(five):
        raise ScheduleError(f"{expression}: invalid cron fields")
    return Schedule(expression, cron=five)
