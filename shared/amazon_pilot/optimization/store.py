"""All of optimization's SQL: tracked products with their competitor group, the snapshots
the listing score and experiments read, suggestion runs, experiments.

``load_listing`` is the one place a stored observation becomes a full
``Snapshot`` again (title, bullets, description, images, video, rating, price, BSR...)
and the daily ``HistoryPoint`` series the domain reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Literal, TypeVar
from uuid import UUID

from sqlalchemy import Connection, Row, text

from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import Level, SuggestionSource, SuggestionType
from amazon_pilot.platform.db import as_float, as_int, as_json, reading, transaction
from amazon_pilot.tracking.store import SNAPSHOT_READ, snapshot_from_row

T = TypeVar("T")

# The tables' CHECK constraints (shared/amazon_pilot/migrations/0006_optimization.sql).
RunStatus = Literal["queued", "running", "done", "failed"]
GeneratedBy = Literal["llm", "rules"]
CacheUse = Literal["hit", "miss"]
ExperimentStatus = Literal["running", "stopped"]


def _typed(cls: type[T], row: Row[Any] | None) -> T | None:
    """A row as its dataclass (the columns selected are the dataclass's fields)."""
    if row is None:
        return None
    data = row._mapping
    return cls(**{f.name: data[f.name] for f in fields(cls) if f.name in data})  # type: ignore[arg-type]


@contextmanager
def read_only() -> Iterator[Connection]:
    """One consistent read-only transaction: what a GET reads with, so it cannot write."""
    with transaction() as conn:
        conn.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY"))
        yield conn


# ------------------------------------------------------------------ products and groups


@dataclass(slots=True, frozen=True)
class ProductRef:
    product_id: int
    asin: str
    marketplace: str


@dataclass(slots=True)
class GroupRef:
    id: UUID
    name: str
    competitors: list[ProductRef]


@dataclass(slots=True, frozen=True)
class TrackedProduct:
    """A seller's tracked product with its shared product's identity."""

    id: UUID
    user_id: UUID
    product_id: int
    alias: str | None
    asin: str
    marketplace: str
    title: str | None
    brand: str | None
    data_source: str | None
    latest_captured_at: datetime | None
    company_name: str | None  # the seller's: their Buy Box name in experiments

    @property
    def ref(self) -> ProductRef:
        return ProductRef(int(self.product_id), self.asin, self.marketplace)


TRACKED_SQL = (
    "SELECT t.id, t.user_id, t.product_id, t.alias, p.asin, p.marketplace, p.title,"
    " p.brand, p.data_source, p.latest_captured_at, u.company_name"
    " FROM tracked_products t JOIN products p ON p.id = t.product_id"
    " JOIN users u ON u.id = t.user_id WHERE t.id = :id"
)


def get_tracked(conn: Connection, tracked_id: UUID) -> TrackedProduct | None:
    """A tracked product, whoever owns it (the suggestion job's and experiments' read)."""
    return _typed(TrackedProduct, conn.execute(text(TRACKED_SQL), {"id": tracked_id}).first())


def tracked_of(conn: Connection, user_id: UUID, tracked_id: UUID) -> TrackedProduct | None:
    """The seller's tracked product; None when it does not exist or is someone else's."""
    return _typed(TrackedProduct, conn.execute(text(TRACKED_SQL + " AND t.user_id = :u"),
                                               {"id": tracked_id, "u": user_id}).first())


def owned_tracked(user_id: UUID, tracked_id: UUID) -> TrackedProduct | None:
    """tracked_of on its own connection (the ownership dependency's loader)."""
    with reading() as conn:
        return tracked_of(conn, user_id, tracked_id)


def product_group(conn: Connection, user_id: UUID, product_id: int) -> GroupRef | None:
    """The seller's competitor group whose main product this is (active and newest first),
    with its competitors in the order they were added; None when there is none."""
    group = conn.execute(text(
        "SELECT id, name FROM competitor_groups WHERE user_id = :u AND main_product_id = :p"
        " ORDER BY is_active DESC, updated_at DESC, id LIMIT 1"),
        {"u": user_id, "p": product_id}).first()
    if group is None:
        return None
    members = conn.execute(text(
        "SELECT p.id, p.asin, p.marketplace FROM competitor_group_members m"
        " JOIN products p ON p.id = m.product_id WHERE m.group_id = :g"
        " ORDER BY m.position, p.id"), {"g": group.id}).all()
    return GroupRef(group.id, group.name,
                    [ProductRef(int(m.id), m.asin, m.marketplace) for m in members])


# ------------------------------------------------------------------ snapshots

_COLUMNS = (
    "found, price, list_price, currency, buy_box_price, buy_box_seller, availability,"
    " stock_count, rating, review_count, bsr_rank, bsr_category, subcategory_bsr"
)
# One round trip: the latest *found* observation of each product (everything a listing
# score reads), and, when asked, the last found observation of each UTC day in
# [since, until) for every product.
LISTING_SQL = f"""
WITH latest AS (
    SELECT 'l' AS kind, s.product_id, s.captured_at, {SNAPSHOT_READ}
    FROM unnest(CAST(:ids AS bigint[])) AS ids(pid)
    CROSS JOIN LATERAL (
        SELECT * FROM snapshots x WHERE x.product_id = ids.pid AND x.found
        ORDER BY x.captured_at DESC LIMIT 1) s
), daily AS (
    SELECT DISTINCT ON (product_id, (captured_at AT TIME ZONE 'UTC')::date)
           'h' AS kind, product_id, captured_at, {_COLUMNS}, NULL::jsonb, title,
           NULL::smallint, jsonb_build_object('has_deal', details->'has_deal'), data_source
    FROM snapshots
    WHERE CAST(:with_history AS boolean) AND product_id = ANY(CAST(:ids AS bigint[])) AND found
      AND captured_at >= :since AND captured_at < :until
    ORDER BY product_id, (captured_at AT TIME ZONE 'UTC')::date, captured_at DESC
)
SELECT * FROM latest UNION ALL SELECT * FROM daily
"""


@dataclass(slots=True)
class ListingData:
    """A product's latest Snapshot and daily history, and the same for its competitors."""

    product: Snapshot | None
    history: list[HistoryPoint]
    competitors: list[Snapshot]  # those with a found observation, in group order
    competitor_history: dict[str, list[HistoryPoint]] = field(default_factory=dict)
    data_sources: dict[str, str | None] = field(default_factory=dict)  # asin -> source
    as_of: dict[str, datetime | None] = field(default_factory=dict)  # asin -> latest seen

    @property
    def data_source(self) -> str | None:
        """"sandbox" when any of the products' data came from the stand-in."""
        known = {s for s in self.data_sources.values() if s}
        if not known:
            return None
        return "sandbox" if "sandbox" in known else sorted(known)[0]


def history_point(row: Any) -> HistoryPoint:
    availability = row.availability
    in_stock = (True if availability in ("in_stock", "low_stock")
                else False if availability == "out_of_stock" else None)
    return HistoryPoint(
        captured_at=row.captured_at.astimezone(UTC), price=as_float(row.price),
        list_price=as_float(row.list_price),
        buy_box_price=as_float(row.buy_box_price), buy_box_seller=row.buy_box_seller,
        bsr_rank=as_int(row.bsr_rank), subcategory_bsr=as_int(row.subcategory_bsr),
        rating=as_float(row.rating), review_count=as_int(row.review_count), in_stock=in_stock,
        title=row.title, has_deal=_flag((as_json(row.details) or {}).get("has_deal")),
    )


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def load_listing(conn: Connection, product: ProductRef, competitors: Sequence[ProductRef],
                 *, since: datetime | None = None, until: datetime | None = None
                 ) -> ListingData:
    """The product's latest found Snapshot and its competitors', in one query; with
    ``since`` also every product's daily HistoryPoints (last found observation of each UTC
    day) in [since, until). Products never found are left out of ``competitors``."""
    refs = [product, *[c for c in competitors if c.product_id != product.product_id]]
    ids = [r.product_id for r in refs]
    params = {"ids": ids, "with_history": since is not None,
              "since": since or datetime(1970, 1, 1, tzinfo=UTC),
              "until": until or datetime(9999, 1, 1, tzinfo=UTC)}
    latest: dict[int, Any] = {}
    history: dict[int, list[HistoryPoint]] = {pid: [] for pid in ids}
    for row in conn.execute(text(LISTING_SQL), params):
        if row.kind == "l":
            latest[row.product_id] = row
        else:
            history[row.product_id].append(history_point(row))
    for points in history.values():
        points.sort(key=lambda p: p.captured_at)
    snaps = {r.product_id: snapshot_from_row(r.asin, r.marketplace, latest[r.product_id])
             for r in refs if r.product_id in latest}
    return ListingData(
        product=snaps.get(product.product_id),
        history=history[product.product_id],
        competitors=[snaps[r.product_id] for r in refs[1:] if r.product_id in snaps],
        competitor_history={r.asin: history[r.product_id] for r in refs[1:]},
        data_sources={r.asin: (latest[r.product_id].data_source
                               if r.product_id in latest else None) for r in refs},
        as_of={r.asin: (latest[r.product_id].captured_at if r.product_id in latest else None)
               for r in refs},
    )


# ------------------------------------------------------------------ suggestion runs


@dataclass(slots=True, frozen=True)
class RunRow:
    """A suggestion run; ``score`` and ``inputs`` only when read with its body."""

    id: UUID
    user_id: UUID
    tracked_product_id: UUID
    product_id: int
    group_id: UUID | None
    status: RunStatus
    trigger: str  # user | demo
    attempts: int
    generated_by: GeneratedBy | None
    model: str | None
    sandbox: bool | None
    fallback_reason: str | None
    cache: CacheUse | None
    input_hash: str | None
    prompt_tokens: int
    completion_tokens: int
    cost_usd: Decimal | None
    llm_latency_ms: int | None
    data_source: str | None
    error: str | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    score: dict[str, Any] | None = None
    inputs: dict[str, Any] | None = None


@dataclass(slots=True, frozen=True)
class SuggestionRow:
    id: UUID
    run_id: UUID
    priority: int
    type: SuggestionType
    change: str
    reason: str
    impact: Level
    impact_score: float
    effort: Level
    effort_score: float
    source: SuggestionSource
    evidence: dict[str, Any]
    experiment_id: UUID | None  # the latest experiment opened on it


@dataclass(slots=True, frozen=True)
class SuggestionRef:
    """A suggestion with its run's owner and tracked product."""

    id: UUID
    type: str
    change: str
    user_id: UUID
    tracked_product_id: UUID


RUN_COLUMNS = (
    "id, user_id, tracked_product_id, product_id, group_id, status, trigger, attempts,"
    " generated_by, model, sandbox, fallback_reason, cache, input_hash, prompt_tokens,"
    " completion_tokens, cost_usd, llm_latency_ms, data_source, error, created_at,"
    " started_at, finished_at"
)
SUGGESTION_COLUMNS = (
    "id, run_id, priority, type, change, reason, impact, impact_score, effort, effort_score,"
    " source, evidence"
)


def _run(row: Row[Any] | None) -> RunRow | None:
    return _typed(RunRow, row)


def _runs(rows: Sequence[Row[Any]]) -> list[RunRow]:
    return [run for run in map(_run, rows) if run is not None]


def insert_run(conn: Connection, user_id: UUID, tracked_id: UUID, product_id: int,
               trigger: str = "user") -> UUID:
    run_id: UUID = conn.execute(text(
        "INSERT INTO suggestion_runs (user_id, tracked_product_id, product_id, trigger)"
        " VALUES (:u, :t, :p, :trigger) RETURNING id"),
        {"u": user_id, "t": tracked_id, "p": product_id, "trigger": trigger}).scalar_one()
    return run_id


def in_flight_run(conn: Connection, tracked_id: UUID) -> RunRow | None:
    """A queued or running run of the tracked product from the last hour, if any."""
    return _run(conn.execute(text(
        f"SELECT {RUN_COLUMNS} FROM suggestion_runs WHERE tracked_product_id = :t"
        " AND status IN ('queued', 'running') AND created_at > now() - interval '1 hour'"
        " ORDER BY created_at DESC LIMIT 1"), {"t": tracked_id}).first())


def get_run(conn: Connection, run_id: UUID, *, with_body: bool = True) -> RunRow | None:
    extra = ", score, inputs" if with_body else ""
    return _run(conn.execute(text(
        f"SELECT {RUN_COLUMNS}{extra} FROM suggestion_runs WHERE id = :r"), {"r": run_id}).first())


def owned_run(user_id: UUID, run_id: UUID) -> RunRow | None:
    """The seller's run with its body, on its own connection (the ownership loader)."""
    with reading() as conn:
        return _run(conn.execute(text(
            f"SELECT {RUN_COLUMNS}, score, inputs FROM suggestion_runs"
            " WHERE id = :r AND user_id = :u"), {"r": run_id, "u": user_id}).first())


def list_runs(conn: Connection, tracked_id: UUID, limit: int, offset: int
              ) -> tuple[list[RunRow], int]:
    rows = conn.execute(text(
        f"SELECT {RUN_COLUMNS} FROM suggestion_runs WHERE tracked_product_id = :t"
        " ORDER BY created_at DESC, id LIMIT :limit OFFSET :offset"),
        {"t": tracked_id, "limit": limit, "offset": offset}).all()
    total = conn.execute(text("SELECT count(*) FROM suggestion_runs"
                              " WHERE tracked_product_id = :t"), {"t": tracked_id}).scalar_one()
    return _runs(rows), int(total)


def latest_done_run(conn: Connection, tracked_id: UUID) -> RunRow | None:
    return _run(conn.execute(text(
        f"SELECT {RUN_COLUMNS}, score, inputs FROM suggestion_runs WHERE tracked_product_id = :t"
        " AND status = 'done' ORDER BY finished_at DESC, id LIMIT 1"), {"t": tracked_id}).first())


def run_suggestions(conn: Connection, run_ids: Sequence[UUID]
                    ) -> dict[UUID, list[SuggestionRow]]:
    """Each run's suggestions by priority, with the experiment opened on each (if any)."""
    rows = conn.execute(text(
        f"SELECT {', '.join('s.' + c.strip() for c in SUGGESTION_COLUMNS.split(','))},"
        " (SELECT e.id FROM experiments e WHERE e.suggestion_id = s.id"
        "  ORDER BY e.created_at DESC LIMIT 1) AS experiment_id"
        " FROM suggestions s WHERE s.run_id = ANY(:ids) ORDER BY s.run_id, s.priority"),
        {"ids": list(run_ids)}).all()
    out: dict[UUID, list[SuggestionRow]] = {rid: [] for rid in run_ids}
    for row in rows:
        suggestion = _typed(SuggestionRow, row)
        if suggestion is not None:
            out.setdefault(suggestion.run_id, []).append(suggestion)
    return out


def suggestion_counts(conn: Connection, run_ids: Sequence[UUID]) -> dict[UUID, int]:
    rows = conn.execute(text(
        "SELECT run_id, count(*) AS n FROM suggestions WHERE run_id = ANY(:ids)"
        " GROUP BY run_id"), {"ids": list(run_ids)}).all()
    return {r.run_id: int(r.n) for r in rows}


def claim_run(conn: Connection, run_id: UUID) -> RunRow | None:
    """Mark a run running (unless done); None when it no longer exists."""
    return _run(conn.execute(text(
        "UPDATE suggestion_runs SET status = CASE WHEN status = 'done' THEN 'done'"
        " ELSE 'running' END, attempts = attempts + CASE WHEN status = 'done' THEN 0 ELSE 1 END,"
        " started_at = CASE WHEN status = 'done' THEN started_at ELSE now() END"
        f" WHERE id = :r RETURNING {RUN_COLUMNS}"), {"r": run_id}).first())


def finish_run(conn: Connection, run_id: UUID, values: dict[str, Any],
               suggestions: Sequence[dict[str, Any]]) -> None:
    """Store the run's outcome and its suggestions in one transaction (replays: once)."""
    conn.execute(text(
        "INSERT INTO suggestions (run_id, priority, type, change, reason, impact, impact_score,"
        " effort, effort_score, source, evidence)"
        " SELECT :r, s.priority, s.type, s.change, s.reason, s.impact, s.impact_score,"
        " s.effort, s.effort_score, s.source, s.evidence"
        " FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS s(priority integer, type text,"
        "   change text, reason text, impact text, impact_score double precision,"
        "   effort text, effort_score double precision, source text, evidence jsonb)"
        " ON CONFLICT (run_id, priority) DO NOTHING"),
        {"r": run_id, "rows": json.dumps(list(suggestions), default=str)})
    conn.execute(text(
        "UPDATE suggestion_runs SET status = 'done', group_id = :group_id,"
        " generated_by = :generated_by, model = :model, sandbox = :sandbox,"
        " fallback_reason = :fallback_reason, cache = :cache, input_hash = :input_hash,"
        " prompt_tokens = :prompt_tokens, completion_tokens = :completion_tokens,"
        " cost_usd = :cost_usd, llm_latency_ms = :llm_latency_ms, data_source = :data_source,"
        " score = CAST(:score AS jsonb), inputs = CAST(:inputs AS jsonb), error = NULL,"
        " finished_at = now() WHERE id = :id"), {**values, "id": run_id})


def fail_run(conn: Connection, run_id: UUID, error: str, final: bool) -> None:
    conn.execute(text(
        "UPDATE suggestion_runs SET status = :s, error = :e,"
        " finished_at = CASE WHEN :final THEN now() ELSE NULL END"
        " WHERE id = :r AND status <> 'done'"),
        {"s": "failed" if final else "queued", "e": error[:2000], "final": final, "r": run_id})


def get_suggestion(conn: Connection, suggestion_id: UUID) -> SuggestionRef | None:
    """A suggestion with its run's owner and tracked product."""
    return _typed(SuggestionRef, conn.execute(text(
        "SELECT s.id, s.type, s.change, r.user_id, r.tracked_product_id FROM suggestions s"
        " JOIN suggestion_runs r ON r.id = s.run_id WHERE s.id = :s"),
        {"s": suggestion_id}).first())


# ------------------------------------------------------------------ experiments


@dataclass(slots=True, frozen=True)
class ExperimentRow:
    id: UUID
    user_id: UUID
    tracked_product_id: UUID
    product_id: int
    suggestion_id: UUID | None
    change: str
    changed_at: datetime
    status: ExperimentStatus
    verdict: str | None  # as of analyzed_at
    analyzed_at: datetime | None
    final_analysis: dict[str, Any] | None  # frozen when stopped
    created_at: datetime
    stopped_at: datetime | None
    asin: str
    marketplace: str


EXPERIMENT_COLUMNS = (
    "e.id, e.user_id, e.tracked_product_id, e.product_id, e.suggestion_id, e.change,"
    " e.changed_at, e.status, e.verdict, e.analyzed_at, e.final_analysis, e.created_at,"
    " e.stopped_at, p.asin, p.marketplace"
)
_EXPERIMENT_SQL = (f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e"
                   " JOIN products p ON p.id = e.product_id WHERE e.id = :e")


def insert_experiment(conn: Connection, user_id: UUID, tracked_id: UUID, product_id: int,
                      suggestion_id: UUID | None, change: str, changed_at: datetime) -> UUID:
    exp_id: UUID = conn.execute(text(
        "INSERT INTO experiments (user_id, tracked_product_id, product_id, suggestion_id,"
        " change, changed_at) VALUES (:u, :t, :p, :s, :c, :at) RETURNING id"),
        {"u": user_id, "t": tracked_id, "p": product_id, "s": suggestion_id, "c": change,
         "at": changed_at}).scalar_one()
    return exp_id


def get_experiment(conn: Connection, exp_id: UUID, *, lock: bool = False
                   ) -> ExperimentRow | None:
    sql = _EXPERIMENT_SQL + (" FOR UPDATE OF e" if lock else "")
    return _typed(ExperimentRow, conn.execute(text(sql), {"e": exp_id}).first())


def owned_experiment(user_id: UUID, exp_id: UUID) -> ExperimentRow | None:
    """The seller's experiment on its own connection (the ownership dependency's loader)."""
    with reading() as conn:
        return _typed(ExperimentRow, conn.execute(text(_EXPERIMENT_SQL + " AND e.user_id = :u"),
                                                  {"e": exp_id, "u": user_id}).first())


def list_experiments(conn: Connection, user_id: UUID, *, tracked_id: UUID | None,
                     status: str | None, limit: int, offset: int
                     ) -> tuple[list[ExperimentRow], int]:
    where = ["e.user_id = :u"]
    params: dict[str, Any] = {"u": user_id, "limit": limit, "offset": offset}
    if tracked_id is not None:
        where.append("e.tracked_product_id = :t")
        params["t"] = tracked_id
    if status is not None:
        where.append("e.status = :s")
        params["s"] = status
    condition = " AND ".join(where)
    rows = conn.execute(text(
        f"SELECT {EXPERIMENT_COLUMNS} FROM experiments e JOIN products p ON p.id = e.product_id"
        f" WHERE {condition} ORDER BY e.created_at DESC, e.id LIMIT :limit OFFSET :offset"),
        params).all()
    total = conn.execute(text(f"SELECT count(*) FROM experiments e WHERE {condition}"),
                         params).scalar_one()
    return [e for e in (_typed(ExperimentRow, r) for r in rows) if e is not None], int(total)


def experiments_to_reanalyse(conn: Connection, window: timedelta) -> list[UUID]:
    """Running experiments not yet analysed after their after window (changed_at + window)
    closed, oldest first."""
    return list(conn.execute(text(
        "SELECT id FROM experiments WHERE status = 'running'"
        " AND (analyzed_at IS NULL OR analyzed_at < changed_at + :window)"
        " ORDER BY created_at, id"), {"window": window}).scalars())


def record_verdict(conn: Connection, exp_id: UUID, verdict: str) -> None:
    conn.execute(text("UPDATE experiments SET verdict = :v, analyzed_at = now()"
                      " WHERE id = :e AND status = 'running'"), {"v": verdict, "e": exp_id})


def stop_experiment(conn: Connection, exp_id: UUID, stopped_at: datetime,
                    analysis: dict[str, Any]) -> None:
    conn.execute(text(
        "UPDATE experiments SET status = 'stopped', stopped_at = :at, analyzed_at = :at,"
        " verdict = :v, final_analysis = CAST(:a AS jsonb) WHERE id = :e AND status = 'running'"),
        {"at": stopped_at, "v": analysis.get("verdict"), "a": json.dumps(analysis, default=str),
         "e": exp_id})
