"""Tracking's policy and orchestration: tracking products (plan limits, the refresh
cooldown, the history cache), fetching them, and storing what came back.

Every seller-facing function is scoped to the seller: another seller's id is a 404.
Product-level data (shared by every seller tracking an ASIN) is cached in Postgres until
new data lands for that product; see docs/caching.md.

A fetch job is idempotent twice over: its scrape run is keyed by the job key (a
replay after success does not start the actor again), and its snapshots are keyed
by (product, captured_at) where captured_at comes from the message, not the clock.
Storing an observation moves each product's `latest` and runs change detection
against every tracking seller's thresholds, for the rows that were really inserted.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol
from uuid import UUID

from sqlalchemy import Connection

from amazon_pilot.domain import cadence
from amazon_pilot.domain.changes import (
    DEFAULT_THRESHOLDS,
    AlertDraft,
    AlertType,
    LatestValues,
    Thresholds,
    detect_changes,
)
from amazon_pilot.domain.product_ref import InvalidProductRef, product_url, short_link_host
from amazon_pilot.domain.seller_identity import (
    BuyBoxDay,
    SellerIdentity,
    buy_box_share,
    ownership_unknown,
)
from amazon_pilot.domain.snapshot import Availability, Snapshot
from amazon_pilot.domain.tags import InvalidTag, merged, without
from amazon_pilot.platform import outbox
from amazon_pilot.platform.cache import cache_put, drop_tagged
from amazon_pilot.platform.collector import collection_paused
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import (
    ApiError,
    Conflict,
    NotFound,
    PlanLimitReached,
    TooManyRequests,
    ValidationFailed,
)
from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
from amazon_pilot.platform.observability import record_metric
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking import store
from amazon_pilot.tracking.schemas import (
    AddProduct,
    Alert,
    AlertPage,
    BulkAction,
    BulkActionResponse,
    BulkActionResult,
    BulkAdd,
    BulkResponse,
    BulkResult,
    BuyBoxStatus,
    BuyBoxWindow,
    FetchPayload,
    History,
    HistoryPoint,
    Interval,
    ListedProduct,
    PatchProduct,
    ProductDetail,
    RunProblem,
    RunProduct,
    ScrapeRun,
    ScrapeRunDetail,
    ScrapeRunPage,
    Severity,
    TagCount,
    TagList,
    TrackedProduct,
    checked_tags,
    latest_fields,
)
from amazon_pilot.tracking.store import TrackedRow

if TYPE_CHECKING:  # the adapter loads on a worker's first fetch; workers never load FastAPI
    from amazon_pilot.adapters.apify import FetchResult, InputBuilder
    from amazon_pilot.adapters.apify import RunProblem as ApifyProblem
    from amazon_pilot.platform.security import CurrentUser

log = logging.getLogger(__name__)

REFRESH_COOLDOWN_S = 15 * 60
STALE_AFTER = timedelta(hours=36)
CACHE_TTL_S = 6 * 3600  # also dropped the moment new data lands for the product
CHANGE_WINDOWS = {"1d": timedelta(days=1), "7d": timedelta(days=7), "30d": timedelta(days=30)}
LIST_WINDOWS = ("1d", "7d")  # the products list shows these
CHANGE_METRICS = ("price", "list_price", "buy_box_price", "bsr_rank", "subcategory_bsr",
                  "rating", "review_count")
FETCH_JOB = "fetch_products"
# a daily product observed more recently is skipped as fresh (the cadence's slack)
FRESH_FOR = cadence.CADENCES[cadence.DEFAULT] - cadence.SLACK


@dataclass
class IngestResult:
    inserted: int = 0
    skipped: int = 0  # already stored (a replay)
    alert_ids: list[str] = field(default_factory=list)
    product_ids: list[int] = field(default_factory=list)


# ---------------------------------------------------------------- tracked products


def _stale(as_of: datetime | None) -> bool:
    return as_of is None or datetime.now(UTC) - as_of > STALE_AFTER


# The default thresholds as a dict, built once (a page of 50 products merged them 50 times).
_DEFAULT_THRESHOLDS = DEFAULT_THRESHOLDS.to_dict()


def tracked_out(row: TrackedRow) -> TrackedProduct:
    return TrackedProduct(**tracked_fields(row))


def tracked_fields(row: TrackedRow) -> dict[str, Any]:
    """A tracked product's fields, for TrackedProduct and the list's ListedProduct (built
    from these directly: a TrackedProduct copied into one took half of a page's time).
    `latest` stays the stored dict: the model validates it into Latest."""
    latest = row.latest or None
    status = row.last_fetch_status or "pending"
    return dict(
        id=row.id, asin=row.asin, marketplace=row.marketplace,
        url=product_url(row.asin, row.marketplace), alias=row.alias, title=row.title,
        brand=row.brand, image_url=row.main_image_url, is_paused=row.is_paused,
        thresholds={**_DEFAULT_THRESHOLDS, **(row.thresholds or {})},
        created_at=row.created_at, latest=latest, as_of=row.latest_captured_at,
        stale=_stale(row.latest_captured_at), fetch_status=status, data_source=row.data_source,
        fetch_error=row.last_fetch_error, fetch_failed_at=row.last_fetch_failed_at,
        tags=list(row.tags or []), notes=row.notes, **_cadence_out(row),
    )


# The keys listed_fields writes, in the order it writes them: the model's (asserted, so
# a new field of the model fails at import until listed_fields gives it).
_LISTED_FIELDS = (
    "id", "asin", "marketplace", "url", "alias", "title", "brand", "image_url", "is_paused",
    "thresholds", "created_at", "latest", "as_of", "stale", "fetch_status", "fetch_error",
    "fetch_failed_at", "data_source", "tags", "notes", "refresh_every", "refresh_cadence",
    "budget_stretched", "next_refresh_at", "changes")
assert tuple(ListedProduct.model_fields) == _LISTED_FIELDS, "listed_fields: the model changed"


def listed_fields(row: TrackedRow, then: store.Then | None,
                  now: datetime | None = None) -> dict[str, Any]:
    """A ListedProduct's fields as plain values, in the model's order (see list_products):
    tracked_fields' values, written straight in that order (a page of fifty built a dict
    and then reordered it), with `now` read once a page."""
    now = now or datetime.now(UTC)
    latest = row.latest or None
    every, due = _cadence_of(row, now)
    return {
        "id": row.id, "asin": row.asin, "marketplace": row.marketplace,
        "url": product_url(row.asin, row.marketplace), "alias": row.alias,
        "title": row.title, "brand": row.brand, "image_url": row.main_image_url,
        "is_paused": row.is_paused,
        "thresholds": {**_DEFAULT_THRESHOLDS, **(row.thresholds or {})},
        "created_at": row.created_at,
        "latest": latest_fields(latest) if latest else latest,
        "as_of": row.latest_captured_at,
        "stale": row.latest_captured_at is None or now - row.latest_captured_at > STALE_AFTER,
        "fetch_status": row.last_fetch_status or "pending",
        "fetch_error": row.last_fetch_error, "fetch_failed_at": row.last_fetch_failed_at,
        "data_source": row.data_source, "tags": list(row.tags or []), "notes": row.notes,
        "refresh_every": row.refresh_every, "refresh_cadence": every,
        "budget_stretched": row.budget_stretched,
        "next_refresh_at": None if row.is_paused else (due or now),
        "changes": changes_of(latest, then or {}) if latest else None,
    }


def _cadence_of(row: TrackedRow, now: datetime) -> tuple[str, datetime | None]:
    """The cadence the plan applies to the row, and when it is due next."""
    stable = cadence.is_stable(row.created_at, row.moved_at, now)
    every = cadence.effective(row.refresh_every, stable=stable, stretched=row.budget_stretched)
    return every, cadence.next_due(row.latest_captured_at, every)


def _cadence_out(row: TrackedRow) -> dict[str, Any]:
    now = datetime.now(UTC)
    every, due = _cadence_of(row, now)
    return {"refresh_every": row.refresh_every, "refresh_cadence": every,
            "budget_stretched": row.budget_stretched,
            "next_refresh_at": None if row.is_paused else (due or now)}


def _add(conn: Connection, user: CurrentUser, body: AddProduct, tracked_count: int | None = None
         ) -> tuple[TrackedProduct, int | None]:
    """Track one product in `conn`'s transaction; returns it and the product id when a
    first fetch is needed. `tracked_count`: how many the seller tracks, when the caller
    keeps count (a bulk add counts once, not once per item)."""
    asin, marketplace = body.reference()
    thresholds = body.thresholds.model_dump(exclude_unset=True) if body.thresholds else {}
    limit = settings().plan(user.plan).tracked_products
    if tracked_count is None:
        tracked_count = store.count_tracked(conn, user.id)
    if tracked_count >= limit:
        raise PlanLimitReached(
            f"the {user.plan} plan tracks at most {limit} products; stop tracking one or"
            " ask for a larger plan")
    product_id, fresh = store.upsert_product(conn, asin, marketplace)
    tracked_id = store.insert_tracked(conn, user.id, product_id, body.alias, thresholds)
    if tracked_id is None:
        raise Conflict(f"you already track {asin} on amazon.{marketplace}")
    row = store.get_tracked(conn, user.id, tracked_id)
    assert row is not None  # inserted in this transaction
    return tracked_out(row), (product_id if fresh else None)


def expand_short_link(body: AddProduct) -> AddProduct:
    """A short link (a.co, amzn.to) in `url` replaced by the product URL it redirects to;
    before any transaction (it is network I/O). Offline, or when the link cannot be
    followed, a 422 says to paste the full URL."""
    if body.url is None or short_link_host(body.url) is None:
        return body
    from amazon_pilot.adapters.shortlinks import ShortLinkUnresolved, resolve_short_link

    try:
        full = resolve_short_link(body.url.strip())
    except ShortLinkUnresolved as exc:
        raise ValidationFailed(f"Could not resolve the short link: {exc}.",
                               details=[{"field": "url", "message": str(exc)}]) from exc
    return body.model_copy(update={"url": full})


def add_product(user: CurrentUser, body: AddProduct) -> TrackedProduct:
    """Track a product; a product nobody fetched yet gets its first fetch queued (in the
    same transaction: no tracked product without its fetch)."""
    body = expand_short_link(body)
    with transaction() as conn:
        product, needs_fetch = _add(conn, user, body)
        if needs_fetch is not None:
            queue_first_fetch(conn, [needs_fetch])
    return product


def add_products(user: CurrentUser, body: BulkAdd) -> BulkResponse:
    """Track each item on its own (one failing does not stop the others: a savepoint
    each), and queue one first fetch for every new product in the same transaction."""
    results: list[BulkResult] = []
    to_fetch: list[int] = []
    items: list[AddProduct | ApiError] = []
    for item in body.items:  # short links resolved before the transaction opens
        try:
            items.append(expand_short_link(item))
        except ApiError as exc:
            items.append(exc)
    with transaction() as conn:
        tracked_count = store.count_tracked(conn, user.id)
        for index, expanded in enumerate(items):
            if isinstance(expanded, ApiError):
                results.append(BulkResult(index=index, status=expanded.status, error={
                    "code": expanded.code, "message": expanded.message}))
                continue
            savepoint = conn.begin_nested()
            try:
                product, needs_fetch = _add(conn, user, expanded, tracked_count)
            except ApiError as exc:
                savepoint.rollback()
                results.append(BulkResult(index=index, status=exc.status,
                                          error={"code": exc.code, "message": exc.message}))
                continue
            savepoint.commit()
            tracked_count += 1
            results.append(BulkResult(index=index, status=202, product=product))
            if needs_fetch is not None:
                to_fetch.append(needs_fetch)
        queue_first_fetch(conn, to_fetch)  # one actor run for every new product
    results.sort(key=lambda r: r.index)
    created = sum(1 for r in results if r.status == 202)
    return BulkResponse(results=results, created=created, failed=len(results) - created)


def _cursor(key: store.PageKey) -> str:
    raw = f"{key.created_at.isoformat()}|{key.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _page_key(cursor: str) -> store.PageKey:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, _, tracked = raw.partition("|")
        moment = datetime.fromisoformat(at)
        if moment.tzinfo is None:
            raise ValueError("naive timestamp")
        return store.PageKey(moment, UUID(tracked))
    except ValueError as exc:  # binascii.Error and UnicodeDecodeError are ValueErrors
        raise ValidationFailed("cursor is not one this list returned", details=[
            {"field": "cursor", "message": "pass next_cursor of the previous page"}]) from exc


def list_products(user: CurrentUser, *, q: str | None, paused: bool | None, sort: str,
                  limit: int, offset: int, tag: str | None = None,
                  cursor: str | None = None) -> dict[str, Any]:
    """A page by offset (any order) or, in the default order (created_at either way), by
    cursor: `next_cursor` continues after the page's last row without counting the rows
    before it.

    The page is ProductPage's fields as plain values of the model's types, in its field
    order: the route encodes it to JSON directly. Validating and serializing fifty
    ListedProducts with fourteen changes each took half of the request's CPU."""
    keyed = sort.lstrip("-") == "created_at"
    if cursor is not None and not keyed:
        raise ValidationFailed("cursor pages the created_at order only", details=[
            {"field": "cursor", "message": "use offset with this sort"}])
    after = None if cursor is None else _page_key(cursor)
    windows = {k: v for k, v in _windows().items() if k in LIST_WINDOWS}
    with reading() as conn:
        rows, total, then = store.list_page(conn, user.id, q=q, paused=paused, sort=sort,
                                            limit=limit, offset=offset, tag=tag, after=after,
                                            moments=windows)
        tracked = (total if q is None and paused is None and tag is None
                   else store.count_tracked(conn, user.id))
    now = datetime.now(UTC)
    items = [listed_fields(r, then.get(r.id), now) for r in rows]
    last = rows[-1] if keyed and len(rows) == limit else None
    return {"items": items, "total": total, "limit": limit, "offset": offset,
            "plan_products": settings().plan(user.plan).tracked_products,
            "tracked": tracked,
            "next_cursor": None if last is None else _cursor(
                store.PageKey(last.created_at, last.id))}


