"""All of market's SQL: search terms, stored search pages, the rank-drop alerts they
raise, and the daily rank/price/badge readings sales estimates are computed from."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

from amazon_pilot.platform.db import as_float, as_int, as_json

# ---------------------------------------------------------------- terms


@dataclass(frozen=True, slots=True)
class TermRow:
    id: UUID
    user_id: UUID
    tracked_product_id: UUID
    term: str
    created_at: datetime


_TERM_COLUMNS = "k.id, k.user_id, k.tracked_product_id, k.term, k.created_at"


def list_terms(conn: Connection, tracked_id: UUID) -> list[TermRow]:
    rows = conn.execute(text(
        f"SELECT {_TERM_COLUMNS} FROM keyword_terms k WHERE k.tracked_product_id = :t"
        " ORDER BY k.created_at, k.term"), {"t": tracked_id}).all()
    return [TermRow(*r) for r in rows]


def get_term(conn: Connection, tracked_id: UUID, term_id: UUID) -> TermRow | None:
    row = conn.execute(text(
        f"SELECT {_TERM_COLUMNS} FROM keyword_terms k"
        " WHERE k.tracked_product_id = :t AND k.id = :id"),
        {"t": tracked_id, "id": term_id}).first()
    return TermRow(*row) if row else None


def lock_tracked(conn: Connection, tracked_id: UUID) -> None:
    """Serializes term changes of one tracked product (the plan limit counts them)."""
    conn.execute(text("SELECT 1 FROM tracked_products WHERE id = :t FOR UPDATE"),
                 {"t": tracked_id})


def insert_term(conn: Connection, user_id: UUID, tracked_id: UUID, term: str) -> TermRow | None:
    """The new term; None when the product already has it."""
    row = conn.execute(text(
        "INSERT INTO keyword_terms AS k (user_id, tracked_product_id, term)"
        " VALUES (:u, :t, :term) ON CONFLICT (tracked_product_id, term) DO NOTHING"
        f" RETURNING {_TERM_COLUMNS}"), {"u": user_id, "t": tracked_id, "term": term}).first()
    return TermRow(*row) if row else None


def delete_term(conn: Connection, user_id: UUID, tracked_id: UUID, term_id: UUID) -> bool:
    return conn.execute(text(
        "DELETE FROM keyword_terms WHERE id = :id AND tracked_product_id = :t AND user_id = :u"),
        {"id": term_id, "t": tracked_id, "u": user_id}).rowcount > 0


# ---------------------------------------------------------------- search pages


@dataclass(frozen=True, slots=True)
class PageRow:
    term: str
    marketplace: str
    day: date
    captured_at: datetime
    cards: list[dict[str, Any]]
    data_source: str


def due_terms(conn: Connection, day: date) -> list[tuple[str, str]]:
    """(term, marketplace) pairs some seller follows on an unpaused product, with no page
    stored for `day` yet: each is fetched once, whoever follows it."""
    rows = conn.execute(text(
        "SELECT DISTINCT k.term, p.marketplace FROM keyword_terms k"
        " JOIN tracked_products t ON t.id = k.tracked_product_id AND NOT t.is_paused"
        " JOIN products p ON p.id = t.product_id"
        " WHERE NOT EXISTS (SELECT 1 FROM search_pages s WHERE s.term = k.term"
        "   AND s.marketplace = p.marketplace AND s.day = :d)"
        " ORDER BY p.marketplace, k.term"), {"d": day}).all()
    return [(r[0], r[1]) for r in rows]


def stored_terms(conn: Connection, marketplace: str, day: date, terms: list[str]) -> set[str]:
    rows = conn.execute(text(
        "SELECT term FROM search_pages WHERE marketplace = :m AND day = :d"
        " AND term = ANY(:terms)"), {"m": marketplace, "d": day, "terms": terms}).scalars()
    return set(rows)


def insert_pages(conn: Connection, marketplace: str, day: date, captured_at: datetime,
                 pages: dict[str, list[dict[str, Any]]], actor_id: str | None,
                 run_id: str | None, data_source: str) -> list[str]:
    """Stores each term's first page; the terms really inserted (a page already stored
    for the day is kept: one fetch per term, marketplace and day)."""
    if not pages:
        return []
    rows = conn.execute(text(
        "INSERT INTO search_pages (term, marketplace, day, captured_at, cards, actor_id,"
        "  apify_run_id, data_source)"
        " SELECT t, :m, :d, :at, c, :actor, :run, :src"
        " FROM unnest(CAST(:terms AS text[]), CAST(:cards AS jsonb[])) AS x(t, c)"
        " ON CONFLICT (term, marketplace, day) DO NOTHING RETURNING term"),
        {"m": marketplace, "d": day, "at": captured_at, "actor": actor_id, "run": run_id,
         "src": data_source, "terms": list(pages),
         "cards": [json.dumps(c) for c in pages.values()]}).scalars()
    return list(rows)


def pages(conn: Connection, term: str, marketplace: str, since: date) -> list[PageRow]:
    rows = conn.execute(text(
        "SELECT term, marketplace, day, captured_at, cards, data_source FROM search_pages"
        " WHERE term = :t AND marketplace = :m AND day >= :since ORDER BY day"),
        {"t": term, "m": marketplace, "since": since}).all()
    return [PageRow(r[0], r[1], r[2], r[3], as_json(r[4]) or [], r[5]) for r in rows]


def latest_page_before(conn: Connection, term: str, marketplace: str,
                       day: date) -> PageRow | None:
    row = conn.execute(text(
        "SELECT term, marketplace, day, captured_at, cards, data_source FROM search_pages"
        " WHERE term = :t AND marketplace = :m AND day < :d ORDER BY day DESC LIMIT 1"),
        {"t": term, "m": marketplace, "d": day}).first()
    return PageRow(row[0], row[1], row[2], row[3], as_json(row[4]) or [], row[5]) if row else None


def page_on(conn: Connection, term: str, marketplace: str, day: date) -> PageRow | None:
    row = conn.execute(text(
        "SELECT term, marketplace, day, captured_at, cards, data_source FROM search_pages"
        " WHERE term = :t AND marketplace = :m AND day = :d"),
        {"t": term, "m": marketplace, "d": day}).first()
    return PageRow(row[0], row[1], row[2], row[3], as_json(row[4]) or [], row[5]) if row else None


def latest_page(conn: Connection, term: str, marketplace: str) -> PageRow | None:
    row = conn.execute(text(
        "SELECT term, marketplace, day, captured_at, cards, data_source FROM search_pages"
        " WHERE term = :t AND marketplace = :m ORDER BY day DESC LIMIT 1"),
        {"t": term, "m": marketplace}).first()
    return PageRow(row[0], row[1], row[2], row[3], as_json(row[4]) or [], row[5]) if row else None


@dataclass(frozen=True, slots=True)
class FollowerRow:
    """A seller's tracked product that follows a term, with its ASIN."""

    user_id: UUID
    tracked_product_id: UUID
    product_id: int
    asin: str
    term: str
    thresholds: dict[str, Any]


