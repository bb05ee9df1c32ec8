"""Storing one run's observations: snapshots, each product's `latest`, and alerts.

Change detection runs on the rows that were really inserted, against each
product's previous observation (products.latest), for every seller tracking it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from amazon_pilot.domain.changes import AlertDraft, LatestValues, Thresholds, detect_changes
from amazon_pilot.domain.snapshot import Snapshot
from amazon_pilot.platform.cache import drop_tagged
from amazon_pilot.tracking import store

# (previous values, new snapshot, new values) of one product in one run
Observed = tuple[LatestValues | None, Snapshot, LatestValues | None]


@dataclass
class IngestResult:
    inserted: int = 0
    skipped: int = 0  # already stored (a replay)
    alert_ids: list[str] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)


def ingest(conn: Connection, captured_at: datetime, run_id: str | None,
           observations: list[tuple[int, Snapshot]]) -> IngestResult:
    """Store one run's observations, move each product's `latest`, raise alerts."""
    result = IngestResult()
    rows = [store.snapshot_row(pid, captured_at, run_id, snap) for pid, snap in observations]
    inserted = set(store.write_snapshots(conn, rows))
    result.inserted, result.skipped = len(inserted), len(rows) - len(inserted)
    fresh = [(pid, snap) for pid, snap in observations if pid in inserted]
    if not fresh:
        return result
    ids = [pid for pid, _ in fresh]
    result.product_ids = ids
    previous = store.latest_of(conn, ids)
    moves: list[store.LatestMove] = []
    drafts_by_product: dict[int, Observed] = {}
    for pid, snap in fresh:
        latest, latest_at = previous.get(pid, (None, None))
        if latest_at is not None and latest_at > captured_at:
            continue  # a backfill older than what we know: history only, no alerts
        prior = LatestValues.from_dict(latest)
        current = LatestValues.of(snap) if snap.found else prior
        drafts_by_product[pid] = (prior, snap, current)
        moves.append({
            "id": pid,
            "latest": json.dumps(_display_values(snap, current), ensure_ascii=False),
            "found": snap.found,
            "title": snap.title,
            "brand": snap.brand,
            "image": snap.image_urls[0] if snap.image_urls else None,
            "source": snap.data_source,
        })
    if moves:
        store.move_latest(conn, captured_at, moves)
    result.alert_ids = raise_alerts(conn, captured_at, drafts_by_product)
    drop_tagged(conn, [f"product:{pid}" for pid in ids])
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
    pending: list[store.NewAlert] = []
    for tracker in store.active_trackers(conn, list(observed)):
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
    return store.insert_alerts(conn, captured_at, pending)


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