# window label -> metric -> MetricChange's fields (None: nothing observed by then)
Changes = dict[str, dict[str, dict[str, float | None]] | None]


def changes_of(latest: dict[str, Any], then: dict[str, dict[str, Any] | None]) -> Changes:
    """The one computation of "change since" (the list and the detail page both show
    it): the latest observation against the last found one at or before each window's
    start. A side without a value (out of stock now or then: no price) gives no change,
    never a change from an older known price."""
    out: Changes = {}
    news: list[tuple[str, float | None]] | None = None  # the latest side, read once a row
    for label, past in then.items():
        if past is None:
            out[label] = None
            continue
        if news is None:
            news = [(name, None if (value := latest.get(name)) is None else float(value))
                    for name in CHANGE_METRICS]
        metrics = {}
        for name, new in news:
            stored = past[name]
            old = None if stored is None else float(stored)
            if old is None or new is None:
                metrics[name] = {"old": old, "new": new, "change": None, "change_pct": None}
                continue
            change = round(new - old, 2)
            metrics[name] = {"old": old, "new": new, "change": change,
                             "change_pct": round(change / old * 100, 2) if old else None}
        out[label] = metrics
    return out


def _windows() -> dict[str, datetime]:
    now = datetime.now(UTC)
    return {label: now - ago for label, ago in CHANGE_WINDOWS.items()}


