"""CSV exports of tracking: tracked products with their latest values, one product's
history (every metric, at the chosen interval) and alerts.

Each export streams: the header goes out first, then batches of rows read by keyset
(never OFFSET), each batch in its own short read so no connection is held while a slow
client drains the answer. The ownership check (and every argument check) happens
before the first byte, so another seller's id is a plain 404. Columns: domain.csv_export
and docs/api.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import UUID

from amazon_pilot.domain import csv_export
from amazon_pilot.platform.db import reading
from amazon_pilot.platform.errors import NotFound, ValidationFailed
from amazon_pilot.tracking import store
from amazon_pilot.tracking.service import tracked_out

if TYPE_CHECKING:
    from amazon_pilot.platform.security import CurrentUser

BATCH = 1000  # rows per read: a few hundred kB of CSV


def _product_row(row: store.TrackedRow) -> dict[str, Any]:
    product = tracked_out(row)
    latest = product.latest.model_dump() if product.latest else {}
    return {
        **latest, "id": product.id, "asin": product.asin, "marketplace": product.marketplace,
        "url": product.url, "alias": product.alias, "title": product.title,
        "brand": product.brand, "tags": product.tags, "notes": product.notes,
        "paused": product.is_paused,
        "availability": csv_export.words("availability", latest.get("availability")),
        "as_of": product.as_of, "fetch_status": product.fetch_status,
        "created_at": product.created_at,
    }


def products_csv(user: CurrentUser, *, q: str | None, paused: bool | None,
                 tag: str | None) -> Iterator[str]:
    yield csv_export.header(csv_export.PRODUCT_COLUMNS)
    after: tuple[datetime, UUID] | None = None
    while True:
        with reading() as conn:
            rows = store.tracked_batch(conn, user.id, q=q, paused=paused, tag=tag,
                                       after=after, size=BATCH)
        if not rows:
            return
        yield csv_export.lines(csv_export.PRODUCT_COLUMNS, [_product_row(r) for r in rows])
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)


def history_range(start: datetime | None, end: datetime | None
                  ) -> tuple[datetime, datetime]:
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=365)
    start = start if start.tzinfo else start.replace(tzinfo=UTC)
    end = end if end.tzinfo else end.replace(tzinfo=UTC)
    if start > end:
        raise ValidationFailed("'from' must be before 'to'",
                               details=[{"field": "from", "message": "after 'to'"}])
    if end - start > timedelta(days=3 * 366):
        raise ValidationFailed("ask for at most 3 years at once",
                               details=[{"field": "from", "message": "range over 3 years"}])
    return start, end


def history_csv(user: CurrentUser, tracked_id: UUID, start: datetime | None,
                end: datetime | None, interval: str) -> tuple[str, Iterator[str]]:
    """(the file name, the CSV lines); NotFound before any line for another's id."""
    start, end = history_range(start, end)
    with reading() as conn:
        row = store.get_tracked(conn, user.id, tracked_id)
    if row is None:
        raise NotFound("no such tracked product")
    product_id = row.product_id

    def lines() -> Iterator[str]:
        yield csv_export.header(csv_export.HISTORY_COLUMNS)
        after: datetime | None = None
        while True:
            with reading() as conn:
                rows = store.history_batch(conn, product_id, start, end, interval, after,
                                           BATCH)
            if not rows:
                return
            for r in rows:
                r["captured_at"] = r.pop("t")
                r["availability"] = csv_export.words("availability", r["availability"])
            yield csv_export.lines(csv_export.HISTORY_COLUMNS, rows)
            if len(rows) < BATCH:
                return
            after = rows[-1]["captured_at"]

    name = f"history-{row.asin}-{row.marketplace}-{interval}.csv"
    return name, lines()


def alerts_csv(user: CurrentUser, filters: dict[str, Any]) -> Iterator[str]:
    yield csv_export.header(csv_export.ALERT_COLUMNS)
    after: tuple[datetime, UUID] | None = None
    while True:
        with reading() as conn:
            rows = store.alerts_batch(conn, user.id, filters, after, BATCH)
        if not rows:
            return
        yield csv_export.lines(csv_export.ALERT_COLUMNS, [
            {**r._asdict(), "severity": csv_export.words("severity", r.severity)}
            for r in rows])
        if len(rows) < BATCH:
            return
        after = (rows[-1].created_at, rows[-1].id)
