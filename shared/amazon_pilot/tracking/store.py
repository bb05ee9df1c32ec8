"""All SQL of tracking: the shared products and sellers' tracking of them, the snapshots
(history), alerts, and the scrape runs of fetch jobs.

Snapshots go in by one COPY, the fastest way into Postgres from Python; a batch holding a
row already stored (a replay) is undone to its savepoint and goes through a staging table
and one INSERT ... ON CONFLICT DO NOTHING instead, so it writes nothing twice.
"""

import json
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import Any, NamedTuple, NotRequired, TypedDict
from uuid import UUID

import orjson
from sqlalchemy import Connection, Row, TextClause, text

from amazon_pilot.domain import cadence
from amazon_pilot.domain.changes import content_hash
from amazon_pilot.domain.snapshot import (
    Availability,
    Fulfilment,
    OfferSeller,
    Snapshot,
    SubcategoryRank,
)
from amazon_pilot.platform.db import as_float, as_int, as_json, as_strings, reading

HISTORY_COLUMNS = {
    "price": "price",
    "list_price": "list_price",
    "buy_box_price": "buy_box_price",
    "bsr": "bsr_rank",
    "subcategory_bsr": "subcategory_bsr",
    "rating": "rating",
    "review_count": "review_count",
    # numbers the actor formats keep in details (where the actor reports them)
    **{name: f"CASE WHEN jsonb_typeof(details->'{name}') = 'number'"
       f" THEN (details->>'{name}')::numeric END"
       for name in ("offer_count", "seller_count", "bought_past_month")},
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
    "tag": "t.tags[1]",  # tags are stored sorted: the first one alphabetically
}


class TrackedRow(NamedTuple):
    """A seller's tracked product joined with the shared product it tracks."""

    id: UUID
    user_id: UUID
    alias: str | None
    thresholds: dict[str, Any]
    is_paused: bool
    created_at: datetime
    updated_at: datetime
    product_id: int
    asin: str
    marketplace: str
    title: str | None
    brand: str | None
    main_image_url: str | None
    latest: dict[str, Any] | None
    latest_captured_at: datetime | None
    last_fetch_status: str | None
    data_source: str | None
    last_refresh_requested_at: datetime | None
    last_fetch_error: str | None  # why the last fetch failed (cleared by a good one)
    last_fetch_failed_at: datetime | None
    tags: list[str] = []  # the seller's own tags (sorted) and note (0013)
    notes: str | None = None
    refresh_every: str = cadence.DEFAULT  # the seller's cadence (0018, domain/cadence.py)
    moved_at: datetime | None = None  # latest price/Buy Box/BSR alert of this tracking
    budget_stretched: bool = False  # fetched weekly: the seller's budget would not fit


class AlertRow(NamedTuple):
    id: UUID
    tracked_product_id: UUID
    asin: str
    product_title: str | None
    type: str
    severity: str
    metric: str | None
    old_value: str | None
    new_value: str | None
    change_pct: float | None
    threshold: float | None
    message: str
    snapshot_captured_at: datetime
    created_at: datetime
    acknowledged_at: datetime | None
    data_source: str | None


class Acknowledged(NamedTuple):
    id: UUID
    acknowledged_at: datetime


TRACKED_SELECT = (
    "SELECT t.id, t.user_id, t.alias, t.thresholds, t.is_paused, t.created_at, t.updated_at,"
    " p.id AS product_id, p.asin, p.marketplace, p.title, p.brand, p.main_image_url,"
    " p.latest, p.latest_captured_at, p.last_fetch_status, p.data_source,"
    " p.last_refresh_requested_at, p.last_fetch_error, p.last_fetch_failed_at,"
    " t.tags, t.notes, t.refresh_every, t.moved_at, t.budget_stretched"
    " FROM tracked_products t JOIN products p ON p.id = t.product_id"
)


def _tracked(row: Row[Any]) -> TrackedRow:
    return TrackedRow._make(row[:len(TrackedRow._fields)])


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


def get_tracked(conn: Connection, user_id: UUID, tracked_id: UUID) -> TrackedRow | None:
    row = conn.execute(text(TRACKED_SELECT + " WHERE t.id = :id AND t.user_id = :u"),
                       {"id": tracked_id, "u": user_id}).first()
    return None if row is None else _tracked(row)


def load_tracked(user_id: UUID, tracked_id: UUID) -> TrackedRow | None:
    """The ownership check of the tracked-product routes (platform.ownership.owned)."""
    with reading() as conn:
        return get_tracked(conn, user_id, tracked_id)


def get_tracked_with_cached(conn: Connection, user_id: UUID, tracked_id: UUID,
                            key_of: str) -> tuple[TrackedRow | None, str | None]:
    """The tracked product and, in the same round trip, the cache entry whose key is
    `key_of` with "{product}" standing for the shared product's id."""
    prefix, _, suffix = key_of.partition("{product}")
    row = conn.execute(_TRACKED_WITH_CACHED, {"id": tracked_id, "u": user_id,
                                              "prefix": prefix, "suffix": suffix}).first()
    return (None, None) if row is None else (_tracked(row), row.cached)


# built once: text() parses its bind parameters with a regular expression on every call
_TRACKED_WITH_CACHED = text(
    TRACKED_SELECT.replace(" FROM tracked_products t",
                           ", (SELECT c.value::text FROM cache_entries c WHERE c.key ="
                           " :prefix || p.id || :suffix AND c.expires_at > now()) AS cached"
                           " FROM tracked_products t", 1)
    + " WHERE t.id = :id AND t.user_id = :u")


class PageKey(NamedTuple):
    """Where a page of the default order (created_at, id) ended: the next page starts
    after it (keyset pagination)."""

    created_at: datetime
    id: UUID


def _tracked_filters(user_id: UUID, q: str | None, paused: bool | None,
                     tag: str | None) -> tuple[list[str], dict[str, Any]]:
    where = ["t.user_id = :u"]
    params: dict[str, Any] = {"u": user_id}
    if q:
        where.append("(p.asin ILIKE :q OR p.title ILIKE :q OR t.alias ILIKE :q)")
        params["q"] = f"%{q}%"
    if paused is not None:
        where.append("t.is_paused = :paused")
        params["paused"] = paused
    if tag is not None:
        where.append("t.tags @> ARRAY[CAST(:tag AS text)]")
        params["tag"] = tag
    return where, params


def _page_order(sort: str, after: PageKey | None, where: list[str],
                params: dict[str, Any]) -> str:
    """The ORDER BY of a list page; a cursor's condition joins `where`."""
    descending = sort.startswith("-")
    key = sort.lstrip("-")
    if key != "created_at":
        return f"{SORT_KEYS[key]} {'DESC' if descending else 'ASC'} NULLS LAST, t.id"
    # created_at is NOT NULL: the index's order read forwards or backwards
    direction = "DESC" if descending else "ASC"
    if after is not None:
        where.append(f"(t.created_at, t.id) {'<' if descending else '>'} (:at, :after)")
        params.update(at=after.created_at, after=after.id)
    return f"t.created_at {direction}, t.id {direction}"


Then = dict[str, dict[str, Any] | None]  # window label -> values_at's row, None for none


class ListPage(NamedTuple):
    rows: list[TrackedRow]
    total: int
    then: dict[UUID, Then]  # per tracked id with a latest value: each moment's values


# The page's jsonb columns are read as text and decoded by orjson (_json): the driver's
# json.loads of fifty latest values and thresholds was a third of list_page's CPU.
_AS_TEXT = ("latest", "thresholds")
_LATEST = TrackedRow._fields.index("latest")
_THRESHOLDS = TrackedRow._fields.index("thresholds")


_LONG_DIGITS = re.compile(r"\d{19}")