def _changes(conn: Connection, row: TrackedRow) -> Changes:
    return changes_of(row.latest or {}, store.values_at(conn, row.product_id, _windows()))


def product_detail(row: TrackedRow) -> ProductDetail:
    """Latest values, what changed over 1/7/30 days, who holds the Buy Box (and the
    caller's share of it), and when a refresh is allowed again."""
    with reading() as conn:
        changes = _changes(conn, row)
        buy_box = _buy_box(conn, row)
    requested = row.last_refresh_requested_at
    available = requested + timedelta(seconds=REFRESH_COOLDOWN_S) if requested else None
    if available is not None and available <= datetime.now(UTC):
        available = None
    return ProductDetail.model_validate({**tracked_fields(row), "changes": changes,
                                         "refresh_available_at": available,
                                         "buy_box": buy_box})


BUY_BOX_WINDOWS = {"7d": 7, "30d": 30, "90d": 90}
NOBODY_HOLDS = (Availability.OUT_OF_STOCK.value, Availability.NO_FEATURED_OFFER.value)


def _buy_box(conn: Connection, row: TrackedRow) -> BuyBoxStatus:
    """The Buy Box as this seller sees it: judged by their seller ids (per seller, so
    never cached with the product's shared data)."""
    mine = SellerIdentity.of(*store.seller_identity(conn, row.user_id))
    today = datetime.now(UTC).date()
    longest = max(BUY_BOX_WINDOWS.values())
    days = [BuyBoxDay(d.day, d.seller_id, d.seller, d.seller is None and d.seller_id is None
                      and d.availability in NOBODY_HOLDS)
            for d in store.buy_box_days(conn, row.product_id,
                                        datetime.now(UTC) - timedelta(days=longest))]
    windows = {}
    for label, n in BUY_BOX_WINDOWS.items():
        share = buy_box_share(days, mine, since=today - timedelta(days=n - 1))
        windows[label] = BuyBoxWindow(days=share.days, held_days=share.held,
                                      share=share.share, unknown_days=share.unknown_days)
    latest = row.latest or {}
    seller, seller_id = latest.get("buy_box_seller"), latest.get("buy_box_seller_id")
    held = mine.holds(seller_id, seller)
    if held is None and mine.known and latest.get("availability") in NOBODY_HOLDS:
        held = False  # nobody holds it, so neither do you
    return BuyBoxStatus(
        seller=seller, seller_id=seller_id, held_by_you=held,
        ownership="known" if mine.known else "unknown",
        note=None if mine.known else ownership_unknown("whether you hold the Buy Box"),
        share=windows)


def update_product(user: CurrentUser, tracked_id: UUID, body: PatchProduct) -> TrackedProduct:
    changes = body.changes()
    with transaction() as conn:
        if not store.update_tracked(conn, user.id, tracked_id, changes):
            raise NotFound("no such tracked product")
        row = store.get_tracked(conn, user.id, tracked_id)
    if row is None:
        raise NotFound("no such tracked product")
    return tracked_out(row)


def bulk_action(user: CurrentUser, body: BulkAction) -> BulkActionResponse:
    """One action on each selected product, all in one transaction, with a result per id
    (an id that is not one of the seller's products is a 404 in its result, never an
    error of the whole request; a product's tags over the limit is its own 422)."""
    ids = list(dict.fromkeys(body.ids))  # an id given twice is acted on once
    tags = checked_tags(body.tags) if body.tags else []
    results: list[BulkActionResult] = []
    with transaction() as conn:
        rows = store.tracked_by_ids(conn, user.id, ids)
        for tracked_id in ids:
            row = rows.get(tracked_id)
            if row is None:
                results.append(BulkActionResult(id=tracked_id, status=404, error={
                    "code": "not_found", "message": "no such tracked product"}))
                continue
            if body.action == "delete":
                store.delete_tracked(conn, user.id, tracked_id)
                results.append(BulkActionResult(id=tracked_id, status=204))
                continue
            changes: dict[str, Any] = {}
            try:
                if body.action in ("pause", "resume"):
                    changes["is_paused"] = body.action == "pause"
                elif body.action == "refresh_every":
                    changes["refresh_every"] = body.refresh_every
                elif body.action == "tag":
                    changes["tags"] = merged(row.tags or [], tags)
                else:
                    changes["tags"] = without(row.tags or [], tags)
            except InvalidTag as exc:
                results.append(BulkActionResult(id=tracked_id, status=422, error={
                    "code": "validation_failed", "message": str(exc)}))
                continue
            store.update_tracked(conn, user.id, tracked_id, changes)
            updated = store.get_tracked(conn, user.id, tracked_id)
            results.append(BulkActionResult(
                id=tracked_id, status=200,
                product=tracked_out(updated) if updated is not None else None))
    succeeded = sum(1 for r in results if r.status < 300)
    return BulkActionResponse(action=body.action, results=results, succeeded=succeeded,
                              failed=len(results) - succeeded)


