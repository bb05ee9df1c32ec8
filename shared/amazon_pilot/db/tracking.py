"""Reads and writes of tracked products, history and alerts (SQL lives here only)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import Connection, text

HISTORY_COLUMNS = {
    "price": "price",
    "list_price": "list_price",
    "buy_box_price": "buy_box_price",
    "bsr": "bsr_rank",
    "subcategory_bsr": "subcategory_bsr",
    "rating": "rating",
    "review_count": "review_count",
}
SORT_KEYS = {
    "created_at": "t.created_at",
    "alias": "coalesce(t.alias, p.title)",
    "asin": "p.asin",
    "as_of": "p.latest_captured_at",
    "price": "(p.latest->>'price')::numeric",
    "list_price": "(p.latest->>'list_price')::numeric",
    "buy_box_price": "(p.latest->>'buy_box_price')::numeric",
    "bsr_rank": "(p.latest->>'bsr_rank')::bigint",
    "subcategory_bsr": "(p.latest->>'subcategory_bsr')::bigint",
    "rating": "(p.latest->>'rating')::numeric",
    "review_count": "(p.latest->>'review_count')::bigint",
}
TRACKED_SELECT = (
    "SELECT t.id, t.user_id, t.alias, t.thresholds, t.is_paused, t.created_at, t.updated_at,"
    " p.id AS product_id, p.asin, p.marketplace, p.title, p.brand, p.main_image_url,"
    " p.latest, p.latest_captured_at, p.last_fetch_status, p.data_source,"
    " p.last_refresh_requested_at"
    " FROM tracked_products t JOIN products p ON p.id = t.product_id"
)


def upsert_product(conn: Connection, asin: str, marketplace: str) -> tuple[int, bool]:
    """The shared product row; True when it was created now (never fetched)."""
    row = conn.execute(text(
        "INSERT INTO products (asin, marketplace) VALUES (:a, :m)"
        " ON CONFLICT (asin, marketplace) DO UPDATE SET asin = EXCLUDED.asin"
        " RETURNING id, latest_captured_at IS NULL AND last_fetch_status IS NULL AS fresh"),
        {"a": asin, "m": marketplace}).one()
    return int(row.id), bool(row.fresh)


def count_tracked(conn: Connection, user_id: UUID) -> int:
    return int(conn.execute(text("SELECT count(*) FROM tracked_products WHERE user_id = :u"),
                            {"u": user_id}).scalar_one())


def insert_tracked(conn: Connection, user_id: UUID, product_id: int, alias: str | None,
                   thresholds: dict[str, Any]) -> UUID | None:
    """None when this user already tracks the product."""
    row = conn.execute(text(
        "INSERT INTO tracked_products (user_id, product_id, alias, thresholds)"
        " VALUES (:u, :p, :a, CAST(:t AS jsonb)) ON CONFLICT (user_id, product_id) DO NOTHING"
        " RETURNING id"),
        {"u": user_id, "p": product_id, "a": alias, "t": json.dumps(thresholds)}).first()
    return None if row is None else row.id


def get_tracked(conn: Connection, user_id: UUID, tracked_id: UUID) -> Any:
    return conn.execute(text(TRACKED_SELECT + " WHERE t.id = :id AND t.user_id = :u"),
                        {"id": tracked_id, "u": user_id}).first()


def get_tracked_with_cached(conn: Connection, user_id: UUID, tracked_id: UUID,
                            key_of: str) -> tuple[Any, str | None]:
    """The tracked product and, in the same round trip, the cache entry whose key is
    `key_of` with "{product}" standing for the shared product's id."""
    prefix, _, suffix = key_of.partition("{product}")
    row = conn.execute(text(
        TRACKED_SELECT.replace(" FROM tracked_products t",
                               ", (SELECT c.value::text FROM cache_entries c WHERE c.key ="
                               " :prefix || p.id || :suffix AND c.expires_at > now()) AS cached"
                               " FROM tracked_products t", 1)
        + " WHERE t.id = :id AND t.user_id = :u"),
        {"id": tracked_id, "u": user_id, "prefix": prefix, "suffix": suffix}).first()
    return (None, None) if row is None else (row, row.cached)


def list_tracked(conn: Connection, user_id: UUID, *, q: str | None, paused: bool | None,
                 sort: str, limit: int, offset: int) -> tuple[list[Any], int]:
    descending = sort.startswith("-")
    column = SORT_KEYS[sort.lstrip("-")]
    where = ["t.user_id = :u"]
    params: dict[str, Any] = {"u": user_id, "limit": limit, "offset": offset}
    if q:
        where.append("(p.asin ILIKE :q OR p.title ILIKE :q OR t.alias ILIKE :q)")
        params["q"] = f"%{q}%"
    if paused is not None:
        where.append("t.is_paused = :paused")
        params["paused"] = paused
    condition = " AND ".join(where)
    order = f"{column} {'DESC' if descending else 'ASC'} NULLS LAST, t.id"
    rows = conn.execute(text(
        f"{TRACKED_SELECT} WHERE {condition} ORDER BY {order} LIMIT :limit OFFSET :offset"),
        params).all()
    total = conn.execute(text(
        "SELECT count(*) FROM tracked_products t JOIN products p ON p.id = t.product_id"
        f" WHERE {condition}"), params).scalar_one()
    return list(rows), int(total)