def followers(conn: Connection, marketplace: str, terms: list[str]) -> list[FollowerRow]:
    rows = conn.execute(text(
        "SELECT k.user_id, k.tracked_product_id, p.id, p.asin, k.term, t.thresholds"
        " FROM keyword_terms k"
        " JOIN tracked_products t ON t.id = k.tracked_product_id AND NOT t.is_paused"
        " JOIN products p ON p.id = t.product_id"
        " WHERE p.marketplace = :m AND k.term = ANY(:terms)"
        " ORDER BY k.tracked_product_id, k.term"), {"m": marketplace, "terms": terms}).all()
    return [FollowerRow(r[0], r[1], r[2], r[3], r[4], as_json(r[5]) or {}) for r in rows]


def insert_alerts(conn: Connection, captured_at: datetime, alerts: list[dict[str, Any]]
                  ) -> list[str]:
    """The ids of the alerts really inserted (a replayed job raises nothing twice)."""
    if not alerts:
        return []
    return [str(i) for i in conn.execute(text(
        "INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity, metric,"
        " old_value, new_value, change_pct, threshold, message, snapshot_captured_at)"
        " SELECT a.user_id, a.tracked, a.product_id, a.type, a.severity, a.metric, a.old,"
        " a.new, NULL, a.threshold, a.message, :at"
        " FROM jsonb_to_recordset(CAST(:alerts AS jsonb)) AS a(user_id uuid, tracked uuid,"
        "   product_id bigint, type text, severity text, metric text, old text, new text,"
        "   threshold double precision, message text)"
        " ON CONFLICT DO NOTHING RETURNING id"),
        {"alerts": json.dumps(alerts), "at": captured_at}).scalars()]