def _json(value: str) -> Any:
    """jsonb text as the driver's json.loads would give it, decoded by orjson where the
    two agree: orjson reads an integer past 64 bits as a float and refuses a number past
    a double's range (jsonb holds both), so text with 19 digits in a row, or that orjson
    refuses, goes to the stdlib."""
    if _LONG_DIGITS.search(value) is None:
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass
    return json.loads(value)


_VALUE_COLUMNS = ("price", "list_price", "buy_box_price", "bsr_rank", "subcategory_bsr",
                  "rating", "review_count")


# The windows' values as float8: changes_of reads them as floats, and the driver built
# and converted 700 Decimals a page. numeric -> float8 is correctly rounded, as
# float(Decimal) is: the same floats.
_FLOAT_VALUES = ", ".join(f"{c}::float8 AS {c}" for c in _VALUE_COLUMNS)


def list_page(conn: Connection, user_id: UUID, *, q: str | None, paused: bool | None,
              sort: str, limit: int, offset: int, tag: str | None = None,
              after: PageKey | None = None,
              moments: dict[str, datetime] | None = None) -> ListPage:
    """A page of the seller's tracked products, how many match, and for the page's
    products with a latest value the last found snapshot at or before each moment (as
    values_at reads it), in one statement: one round trip instead of three, most of a
    page's wait. A page past the end counts in a second statement (no row carries the
    total).

    The default order (created_at either way) walks the (user_id, created_at, id) index
    and stops after the page (migration 0017); `after` continues from a PageKey instead
    of an offset. Other orders sort the seller's rows."""
    moments = moments or {}
    sql, params, count = list_page_statement(user_id, q=q, paused=paused, sort=sort,
                                             limit=limit, offset=offset, tag=tag,
                                             after=after, moments=moments)
    # A generic plan for this one statement: Postgres re-planned it on every call (its
    # estimate of a generic plan counts every snapshots partition, though the plan prunes
    # at run time and its ordered Append stops at the first row), ≈ 0.6 ms of the
    # backend's CPU a page; the setting goes back before the connection is handed on
    # (a failed statement leaves it until the pool recycles the connection: plans only).
    # The three statements go through the driver: SQLAlchemy's handling of a statement
    # and its rows cost more than the statements' own work (≈ 0.3 ms of a page's CPU).
    driver = conn.connection.driver_connection
    assert driver is not None
    driver.execute(_GENERIC_PLAN)
    rows = driver.execute(_driver_text(sql), params).fetchall()
    driver.execute(_PLAN_AS_USUAL)
    if not rows:
        return ListPage([], count(conn), {})
    width = len(TrackedRow._fields)
    page: list[TrackedRow] = []
    then: dict[UUID, Then] = {}
    settings: dict[str, dict[str, Any]] = {}  # sellers keep few distinct thresholds
    for row in rows:
        fields = list(row[1:1 + width])
        fields[_LATEST] = None if fields[_LATEST] is None else _json(fields[_LATEST])
        thresholds = fields[_THRESHOLDS]
        if thresholds not in settings:
            settings[thresholds] = _json(thresholds)
        fields[_THRESHOLDS] = settings[thresholds]
        tracked = TrackedRow._make(fields)
        page.append(tracked)
        if tracked.latest is None:
            continue
        values: Then = {}
        start = 1 + width  # past the total and the row
        for label in moments:
            window = row[start:start + 1 + len(_VALUE_COLUMNS)]
            values[label] = (None if window[0] is None
                             else dict(zip(_VALUE_COLUMNS, window[1:], strict=True)))
            start += 1 + len(_VALUE_COLUMNS)
        then[tracked.id] = values
    return ListPage(page, int(rows[0][0]), then)


_GENERIC_PLAN = "SET plan_cache_mode = force_generic_plan"
_PLAN_AS_USUAL = "RESET plan_cache_mode"


_BIND = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")  # :name, not a ::cast


@lru_cache(maxsize=256)
def _driver_text(sql: str) -> str:
    """A list statement (a few shapes: filters and order) with the driver's %(name)s
    placeholders instead of text()'s :name, converted once a shape. The statement holds
    no literal % (search patterns are parameters)."""
    return _BIND.sub(r"%(\1)s", sql)


def list_page_statement(user_id: UUID, *, q: str | None, paused: bool | None, sort: str,
                        limit: int, offset: int, tag: str | None, after: PageKey | None,
                        moments: dict[str, datetime]
                        ) -> tuple[str, dict[str, Any], Callable[[Connection], int]]:
    """list_page's SQL and parameters, and how to count the matches on their own."""
    where, params = _tracked_filters(user_id, q, paused, tag)
    params.update({"limit": limit, "offset": offset})
    condition = " AND ".join(where)
    count_params = dict(params)
    source = ("tracked_products t JOIN products p ON p.id = t.product_id" if q
              else "tracked_products t")
    order = _page_order(sort, after, where, params)
    columns = TRACKED_SELECT.removeprefix("SELECT ").split(" FROM ")[0]
    windows, picked = [], []
    for n, label in enumerate(moments):
        params[f"at{n}"] = moments[label]
        # the last found snapshot at or before the moment, as values_at reads it
        windows.append(
            f" LEFT JOIN LATERAL (SELECT captured_at, {_FLOAT_VALUES}"
            " FROM snapshots WHERE product_id = page.product_id AND page.latest IS NOT NULL"
            f" AND found AND captured_at <= :at{n} ORDER BY captured_at DESC LIMIT 1) w{n}"
            " ON true")
        picked.append(f", w{n}.*")
    if sort.lstrip("-") == "created_at":
        # the page's own order, which Postgres carries out of the subquery unsorted
        outer = order.replace("t.", "page.")
        numbered = ""
    else:
        outer, numbered = "page.position", f", row_number() OVER (ORDER BY {order}) AS position"
    selected = ", ".join(f"page.{name}::text" if name in _AS_TEXT else f"page.{name}"
                         for name in TrackedRow._fields)
    sql = (f"SELECT (SELECT count(*) FROM {source} WHERE {condition}) AS total,"
           f" {selected}{''.join(picked)}"
           f" FROM (SELECT {columns}{numbered} FROM tracked_products t"
           f" JOIN products p ON p.id = t.product_id WHERE {' AND '.join(where)}"
           f" ORDER BY {order} LIMIT :limit OFFSET :offset) page"
           f"{''.join(windows)} ORDER BY {outer}")

    def count(conn: Connection) -> int:
        return _count_matching(conn, condition, count_params, joined=bool(q))

    return sql, params, count


def _count_matching(conn: Connection, condition: str, params: dict[str, Any], *,
                    joined: bool) -> int:
    """The list's total: from the tracking index alone unless the search reads titles."""
    source = ("tracked_products t JOIN products p ON p.id = t.product_id" if joined
              else "tracked_products t")
    return int(conn.execute(text(f"SELECT count(*) FROM {source} WHERE {condition}"),
                            params).scalar_one())


def update_tracked(conn: Connection, user_id: UUID, tracked_id: UUID,
                   changes: dict[str, Any]) -> bool:
    sets: list[str] = []
    params: dict[str, Any] = {"id": tracked_id, "u": user_id}
    for name in ("alias", "is_paused", "refresh_every"):
        if name in changes:
            sets.append(f"{name} = :{name}")
            params[name] = changes[name]
    if "tags" in changes:
        sets.append("tags = CAST(:tags AS text[])")
        params["tags"] = list(changes["tags"])
    if "notes" in changes:
        sets.append("notes = :notes")
        params["notes"] = changes["notes"]
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