def update_tracked(conn: Connection, user_id: UUID, tracked_id: UUID,
                   changes: dict[str, Any]) -> bool:
    sets: list[str] = []
    params: dict[str, Any] = {"id": tracked_id, "u": user_id}
    for name in ("alias", "is_paused"):
        if name in changes:
            sets.append(f"{name} = :{name}")
            params[name] = changes[name]
    if "thresholds" in changes:
        sets.append("thresholds = CAST(:thresholds AS jsonb)")
        params["thresholds"] = json.dumps(changes["thresholds"])
    if not sets:
        return get_tracked(conn, user_id, tracked_id) is not None
    result = conn.execute(text(
        f"UPDATE tracked_products SET {', '.join(sets)}, updated_at = now()"
        " WHERE id = :id AND user_id = :u"), params)
    return bool(result.rowcount)


def delete_tracked(conn: Connection, user_id: UUID, tracked_id: UUID) -> bool:
    result = conn.execute(text("DELETE FROM tracked_products WHERE id = :id AND user_id = :u"),
                          {"id": tracked_id, "u": user_id})
    return bool(result.rowcount)


def claim_refresh(conn: Connection, product_id: int, cooldown_s: int) -> float | None:
    """Mark a refresh request; returns seconds to wait when one was made too recently."""
    row = conn.execute(text(
        "UPDATE products SET last_refresh_requested_at = now() WHERE id = :p AND"
        " (last_refresh_requested_at IS NULL OR"
        "  last_refresh_requested_at < now() - make_interval(secs => :cd))"
        " RETURNING id"), {"p": product_id, "cd": cooldown_s}).first()
    if row is not None:
        return None
    wait = conn.execute(text(
        "SELECT extract(epoch FROM last_refresh_requested_at"
        " + make_interval(secs => :cd) - now()) FROM products WHERE id = :p"),
        {"p": product_id, "cd": cooldown_s}).scalar_one()
    return max(1.0, float(wait))


def values_at(conn: Connection, product_id: int, moments: dict[str, datetime]) -> dict[str, Any]:
    """The last found snapshot at or before each moment (for "change since")."""
    out: dict[str, Any] = {}
    for label, moment in moments.items():
        row = conn.execute(text(
            "SELECT captured_at, price, list_price, buy_box_price, bsr_rank, subcategory_bsr,"
            " rating, review_count FROM snapshots WHERE product_id = :p AND found"
            " AND captured_at <= :at ORDER BY captured_at DESC LIMIT 1"),
            {"p": product_id, "at": moment}).first()
        out[label] = None if row is None else row._asdict()
    return out


def history(conn: Connection, product_id: int, metric: str, start: datetime, end: datetime,
            interval: str) -> list[tuple[datetime, float | None]]:
    column = HISTORY_COLUMNS[metric]
    if interval == "raw":
        sql = (f"SELECT captured_at, {column} FROM snapshots WHERE product_id = :p"
               " AND captured_at BETWEEN :s AND :e AND found ORDER BY captured_at")
    else:
        # the last observation of each day / week: what a seller saw that day
        sql = (f"SELECT DISTINCT ON (date_trunc('{interval}', captured_at))"
               f" date_trunc('{interval}', captured_at), {column} FROM snapshots"
               " WHERE product_id = :p AND captured_at BETWEEN :s AND :e AND found"
               f" ORDER BY date_trunc('{interval}', captured_at), captured_at DESC")
    rows = conn.execute(text(sql), {"p": product_id, "s": start, "e": end}).all()
    return [(r[0], None if r[1] is None else float(r[1])) for r in rows]


def cache_get(conn: Connection, key: str) -> str | None:
    row = conn.execute(text("SELECT value::text FROM cache_entries WHERE key = :k"
                            " AND expires_at > now()"), {"k": key}).first()
    return None if row is None else str(row[0])


def cache_put(conn: Connection, key: str, value: str, ttl_s: int, tags: list[str]) -> None:
    conn.execute(text(
        "INSERT INTO cache_entries (key, value, tags, expires_at)"
        " VALUES (:k, CAST(:v AS jsonb), CAST(:t AS text[]), now() + make_interval(secs => :ttl))"
        " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, tags = EXCLUDED.tags,"
        " expires_at = EXCLUDED.expires_at, created_at = now()"),
        {"k": key, "v": value, "t": tags, "ttl": ttl_s})


def list_alerts(conn: Connection, user_id: UUID, filters: dict[str, Any], limit: int,
                offset: int) -> tuple[list[Any], int]:
    where = ["a.user_id = :u"]
    params: dict[str, Any] = {"u": user_id, "limit": limit, "offset": offset}
    for name, clause in (("product_id", "a.tracked_product_id = :product_id"),
                         ("type", "a.type = :type"), ("severity", "a.severity = :severity"),
                         ("since", "a.created_at >= :since"), ("until", "a.created_at < :until")):
        if filters.get(name) is not None:
            where.append(clause)
            params[name] = filters[name]
    if filters.get("acknowledged") is not None:
        where.append("a.acknowledged_at IS " + ("NOT NULL" if filters["acknowledged"] else "NULL"))
    condition = " AND ".join(where)
    rows = conn.execute(text(
        "SELECT a.*, p.asin, p.marketplace, p.title AS product_title, p.data_source"
        " FROM alerts a JOIN products p ON p.id = a.product_id"
        f" WHERE {condition} ORDER BY a.created_at DESC, a.id LIMIT :limit OFFSET :offset"),
        params).all()
    total = conn.execute(text(f"SELECT count(*) FROM alerts a WHERE {condition}"),
                         params).scalar_one()
    return list(rows), int(total)


def acknowledge_alert(conn: Connection, user_id: UUID, alert_id: UUID) -> Any:
    return conn.execute(text(
        "UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now())"
        " WHERE id = :id AND user_id = :u RETURNING id, acknowledged_at"),
        {"id": alert_id, "u": user_id}).first()
