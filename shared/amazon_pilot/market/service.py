"""Market intelligence: keyword rank tracking and sales estimates.

Search terms belong to a seller's tracked product (a plan-dependent number per product).
Search pages are shared: one actor run fetches a marketplace's due terms once a day, the
first page of each term is stored once per (term, marketplace, day), and every seller's
positions, history and first-page share are read from those pages. A product whose
organic position fell by its `keyword_rank_drop_places` threshold (default 5) or more, or
off the first page, since the previous page raises one `keyword_rank_drop` alert per
tracked product and fetch.

Sales estimates are computed on read from stored daily snapshots (domain.sales_estimate):
nothing is stored, so a better curve applies to all history at once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, Protocol
from uuid import UUID

from amazon_pilot.competitors.store import GroupRow
from amazon_pilot.domain import sales_estimate
from amazon_pilot.domain.changes import AlertType, Thresholds
from amazon_pilot.domain.keyword_ranks import (
    InvalidTerm,
    RankDrop,
    SearchCard,
    SearchPage,
    drop_message,
    first_page_share,
    normalize_term,
    pages_by_term,
    rank_drop,
)
from amazon_pilot.market import store
from amazon_pilot.market.schemas import (
    AddKeyword,
    GroupSales,
    GroupSalesRow,
    GroupShare,
    Keyword,
    KeywordList,
    Position,
    RankHistory,
    RankPoint,
    RankSeries,
    SalesEstimates,
    SalesMethod,
    SalesPoint,
    TermShare,
)
from amazon_pilot.platform import outbox
from amazon_pilot.platform.db import reading, transaction
from amazon_pilot.platform.errors import Conflict, NotFound, PlanLimitReached, ValidationFailed
from amazon_pilot.platform.job_errors import PermanentJobError, RetryableJobError
from amazon_pilot.platform.security import CurrentUser
from amazon_pilot.platform.settings import settings
from amazon_pilot.tracking.store import TrackedRow

log = logging.getLogger(__name__)

# The search job: on "default" from the daily plan (like the product batches), on
# "critical" when a seller adds a term (like a first fetch of an added product).
SEARCH_JOB = "fetch_search_pages"
TERMS_PER_RUN = 20  # terms of one marketplace per actor run
MAX_HISTORY_DAYS = 365

# ---------------------------------------------------------------- pages as domain objects


def _page(row: store.PageRow) -> SearchPage:
    cards = [SearchCard(row.term, str(c["asin"]), int(c["position"]), 1, bool(c["sponsored"]))
             for c in row.cards]
    return SearchPage(row.term, tuple(sorted(cards, key=lambda c: c.position)))


def _position(page: SearchPage, asin: str) -> Position:
    placed = page.placement(asin)
    return Position(organic=placed.organic_position, sponsored=placed.sponsored_position)


def _today() -> date:
    return datetime.now(UTC).date()


# ---------------------------------------------------------------- terms


def _keyword(term: store.TermRow, asin: str, page: store.PageRow | None) -> Keyword:
    return Keyword(
        id=term.id, term=term.term, created_at=term.created_at,
        last_checked=page.day if page else None,
        position=_position(_page(page), asin) if page else None,
        page_size=len(page.cards) if page else None,
    )


def list_keywords(user: CurrentUser, tracked: TrackedRow) -> KeywordList:
    with reading() as conn:
        terms = store.list_terms(conn, tracked.id)
        items = [_keyword(t, tracked.asin, store.latest_page(conn, t.term, tracked.marketplace))
                 for t in terms]
    return KeywordList(items=items, limit=settings().plan(user.plan).keyword_terms,
                       marketplace=tracked.marketplace)


def add_keyword(user: CurrentUser, tracked: TrackedRow, body: AddKeyword) -> Keyword:
    """A new term for the product; its first page is fetched at once unless some seller's
    term already had today's page fetched (then it is read from that)."""
    try:
        term = normalize_term(body.term)
    except InvalidTerm as exc:
        raise ValidationFailed(str(exc)) from None
    limit = settings().plan(user.plan).keyword_terms
    today = _today()
    with transaction() as conn:
        store.lock_tracked(conn, tracked.id)
        current = store.list_terms(conn, tracked.id)
        if any(t.term == term for t in current):
            raise Conflict(f'this product already tracks "{term}"')
        if len(current) >= limit:
            raise PlanLimitReached(f"the {user.plan} plan allows {limit} search terms per"
                                   " product; remove one first")
        row = store.insert_term(conn, user.id, tracked.id, term)
        if row is None:  # a concurrent add of the same term won
            raise Conflict(f'this product already tracks "{term}"')
        if not store.stored_terms(conn, tracked.marketplace, today, [term]):
            payload, key = search_job(tracked.marketplace, [term], today, "add")
            outbox.enqueue(conn, "critical", SEARCH_JOB, payload, key)
        page = store.latest_page(conn, term, tracked.marketplace)
    return _keyword(row, tracked.asin, page)