def list_tags(user: CurrentUser) -> TagList:
    with reading() as conn:
        return TagList(items=[TagCount(tag=t, products=n) for t, n in
                              store.user_tags(conn, user.id)])


def stop_tracking(user: CurrentUser, tracked_id: UUID) -> None:
    """The seller's tracking goes; the shared product and its history stay."""
    with transaction() as conn:
        if not store.delete_tracked(conn, user.id, tracked_id):
            raise NotFound("no such tracked product")


def refresh_product(row: TrackedRow) -> dict[str, Any]:
    """Fetch now, at most once per cooldown per shared product (whoever asked first)."""
    with transaction() as conn:
        wait = store.claim_refresh(conn, row.product_id, REFRESH_COOLDOWN_S)
        if wait is None:  # the cooldown is spent only together with a queued fetch
            queue_first_fetch(conn, [row.product_id], trigger="refresh")
    if wait is not None:
        raise TooManyRequests(
            f"this product was refreshed less than 15 minutes ago; try again in {int(wait)} s",
            headers={"Retry-After": str(int(wait))})
    return {"status": "queued", "queue": "critical", "product_id": str(row.id)}


def history(user: CurrentUser, tracked_id: UUID, metric: str, start: datetime | None,
            end: datetime | None, interval: Interval) -> tuple[str, bool]:
    """One metric's time series as JSON text, and whether it came from the cache."""
    # Open-ended ranges share one cache entry; new data for the product drops it.
    key_range = f"{start.isoformat() if start else 'year'}:{end.isoformat() if end else 'now'}"
    end = end or datetime.now(UTC)
    start = start or end - timedelta(days=365)
    if start.tzinfo is None:
        start = start.replace(tzinfo=UTC)
    if end.tzinfo is None:
        end = end.replace(tzinfo=UTC)
    if start > end:
        raise ValidationFailed("'from' must be before 'to'",
                               details=[{"field": "from", "message": "after 'to'"}])
    if end - start > timedelta(days=3 * 366):
        raise ValidationFailed("ask for at most 3 years at once",
                               details=[{"field": "from", "message": "range over 3 years"}])
    key_of = f"history:{{product}}:{metric}:{interval}:{key_range}"
    with reading() as conn:  # one round trip when the answer is cached
        row, cached = store.get_tracked_with_cached(conn, user.id, tracked_id, key_of)
        if row is None:
            raise NotFound("no such tracked product")
        if cached is not None:
            return cached, True
        points = store.history(conn, row.product_id, metric, start, end, interval)
        body = History.model_construct(
            product_id=tracked_id, metric=metric, interval=interval, start=start, end=end,
            count=len(points), points=[HistoryPoint.model_construct(t=t, v=v)
                                       for t, v in points],
            data_source=row.data_source)
        answer = body.model_dump_json()
        cache_put(conn, key_of.replace("{product}", str(row.product_id)), answer,
                  CACHE_TTL_S, [f"product:{row.product_id}"])
    return answer, False


# ---------------------------------------------------------------- alerts


def list_alerts(user: CurrentUser, *, product_id: UUID | None, type: AlertType | None,
                severity: Severity | None, since: datetime | None, until: datetime | None,
                acknowledged: bool | None, limit: int, offset: int) -> AlertPage:
    filters = {"product_id": product_id, "type": type and type.value, "severity": severity,
               "since": since, "until": until, "acknowledged": acknowledged}
    with reading() as conn:
        rows, total = store.list_alerts(conn, user.id, filters, limit, offset)
    items = [Alert(id=r.id, product_id=r.tracked_product_id, asin=r.asin,
                   product_title=r.product_title, type=AlertType(r.type), severity=r.severity,
                   metric=r.metric, old_value=r.old_value, new_value=r.new_value,
                   change_pct=r.change_pct, threshold=r.threshold, message=r.message,
                   snapshot_captured_at=r.snapshot_captured_at, created_at=r.created_at,
                   acknowledged_at=r.acknowledged_at, data_source=r.data_source) for r in rows]
    return AlertPage(items=items, total=total, limit=limit, offset=offset)


def acknowledge_alert(user: CurrentUser, alert_id: UUID) -> dict[str, Any]:
    with transaction() as conn:
        row = store.acknowledge_alert(conn, user.id, alert_id)
    if row is None:
        raise NotFound("no such alert")
    return {"id": str(row.id), "acknowledged_at": row.acknowledged_at.isoformat()}


# ---------------------------------------------------------------- scrape runs


def _scope(user: CurrentUser | None) -> UUID | None:
    """None (every run, whole counts) for an administrator or the operator's CLI; a
    seller's id otherwise (runs of their products, counts of their products)."""
    return None if user is None or user.is_admin else user.id


def _run_out(row: store.RunRow, scoped: bool) -> dict[str, Any]:
    done = row.status == "succeeded"
    return {
        "id": row.id, "trigger": row.trigger, "status": row.status,
        "scope": "yours" if scoped else "all", "actor_id": row.actor_id,
        "data_source": row.data_source, "attempts": row.attempts,
        "captured_at": row.captured_at, "started_at": row.started_at,
        "finished_at": row.finished_at,
        "duration_s": None if row.duration_ms is None else round(row.duration_ms / 1000, 3),
        "cost_usd": row.cost_usd, "requested": row.requested,
        # what a run returned is known once it succeeded
        "returned": row.returned if done else None,
        "attributed": row.attributed if done else None,
        "not_found": row.not_found if done else None,
        "no_data": row.no_data if done else None,
        "unattributed": None if scoped or not done else row.unattributed,
        "duplicates": row.duplicates if done else None,
        "malformed": row.malformed if done else None,
        "problem_count": row.problem_count if done else None,
        "error": row.error,
    }


def list_runs(user: CurrentUser | None, *, limit: int, offset: int) -> ScrapeRunPage:
    """Scrape runs, newest first: all of them for an administrator, the runs that
    fetched a seller's products (counted over those products) for a seller."""
    scope = _scope(user)
    with reading() as conn:
        rows, total = store.list_runs(conn, scope, limit, offset)
    return ScrapeRunPage(items=[ScrapeRun(**_run_out(r, scope is not None)) for r in rows],
                         total=total, limit=limit, offset=offset)


