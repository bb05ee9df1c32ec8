"""Alert types are one enumeration: change detection raises them, the API contract lists
them, and the dashboard's list (web/js/alert-types.js) names every one of them in words."""

from __future__ import annotations

import json
import re
from pathlib import Path

from amazon_pilot.domain.changes import AlertType

ROOT = Path(__file__).resolve().parents[2]


def test_the_contract_lists_the_enumeration() -> None:
    contract = json.loads((ROOT / "shared/amazon_pilot/platform/openapi.json").read_text())
    assert contract["components"]["schemas"]["AlertType"]["enum"] == [t.value for t in AlertType]


def test_the_dashboard_names_every_alert_type_and_no_other() -> None:
    source = (ROOT / "web/js/alert-types.js").read_text()
    entries = re.findall(r'\{ type: "([a-z_]+)", label: "([^"]+)", metric: (null|"[a-z_]+") \}',
                         source)
    assert [t for t, _, _ in entries] == [t.value for t in AlertType]
    assert all(label[0].isupper() and "_" not in label for _, label, _ in entries)
    # a chart metric the product page draws (web/js/pages/product.js METRICS keys)
    page = (ROOT / "web/js/pages/product.js").read_text()
    charted = set(re.findall(r'\{ key: "([a-z_]+)", label:', page))
    assert {m.strip('"') for _, _, m in entries if m != "null"} <= charted