def delete_keyword(user: CurrentUser, tracked: TrackedRow, term_id: UUID) -> None:
    with transaction() as conn:
        if not store.delete_term(conn, user.id, tracked.id, term_id):
            raise NotFound("no such search term on this product")


def rank_history(user: CurrentUser, tracked: TrackedRow, term_id: UUID,
                 days: int) -> RankHistory:
    days = max(1, min(days, MAX_HISTORY_DAYS))
    since = _today() - timedelta(days=days - 1)
    with reading() as conn:
        term = store.get_term(conn, tracked.id, term_id)
        if term is None:
            raise NotFound("no such search term on this product")
        rows = store.pages(conn, term.term, tracked.marketplace, since)
        competitors = store.group_asins_of_product(conn, user.id, tracked.product_id)
    pages = [(r.day, _page(r)) for r in rows]

    def series(asin: str, role: str) -> RankSeries:
        points = []
        for day, page in pages:
            placed = page.placement(asin)
            points.append(RankPoint(day=day, organic=placed.organic_position,
                                    sponsored=placed.sponsored_position, page_size=page.size))
        return RankSeries(asin=asin, role=role, points=points)  # type: ignore[arg-type]

    sources = {r.data_source for r in rows}
    return RankHistory(
        term=term.term, marketplace=tracked.marketplace, days=days,
        data_source=sources.pop() if len(sources) == 1 else ("mixed" if sources else None),
        series=[series(tracked.asin, "product"),
                *(series(asin, "competitor") for asin, _ in competitors if asin != tracked.asin)],
    )


def group_share(user: CurrentUser, group: GroupRow) -> GroupShare:
    """Each term the seller follows on the group's main product: how much of its latest
    first page the group's products hold, organic and sponsored."""
    with reading() as conn:
        members = store.group_members(conn, group.id)
        main = next((m for m in members if m.role == "main"), None)
        terms = store.main_terms(conn, user.id, group.main_product_id) if main else []
        latest = {t: store.latest_page(conn, t, main.marketplace) for t in terms} if main else {}
    asins = [m.asin for m in members]
    out: list[TermShare] = []
    for term in terms:
        row = latest.get(term)
        if row is None:
            out.append(TermShare(term=term, day=None, page_size=0, group_results=0, share=0.0,
                                 organic_share=0.0, sponsored_share=0.0, positions={}))
            continue
        page = _page(row)
        mine, size, share = first_page_share(page, asins)
        organic = [c for c in page.cards if not c.sponsored]
        sponsored = [c for c in page.cards if c.sponsored]
        wanted = set(asins)
        out.append(TermShare(
            term=term, day=row.day, page_size=size, group_results=mine, share=round(share, 4),
            organic_share=round(sum(c.asin in wanted for c in organic) / len(organic), 4)
            if organic else 0.0,
            sponsored_share=round(sum(c.asin in wanted for c in sponsored) / len(sponsored), 4)
            if sponsored else 0.0,
            positions={a: _position(page, a) for a in asins},
        ))
    return GroupShare(group_id=group.id, asins=asins, terms=out)


# ---------------------------------------------------------------- fetching search pages


class SearchFetcher(Protocol):
    actor_id: str

    def search(self, marketplace: str, terms: list[str]) -> Any: ...


def _key(marketplace: str, day: date, terms: Sequence[str], trigger: str) -> str:
    digest = hashlib.sha256("\n".join(sorted(terms)).encode()).hexdigest()[:16]
    return f"search:{marketplace}:{day.isoformat()}:{trigger}:{digest}"