def run_detail(user: CurrentUser | None, run_id: UUID) -> ScrapeRunDetail:
    """One run with its problems and what became of each requested product; a seller
    sees only their products (another seller's run is a 404)."""
    scope = _scope(user)
    with reading() as conn:
        row = store.get_run(conn, run_id, scope)
        if row is None:
            raise NotFound("no such scrape run")
        products = store.run_products(conn, run_id, scope)
        stored_problems = store.run_problems(conn, run_id) if scope is None else []
    items = [RunProduct.model_validate({
        "asin": p.asin, "marketplace": p.marketplace, "title": p.title, "outcome": p.outcome,
        "served_asin": p.served_asin, "duplicates": p.duplicates, "reason": p.reason,
        "product_id": p.tracked_id, "attempt": p.attempt, "retry_at": p.retry_at})
        for p in products]
    if scope is None:
        problems = [RunProblem.model_validate(p) for p in stored_problems
                    if p.get("kind") in _PROBLEM_KINDS]
    else:
        problems = _seller_problems(products)
    per_product = (None if row.run_cost_usd is None or not row.run_requested
                   else round(row.run_cost_usd / row.run_requested, 6))
    return ScrapeRunDetail(**_run_out(row, scope is not None), problems=problems,
                           products=items, cost_per_product_usd=per_product)


_PROBLEM_KINDS = frozenset({"unattributed", "duplicate", "unusable", "redirected", "no_item",
                            "skipped"})


def _seller_problems(products: list[store.RunProductRow]) -> list[RunProblem]:
    """A seller's problems, from their products' outcomes (the run's own list may name
    other sellers' products)."""
    out: list[RunProblem] = []
    for p in products:
        def problem(kind: str, reason: str, item_asin: str | None = None,
                    p: store.RunProductRow = p) -> RunProblem:
            return RunProblem.model_validate({
                "kind": kind, "reason": reason, "asin": p.asin, "marketplace": p.marketplace,
                "product_id": p.tracked_id, "item_asin": item_asin})

        if p.served_asin:
            out.append(problem("redirected", f"the page showed ASIN {p.served_asin}, not the"
                               f" requested {p.asin}; stored on {p.asin}", p.served_asin))
        if p.duplicates:
            out.append(problem("duplicate", f"{p.duplicates} further item(s) for this URL;"
                               " the most complete one was kept"))
        if p.outcome in ("unusable", "no_item", "skipped"):
            out.append(problem("skipped" if p.outcome == "skipped" else "no_item",
                               p.reason or p.outcome))
    return out


# ---------------------------------------------------------------- queueing fetches


def fetch_job(product_ids: list[int], trigger: str,
              captured_at: datetime) -> tuple[str, dict[str, Any], str]:
    """A queued job that fetches these products for one observation time."""
    digest = hashlib.blake2s(",".join(map(str, sorted(product_ids))).encode(),
                             digest_size=6).hexdigest()
    key = f"fetch:{trigger}:{captured_at.isoformat()}:{digest}"
    payload = FetchPayload(product_ids=product_ids, trigger=trigger, captured_at=captured_at)
    return FETCH_JOB, payload.model_dump(mode="json"), key


def queue_first_fetch(conn: Connection, product_ids: list[int], trigger: str = "add") -> int:
    """User-triggered fetches go on the critical queue, one actor run for the lot; the
    job is written to the outbox in `conn`'s transaction."""
    if not product_ids:
        return 0
    now = datetime.now(UTC).replace(microsecond=0)
    return outbox.enqueue_many(conn, "critical",
                               [fetch_job(sorted(set(product_ids)), trigger, now)])


PLAN_PAGE = 10_000  # due products read per query while planning (a multiple of any batch)


def plan_daily_refresh(batch_size: int | None, now: datetime) -> dict[str, Any]:
    """One fetch per shared product that any seller tracks (not per seller), in batches,
    for the products due at their cadence (domain/cadence.py), after the sellers' budgets
    have decided which of their products are stretched to weekly.

    The due products are read a page at a time by key (flat cost per page, flat memory),
    each page's batches written to the outbox with one INSERT, all in one transaction:
    the plan is queued whole or not at all. After the commit the relay sends the rows
    with SendMessageBatch (10 a call); what it cannot send, the scheduled relay does."""
    size = max(1, batch_size or settings().apify_batch_size)
    page = max(size, PLAN_PAGE - PLAN_PAGE % size)  # whole batches per page
    captured_at = now.replace(minute=0, second=0, microsecond=0)
    products = sent = 0
    after = 0
    with transaction() as conn:
        budgets = apply_budgets(conn, now)
        while True:
            due = store.due_products(conn, now, after=after, limit=page)
            if not due:
                break
            products += len(due)
            after = due[-1]
            sent += outbox.enqueue_many(
                conn, "default",
                (fetch_job(due[i:i + size], "schedule", captured_at)
                 for i in range(0, len(due), size)))
            if len(due) < page:
                break
        fresh, later, paused = store.refresh_skips(conn, now)
    return {"job": "daily_refresh", "products": products, "batches": sent,
            "captured_at": captured_at.isoformat(),
            # why the others were left out (`pilot fire DailyRefresh` prints it)
            "skipped_fresh": fresh, "fresh_for_hours": FRESH_FOR / timedelta(hours=1),
            "skipped_by_cadence": later, "skipped_paused": paused, "budgets": budgets}


def apply_budgets(conn: Connection, now: datetime) -> dict[str, Any]:
    """Each budgeted seller's month priced (results so far + the rest of the month at
    their cadences); over budget, products stretched to weekly, stable ones first. The
    seller's answer is stored for GET /v1/auth/me; the plan's answer counts them."""
    store.clear_budget_outcomes(conn)
    price = settings().apify_price_per_result
    over: list[dict[str, Any]] = []
    sellers = store.budget_sellers(conn, cadence.month_start(now))
    for seller in sellers:
        trackings = store.budget_trackings(conn, seller.user_id)
        answer = cadence.plan_budget(
            seller.budget_usd, seller.results,
            [cadence.Tracking(str(t.id), t.refresh_every,
                              cadence.is_stable(t.created_at, t.moved_at, now))
             for t in trackings], price, now)
        stored = {**answer.as_dict(), "price_per_result_usd": price,
                  "planned_at": now.isoformat()}
        store.set_budget_outcome(conn, seller.user_id, [UUID(k) for k in answer.stretched],
                                 stored)
        if answer.reason:
            over.append({"user_id": str(seller.user_id), **answer.as_dict()})
    return {"sellers": len(sellers), "over_budget": len(over),
            "stretched_products": sum(o["stretched_products"] for o in over),
            "sellers_stretched": over[:100]}


# ---------------------------------------------------------------- one fetch


class Fetcher(Protocol):
    def fetch(self, refs: Iterable[tuple[str, str]]) -> FetchResult: ...