def values_at(conn: Connection, product_id: int,
              moments: dict[str, datetime]) -> dict[str, dict[str, Any] | None]:
    """The last found snapshot at or before each moment (for "change since")."""
    out: dict[str, dict[str, Any] | None] = {}
    for label, moment in moments.items():
        row = conn.execute(text(
            "SELECT captured_at, price, list_price, buy_box_price, bsr_rank, subcategory_bsr,"
            " rating, review_count FROM snapshots WHERE product_id = :p AND found"
            " AND captured_at <= :at ORDER BY captured_at DESC LIMIT 1"),
            {"p": product_id, "at": moment}).first()
        out[label] = None if row is None else row._asdict()
    return out


class Identity(NamedTuple):
    """What a seller told us of who they are on Amazon (accounts owns the columns)."""

    seller_ids: list[str]
    brands: list[str]
    company_name: str | None


def seller_identity(conn: Connection, user_id: UUID) -> Identity:
    row = conn.execute(text("SELECT seller_ids, brands, company_name FROM users WHERE id = :u"),
                       {"u": user_id}).first()
    return Identity([], [], None) if row is None else Identity._make(row)


class BuyBoxDayRow(NamedTuple):
    day: date
    seller: str | None
    seller_id: str | None
    availability: str


def buy_box_days(conn: Connection, product_id: int, since: datetime) -> list[BuyBoxDayRow]:
    """Who held the Buy Box at each UTC day's last found observation since `since`, oldest
    first (the history's daily convention: what a seller saw that day)."""
    rows = conn.execute(text(
        "SELECT DISTINCT ON ((captured_at AT TIME ZONE 'UTC')::date)"
        " (captured_at AT TIME ZONE 'UTC')::date AS day, buy_box_seller,"
        " details->>'buy_box_seller_id' AS seller_id, availability FROM snapshots"
        " WHERE product_id = :p AND captured_at >= :s AND found"
        " ORDER BY (captured_at AT TIME ZONE 'UTC')::date, captured_at DESC"),
        {"p": product_id, "s": since}).all()
    return [BuyBoxDayRow._make(r) for r in rows]


def history_sql(metric: str, interval: str) -> str:
    """The history query (parameters :p, :s, :e): the product's key and the captured_at
    range bound every partition's primary key, so Postgres reads only the months of the
    range, at plan time or, for a generic plan, at executor start (tests prove both)."""
    column = HISTORY_COLUMNS[metric]
    if interval == "raw":
        return (f"SELECT captured_at, {column} FROM snapshots WHERE product_id = :p"
                " AND captured_at BETWEEN :s AND :e AND found ORDER BY captured_at")
    # the last observation of each day / week: what a seller saw that day
    return (f"SELECT DISTINCT ON (date_trunc('{interval}', captured_at))"
            f" date_trunc('{interval}', captured_at), {column} FROM snapshots"
            " WHERE product_id = :p AND captured_at BETWEEN :s AND :e AND found"
            f" ORDER BY date_trunc('{interval}', captured_at), captured_at DESC")


@lru_cache(maxsize=64)
def _history_text(metric: str, interval: str) -> TextClause:
    return text(history_sql(metric, interval))


def history(conn: Connection, product_id: int, metric: str, start: datetime, end: datetime,
            interval: str) -> list[tuple[datetime, float | None]]:
    rows = conn.execute(_history_text(metric, interval),
                        {"p": product_id, "s": start, "e": end}).all()
    return [(r[0], None if r[1] is None else float(r[1])) for r in rows]


def _alert_filters(user_id: UUID, filters: dict[str, Any]) -> tuple[list[str], dict[str, Any]]:
    """The WHERE clauses of the alerts list and its export, from the same filters."""
    where = ["a.user_id = :u"]
    params: dict[str, Any] = {"u": user_id}
    for name, clause in (("product_id", "a.tracked_product_id = :product_id"),
                         ("type", "a.type = :type"), ("severity", "a.severity = :severity"),
                         ("since", "a.created_at >= :since"), ("until", "a.created_at < :until")):
        if filters.get(name) is not None:
            where.append(clause)
            params[name] = filters[name]
    if filters.get("acknowledged") is not None:
        where.append("a.acknowledged_at IS " + ("NOT NULL" if filters["acknowledged"] else "NULL"))
    return where, params


def list_alerts(conn: Connection, user_id: UUID, filters: dict[str, Any], limit: int,
                offset: int) -> tuple[list[AlertRow], int]:
    where, params = _alert_filters(user_id, filters)
    params.update(limit=limit, offset=offset)
    condition = " AND ".join(where)
    rows = conn.execute(text(
        "SELECT a.id, a.tracked_product_id, p.asin, p.title AS product_title, a.type,"
        " a.severity, a.metric, a.old_value, a.new_value, a.change_pct, a.threshold,"
        " a.message, a.snapshot_captured_at, a.created_at, a.acknowledged_at, p.data_source"
        " FROM alerts a JOIN products p ON p.id = a.product_id"
        f" WHERE {condition} ORDER BY a.created_at DESC, a.id LIMIT :limit OFFSET :offset"),
        params).all()
    total = conn.execute(text(f"SELECT count(*) FROM alerts a WHERE {condition}"),
                         params).scalar_one()
    return [AlertRow._make(r) for r in rows], int(total)


def acknowledge_alert(conn: Connection, user_id: UUID, alert_id: UUID) -> Acknowledged | None:
    row = conn.execute(text(
        "UPDATE alerts SET acknowledged_at = coalesce(acknowledged_at, now())"
        " WHERE id = :id AND user_id = :u RETURNING id, acknowledged_at"),
        {"id": alert_id, "u": user_id}).first()
    return None if row is None else Acknowledged._make(row)


# ---------------------------------------------------------------- snapshots

SNAPSHOT_COLUMNS = (
    "product_id", "captured_at", "scrape_run_id", "found", "price", "list_price", "currency",
    "buy_box_price", "buy_box_seller", "availability", "stock_count", "rating", "review_count",
    "bsr_rank", "bsr_category", "subcategory_bsr", "subcategory_ranks", "title", "content_hash",
    "image_count", "details", "data_source",
)
_COLUMN_LIST = ", ".join(SNAPSHOT_COLUMNS)

_known_months: set[date] = set()
_months_lock = threading.Lock()


class LatestMove(TypedDict):
    """A product's new `latest` after an observation (the moves go in as one JSON recordset,
    `latest` nested in it: encoded once, not once per row and again in the recordset).
    A found product's title and brand are `latest`'s own, so they are sent once, in it;
    a missing product keeps its `latest` (sent as None) and sends its title and brand."""

    id: int
    latest: dict[str, Any] | None
    found: bool
    title: NotRequired[str | None]
    brand: NotRequired[str | None]
    image: str | None
    source: str | None


class Tracker(NamedTuple):
    """A seller tracking a product, with the thresholds its alerts are judged against and
    the seller's identity (seller ids, brands, company name) the Buy Box is judged by."""

    id: UUID
    user_id: UUID
    product_id: int
    thresholds: dict[str, Any]
    seller_ids: list[str]
    brands: list[str]
    company_name: str | None


class NewAlert(TypedDict):
    user_id: str
    tracked: str
    product_id: int
    type: str
    severity: str
    metric: str | None
    old: str | None
    new: str | None
    pct: float | None
    threshold: float | None
    message: str


# What a query selects from a snapshot aliased `s` to read it back with snapshot_from_row.
SNAPSHOT_READ = (
    "s.found, s.price, s.list_price, s.currency, s.buy_box_price, s.buy_box_seller,"
    " s.availability, s.stock_count, s.rating, s.review_count, s.bsr_rank, s.bsr_category,"
    " s.subcategory_bsr, s.subcategory_ranks, s.title, s.image_count, s.details, s.data_source"
)