# ---------------------------------------------------------------- groups


def group_asins_of_product(conn: Connection, user_id: UUID, product_id: int
                           ) -> list[tuple[str, str]]:
    """(asin, role) of the competitors in the seller's groups whose main product this is."""
    rows = conn.execute(text(
        "SELECT DISTINCT p.asin FROM competitor_groups g"
        " JOIN competitor_group_members m ON m.group_id = g.id"
        " JOIN products p ON p.id = m.product_id"
        " WHERE g.user_id = :u AND g.main_product_id = :p AND m.product_id <> :p"
        " ORDER BY p.asin"), {"u": user_id, "p": product_id}).scalars()
    return [(a, "competitor") for a in rows]


@dataclass(frozen=True, slots=True)
class MemberRow:
    product_id: int
    asin: str
    marketplace: str
    title: str | None
    role: str


def group_members(conn: Connection, group_id: UUID) -> list[MemberRow]:
    rows = conn.execute(text(
        "SELECT p.id, p.asin, p.marketplace, p.title,"
        "  CASE WHEN p.id = g.main_product_id THEN 'main' ELSE 'competitor' END"
        " FROM competitor_groups g"
        " JOIN products p ON p.id = g.main_product_id OR p.id IN"
        "   (SELECT product_id FROM competitor_group_members WHERE group_id = g.id)"
        " WHERE g.id = :g"
        " ORDER BY (p.id = g.main_product_id) DESC, p.asin"), {"g": group_id}).all()
    return [MemberRow(*r) for r in rows]


def main_terms(conn: Connection, user_id: UUID, product_id: int) -> list[str]:
    """The terms the seller follows on the group's main product."""
    return list(conn.execute(text(
        "SELECT DISTINCT k.term FROM keyword_terms k"
        " JOIN tracked_products t ON t.id = k.tracked_product_id"
        " WHERE k.user_id = :u AND t.product_id = :p ORDER BY k.term"),
        {"u": user_id, "p": product_id}).scalars())


# ---------------------------------------------------------------- sales readings


@dataclass(frozen=True, slots=True)
class DailyReading:
    day: date
    bsr_rank: int | None
    bsr_category: str | None
    subcategory_bsr: int | None
    price: float | None
    currency: str | None
    bought_past_month: int | None
    data_source: str | None


def daily_readings(conn: Connection, product_id: int, since: datetime) -> list[DailyReading]:
    """The last snapshot of each UTC day since `since` (found pages only), oldest first."""
    rows = conn.execute(text(
        "SELECT DISTINCT ON (d) d, bsr_rank, bsr_category, subcategory_bsr,"
        "  COALESCE(price, buy_box_price), currency, details->>'bought_past_month', data_source"
        " FROM (SELECT (captured_at AT TIME ZONE 'UTC')::date AS d, * FROM snapshots"
        "       WHERE product_id = :p AND captured_at >= :since AND found) s"
        " ORDER BY d, captured_at DESC"), {"p": product_id, "since": since}).all()
    return [DailyReading(r[0], as_int(r[1]), r[2], as_int(r[3]), as_float(r[4]), r[5],
                         as_int(r[6]), r[7]) for r in rows]
