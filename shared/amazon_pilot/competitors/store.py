"""All SQL of competitor groups, their members and reports.

Rows leave as the dataclasses below. Also turns stored snapshots into the comparison
domain's ``ProductView``: the latest full observation of every product of a group plus
its daily history, in one round trip.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal, TypeVar
from uuid import UUID

from sqlalchemy import Connection, Row, text

from amazon_pilot.domain.snapshot import HistoryPoint
from amazon_pilot.platform.db import as_float, as_int, as_json, reading
from amazon_pilot.tracking.store import SNAPSHOT_READ, snapshot_from_row

if TYPE_CHECKING:
    from amazon_pilot.domain.comparison import ProductView

GROUP_COLUMNS = "g.id, g.user_id, g.name, g.main_product_id, g.is_active, g.created_at," \
                " g.updated_at"


@dataclass(frozen=True, slots=True)
class GroupRow:
    id: UUID
    user_id: UUID
    name: str
    main_product_id: int
    is_active: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class GroupProductRow:
    """One product of a group, with what the shared products row knows of it."""

    group_id: UUID
    role: Literal["main", "competitor"]
    position: int  # 0 for the main product, then the order competitors were added
    product_id: int
    asin: str
    marketplace: str
    title: str | None
    brand: str | None
    main_image_url: str | None
    latest_captured_at: datetime | None
    last_fetch_status: str | None
    data_source: str | None

    @property
    def ref(self) -> tuple[str, str]:
        return self.asin, self.marketplace


@dataclass(frozen=True, slots=True)
class ReportRow:
    id: UUID
    group_id: UUID
    user_id: UUID
    status: str
    trigger: str
    period: str | None
    window_days: int
    attempts: int
    generated_by: str | None
    model: str | None
    sandbox: bool | None
    fallback_reason: str | None
    cache: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    llm_latency_ms: int | None
    data_source: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    report: dict[str, Any] | None = None  # selected by list_reports and get_report
    comparison: dict[str, Any] | None = None  # selected by get_report only


T = TypeVar("T")


def _typed(cls: type[T], row: Row[Any] | None) -> T | None:
    return None if row is None else cls(**row._mapping)


# ------------------------------------------------------------------ groups


def count_groups(conn: Connection, user_id: UUID) -> int:
    return int(conn.execute(text("SELECT count(*) FROM competitor_groups WHERE user_id = :u"),
                            {"u": user_id}).scalar_one())


def insert_group(conn: Connection, user_id: UUID, name: str, main_product_id: int,
                 competitor_ids: Sequence[int]) -> UUID:
    group_id: UUID = conn.execute(text(
        "INSERT INTO competitor_groups (user_id, name, main_product_id)"
        " VALUES (:u, :n, :m) RETURNING id"),
        {"u": user_id, "n": name, "m": main_product_id}).scalar_one()
    conn.execute(text(
        "INSERT INTO competitor_group_members (group_id, product_id, position)"
        " SELECT :g, pid, ord FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS t(pid, ord)"),
        {"g": group_id, "ids": list(competitor_ids)})
    return group_id


def get_group(conn: Connection, user_id: UUID, group_id: UUID, *,
              lock: bool = False) -> GroupRow | None:
    """The group when it belongs to `user_id`, else None. `lock` serialises member changes."""
    sql = (f"SELECT {GROUP_COLUMNS} FROM competitor_groups g"
           " WHERE g.id = :g AND g.user_id = :u")
    if lock:
        sql += " FOR UPDATE"
    return _typed(GroupRow, conn.execute(text(sql), {"g": group_id, "u": user_id}).first())


def owned_group(user_id: UUID, group_id: UUID) -> GroupRow | None:
    """get_group on its own connection (the routes' ownership dependency). Here, not in
    the service, so that the products function's market routes need not import it."""
    with reading() as conn:
        return get_group(conn, user_id, group_id)


def find_group_by_name(conn: Connection, user_id: UUID, name: str) -> GroupRow | None:
    return _typed(GroupRow, conn.execute(text(
        f"SELECT {GROUP_COLUMNS} FROM competitor_groups g WHERE g.user_id = :u AND g.name = :n"
        " ORDER BY g.created_at LIMIT 1"), {"u": user_id, "n": name}).first())


def list_groups(conn: Connection, user_id: UUID, limit: int, offset: int
                ) -> tuple[list[GroupRow], int]:
    rows = conn.execute(text(
        f"SELECT {GROUP_COLUMNS} FROM competitor_groups g WHERE g.user_id = :u"
        " ORDER BY g.created_at DESC, g.id LIMIT :limit OFFSET :offset"),
        {"u": user_id, "limit": limit, "offset": offset}).all()
    return [GroupRow(**r._mapping) for r in rows], count_groups(conn, user_id)


def group_products(conn: Connection, group_ids: Sequence[UUID]
                   ) -> dict[UUID, list[GroupProductRow]]:
    """Each group's products, main first then competitors in the order they were added."""
    rows = conn.execute(text(
        "SELECT m.group_id, m.role, m.position, p.id AS product_id, p.asin, p.marketplace,"
        " p.title, p.brand, p.main_image_url, p.latest_captured_at, p.last_fetch_status,"
        " p.data_source"
        " FROM (SELECT id AS group_id, 'main' AS role, 0 AS position,"
        "              main_product_id AS product_id"
        "       FROM competitor_groups WHERE id = ANY(:ids)"
        "       UNION ALL"
        "       SELECT group_id, 'competitor', position, product_id"
        "       FROM competitor_group_members WHERE group_id = ANY(:ids)) m"
        " JOIN products p ON p.id = m.product_id"
        " ORDER BY m.group_id, m.position"), {"ids": list(group_ids)}).all()
    out: dict[UUID, list[GroupProductRow]] = {gid: [] for gid in group_ids}
    for row in rows:
        out.setdefault(row.group_id, []).append(GroupProductRow(**row._mapping))
    return out


def update_group(conn: Connection, group_id: UUID, changes: dict[str, Any]) -> None:
    sets, params = [], {"g": group_id}
    for name in ("name", "is_active"):
        if name in changes:
            sets.append(f"{name} = :{name}")
            params[name] = changes[name]
    conn.execute(text(
        f"UPDATE competitor_groups SET {', '.join([*sets, 'updated_at = now()'])}"
        " WHERE id = :g"), params)


def delete_group(conn: Connection, user_id: UUID, group_id: UUID) -> bool:
    result = conn.execute(text("DELETE FROM competitor_groups WHERE id = :g AND user_id = :u"),
                          {"g": group_id, "u": user_id})
    return bool(result.rowcount)


def add_member(conn: Connection, group_id: UUID, product_id: int) -> None:
    conn.execute(text(
        "INSERT INTO competitor_group_members (group_id, product_id, position)"
        " SELECT :g, :p, coalesce(max(position), 0) + 1 FROM competitor_group_members"
        " WHERE group_id = :g ON CONFLICT DO NOTHING"), {"g": group_id, "p": product_id})
    touch(conn, group_id)


def remove_member(conn: Connection, group_id: UUID, product_id: int) -> None:
    conn.execute(text("DELETE FROM competitor_group_members WHERE group_id = :g"
                      " AND product_id = :p"), {"g": group_id, "p": product_id})
    touch(conn, group_id)


def touch(conn: Connection, group_id: UUID) -> None:
    conn.execute(text("UPDATE competitor_groups SET updated_at = clock_timestamp()"
                      " WHERE id = :g"), {"g": group_id})


# ------------------------------------------------------------------ comparison input

# Order of the values in each history entry (a JSON array per day).
HISTORY_FIELDS = ("t", "price", "list_price", "buy_box_price", "buy_box_seller", "bsr_rank",
                  "subcategory_bsr", "rating", "review_count", "availability")
# One round trip, one row per product: its latest observation (with bullets and title, for
# the features) and, as one JSON array, the last found observation of each day since the
# window start. The window is anchored on the group's newest observation, not the clock,
# as the comparison domain anchors it. JSON keeps the client side cheap: one C-parsed
# value per product instead of a row object (and Decimals) per day.
COMPARISON_SQL = f"""
WITH latest AS (
    SELECT s.product_id, s.captured_at, {SNAPSHOT_READ}
    FROM unnest(CAST(:ids AS bigint[])) AS ids(pid)
    CROSS JOIN LATERAL (
        SELECT * FROM snapshots x WHERE x.product_id = ids.pid
        ORDER BY x.captured_at DESC LIMIT 1) s
), daily AS (
    SELECT DISTINCT ON (product_id, date_trunc('day', captured_at))
           product_id, captured_at, price, list_price, buy_box_price, buy_box_seller,
           bsr_rank, subcategory_bsr, rating, review_count, availability
    FROM snapshots
    WHERE product_id = ANY(CAST(:ids AS bigint[])) AND found
      AND captured_at >= (SELECT max(captured_at) FROM latest) - make_interval(days => :days)
    ORDER BY product_id, date_trunc('day', captured_at), captured_at DESC
)
SELECT l.*, (
    SELECT json_agg(json_build_array(
               extract(epoch FROM d.captured_at), d.price, d.list_price, d.buy_box_price,
               d.buy_box_seller, d.bsr_rank, d.subcategory_bsr, d.rating, d.review_count,
               d.availability) ORDER BY d.captured_at)
    FROM daily d WHERE d.product_id = l.product_id) AS history
FROM latest l
"""


_IN_STOCK = {"in_stock": True, "low_stock": True, "out_of_stock": False}


def history_point(entry: Sequence[Any]) -> HistoryPoint:
    """One day of history from its JSON array (see HISTORY_FIELDS)."""
    t, price, list_price, bb_price, bb_seller, bsr, sub_bsr, rating, reviews, avail = entry
    return HistoryPoint(
        captured_at=datetime.fromtimestamp(float(t), UTC), price=as_float(price),
        list_price=as_float(list_price), buy_box_price=as_float(bb_price), buy_box_seller=bb_seller,
        bsr_rank=as_int(bsr), subcategory_bsr=as_int(sub_bsr), rating=as_float(rating),
        review_count=as_int(reviews), in_stock=_IN_STOCK.get(avail),
    )


@dataclass(slots=True)
class GroupViews:
    main: ProductView
    competitors: list[ProductView]
    data_sources: dict[str, str | None]  # asin -> data source of its latest observation
    as_of: dict[str, datetime | None]  # asin -> when it was last observed


def load_views(conn: Connection, products: Sequence[GroupProductRow],
               window_days: int) -> GroupViews:
    """ProductViews for a group's products (main first), from one query."""
    # Imported here: the products function loads this store for group ownership only, and
    # the comparison domain would add ≈ 7 ms to its cold start.
    from amazon_pilot.domain.comparison import ProductView

    ids = [int(p.product_id) for p in products]
    rows = conn.execute(text(COMPARISON_SQL), {"ids": ids, "days": window_days + 1}).all()
    latest: dict[int, Any] = {row.product_id: row for row in rows}
    history: dict[int, list[HistoryPoint]] = {
        row.product_id: [history_point(e) for e in as_json(row.history) or []] for row in rows
    }
    views: list[ProductView] = []
    sources: dict[str, str | None] = {}
    as_of: dict[str, datetime | None] = {}
    for p in products:
        last = latest.get(int(p.product_id))
        snap = None if last is None else snapshot_from_row(p.asin, p.marketplace, last)
        views.append(ProductView(asin=p.asin, title=p.title or (snap.title if snap else None),
                                 snapshot=snap,
                                 history=history.get(int(p.product_id), [])))
        sources[p.asin] = None if last is None else last.data_source
        as_of[p.asin] = None if last is None else last.captured_at
    return GroupViews(views[0], views[1:], sources, as_of)


# ------------------------------------------------------------------ reports

REPORT_COLUMNS = (
    "id, group_id, user_id, status, trigger, period, window_days, attempts, generated_by,"
    " model, sandbox, fallback_reason, cache, prompt_tokens, completion_tokens, cost_usd,"
    " llm_latency_ms, data_source, error, created_at, started_at, finished_at"
)


def insert_report(conn: Connection, group_id: UUID, user_id: UUID, window_days: int,
                  trigger: str = "user") -> UUID:
    report_id: UUID = conn.execute(text(
        "INSERT INTO competitor_reports (group_id, user_id, window_days, trigger)"
        " VALUES (:g, :u, :w, :t) RETURNING id"),
        {"g": group_id, "u": user_id, "w": window_days, "t": trigger}).scalar_one()
    return report_id


def in_flight_report(conn: Connection, group_id: UUID, window_days: int) -> ReportRow | None:
    """A queued or running report of the group for this window, if any."""
    return _typed(ReportRow, conn.execute(text(
        f"SELECT {REPORT_COLUMNS} FROM competitor_reports WHERE group_id = :g"
        " AND window_days = :w AND trigger = 'user' AND status IN ('queued', 'running')"
        " AND created_at > now() - interval '1 hour'"
        " ORDER BY created_at DESC LIMIT 1"), {"g": group_id, "w": window_days}).first())


def get_report(conn: Connection, group_id: UUID, report_id: UUID, *,
               with_body: bool = True) -> ReportRow | None:
    extra = ", report, comparison" if with_body else ""
    return _typed(ReportRow, conn.execute(text(
        f"SELECT {REPORT_COLUMNS}{extra} FROM competitor_reports"
        " WHERE id = :r AND group_id = :g"), {"r": report_id, "g": group_id}).first())


def list_reports(conn: Connection, group_id: UUID, limit: int, offset: int
                 ) -> tuple[list[ReportRow], int]:
    rows = conn.execute(text(
        f"SELECT {REPORT_COLUMNS}, report FROM competitor_reports WHERE group_id = :g"
        " ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset"),
        {"g": group_id, "limit": limit, "offset": offset}).all()
    total = conn.execute(text("SELECT count(*) FROM competitor_reports WHERE group_id = :g"),
                         {"g": group_id}).scalar_one()
    return [ReportRow(**r._mapping) for r in rows], int(total)


def claim_report(conn: Connection, report_id: UUID) -> ReportRow | None:
    """Mark a report running (unless done); None when it no longer exists."""
    return _typed(ReportRow, conn.execute(text(
        "UPDATE competitor_reports SET status = CASE WHEN status = 'done' THEN 'done'"
        " ELSE 'running' END, attempts = attempts + CASE WHEN status = 'done' THEN 0 ELSE 1 END,"
        " started_at = CASE WHEN status = 'done' THEN started_at ELSE now() END"
        f" WHERE id = :r RETURNING {REPORT_COLUMNS}"), {"r": report_id}).first())


def finish_report(conn: Connection, report_id: UUID, values: dict[str, Any]) -> None:
    conn.execute(text(
        "UPDATE competitor_reports SET status = 'done', generated_by = :generated_by,"
        " model = :model, sandbox = :sandbox, fallback_reason = :fallback_reason,"
        " cache = :cache, prompt_tokens = :prompt_tokens,"
        " completion_tokens = :completion_tokens, cost_usd = :cost_usd,"
        " llm_latency_ms = :llm_latency_ms, data_source = :data_source,"
        " report = CAST(:report AS jsonb), comparison = CAST(:comparison AS jsonb),"
        " error = NULL, finished_at = now() WHERE id = :id"),
        {**values, "id": report_id})


def fail_report(conn: Connection, report_id: UUID, error: str, final: bool) -> None:
    conn.execute(text(
        "UPDATE competitor_reports SET status = :s, error = :e,"
        " finished_at = CASE WHEN :final THEN now() ELSE NULL END"
        " WHERE id = :r AND status <> 'done'"),
        {"s": "failed" if final else "queued", "e": error[:2000], "final": final,
         "r": report_id})


def queue_weekly_reports(conn: Connection, period: str, window_days: int) -> list[UUID]:
    """One report per active group for this period; returns those still to generate."""
    conn.execute(text(
        "INSERT INTO competitor_reports (group_id, user_id, trigger, period, window_days)"
        " SELECT g.id, g.user_id, 'weekly', :p, :w FROM competitor_groups g"
        " JOIN users u ON u.id = g.user_id WHERE g.is_active AND u.is_active"
        " ON CONFLICT (group_id, period) DO NOTHING"), {"p": period, "w": window_days})
    return list(conn.execute(text(
        "SELECT id FROM competitor_reports WHERE period = :p AND status = 'queued'"
        " ORDER BY created_at, id"), {"p": period}).scalars().all())