def apify_token() -> str:
    """The Apify token: APIFY_TOKEN, else the secret APIFY_TOKEN_SECRET_ARN names (a job
    without one fails for good: retrying cannot make a token appear)."""
    cfg = settings()
    token = cfg.apify_token
    if not token and cfg.apify_token_secret_arn:
        from amazon_pilot.adapters.secrets import secret_field

        token = secret_field(cfg.apify_token_secret_arn, "token", "key") or None
    if not token:
        raise PermanentJobError("neither APIFY_TOKEN_SECRET_ARN nor APIFY_TOKEN is set")
    return token


def keepa_api_key() -> str:
    """The Keepa key: KEEPA_API_KEY, else the secret KEEPA_API_KEY_SECRET_ARN names (as
    the Apify token is read)."""
    cfg = settings()
    key = cfg.keepa_api_key
    if not key and cfg.keepa_api_key_secret_arn:
        from amazon_pilot.adapters.secrets import secret_field

        key = secret_field(cfg.keepa_api_key_secret_arn, "key", "token") or None
    if not key:
        raise PermanentJobError("PRODUCT_SOURCE is keepa but neither KEEPA_API_KEY_SECRET_ARN "
                                "nor KEEPA_API_KEY is set")
    return key


def make_fetcher(input_builder: InputBuilder | None = None) -> Fetcher:
    """The configured product source (PRODUCT_SOURCE): the Apify actor, whose
    `input_builder` None is the actor's own input format, or Keepa's API."""
    cfg = settings()
    if cfg.product_source == "keepa":
        from amazon_pilot.adapters.keepa import KeepaProductFetcher

        return KeepaProductFetcher(keepa_api_key(), cfg.keepa_base_url,
                                   max_wait_s=cfg.keepa_max_wait_s)
    from amazon_pilot.adapters.apify import kept_fetcher

    token = apify_token()
    return kept_fetcher(
        token, cfg.apify_api_url, actor_id=cfg.apify_actor_id,
        input_builder=input_builder,
        max_retries=cfg.apify_max_retries,
        min_delay_between_retries_millis=cfg.apify_retry_delay_ms,
    )


def run_fetch(product_ids: list[int], trigger: str, captured_at: datetime, key: str, *,
              fetcher: Fetcher | None = None, attempt: int = 1, final: bool = True,
              requeue: bool = False) -> dict[str, Any]:
    """Fetch these products in one actor run and store what it found as the observation at
    `captured_at`. `fetcher` None is the configured actor (the local tools pass their own
    to observe past days in the stand-in).

    Each item is attributed to the product whose URL was requested (adapters/apify.py);
    only a real 404 page marks a product not found, and a product without a usable item
    keeps everything stored about it. The run's record keeps the counts, each product's
    outcome and the problems (docs/architecture.md, "Product fetching").

    A product without a usable item (a robot check, a malformed item, no item) had a
    failed fetch: with `requeue` (the queue job) it is fetched again after a back-off,
    `FETCH_RETRIES` times at most (`attempt` counts them); then, like every product of a
    job whose last attempt (`final`) failed, it keeps the failure's reason
    (`last_fetch_error`) and, if it was never fetched, is `failed`, not `pending`."""
    try:
        return _fetch_and_store(product_ids, trigger, captured_at, key, fetcher, attempt,
                                requeue)
    except Exception as exc:
        if final or isinstance(exc, PermanentJobError):
            _give_up(product_ids, _failure_text(exc))
        raise


def _failure_text(exc: BaseException) -> str:
    if isinstance(exc, RetryableJobError | PermanentJobError):
        return str(exc)
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first}"


def _give_up(product_ids: list[int], reason: str) -> None:
    """Best effort: when the database is what failed, the message's DLQ reason remains."""
    try:
        with transaction() as conn:
            store.record_fetch_failure(conn, product_ids, f"the fetch failed: {reason}")
    except Exception as exc:
        log.warning("could not record the failed fetch on %d product(s): %r",
                    len(product_ids), exc)


def retry_delay_s(attempt: int) -> int:
    """Wait before a product's next fetch attempt (SQS delays at most 900 s)."""
    return int(min(900, max(1, settings().retry_base_s) * 2 ** (attempt - 1)))


def queue_fetch_retry(conn: Connection, product_ids: list[int], trigger: str,
                      captured_at: datetime, key: str, attempt: int, delay_s: int) -> None:
    """Fetch these products again, later, on the queue this job came from: an outbox row
    in the run's own transaction, relayed once `delay_s` has passed. The observation time
    is the original one: the retry fills in the same observation."""
    from amazon_pilot.platform import outbox

    payload = FetchPayload(product_ids=product_ids, trigger=trigger, captured_at=captured_at,
                           attempt=attempt).model_dump(mode="json")
    base = key.split(":retry", 1)[0]
    outbox.enqueue(conn, settings().queue_priority, FETCH_JOB, payload,
                   f"{base}:retry{attempt}", delay_s=delay_s)


def _fetch_and_store(product_ids: list[int], trigger: str, captured_at: datetime, key: str,
                     fetcher: Fetcher | None, attempt: int, requeue: bool) -> dict[str, Any]:
    from amazon_pilot.adapters.apify import ApifyError, ApifyRejected, ApifyRunError

    with transaction() as conn:
        run = store.begin_run(conn, key, trigger, captured_at, product_ids)
        if run.status == "succeeded":
            return {"scrape_run_id": run.id, "replayed": True}
        refs = store.product_keys(conn, product_ids)
    by_ref = {(r.asin, r.marketplace): r.id for r in refs}
    unusable = _unusable_refs(by_ref)  # one bad row must not sink the other 49
    for ref in unusable:
        by_ref.pop(ref)
    started = time.monotonic()
    try:
        result = (fetcher or make_fetcher()).fetch(list(by_ref))
    except ApifyRejected as exc:
        _finish_failed(run.id, "failed", str(exc), started, None)
        raise PermanentJobError(str(exc)) from exc
    except ApifyRunError as exc:
        status = "timed_out" if "TIM" in exc.status else "failed"
        _finish_failed(run.id, status, str(exc), started, exc.record)
        raise RetryableJobError(str(exc)) from exc
    except ApifyError as exc:
        _finish_failed(run.id, "failed", str(exc), started, None)
        raise RetryableJobError(str(exc)) from exc
    observations = [(by_ref[(snap.asin, snap.marketplace)], snap) for snap in result.snapshots
                    if (snap.asin, snap.marketplace) in by_ref]
    missing = [by_ref[ref] for ref in result.not_found if ref in by_ref]
    missing += list(unusable.values())
    summary, outcomes = _run_summary(result, by_ref, unusable)
    failed = {o["product_id"]: o["reason"] or o["outcome"] for o in outcomes
              if o["outcome"] in ("unusable", "no_item")}
    retry_at, delay = None, 0
    if failed and requeue and attempt <= settings().fetch_retries:
        delay = retry_delay_s(attempt)
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
    for o in outcomes:
        o["attempt"] = attempt
        o["retry_at"] = retry_at if o["product_id"] in failed else None
    stored_from = time.monotonic()
    with transaction() as conn:
        outcome = ingest(conn, captured_at, run.id, observations)
        if missing:
            store.mark_not_found(conn, missing, captured_at)
        if failed and retry_at is None:  # no attempt left: a failed fetch, with its reason
            for reason in set(failed.values()):
                store.record_fetch_failure(
                    conn, [pid for pid, r in failed.items() if r == reason],
                    f"no usable data after {attempt} attempt(s): {reason}")
        if retry_at is not None:  # committed with the run: recorded and queued, or neither
            queue_fetch_retry(conn, sorted(failed), trigger, captured_at, key, attempt + 1,
                              delay)
        store.record_outcomes(conn, run.id, outcomes)
        store.finish_run(conn, run.id, summary, duration_ms=_elapsed_ms(started))
    _record_run_metrics(result, requested=len(by_ref), not_found=len(missing),
                        stored=outcome.inserted, alerts=len(outcome.alert_ids))
    record_metric("FetchStoreTime", _elapsed_ms(stored_from))
    if outcome.alert_ids:
        notify_from = time.monotonic()
        _notify(outcome.alert_ids)
        record_metric("FetchNotifyTime", _elapsed_ms(notify_from))
    return {"scrape_run_id": run.id, "stored": outcome.inserted, "replayed_rows":
            outcome.skipped, "not_found": len(missing), "no_data": len(result.no_data),
            "unattributed": result.unattributed, "duplicates": result.duplicates,
            "unusable": result.unusable, "alerts": len(outcome.alert_ids),
            "retry_queued": len(failed) if retry_at else 0}