def search_job(marketplace: str, terms: list[str], day: date,
               trigger: str) -> tuple[dict[str, Any], str]:
    """The payload and job key of one search fetch."""
    return {"marketplace": marketplace, "terms": terms, "day": day.isoformat(),
            "captured_at": datetime.now(UTC).isoformat()}, _key(marketplace, day, terms, trigger)


def plan_keyword_ranks(now: datetime) -> dict[str, Any]:
    """The KeywordRanks schedule: every due (term, marketplace) once, TERMS_PER_RUN per
    actor run, whoever follows it."""
    day = now.astimezone(UTC).date()
    jobs = 0
    with transaction() as conn:
        due = store.due_terms(conn, day)
        by_market: dict[str, list[str]] = {}
        for term, marketplace in due:
            by_market.setdefault(marketplace, []).append(term)
        for marketplace, terms in by_market.items():
            for i in range(0, len(terms), TERMS_PER_RUN):
                payload, key = search_job(marketplace, terms[i:i + TERMS_PER_RUN], day,
                                          "schedule")
                outbox.enqueue(conn, "default", SEARCH_JOB, payload, key)
                jobs += 1
    return {"job": "keyword_ranks", "day": day.isoformat(), "terms": len(due), "runs": jobs}


def make_search_fetcher(input_builder: Any = None) -> Any:
    from amazon_pilot.adapters.apify_search import ApifySearchFetcher
    from amazon_pilot.tracking.service import apify_token

    cfg = settings()
    token = apify_token()
    return ApifySearchFetcher(token, cfg.apify_api_url, cfg.apify_search_actor_id,
                              input_builder=input_builder,
                              max_retries=cfg.apify_max_retries,
                              min_delay_between_retries_millis=cfg.apify_retry_delay_ms)


def run_search(marketplace: str, terms: list[str], day: date, captured_at: datetime, *,
               fetcher: SearchFetcher | None = None) -> dict[str, Any]:
    """Fetch the terms that have no page for `day` yet in one actor run, store each
    term's first page, and raise rank-drop alerts. A replay (or a term another job
    fetched meanwhile) runs nothing for it."""
    from amazon_pilot.adapters.apify import ApifyError, ApifyRejected

    wanted: list[str] = []
    for raw in terms:
        try:
            wanted.append(normalize_term(raw))
        except InvalidTerm:
            continue
    wanted = list(dict.fromkeys(wanted))
    with reading() as conn:
        done = store.stored_terms(conn, marketplace, day, wanted)
    missing = [t for t in wanted if t not in done]
    if not missing:
        return {"terms": len(wanted), "fetched": 0, "replayed": True}
    try:
        result = (fetcher or make_search_fetcher()).search(marketplace, missing)
    except ApifyRejected as exc:
        raise PermanentJobError(str(exc)) from exc
    except ApifyError as exc:
        raise RetryableJobError(str(exc)) from exc
    by_term = pages_by_term(result.cards)
    stored_pages = {
        term: [{"asin": c.asin, "position": c.position, "sponsored": c.sponsored}
               for c in by_term[term].cards] if term in by_term else []
        for term in missing
    }
    source = "sandbox" if result.sandbox else "apify"
    with transaction() as conn:
        inserted = store.insert_pages(conn, marketplace, day, captured_at, stored_pages,
                                      result.run.actor_id, result.run.run_id, source)
        alert_ids = _raise_drops(conn, marketplace, day, captured_at, inserted)
    if alert_ids:
        _notify(alert_ids)
    return {"terms": len(wanted), "fetched": len(inserted), "apify_run_id": result.run.run_id,
            "cards": len(result.cards), "ignored_items": result.ignored,
            "alerts": len(alert_ids)}


