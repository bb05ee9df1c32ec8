"""The defaults the docs promise are the ones the code applies (issue 17 found the
digest default documented as "daily" while new accounts started with "off")."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

from amazon_pilot.domain.accounts import DEFAULT_NOTIFICATION_PREFS
from amazon_pilot.domain.changes import DEFAULT_THRESHOLDS

DOC = Path(__file__).resolve().parents[2] / "docs" / "notifications.md"


def _documented_defaults() -> dict[str, str]:
    section = DOC.read_text().split("### Threshold defaults", 1)[1].split("\n## ", 1)[0]
    return dict(re.findall(r"^\| `(\w+)` \| ([^|]+?) \|", section, re.M))


def _shown(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def test_every_threshold_default_is_documented_as_the_code_sets_it() -> None:
    documented = _documented_defaults()
    in_code = {f.name: _shown(getattr(DEFAULT_THRESHOLDS, f.name)) for f in
               fields(DEFAULT_THRESHOLDS)}
    assert documented == in_code


def test_the_notification_preference_defaults_in_the_docs_are_the_code_s() -> None:
    text = DOC.read_text()
    assert f'`digest` `"{DEFAULT_NOTIFICATION_PREFS["digest"]}"`' in text
    assert f'new accounts\nstart with `"{DEFAULT_NOTIFICATION_PREFS["digest"]}"`' in text
    cap = DEFAULT_NOTIFICATION_PREFS["max_notifications_per_product_per_day"]
    assert f"`max_notifications_per_product_per_day` {cap}" in text