MAX_RUN_PROBLEMS = 100  # entries kept on a run's record; the counts are always complete


def _run_summary(result: FetchResult, by_ref: dict[tuple[str, str], int],
                 unusable: dict[tuple[str, str], int]
                 ) -> tuple[store.RunSummary, list[store.RunOutcome]]:
    """The run's counts and bounded problem list, and each requested product's outcome."""
    problems: list[dict[str, Any]] = [
        {"kind": "skipped", "asin": ref[0], "marketplace": ref[1],
         "reason": "no actor URL can be built for this ASIN and marketplace; the product"
                   " is marked not found"}
        for ref in unusable]
    problems += [_problem_entry(problem) for problem in result.problems]
    summary: store.RunSummary = {
        "apify_run_id": result.run_id, "actor_id": result.actor_id,
        "requested": len(by_ref), "items": result.item_count,
        "attributed": result.attributed, "not_found": len(result.not_found),
        "no_data": len(result.no_data), "unattributed": result.unattributed,
        "duplicates": result.duplicates, "malformed": result.unusable,
        "problem_count": len(problems), "problems": problems[:MAX_RUN_PROBLEMS],
        "cost_usd": result.cost_usd, "data_source": result.data_source,
        "tokens_consumed": result.tokens_consumed,
    }
    return summary, _outcomes(result, by_ref, unusable)


def _problem_entry(problem: ApifyProblem) -> dict[str, Any]:
    entry: dict[str, Any] = {"kind": problem.kind, "reason": problem.reason}
    if problem.index is not None:
        entry["index"] = problem.index
    if problem.url is not None:
        entry["url"] = problem.url
    if problem.ref is not None:
        entry["asin"], entry["marketplace"] = problem.ref
    if problem.asin is not None and (problem.ref is None or problem.asin != problem.ref[0]):
        entry["item_asin"] = problem.asin
    return entry


def _outcomes(result: FetchResult, by_ref: dict[tuple[str, str], int],
              unusable: dict[tuple[str, str], int]) -> list[store.RunOutcome]:
    duplicates: dict[tuple[str, str], int] = {}
    reasons: dict[tuple[str, str], str] = {}
    unusable_items: set[tuple[str, str]] = set()
    for problem in result.problems:
        if problem.ref is None:
            continue
        if problem.kind == "duplicate":
            duplicates[problem.ref] = duplicates.get(problem.ref, 0) + 1
        elif problem.kind == "unusable":
            unusable_items.add(problem.ref)
        elif problem.kind == "no_item":
            reasons[problem.ref] = problem.reason

    def outcome(ref: tuple[str, str], kind: str,
                served: str | None = None) -> store.RunOutcome:
        return {"product_id": by_ref[ref], "outcome": kind, "served_asin": served,
                "duplicates": duplicates.get(ref, 0), "reason": reasons.get(ref)}

    out = [outcome((s.asin, s.marketplace), "stored", s.served_asin) for s in result.snapshots
           if (s.asin, s.marketplace) in by_ref]
    out += [outcome(ref, "not_found") for ref in result.not_found if ref in by_ref]
    out += [outcome(ref, "unusable" if ref in unusable_items else "no_item")
            for ref in result.no_data if ref in by_ref]
    out += [{"product_id": pid, "outcome": "skipped", "served_asin": None, "duplicates": 0,
             "reason": "no actor URL can be built"} for pid in unusable.values()]
    return out


def _unusable_refs(by_ref: dict[tuple[str, str], int]) -> dict[tuple[str, str], int]:
    """Products whose ASIN or marketplace no actor URL can be built for."""
    bad = {}
    for ref, product_id in by_ref.items():
        try:
            product_url(*ref)
        except InvalidProductRef:
            bad[ref] = product_id
    return bad


def store_import(captured_at: datetime, refs: Iterable[tuple[str, str]],
                 snapshots: Iterable[Snapshot],
                 not_found: Iterable[tuple[str, str]]) -> IngestResult:
    """Store the snapshots of an exported actor dataset (``pilot import-apify``) as a run
    would, then hand the alerts they raised to delivery, as a run does: they go out
    now (or wait for the seller's digest), not at the next sweep."""
    with transaction() as conn:
        ids = {ref: store.upsert_product(conn, *ref)[0] for ref in refs}
        observations = [(ids[(s.asin, s.marketplace)], s) for s in snapshots]
        result = ingest(conn, captured_at, None, observations)
        missing = [ids[ref] for ref in not_found]
        if missing:
            store.mark_not_found(conn, missing, captured_at)
    if result.alert_ids:
        _notify(result.alert_ids)
    return result


def _notify(alert_ids: list[str]) -> None:
    """Hand new alerts to delivery. The snapshots are committed already, so a failure
    here must not fail the job: the notification sweep picks such alerts up."""
    from amazon_pilot.notifications.service import fan_out

    try:
        fan_out(alert_ids)
    except Exception as exc:
        log.warning("fan-out failed; the sweep will deliver %d alert(s): %r",
                    len(alert_ids), exc)