def _raise_drops(conn: Any, marketplace: str, day: date, captured_at: datetime,
                 terms: list[str]) -> list[str]:
    if not terms:
        return []
    today: dict[str, SearchPage] = {}
    before: dict[str, SearchPage | None] = {}
    for term in terms:
        now_row = store.page_on(conn, term, marketplace, day)
        prev_row = store.latest_page_before(conn, term, marketplace, day)
        if now_row is None:
            continue
        today[term] = _page(now_row)
        before[term] = _page(prev_row) if prev_row else None
    drops: dict[UUID, tuple[store.FollowerRow, list[RankDrop]]] = {}
    for follower in store.followers(conn, marketplace, terms):
        prev = before.get(follower.term)
        page = today.get(follower.term)
        if prev is None or page is None:
            continue
        places = Thresholds.from_dict(follower.thresholds).keyword_rank_drop_places
        drop = rank_drop(follower.term, prev.placement(follower.asin).organic_position,
                         page.placement(follower.asin).organic_position, places)
        if drop is not None:
            drops.setdefault(follower.tracked_product_id, (follower, []))[1].append(drop)
    alerts = []
    for follower, found in drops.values():
        worst = found[0]
        alerts.append({
            "user_id": str(follower.user_id), "tracked": str(follower.tracked_product_id),
            "product_id": follower.product_id, "type": AlertType.KEYWORD_RANK_DROP.value,
            "severity": "warning", "metric": "keyword_rank",
            "old": str(worst.old), "new": "not on page 1" if worst.new is None else str(worst.new),
            "threshold": float(Thresholds.from_dict(follower.thresholds)
                               .keyword_rank_drop_places),
            "message": drop_message(found),
        })
    return store.insert_alerts(conn, captured_at, alerts)


def _notify(alert_ids: list[str]) -> None:
    from amazon_pilot.notifications.service import fan_out

    try:
        fan_out(alert_ids)
    except Exception as exc:  # the notification sweep delivers what fan-out did not
        log.warning("fan-out failed; the sweep will deliver %d alert(s): %r",
                    len(alert_ids), exc)


# ---------------------------------------------------------------- sales estimates

_SOURCE = ("units = a x rank^-b; books: Brynjolfsson, Hu & Smith (2003); other categories:"
           " scaled from it (docs/sales-estimates.md)")


def _method(curve: str | None, basis: str | None, error: float | None) -> SalesMethod:
    return SalesMethod(formula="units_per_month = scale * rank ** -exponent", curve=curve,
                       basis=basis, error_factor=error, source=_SOURCE)


def _point(r: store.DailyReading) -> tuple[SalesPoint, sales_estimate.SalesEstimate | None]:
    est = sales_estimate.estimate(r.bsr_rank, r.bsr_category, r.subcategory_bsr, r.price)
    units = est.units_per_month if est else None
    return SalesPoint(
        day=r.day, units=units, units_low=est.units_low if est else None,
        units_high=est.units_high if est else None,
        revenue=est.revenue_per_month if est else None,
        rank=est.rank if est else None,
        rank_kind=est.rank_kind if est else None,  # type: ignore[arg-type]
        bought_past_month=r.bought_past_month,
        check=sales_estimate.badge_check(units, r.bought_past_month),  # type: ignore[arg-type]
    ), est


def sales_estimates(tracked: TrackedRow, days: int) -> SalesEstimates:
    days = max(1, min(days, MAX_HISTORY_DAYS))
    since = datetime.now(UTC) - timedelta(days=days)
    with reading() as conn:
        readings = store.daily_readings(conn, tracked.product_id, since)
    points = [_point(r) for r in readings]
    last_est = next((e for _, e in reversed(points) if e is not None), None)
    latest = next((p for p, e in reversed(points) if e is not None), None)
    last = readings[-1] if readings else None
    return SalesEstimates(
        asin=tracked.asin, currency=last.currency if last else None,
        category=next((r.bsr_category for r in reversed(readings) if r.bsr_category), None),
        data_source=last.data_source if last else None,
        latest=latest, series=[p for p, _ in points],
        method=_method(last_est.curve if last_est else None,
                       last_est.basis if last_est else None,
                       last_est.error_factor if last_est else None),
    )


def group_sales(group: GroupRow) -> GroupSales:
    """The latest estimate of every product of the group (its last snapshot of the last
    30 days), each from the curve of its own category."""
    since = datetime.now(UTC) - timedelta(days=30)
    with reading() as conn:
        members = store.group_members(conn, group.id)
        last = {m.product_id: store.daily_readings(conn, m.product_id, since)[-1:]
                for m in members}
    rows = []
    for m in members:
        readings = last.get(m.product_id) or []
        point = _point(readings[0])[0] if readings else None
        rows.append(GroupSalesRow(asin=m.asin, role=m.role,  # type: ignore[arg-type]
                                  title=m.title,
                                  currency=readings[0].currency if readings else None,
                                  estimate=point))
    return GroupSales(group_id=group.id, products=rows,
                      method=_method(None, "per product: the curve of its category",
                                     sales_estimate.ERROR_FACTOR))