def snapshot_from_row(asin: str, marketplace: str, row: Any) -> Snapshot:
    """The Snapshot back from a row that selected SNAPSHOT_READ: the inverse of
    snapshot_row, used by every capability that reads observations."""
    details = as_json(row.details) or {}
    ranks = as_json(row.subcategory_ranks) or []
    try:
        availability = Availability(row.availability)
    except ValueError:
        availability = Availability.UNKNOWN
    images = as_strings(details.get("image_urls"))
    return Snapshot(
        asin=asin, marketplace=marketplace, found=bool(row.found), title=row.title,
        brand=details.get("brand"), price=as_float(row.price), list_price=as_float(row.list_price),
        currency=row.currency, buy_box_price=as_float(row.buy_box_price),
        buy_box_seller=row.buy_box_seller, buy_box_seller_id=details.get("buy_box_seller_id"),
        fulfilled_by=details.get("fulfilled_by"), availability=availability,
        fulfilment=next((f for f in Fulfilment if f.value == details.get("fulfilment")), None),
        offer_count=as_int(details.get("offer_count")),
        seller_count=as_int(details.get("seller_count")),
        offer_sellers=[OfferSeller(o.get("id"), o.get("name"))
                       for o in details.get("offer_sellers") or () if isinstance(o, dict)],
        has_coupon=details.get("has_coupon"),
        bought_past_month=as_int(details.get("bought_past_month")),
        stock_count=as_int(row.stock_count), rating=as_float(row.rating),
        review_count=as_int(row.review_count), bsr_rank=as_int(row.bsr_rank),
        bsr_category=row.bsr_category,
        subcategory_ranks=[SubcategoryRank(int(r["rank"]), str(r.get("category") or ""))
                           for r in ranks if isinstance(r, dict) and r.get("rank") is not None],
        bullet_points=as_strings(details.get("bullet_points")),
        description=details.get("description"),
        details_table=[(str(r[0]), str(r[1])) for r in details.get("details_table") or ()
                       if isinstance(r, list | tuple) and len(r) == 2],
        image_urls=images,
        image_count=int(row.image_count if row.image_count is not None else len(images)),
        video_count=int(details.get("video_count") or 0),
        variation_count=int(details.get("variation_count") or 0),
        is_prime=details.get("is_prime"), has_deal=details.get("has_deal"),
        past_sales=details.get("past_sales"), data_source=row.data_source or "apify",
        served_asin=details.get("served_asin"),
        parse_warnings=as_strings(details.get("parse_warnings")),
    )


def _encode(value: Any) -> str:
    """JSON text for a jsonb column or parameter (orjson: ~10x the stdlib on this path; it
    writes tuples as arrays and the slotted dataclasses as objects of their fields)."""
    return orjson.dumps(value).decode()


def copy_moment(moment: datetime) -> str:
    """A timestamp as COPY text, for the rows of a batch all captured at one moment: the
    driver formats a datetime again for every row (1.2 µs of a row's 4.6 µs of COPY
    formatting); the server reads the same instant from this text."""
    return moment.isoformat()


