"""Writing snapshots: COPY into a staging table, then one idempotent INSERT.

COPY is the fastest way into Postgres from Python; the staging table lets the final
INSERT say ON CONFLICT DO NOTHING, so a replayed batch writes nothing twice.
Change detection runs on the rows that were really inserted, against each
product's previous observation (products.latest), for every seller tracking it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Connection, text

from amazon_pilot.domain.changes import (
    AlertDraft,
    LatestValues,
    Thresholds,
    content_hash,
    detect_changes,
)
from amazon_pilot.domain.snapshot import Snapshot

SNAPSHOT_COLUMNS = (
    "product_id", "captured_at", "scrape_run_id", "found", "price", "list_price", "currency",
    "buy_box_price", "buy_box_seller", "availability", "stock_count", "rating", "review_count",
    "bsr_rank", "bsr_category", "subcategory_bsr", "subcategory_ranks", "title", "content_hash",
    "image_count", "details", "data_source",
)
_COLUMN_LIST = ", ".join(SNAPSHOT_COLUMNS)
# (previous values, new snapshot, new values) of one product in one run
Observed = tuple[LatestValues | None, Snapshot, LatestValues | None]

_known_months: set[date] = set()
_months_lock = threading.Lock()


@dataclass
class IngestResult:
    inserted: int = 0
    skipped: int = 0  # already stored (a replay)
    alert_ids: list[str] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)


def snapshot_row(product_id: int, captured_at: datetime, run_id: str | None,
                 snap: Snapshot) -> tuple[Any, ...]:
    sub = snap.subcategory_ranks[0].rank if snap.subcategory_ranks else None
    details = {
        "brand": snap.brand,
        "bullet_points": snap.bullet_points,
        "description": snap.description,
        "image_urls": snap.image_urls,
        "video_count": snap.video_count,
        "variation_count": snap.variation_count,
        "buy_box_seller_id": snap.buy_box_seller_id,
        "fulfilled_by": snap.fulfilled_by,
        "is_prime": snap.is_prime,
        "has_deal": snap.has_deal,
        "past_sales": snap.past_sales,
        "parse_warnings": snap.parse_warnings,
    }
    return (
        product_id, captured_at, run_id, snap.found, snap.price, snap.list_price, snap.currency,
        snap.buy_box_price, snap.buy_box_seller, snap.availability.value, snap.stock_count,
        snap.rating, snap.review_count, snap.bsr_rank, snap.bsr_category, sub,
        json.dumps([{"rank": r.rank, "category": r.category} for r in snap.subcategory_ranks],
                   ensure_ascii=False),
        snap.title, content_hash(snap), snap.image_count,
        json.dumps(details, ensure_ascii=False), snap.data_source,
    )


def ensure_partitions(conn: Connection, moments: Iterable[datetime]) -> None:
    months = {m.date().replace(day=1) for m in moments} - _known_months
    if not months:
        return
    conn.execute(text("SELECT ensure_snapshot_partitions(:a, :b)"),
                 {"a": min(months), "b": max(months)})
    with _months_lock:
        _known_months.update(months)


def copy_rows(conn: Connection, rows: Iterable[tuple[Any, ...]], table: str) -> None:
    raw = conn.connection.driver_connection
    assert raw is not None
    with raw.cursor() as cursor, cursor.copy(f"COPY {table} ({_COLUMN_LIST}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def write_snapshots(conn: Connection, rows: list[tuple[Any, ...]]) -> list[int]:
    """Insert rows that are not stored yet; returns the product ids really inserted."""
    if not rows:
        return []
    ensure_partitions(conn, {row[1] for row in rows})
    conn.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS snapshot_stage"
        " (LIKE snapshots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))
    copy_rows(conn, rows, "snapshot_stage")
    inserted = conn.execute(text(
        f"INSERT INTO snapshots ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM snapshot_stage"
        " ON CONFLICT (product_id, captured_at) DO NOTHING RETURNING product_id"
    )).scalars().all()
    conn.execute(text("TRUNCATE snapshot_stage"))
    return list(inserted)


def ingest(conn: Connection, captured_at: datetime, run_id: str | None,
           observations: list[tuple[int, Snapshot]]) -> IngestResult:
    """Store one run's observations, move each product's `latest`, raise alerts."""
    result = IngestResult()
    rows = [snapshot_row(pid, captured_at, run_id, snap) for pid, snap in observations]
    inserted = set(write_snapshots(conn, rows))
    result.inserted, result.skipped = len(inserted), len(rows) - len(inserted)
    fresh = [(pid, snap) for pid, snap in observations if pid in inserted]
    if not fresh:
        return result
    ids = [pid for pid, _ in fresh]
    result.product_ids = ids
    previous = {
        row.id: (row.latest, row.latest_captured_at)
        for row in conn.execute(
            text("SELECT id, latest, latest_captured_at FROM products WHERE id = ANY(:ids)"),
            {"ids": ids})
    }
    moved: list[dict[str, Any]] = []
    drafts_by_product: dict[int, Observed] = {}
    for pid, snap in fresh:
        latest, latest_at = previous.get(pid, (None, None))
        if latest_at is not None and latest_at > captured_at:
            continue  # a backfill older than what we know: history only, no alerts
        prior = LatestValues.from_dict(latest)
        current = LatestValues.of(snap) if snap.found else prior
        drafts_by_product[pid] = (prior, snap, current)
        moved.append({
            "id": pid,
            "latest": json.dumps(_display_values(snap, current), ensure_ascii=False),
            "found": snap.found,
            "title": snap.title,
            "brand": snap.brand,
            "image": snap.image_urls[0] if snap.image_urls else None,
            "source": snap.data_source,
        })
    if moved:
        conn.execute(text(
            "UPDATE products p SET"
            " latest = CASE WHEN m.found THEN CAST(m.latest AS jsonb) ELSE p.latest END,"
            " latest_captured_at = :at,"
            " last_fetch_status = CASE WHEN m.found THEN 'ok' ELSE 'not_found' END,"
            " not_found_since = CASE WHEN m.found THEN NULL"
            "   ELSE coalesce(p.not_found_since, :at) END,"
            " title = coalesce(m.title, p.title), brand = coalesce(m.brand, p.brand),"
            " main_image_url = coalesce(m.image, p.main_image_url), data_source = m.source"
            " FROM jsonb_to_recordset(CAST(:moved AS jsonb)) AS m(id bigint, latest text,"
            "   found boolean, title text, brand text, image text, source text)"
            " WHERE p.id = m.id"), {"at": captured_at, "moved": json.dumps(moved)})
    result.alert_ids = raise_alerts(conn, captured_at, drafts_by_product)
    conn.execute(text("DELETE FROM cache_entries WHERE tags && CAST(:tags AS text[])"),
                 {"tags": [f"product:{pid}" for pid in ids]})
    return result


def _display_values(snap: Snapshot, values: LatestValues | None) -> dict[str, Any]:
    out = values.to_dict() if values else {}
    out.update({
        "currency": snap.currency,
        "stock_count": snap.stock_count,
        "in_stock": snap.in_stock,
        "subcategory_ranks": [{"rank": r.rank, "category": r.category}
                              for r in snap.subcategory_ranks],
        "image_count": snap.image_count,
        "data_source": snap.data_source,
    })
    return out


def raise_alerts(conn: Connection, captured_at: datetime,
                 observed: dict[int, Observed]) -> list[str]:
    """Judge each observation against every tracking seller's thresholds."""
    if not observed:
        return []
    trackers = conn.execute(text(
        "SELECT id, user_id, product_id, thresholds FROM tracked_products"
        " WHERE product_id = ANY(:ids) AND NOT is_paused"), {"ids": list(observed)}).all()
    pending: list[dict[str, Any]] = []
    for tracker in trackers:
        prior, snap, current = observed[tracker.product_id]
        drafts: list[AlertDraft] = detect_changes(
            prior, snap, Thresholds.from_dict(tracker.thresholds),
            current if snap.found else None)
        pending.extend(
            {
                "user_id": str(tracker.user_id), "tracked": str(tracker.id),
                "product_id": tracker.product_id, "type": d.type, "severity": d.severity,
                "metric": d.metric, "old": _text(d.old_value), "new": _text(d.new_value),
                "pct": d.change_pct, "threshold": d.threshold, "message": d.message,
            }
            for d in drafts
        )
    if not pending:
        return []
    inserted = conn.execute(text(
        "INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity, metric,"
        " old_value, new_value, change_pct, threshold, message, snapshot_captured_at)"
        " SELECT a.user_id, a.tracked, a.product_id, a.type, a.severity, a.metric, a.old,"
        " a.new, a.pct, a.threshold, a.message, :at"
        " FROM jsonb_to_recordset(CAST(:alerts AS jsonb)) AS a(user_id uuid, tracked uuid,"
        "   product_id bigint, type text, severity text, metric text, old text, new text,"
        "   pct double precision, threshold double precision, message text)"
        " ON CONFLICT (tracked_product_id, type, snapshot_captured_at) DO NOTHING"
        " RETURNING id"), {"alerts": json.dumps(pending), "at": captured_at}).scalars().all()
    return [str(i) for i in inserted]


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
