"""CSV exports: the columns of each export and how a value is written. Pure: the service
feeds rows in batches and streams the lines out (docs/api.md lists the columns).

Cells are written for spreadsheets: numbers as plain decimals, times in ISO 8601 UTC,
missing values empty, enums in words ("Out of stock"), lists joined with "; ".
A text cell that a spreadsheet would run as a formula (starting with = + - @, tab or
carriage return) is prefixed with an apostrophe (OWASP "CSV injection").
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

AVAILABILITY_WORDS = {
    "in_stock": "In stock",
    "low_stock": "Low stock",
    "out_of_stock": "Out of stock",
    "unknown": "Unknown",
    "no_featured_offer": "No featured offer",
}
SEVERITY_WORDS = {"info": "Info", "warning": "Warning", "critical": "Critical"}
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

PRODUCT_COLUMNS: tuple[str, ...] = (
    "id", "asin", "marketplace", "url", "alias", "title", "brand", "tags", "notes",
    "paused", "availability", "price", "list_price", "buy_box_price", "currency",
    "buy_box_seller", "rating", "review_count", "bsr_rank", "bsr_category",
    "subcategory_bsr", "as_of", "fetch_status", "created_at",
)
HISTORY_COLUMNS: tuple[str, ...] = (
    "captured_at", "availability", "price", "list_price", "buy_box_price", "currency",
    "buy_box_seller", "bsr_rank", "subcategory_bsr", "rating", "review_count",
    "offer_count", "seller_count", "bought_past_month",
)
ALERT_COLUMNS: tuple[str, ...] = (
    "id", "created_at", "asin", "product_title", "type", "severity", "metric",
    "old_value", "new_value", "change_pct", "threshold", "message", "acknowledged_at",
)
_COMPARED = ("price", "buy_box_price", "price_rank", "bsr_rank", "subcategory_rank", "rating",
             "review_count", "review_velocity", "price_change_pct", "bsr_change_pct")
_GAPS = ("price_gap", "price_gap_pct", "buy_box_gap", "bsr_gap", "subcategory_bsr_gap",
         "rating_gap", "review_count_gap", "review_velocity_gap")
COMPARISON_COLUMNS: tuple[str, ...] = (
    "role", "asin", "title", "currency", "availability", *_COMPARED, "bsr_category",
    "subcategory", "trend", *_GAPS, "as_of",
)


def words(kind: str, value: str | None) -> str | None:
    """An enum value in words (the value itself when no words are known)."""
    if value is None:
        return None
    table = {"availability": AVAILABILITY_WORDS, "severity": SEVERITY_WORDS}.get(kind, {})
    return table.get(value) or value.replace("_", " ").capitalize()


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, float):
        return format(Decimal(repr(value)).normalize(), "f")
    if isinstance(value, Decimal):
        return format(value.normalize(), "f")
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        return "; ".join(cell(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def lines(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> str:
    """CSV text (RFC 4180, CRLF line ends) of `rows`, each a mapping by column name."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([cell(row.get(name)) for name in columns])
    return buffer.getvalue()


def header(columns: Sequence[str]) -> str:
    return ",".join(columns) + "\r\n"


def comparison_rows(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One row per product of a group comparison (the API's JSON answer): the main
    product first, then each competitor with its gaps (main minus competitor)."""
    compared = body["comparison"]
    as_of = {p["asin"]: p.get("as_of") for p in body.get("products", [])}
    entries: list[tuple[str, Mapping[str, Any], Mapping[str, Any]]] = [
        ("main", compared["main"], {})]
    entries += [("competitor", c["product"], c["gaps"]) for c in compared["competitors"]]
    rows = []
    for role, product, gaps in entries:
        row: dict[str, Any] = {
            "role": role, "asin": product["asin"], "title": product["title"],
            "currency": product["currency"],
            "availability": words("availability", product["availability"]),
            "bsr_category": product["bsr_category"], "subcategory": product["subcategory"],
            "trend": list(product["trend_labels"]), "as_of": as_of.get(product["asin"]),
        }
        row.update({name: product[name]["value"] for name in _COMPARED})
        row.update({name: (gaps.get(name) or {}).get("value") for name in _GAPS})
        rows.append(row)
    return rows