def snapshot_row(product_id: int, captured_at: datetime | str, run_id: str | None,
                 snap: Snapshot, content: str | None = None) -> tuple[Any, ...]:
    """The snapshots row of an observation; `content` is its content_hash when the caller
    has it already (ingestion hashed it for `latest`); `captured_at` a datetime or its
    copy_moment text."""
    sub = snap.subcategory_ranks[0].rank if snap.subcategory_ranks else None
    details = {
        "brand": snap.brand,
        "bullet_points": snap.bullet_points,
        "description": snap.description,
        "details_table": snap.details_table,
        "image_urls": snap.image_urls,
        "video_count": snap.video_count,
        "variation_count": snap.variation_count,
        "buy_box_seller_id": snap.buy_box_seller_id,
        "fulfilled_by": snap.fulfilled_by,
        "fulfilment": None if snap.fulfilment is None else snap.fulfilment.value,
        "offer_count": snap.offer_count,
        "seller_count": snap.seller_count,
        "offer_sellers": [{"id": o.seller_id, "name": o.name} for o in snap.offer_sellers],
        "has_coupon": snap.has_coupon,
        "bought_past_month": snap.bought_past_month,
        "is_prime": snap.is_prime,
        "has_deal": snap.has_deal,
        "past_sales": snap.past_sales,
        "served_asin": snap.served_asin,
        "parse_warnings": snap.parse_warnings,
    }
    return (
        product_id, captured_at, run_id, snap.found, snap.price, snap.list_price, snap.currency,
        snap.buy_box_price, snap.buy_box_seller, snap.availability.value, snap.stock_count,
        snap.rating, snap.review_count, snap.bsr_rank, snap.bsr_category, sub,
        _encode(snap.subcategory_ranks),  # [{"rank", "category"}]
        snap.title, content_hash(snap) if content is None else content, snap.image_count,
        _encode(details), snap.data_source,
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
    return _insert_new(conn, rows)


def write_observations(conn: Connection, captured_at: datetime,
                       rows: Iterable[tuple[Any, ...]]) -> list[int]:
    """write_snapshots for rows all captured at `captured_at`, taken from `rows` as the COPY
    sends them: whatever the iterator does between two rows runs while the server stores
    the rows sent before (ingestion judges a product's changes there)."""
    ensure_partitions(conn, {captured_at})
    return _insert_new(conn, rows)


def _insert_new(conn: Connection, rows: Iterable[tuple[Any, ...]]) -> list[int]:
    from psycopg.errors import UniqueViolation  # psycopg loads on first connect, not import

    sent: list[tuple[Any, ...]] = []

    def keep() -> Iterator[tuple[Any, ...]]:  # the rows again for a replay's staging table
        for row in rows:
            sent.append(row)
            yield row

    try:  # the usual batch is all new: straight in, as fast as a bare COPY
        with conn.begin_nested():
            copy_rows(conn, keep(), "snapshots")
        return [row[0] for row in sent]
    except UniqueViolation:  # a replay: the savepoint undid the COPY; keep the new rows only
        pass
    conn.execute(text(
        "CREATE TEMP TABLE IF NOT EXISTS snapshot_stage"
        " (LIKE snapshots INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"))
    copy_rows(conn, sent, "snapshot_stage")
    inserted = conn.execute(text(
        f"INSERT INTO snapshots ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM snapshot_stage"
        " ON CONFLICT (product_id, captured_at) DO NOTHING RETURNING product_id"
    )).scalars().all()
    conn.execute(text("TRUNCATE snapshot_stage"))
    return list(inserted)


def latest_of(conn: Connection,
              product_ids: list[int]) -> dict[int, tuple[dict[str, Any] | None, datetime | None]]:
    """Each product's previous observation: (products.latest, when it was captured)."""
    rows = conn.execute(  # as text: orjson decodes it faster than the driver's json.loads
        text("SELECT id, latest::text, latest_captured_at FROM products"
             " WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": _bigint_array(product_ids)}
    ).all()  # one fetch, not a driver call a row
    return {pid: (None if latest is None else orjson.loads(latest), at)
            for pid, latest, at in rows}


def move_latest(conn: Connection, captured_at: datetime, moves: list[LatestMove]) -> None:
    """A found product gets its new `latest`; a missing one keeps it and is marked not found."""
    conn.execute(text(
        "UPDATE products p SET"
        " latest = CASE WHEN m.found THEN m.latest ELSE p.latest END,"
        " latest_captured_at = :at,"
        " last_fetch_status = CASE WHEN m.found THEN 'ok' ELSE 'not_found' END,"
        " not_found_since = CASE WHEN m.found THEN NULL"
        "   ELSE coalesce(p.not_found_since, :at) END,"
        # the server parses every byte of the moves (≈ 9 µs a product, the most of this
        # UPDATE): a found product's title and brand are read from its `latest`
        " title = coalesce(m.title, m.latest->>'title', p.title),"
        " brand = coalesce(m.brand, m.latest->>'brand', p.brand),"
        " main_image_url = coalesce(m.image, p.main_image_url), data_source = m.source,"
        " last_fetch_error = NULL, last_fetch_failed_at = NULL"
        " FROM jsonb_to_recordset(CAST(:moved AS jsonb)) AS m(id bigint, latest jsonb,"
        "   found boolean, title text, brand text, image text, source text)"
        " WHERE p.id = m.id"), {"at": captured_at, "moved": _encode(moves)})


def active_trackers(conn: Connection, product_ids: list[int]) -> list[Tracker]:
    """Every seller tracking these products, paused trackings left out."""
    rows = conn.execute(text(
        "SELECT t.id, t.user_id, t.product_id, t.thresholds::text, u.seller_ids, u.brands,"
        " u.company_name FROM tracked_products t JOIN users u ON u.id = t.user_id"
        " WHERE t.product_id = ANY(CAST(:ids AS bigint[])) AND NOT t.is_paused"),
        {"ids": _bigint_array(product_ids)}).all()
    # sellers keep a few settings each: every distinct text decoded once (and by orjson,
    # not the driver's json.loads, which cost more than the rest of the read)
    settings: dict[str, dict[str, Any]] = {}
    trackers = []
    for tid, user_id, product_id, thresholds, seller_ids, brands, company_name in rows:
        if thresholds not in settings:
            settings[thresholds] = orjson.loads(thresholds)
        trackers.append(Tracker(tid, user_id, product_id, settings[thresholds], seller_ids,
                                brands, company_name))
    return trackers


def _bigint_array(ids: list[int]) -> str:
    """An array parameter as its text: the driver adapts a list of ints item by item, about
    four times the CPU of this join (it shows with a run's thousands of products)."""
    return "{" + ",".join(map(str, ids)) + "}"


def insert_alerts(conn: Connection, captured_at: datetime, alerts: list[NewAlert]) -> list[str]:
    """The ids of the alerts really inserted (a replayed observation raises nothing twice)."""
    inserted = conn.execute(text(
        "INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity, metric,"
        " old_value, new_value, change_pct, threshold, message, snapshot_captured_at)"
        " SELECT a.user_id, a.tracked, a.product_id, a.type, a.severity, a.metric, a.old,"
        " a.new, a.pct, a.threshold, a.message, :at"
        " FROM jsonb_to_recordset(CAST(:alerts AS jsonb)) AS a(user_id uuid, tracked uuid,"
        "   product_id bigint, type text, severity text, metric text, old text, new text,"
        "   pct double precision, threshold double precision, message text)"
        # any unique index: (tracked product, type, snapshot) and a redirect once per product
        " ON CONFLICT DO NOTHING"
        " RETURNING id"), {"alerts": _encode(alerts), "at": captured_at}).scalars().all()
    return [str(i) for i in inserted]


# ---------------------------------------------------------------- fetch runs


class RunStart(NamedTuple):
    id: str
    status: str  # "succeeded" when this key's run finished before (a replay)


class ProductKey(NamedTuple):
    id: int
    asin: str
    marketplace: str


def begin_run(conn: Connection, key: str, trigger: str, captured_at: datetime,
              product_ids: list[int]) -> RunStart:
    """The run of this job key (a new one, or the earlier attempt's), with a row per
    requested product so the sellers of those products see it from the start."""
    row = conn.execute(text(
        "INSERT INTO scrape_runs (idempotency_key, trigger, status, product_count, captured_at)"
        " VALUES (:k, :t, 'running', :n, :at)"
        " ON CONFLICT (idempotency_key) DO UPDATE SET attempts = scrape_runs.attempts + 1,"
        "   status = CASE WHEN scrape_runs.status = 'succeeded' THEN 'succeeded'"
        "   ELSE 'running' END, started_at = now()"
        " RETURNING id, status"),
        {"k": key, "t": trigger, "n": len(product_ids), "at": captured_at}).one()
    if row.status != "succeeded" and product_ids:
        conn.execute(text(
            "INSERT INTO scrape_run_products (scrape_run_id, product_id)"
            " SELECT :r, p.id FROM products p WHERE p.id = ANY(:ids)"
            " ON CONFLICT DO NOTHING"), {"r": row.id, "ids": product_ids})
    return RunStart(str(row.id), row.status)


def product_keys(conn: Connection, product_ids: list[int]) -> list[ProductKey]:
    rows = conn.execute(text("SELECT id, asin, marketplace FROM products WHERE id = ANY(:ids)"),
                        {"ids": product_ids}).all()
    return [ProductKey._make(r) for r in rows]


def mark_not_found(conn: Connection, product_ids: list[int], captured_at: datetime) -> None:
    conn.execute(text(
        "UPDATE products SET last_fetch_status = 'not_found',"
        " not_found_since = coalesce(not_found_since, :at), last_fetch_error = NULL,"
        " last_fetch_failed_at = NULL WHERE id = ANY(:ids)"),
        {"ids": product_ids, "at": captured_at})


class RunSummary(TypedDict):
    """What a finished run returned and what became of it (tracking.service._run_summary)."""

    apify_run_id: str | None
    actor_id: str
    requested: int
    items: int
    attributed: int
    not_found: int
    no_data: int
    unattributed: int
    duplicates: int
    malformed: int
    problem_count: int
    problems: list[dict[str, Any]]
    cost_usd: float | None
    data_source: str
    tokens_consumed: int | None  # token-priced sources only (Keepa)


class RunOutcome(TypedDict):
    """What became of one requested product in a run."""

    product_id: int
    outcome: str
    served_asin: str | None
    duplicates: int
    reason: str | None
    attempt: NotRequired[int]  # which attempt at this product's fetch (1: the first)
    retry_at: NotRequired[datetime | None]  # its next attempt is due then (None: final)


def finish_run(conn: Connection, run_id: str, summary: RunSummary, *, duration_ms: int) -> None:
    conn.execute(text(
        "UPDATE scrape_runs SET status = 'succeeded', apify_run_id = :apify_run_id,"
        " actor_id = :actor_id, requested_count = :requested, item_count = :items,"
        " attributed_count = :attributed, not_found_count = :not_found,"
        " no_data_count = :no_data, unattributed_count = :unattributed,"
        " duplicate_count = :duplicates, malformed_count = :malformed,"
        " problem_count = :problem_count, problems = CAST(:problems_json AS jsonb),"
        " cost_usd = :cost_usd, data_source = :data_source,"
        " tokens_consumed = :tokens_consumed, error = NULL,"
        " finished_at = now(), duration_ms = :ms WHERE id = :id"),
        {**summary, "problems_json": json.dumps(summary["problems"], ensure_ascii=False),
         "ms": duration_ms, "id": run_id})


def record_outcomes(conn: Connection, run_id: str, outcomes: list[RunOutcome]) -> None:
    """Each requested product's outcome on the run's record."""
    if not outcomes:
        return
    conn.execute(text(
        "INSERT INTO scrape_run_products (scrape_run_id, product_id, outcome, served_asin,"
        "   duplicates, reason, attempt, retry_at)"
        " SELECT :r, o.product_id, o.outcome, o.served_asin, o.duplicates, o.reason,"
        "   coalesce(o.attempt, 1), o.retry_at"
        " FROM jsonb_to_recordset(CAST(:outcomes AS jsonb)) AS o(product_id bigint,"
        "   outcome text, served_asin text, duplicates integer, reason text, attempt integer,"
        "   retry_at timestamptz)"
        " ON CONFLICT (scrape_run_id, product_id) DO UPDATE SET outcome = EXCLUDED.outcome,"
        "   served_asin = EXCLUDED.served_asin, duplicates = EXCLUDED.duplicates,"
        "   reason = EXCLUDED.reason, attempt = EXCLUDED.attempt,"
        "   retry_at = EXCLUDED.retry_at"),
        {"r": run_id, "outcomes": json.dumps(outcomes, ensure_ascii=False, default=str)})


def record_fetch_failure(conn: Connection, product_ids: list[int], reason: str) -> None:
    """A fetch that gave these products nothing usable, for good (retries spent): the
    reason stays on the product until a fetch succeeds; a product never fetched is
    `failed` rather than forever `pending`. Stored data is not touched."""
    if not product_ids:
        return
    conn.execute(text(
        "UPDATE products SET last_fetch_error = :e, last_fetch_failed_at = now(),"
        " last_fetch_status = coalesce(last_fetch_status, 'failed') WHERE id = ANY(:ids)"),
        {"ids": product_ids, "e": reason[:1000]})


def fail_run(conn: Connection, run_id: str, *, status: str, error: str, duration_ms: int,
             apify_run_id: str | None, cost_usd: float | None) -> None:
    conn.execute(text(
        "UPDATE scrape_runs SET status = :s, error = :e, finished_at = now(),"
        " duration_ms = :ms, apify_run_id = coalesce(:rid, apify_run_id),"
        " cost_usd = coalesce(:cost, cost_usd) WHERE id = :id"),
        {"s": status, "e": error[:2000], "ms": duration_ms, "rid": apify_run_id,
         "cost": cost_usd, "id": run_id})


def _interval(every: timedelta) -> str:
    return f"interval '{int(every.total_seconds())} seconds'"


# The interval one tracking wants, as domain.cadence.effective decides it (`:stable_before`
# is now - STABLE_FOR): built from the domain's table so the two cannot drift apart.
_EVERY = (
    f"CASE WHEN t.budget_stretched THEN {_interval(cadence.CADENCES[cadence.STRETCHED])}"
    f" WHEN t.refresh_every = '{cadence.AUTO}' THEN CASE WHEN greatest(t.created_at,"
    f" t.moved_at) < :stable_before THEN {_interval(cadence.CADENCES[cadence.AUTO_STABLE])}"
    f" ELSE {_interval(cadence.CADENCES[cadence.AUTO_MOVING])} END"
    + "".join(f" WHEN t.refresh_every = '{name}' THEN {_interval(every)}"
              for name, every in cadence.CADENCES.items())
    + f" ELSE {_interval(cadence.CADENCES[cadence.DEFAULT])} END"
)
_GROUP_EVERY = _interval(cadence.CADENCES[cadence.GROUP_CADENCE])
# Due: never observed, or observed before `:due_at - interval` (`:due_at` is now + SLACK).
_TRACKED_DUE = (
    "EXISTS (SELECT 1 FROM tracked_products t WHERE t.product_id = p.id AND NOT t.is_paused"
    " AND t.product_id > :after"  # the index scan starts at the page, not at the first id
    f" AND (p.latest_captured_at IS NULL OR p.latest_captured_at < :due_at - {_EVERY}))"
)
_GROUP_DUE = f"(p.latest_captured_at IS NULL OR p.latest_captured_at < :due_at - {_GROUP_EVERY})"
_MAIN_ACTIVE = ("EXISTS (SELECT 1 FROM competitor_groups g WHERE g.is_active"
                " AND g.main_product_id = p.id AND g.main_product_id > :after)")
_MEMBER_ACTIVE = ("EXISTS (SELECT 1 FROM competitor_group_members m JOIN competitor_groups g"
                  " ON g.id = m.group_id WHERE m.product_id = p.id AND g.is_active"
                  " AND m.product_id > :after)")


def cadence_params(now: datetime) -> dict[str, Any]:
    return {"due_at": now + cadence.SLACK, "stable_before": now - cadence.STABLE_FOR}


def due_products_sql(paged: bool = True) -> str:
    """The due products query (`:after`, `:limit` when `paged`, and cadence_params): one
    branch per reason, each a semi-join read in id order and cut at the page size, so the
    union of their first pages holds the page (no OR of correlated subqueries, which the
    planner can only run product by product)."""
    cut = " ORDER BY p.id" + (" LIMIT :limit" if paged else "")
    branches = [f"(SELECT p.id FROM products p WHERE p.id > :after AND {_TRACKED_DUE}{cut})",
                f"(SELECT p.id FROM products p WHERE p.id > :after AND {_GROUP_DUE}"
                f" AND {_MAIN_ACTIVE}{cut})",
                f"(SELECT p.id FROM products p WHERE p.id > :after AND {_GROUP_DUE}"
                f" AND {_MEMBER_ACTIVE}{cut})"]
    return "SELECT id FROM (" + " UNION ".join(branches) + ") due" + cut.replace("p.id", "id")


def due_products(conn: Connection, now: datetime, *, after: int = 0,
                 limit: int | None = None) -> list[int]:
    """Shared products that a seller's active tracking (at its cadence) or an active
    competitor group (daily) wants fetched at `now`; in id order, from the first id above
    `after`, at most `limit` (a page read by key: each page costs the same however far
    into the products it starts)."""
    return list(conn.execute(text(due_products_sql(limit is not None)),
                             {**cadence_params(now), "after": after, "limit": limit}
                             ).scalars().all())


def refresh_skips(conn: Connection, now: datetime) -> tuple[int, int, int]:
    """What the plan at `now` leaves out, for its answer: (products some seller or group
    wants that were observed within a day, those left for later by their cadence or the
    seller's budget, products tracked only while paused). Each wanted product's smallest
    interval is aggregated once (hash joins, no subquery per product)."""
    row = conn.execute(text(
        "WITH wanted AS (SELECT product_id, min(every) AS every FROM ("
        f"   SELECT t.product_id, {_EVERY} AS every FROM tracked_products t"
        "    WHERE NOT t.is_paused"
        f"   UNION ALL SELECT g.main_product_id, {_GROUP_EVERY} FROM competitor_groups g"
        "    WHERE g.is_active"
        f"   UNION ALL SELECT m.product_id, {_GROUP_EVERY} FROM competitor_group_members m"
        "    JOIN competitor_groups g ON g.id = m.group_id WHERE g.is_active) w"
        "  GROUP BY product_id)"
        " SELECT count(*) FILTER (WHERE NOT due AND latest_captured_at"
        f"   >= :due_at - {_GROUP_EVERY}) AS fresh,"
        " count(*) FILTER (WHERE NOT due AND latest_captured_at"
        f"   < :due_at - {_GROUP_EVERY}) AS later,"
        " (SELECT count(DISTINCT t.product_id) FROM tracked_products t WHERE t.is_paused"
        "   AND NOT EXISTS (SELECT 1 FROM wanted WHERE wanted.product_id = t.product_id))"
        "   AS paused"
        " FROM (SELECT p.latest_captured_at, (p.latest_captured_at IS NULL"
        "   OR p.latest_captured_at < :due_at - w.every) AS due"
        "   FROM wanted w JOIN products p ON p.id = w.product_id) x"),
        cadence_params(now)).one()
    return int(row.fresh), int(row.later), int(row.paused)


def mark_moved(conn: Connection, tracked_ids: list[str], captured_at: datetime) -> None:
    """These trackings just had a price/Buy Box/BSR alert: `auto` fetches them daily."""
    if tracked_ids:
        conn.execute(text(
            "UPDATE tracked_products SET moved_at = :at WHERE id = ANY(CAST(:ids AS uuid[]))"
            " AND (moved_at IS NULL OR moved_at < :at)"),
            # the ids as an array literal (uuids need no quoting): see _bigint_array
            {"ids": "{" + ",".join(sorted(set(tracked_ids))) + "}", "at": captured_at})


# ---------------------------------------------------------------- fetch budgets


class BudgetSeller(NamedTuple):
    user_id: UUID
    budget_usd: float
    results: int  # results fetched this month for products the seller tracks


def budget_sellers(conn: Connection, since: datetime) -> list[BudgetSeller]:
    """Sellers with a monthly fetch budget, and the results fetched for their tracked
    products since `since` (while they tracked them): what a seller's scrape runs are
    charged with (GET /v1/scrape-runs attributes a run's cost the same way). A result is
    an item the actor returned: stored, a 404 page, an unusable item, or a duplicate."""
    rows = conn.execute(text(
        "SELECT u.id, u.monthly_fetch_budget_usd, coalesce((SELECT"
        "   count(*) FILTER (WHERE rp.outcome IN ('stored', 'not_found', 'unusable'))"
        "   + coalesce(sum(rp.duplicates), 0)"
        "   FROM tracked_products t JOIN scrape_run_products rp ON rp.product_id = t.product_id"
        "   JOIN scrape_runs r ON r.id = rp.scrape_run_id"
        "   WHERE t.user_id = u.id AND r.started_at >= greatest(:since, t.created_at)), 0)"
        " FROM users u WHERE u.monthly_fetch_budget_usd IS NOT NULL ORDER BY u.id"),
        {"since": since}).all()
    return [BudgetSeller(r[0], float(r[1]), int(r[2])) for r in rows]


class BudgetTracking(NamedTuple):
    id: UUID
    refresh_every: str
    created_at: datetime
    moved_at: datetime | None


def budget_trackings(conn: Connection, user_id: UUID) -> list[BudgetTracking]:
    """The seller's active trackings (not locked: a cadence changed meanwhile is read by
    the next plan; only the rows whose stretching changes are written)."""
    rows = conn.execute(text(
        "SELECT id, refresh_every, created_at, moved_at FROM tracked_products"
        " WHERE user_id = :u AND NOT is_paused ORDER BY id"), {"u": user_id}).all()
    return [BudgetTracking._make(r) for r in rows]


def set_budget_outcome(conn: Connection, user_id: UUID, stretched: list[UUID],
                       answer: dict[str, Any]) -> None:
    # joined to the list (a hash join), not `id = ANY(list)`, which compares each row
    # with every listed id
    conn.execute(text(
        "UPDATE tracked_products t SET budget_stretched = x.stretched"
        " FROM (SELECT o.id, s.id IS NOT NULL AS stretched FROM tracked_products o"
        "   LEFT JOIN unnest(CAST(:ids AS uuid[])) AS s(id) ON s.id = o.id"
        "   WHERE o.user_id = :u) x"
        " WHERE t.id = x.id AND t.budget_stretched <> x.stretched"),
        {"u": user_id, "ids": [str(i) for i in stretched]})
    conn.execute(text("UPDATE users SET fetch_budget = CAST(:a AS jsonb) WHERE id = :u"),
                 {"u": user_id, "a": json.dumps(answer)})


def clear_budget_outcomes(conn: Connection) -> None:
    """Sellers without a budget (any more): nothing stretched, no budget answer."""
    conn.execute(text(
        "UPDATE tracked_products t SET budget_stretched = false FROM users u"
        " WHERE u.id = t.user_id AND t.budget_stretched"
        " AND u.monthly_fetch_budget_usd IS NULL"))
    conn.execute(text("UPDATE users SET fetch_budget = NULL"
                      " WHERE monthly_fetch_budget_usd IS NULL AND fetch_budget IS NOT NULL"))


# ---------------------------------------------------------------- reading scrape runs

class RunRow(NamedTuple):
    """A scrape run as GET /v1/scrape-runs shows it; the counts cover every product
    (an administrator) or the seller's products only."""

    id: UUID
    trigger: str
    status: str
    actor_id: str | None
    data_source: str | None
    attempts: int
    captured_at: datetime
    started_at: datetime
    finished_at: datetime | None
    duration_ms: int | None
    cost_usd: float | None
    run_cost_usd: float | None  # the whole run's cost (the seller's share is cost_usd)
    error: str | None
    requested: int
    returned: int | None
    attributed: int | None
    not_found: int | None
    no_data: int | None
    unattributed: int | None
    duplicates: int | None
    malformed: int | None
    problem_count: int | None
    run_requested: int  # products the whole run requested


class RunProductRow(NamedTuple):
    asin: str
    marketplace: str
    title: str | None
    outcome: str
    served_asin: str | None
    duplicates: int
    reason: str | None
    tracked_id: UUID | None  # the caller's tracking of it, when the caller tracks it
    attempt: int
    retry_at: datetime | None


_RUN_BASE = (
    "r.id, r.trigger, r.status, r.actor_id, r.data_source, r.attempts, r.captured_at,"
    " r.started_at, r.finished_at, r.duration_ms"
)
_RUN_REQUESTED = "coalesce(r.requested_count, r.product_count)"
_ALL_RUNS = (
    f"SELECT {_RUN_BASE}, r.cost_usd, r.cost_usd AS run_cost_usd, r.error,"
    f" {_RUN_REQUESTED} AS requested, r.item_count, r.attributed_count, r.not_found_count,"
    " r.no_data_count, r.unattributed_count, r.duplicate_count, r.malformed_count,"
    f" r.problem_count, {_RUN_REQUESTED} AS run_requested FROM scrape_runs r"
)
# The seller's products: tracked, or in one of their competitor groups.
_MINE = (
    "mine AS (SELECT product_id FROM tracked_products WHERE user_id = :u"
    " UNION SELECT main_product_id FROM competitor_groups WHERE user_id = :u"
    " UNION SELECT m.product_id FROM competitor_group_members m"
    "   JOIN competitor_groups g ON g.id = m.group_id WHERE g.user_id = :u)"
)
# Counts over the seller's products only, from each product's outcome in the run.
_THEIRS = (
    "theirs AS (SELECT rp.scrape_run_id AS run_id, count(*) AS requested,"
    " count(*) FILTER (WHERE rp.outcome IN ('stored', 'not_found', 'unusable'))"
    "   + sum(rp.duplicates) AS returned,"
    " count(*) FILTER (WHERE rp.outcome IN ('stored', 'not_found')) AS attributed,"
    " count(*) FILTER (WHERE rp.outcome = 'not_found') AS not_found,"
    " count(*) FILTER (WHERE rp.outcome IN ('unusable', 'no_item')) AS no_data,"
    " sum(rp.duplicates) AS duplicates,"
    " count(*) FILTER (WHERE rp.outcome = 'unusable') AS malformed,"
    " count(*) FILTER (WHERE rp.outcome IN ('unusable', 'no_item', 'skipped'))"
    "   + count(*) FILTER (WHERE rp.served_asin IS NOT NULL)"
    "   + count(*) FILTER (WHERE rp.duplicates > 0) AS problem_count"
    " FROM scrape_run_products rp JOIN mine ON mine.product_id = rp.product_id"
    " GROUP BY rp.scrape_run_id)"
)
_SELLER_RUNS = (
    f"WITH {_MINE}, {_THEIRS}"
    f" SELECT {_RUN_BASE},"
    f" round(r.cost_usd * s.requested / nullif({_RUN_REQUESTED}, 0), 6) AS cost_usd,"
    " r.cost_usd AS run_cost_usd, r.error, s.requested, s.returned, s.attributed,"
    " s.not_found, s.no_data, NULL::integer AS unattributed, s.duplicates, s.malformed,"
    f" s.problem_count, {_RUN_REQUESTED} AS run_requested"
    " FROM scrape_runs r JOIN theirs s ON s.run_id = r.id"
)


def _run(row: Row[Any]) -> RunRow:
    values = list(row)
    for i in (10, 11):
        values[i] = as_float(values[i])
    for i in range(14, 22):
        values[i] = as_int(values[i])
    return RunRow._make(values)


def list_runs(conn: Connection, user_id: UUID | None, limit: int,
              offset: int) -> tuple[list[RunRow], int]:
    """Newest first: every run (`user_id` None), or the runs that requested one of the
    seller's products."""
    params: dict[str, Any] = {"u": user_id, "limit": limit, "offset": offset}
    page = " ORDER BY r.started_at DESC, r.id LIMIT :limit OFFSET :offset"
    if user_id is None:
        rows = conn.execute(text(_ALL_RUNS + page), params).all()
        total = conn.execute(text("SELECT count(*) FROM scrape_runs")).scalar_one()
    else:
        rows = conn.execute(text(_SELLER_RUNS + page), params).all()
        total = conn.execute(text(
            f"WITH {_MINE} SELECT count(DISTINCT rp.scrape_run_id) FROM scrape_run_products rp"
            " JOIN mine ON mine.product_id = rp.product_id"), params).scalar_one()
    return [_run(r) for r in rows], int(total)


def get_run(conn: Connection, run_id: UUID, user_id: UUID | None) -> RunRow | None:
    """One run as `list_runs` shows it; None when it does not exist or requested none of
    the seller's products."""
    sql = _ALL_RUNS if user_id is None else _SELLER_RUNS
    row = conn.execute(text(sql + " WHERE r.id = :id"), {"id": run_id, "u": user_id}).first()
    return None if row is None else _run(row)


def run_problems(conn: Connection, run_id: UUID) -> list[dict[str, Any]]:
    """The run's stored problem list (at most 100 entries, every product's included)."""
    value = conn.execute(text("SELECT problems FROM scrape_runs WHERE id = :id"),
                         {"id": run_id}).scalar()
    problems = as_json(value) or []
    return [p for p in problems if isinstance(p, dict)]


def run_products(conn: Connection, run_id: UUID, user_id: UUID | None,
                 limit: int = 1000) -> list[RunProductRow]:
    """What became of each product the run requested (the seller's products only)."""
    mine = "" if user_id is None else f"WITH {_MINE} "
    only = "" if user_id is None else " AND rp.product_id IN (SELECT product_id FROM mine)"
    rows = conn.execute(text(
        f"{mine}SELECT p.asin, p.marketplace, p.title, rp.outcome, rp.served_asin,"
        " rp.duplicates, rp.reason, t.id AS tracked_id, rp.attempt, rp.retry_at"
        " FROM scrape_run_products rp"
        " JOIN products p ON p.id = rp.product_id"
        " LEFT JOIN tracked_products t ON t.product_id = rp.product_id AND t.user_id = :u"
        f" WHERE rp.scrape_run_id = :id{only}"
        " ORDER BY (rp.outcome = 'stored' AND rp.served_asin IS NULL AND rp.duplicates = 0),"
        " p.asin, p.marketplace LIMIT :limit"),
        {"id": run_id, "u": user_id, "limit": limit}).all()
    return [RunProductRow._make(r) for r in rows]


# ---------------------------------------------------------------- organisation and exports


def tracked_by_ids(conn: Connection, user_id: UUID, ids: list[UUID]) -> dict[UUID, TrackedRow]:
    """The seller's tracked products among `ids`, locked for a bulk change (others' ids
    and unknown ones are simply absent)."""
    rows = conn.execute(text(
        TRACKED_SELECT + " WHERE t.user_id = :u AND t.id = ANY(CAST(:ids AS uuid[]))"
        " ORDER BY t.id FOR UPDATE OF t"), {"u": user_id, "ids": [str(i) for i in ids]}).all()
    return {r.id: _tracked(r) for r in rows}


def user_tags(conn: Connection, user_id: UUID) -> list[tuple[str, int]]:
    """Every tag the seller uses, with how many products carry it."""
    rows = conn.execute(text(
        "SELECT tag, count(*) FROM tracked_products, unnest(tags) AS tag WHERE user_id = :u"
        " GROUP BY tag ORDER BY tag"), {"u": user_id}).all()
    return [(r[0], int(r[1])) for r in rows]


def tracked_batch(conn: Connection, user_id: UUID, *, q: str | None, paused: bool | None,
                  tag: str | None, after: tuple[datetime, UUID] | None, size: int
                  ) -> list[TrackedRow]:
    """One batch of an export, oldest first, after the keyset (created_at, id)."""
    where, params = _tracked_filters(user_id, q, paused, tag)
    if after is not None:
        where.append("(t.created_at, t.id) > (:after_at, :after_id)")
        params.update({"after_at": after[0], "after_id": after[1]})
    params["size"] = size
    rows = conn.execute(text(
        f"{TRACKED_SELECT} WHERE {' AND '.join(where)} ORDER BY t.created_at, t.id"
        " LIMIT :size"), params).all()
    return [_tracked(r) for r in rows]


HISTORY_EXPORT_COLUMNS = (
    "availability, price, list_price, buy_box_price, currency, buy_box_seller, bsr_rank,"
    " subcategory_bsr, rating, review_count,"
    " CASE WHEN jsonb_typeof(details->'offer_count') = 'number'"
    " THEN (details->>'offer_count')::numeric END AS offer_count,"
    " CASE WHEN jsonb_typeof(details->'seller_count') = 'number'"
    " THEN (details->>'seller_count')::numeric END AS seller_count,"
    " CASE WHEN jsonb_typeof(details->'bought_past_month') = 'number'"
    " THEN (details->>'bought_past_month')::numeric END AS bought_past_month"
)


def history_batch(conn: Connection, product_id: int, start: datetime, end: datetime,
                  interval: str, after: datetime | None, size: int) -> list[dict[str, Any]]:
    """One batch of a product's history with every metric, oldest first, after the keyset
    `after` (a time, or a period start for day/week). Day and week rows are the period's
    last observation, as the charts' series are."""
    params: dict[str, Any] = {"p": product_id, "s": start, "e": end, "size": size,
                              "after": after}
    after_clause = "" if after is None else " AND {t} > :after"
    if interval == "raw":
        sql = (f"SELECT captured_at AS t, {HISTORY_EXPORT_COLUMNS} FROM snapshots"
               " WHERE product_id = :p AND captured_at BETWEEN :s AND :e AND found"
               + after_clause.format(t="captured_at") + " ORDER BY captured_at LIMIT :size")
    else:
        period = f"date_trunc('{'week' if interval == 'week' else 'day'}', captured_at)"
        sql = (f"SELECT DISTINCT ON ({period}) {period} AS t, {HISTORY_EXPORT_COLUMNS}"
               " FROM snapshots WHERE product_id = :p AND captured_at BETWEEN :s AND :e"
               f" AND found{after_clause.format(t=period)}"
               f" ORDER BY {period}, captured_at DESC LIMIT :size")
    return [dict(r._mapping) for r in conn.execute(text(sql), params).all()]


def alerts_batch(conn: Connection, user_id: UUID, filters: dict[str, Any],
                 after: tuple[datetime, UUID] | None, size: int) -> list[AlertRow]:
    """One batch of an alerts export, newest first, before the keyset (created_at, id)."""
    where, params = _alert_filters(user_id, filters)
    params["size"] = size
    if after is not None:
        where.append("(a.created_at, a.id) < (:after_at, :after_id)")
        params.update({"after_at": after[0], "after_id": after[1]})
    rows = conn.execute(text(
        "SELECT a.id, a.tracked_product_id, p.asin, p.title AS product_title, a.type,"
        " a.severity, a.metric, a.old_value, a.new_value, a.change_pct, a.threshold,"
        " a.message, a.snapshot_captured_at, a.created_at, a.acknowledged_at, p.data_source"
        " FROM alerts a JOIN products p ON p.id = a.product_id"
        f" WHERE {' AND '.join(where)} ORDER BY a.created_at DESC, a.id DESC LIMIT :size"),
        params).all()
    return [AlertRow._make(r) for r in rows]