def _record_run_metrics(result: FetchResult, *, requested: int, not_found: int,
                        stored: int, alerts: int) -> None:
    """A finished run's business metrics (platform/metrics_catalog.py)."""
    record_metric("ProductsFetched", requested)
    record_metric("ProductsNotFound", not_found)
    record_metric("SnapshotsIngested", stored)
    record_metric("AlertsRaised", alerts)
    record_metric("ApifyItems", result.item_count)
    record_metric("ActorWaitTime", result.wait_s * 1000)
    record_metric("DatasetReadTime", result.read_s * 1000)
    if result.cost_usd is not None:
        record_metric("ApifyCostUsd", result.cost_usd)


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def _finish_failed(run_id: str, status: str, error: str, started: float,
                   record: FetchResult | None) -> None:
    cost = getattr(record, "cost_usd", None)
    if cost is not None:  # a failed run is paid for too
        record_metric("ApifyCostUsd", cost)
    with transaction() as conn:
        store.fail_run(conn, run_id, status=status, error=error,
                       duration_ms=_elapsed_ms(started),
                       apify_run_id=getattr(record, "run_id", None),
                       cost_usd=getattr(record, "cost_usd", None))


# ---------------------------------------------------------------- storing observations


def ingest(conn: Connection, captured_at: datetime, run_id: str | None,
           observations: list[tuple[int, Snapshot]]) -> IngestResult:
    """Store one run's observations, move each product's `latest`, raise alerts; in the
    caller's transaction. One observation per product: history, `latest` and the alerts
    all come from the same snapshot (the attribution already chose one item per product;
    should a caller pass two, the first is the one stored and judged)."""
    with collection_paused():  # a batch's rows and verdicts live until it is stored
        return _ingest(conn, captured_at, run_id, observations)


def _ingest(conn: Connection, captured_at: datetime, run_id: str | None,
            observations: list[tuple[int, Snapshot]]) -> IngestResult:
    result = IngestResult()
    one_each: dict[int, Snapshot] = {}
    for pid, snap in observations:
        one_each.setdefault(pid, snap)
    if len(one_each) < len(observations):
        log.warning("ingest: %d observation(s) for products already observed in this run"
                    " were left out", len(observations) - len(one_each))
        observations = list(one_each.items())
    if not observations:
        return result
    ids = list(one_each)
    # Read before the write (which adds no product nor tracking): each product is judged
    # between two rows of the COPY, while the server stores the rows already sent.
    previous = store.latest_of(conn, ids)
    trackers: dict[int, list[store.Tracker]] = {}
    for tracker in store.active_trackers(conn, ids):
        trackers.setdefault(tracker.product_id, []).append(tracker)
    judged: dict[int, _Judged] = {}
    identities: dict[UUID, SellerIdentity] = {}  # a seller tracks many of a run's products
    at = store.copy_moment(captured_at)  # every row's, formatted once

    def rows_judged() -> Iterator[tuple[Any, ...]]:
        for pid, snap in observations:
            latest, latest_at = previous.get(pid, (None, None))
            content = None
            # a backfill older than what we know is history only: no move, no alerts
            if latest_at is None or latest_at <= captured_at:
                verdict = judged[pid] = _judge(pid, snap, LatestValues.from_dict(latest),
                                               trackers.get(pid, ()), identities)
                content = verdict.content
            yield store.snapshot_row(pid, at, run_id, snap, content)

    inserted = set(store.write_observations(conn, captured_at, rows_judged()))
    result.inserted, result.skipped = len(inserted), len(observations) - len(inserted)
    result.product_ids = [pid for pid in ids if pid in inserted]  # a replayed one: not again
    if not result.product_ids:
        return result
    fresh = [judged[pid] for pid in result.product_ids if pid in judged]
    moves = [j.move for j in fresh]
    if moves:
        store.move_latest(conn, captured_at, moves)
    pending = [alert for j in fresh for alert in j.alerts]
    if pending:
        # a price/Buy Box/BSR move puts an `auto` tracking back on the daily cadence
        store.mark_moved(conn, [a["tracked"] for a in pending if a["type"] in cadence.MOVERS],
                         captured_at)
        result.alert_ids = store.insert_alerts(conn, captured_at, pending)
    drop_tagged(conn, [f"product:{pid}" for pid in result.product_ids])
    return result


class _Judged(NamedTuple):
    """What one observation changes: the product's new `latest` and its sellers' alerts."""

    move: store.LatestMove
    alerts: list[store.NewAlert]
    content: str | None  # the snapshot's content hash, already computed for `latest`


def _judge(pid: int, snap: Snapshot, prior: LatestValues | None,
           trackers: Iterable[store.Tracker],
           identities: dict[UUID, SellerIdentity]) -> _Judged:
    image = snap.image_urls[0] if snap.image_urls else None
    current: LatestValues | None
    if snap.found:
        current = LatestValues.of(snap, prior)
        # the title and brand go once, in `latest` (the store reads them from it)
        move: store.LatestMove = {"id": pid, "latest": _display_values(snap, current),
                                  "found": True, "image": image, "source": snap.data_source}
    else:  # the product keeps its `latest`: only the columns move
        current = prior
        move = {"id": pid, "latest": None, "found": False, "title": snap.title,
                "brand": snap.brand, "image": image, "source": snap.data_source}
    alerts: list[store.NewAlert] = []
    for tracker in trackers:  # each tracking seller, by their own thresholds
        identity = identities.get(tracker.user_id)
        if identity is None:
            identity = identities[tracker.user_id] = SellerIdentity.of(
                tracker.seller_ids, tracker.brands, tracker.company_name)
        thresholds = Thresholds.from_dict(tracker.thresholds)
        drafts: list[AlertDraft] = detect_changes(
            prior, snap, thresholds, current if snap.found else None, identity)
        if snap.served_asin and thresholds.listing:  # once per tracked product (the store)
            drafts.append(redirect_alert(snap))
        alerts.extend(
            {
                "user_id": str(tracker.user_id), "tracked": str(tracker.id),
                "product_id": pid, "type": d.type, "severity": d.severity,
                "metric": d.metric, "old": _text(d.old_value), "new": _text(d.new_value),
                "pct": d.change_pct, "threshold": d.threshold, "message": d.message,
            }
            for d in drafts
        )
    return _Judged(move, alerts, current.content_hash if snap.found and current else None)


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


def redirect_alert(snap: Snapshot) -> AlertDraft:
    """The page of the tracked product showed another ASIN (a first observation too: it
    is a fact about the page, not a change)."""
    return AlertDraft(
        AlertType.LISTING_REDIRECTED, "warning", "asin", snap.asin, snap.served_asin, None,
        None, f"The page of {snap.asin} on amazon.{snap.marketplace} shows"
        f" {snap.served_asin}: Amazon served another variation, redirected or merged the"
        " listing. Its data is stored on the product you track.")


def _text(value: Any) -> str | None:
    return None if value is None else str(value)
