"""Fetch product snapshots by running an Apify actor, through the official `apify-client`.

One `fetch` = one actor run for a batch of products: start the run, wait for it, read its
whole dataset page by page, normalize every item. The outcome is a `FetchResult` that holds
what the run cost and took as well as the snapshots, so the caller can record the run even
when parts of it went wrong. Failures are exceptions with a `retryable` flag:

    ApifyRunError      the run ended FAILED / TIMED-OUT / ABORTED (or never finished);
                       `.record` still describes the run for bookkeeping. Retryable.
    ApifyUnavailable   the API kept answering 429/5xx (after apify-client's own retries)
                       or could not be reached. Retryable.
    ApifyRejected      the API refused the request (bad token, unknown actor, bad input).
                       Not retryable: retrying cannot fix configuration.

The adapter knows nothing about the offline stand-in: the actor input is what the
`input_builder` makes of the product URLs (the local tools pass one that adds the
stand-in's day).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from apify_client import ApifyClient
from apify_client.errors import (
    ApifyApiError,
    ApifyClientError,
    RateLimitError,
    ServerError,
)

from amazon_pilot.domain.normalize import ItemReading, item_preference, read_item
from amazon_pilot.domain.product_ref import (
    MAX_REF_LENGTH,
    InvalidProductRef,
    parse_product_ref,
    product_url,
)
from amazon_pilot.domain.snapshot import Snapshot
from amazon_pilot.platform.collector import collection_paused

__all__ = [
    "DEFAULT_ACTOR",
    "INPUT_BUILDERS",
    "JUNGLEE_ACTOR",
    "ApifyError",
    "ApifyProductFetcher",
    "ApifyRejected",
    "ApifyRunError",
    "ApifyUnavailable",
    "FetchResult",
    "InputBuilder",
    "RunProblem",
    "attribute",
    "axesso_input",
    "junglee_input",
    "kept_fetcher",
    "requested_refs",
]

log = logging.getLogger(__name__)

DEFAULT_ACTOR = "axesso_data/amazon-product-details-scraper"
JUNGLEE_ACTOR = "junglee/amazon-crawler"
TERMINAL_STATUSES = frozenset({"SUCCEEDED", "FAILED", "TIMED-OUT", "ABORTED"})
_SERVER_WAIT_CAP_S = 60  # the API holds a waitForFinish request at most this long

InputBuilder = Callable[[list[str]], dict[str, Any]]
Ref = tuple[str, str]  # (asin, marketplace)


def axesso_input(urls: list[str]) -> dict[str, Any]:
    """Input of axesso_data/amazon-product-details-scraper: one dataset item per URL."""
    return {"urls": list(urls)}


def junglee_input(urls: list[str]) -> dict[str, Any]:
    """Input of junglee/amazon-crawler for product pages."""
    return {"categoryOrProductUrls": [{"url": u} for u in urls], "maxItemsPerStartUrl": 1}


INPUT_BUILDERS: dict[str, InputBuilder] = {
    DEFAULT_ACTOR: axesso_input,
    JUNGLEE_ACTOR: junglee_input,
}


# What happened to one returned item, or to one requested product, that the run's record
# must show: each kind is documented in docs/architecture.md ("Product fetching").
PROBLEM_KINDS = (
    "unattributed",  # the item names no requested URL (no url, another product, not an object)
    "duplicate",  # a further item for a URL that already had one: the first is kept
    "unusable",  # attributed, but no product data (robot check, error page, no fields, ...)
    "redirected",  # the page showed another ASIN; stored on the requested product
    "no_item",  # a requested URL that got no usable item: nothing stored changes
    "skipped",  # a product no actor URL can be built for: not sent
)


@dataclass(slots=True)
class RunProblem:
    """One entry of a run's record: which item (its position in the dataset, its url and
    the ASIN it reported) or which requested product, and why."""

    kind: str
    reason: str
    index: int | None = None
    url: str | None = None
    asin: str | None = None  # the ASIN the item reported
    ref: Ref | None = None  # the requested product it concerns, when it concerns one


@dataclass
class FetchResult:
    """One actor run and what came out of it.

    Every returned item is counted once: attributed (used for a requested product: data or
    a 404 page), duplicate, unusable or unattributed, so `item_count` is their sum. Every
    requested product ends in `snapshots` (data), `not_found` (a real 404 page) or
    `no_data` (no usable item: nothing stored about it changes)."""

    run_id: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    cost_usd: float | None
    item_count: int
    # Found pages, each on the requested product (asin and marketplace of the request;
    # `served_asin` when the page showed another ASIN).
    snapshots: list[Snapshot] = field(default_factory=list)
    not_found: list[Ref] = field(default_factory=list)  # real 404 pages
    no_data: list[Ref] = field(default_factory=list)  # no item, or none with product data
    problems: list[RunProblem] = field(default_factory=list)
    data_source: str = "apify"  # "sandbox" when the items came from the offline stand-in
    actor_id: str = DEFAULT_ACTOR
    dataset_id: str | None = None
    # where the fetch's time went, as the caller saw it: waiting for the run to end
    # (start included), and reading and parsing its dataset
    wait_s: float = 0.0
    read_s: float = 0.0
    status_message: str | None = None
    requested: int = 0
    duplicates: int = 0
    unusable: int = 0
    unattributed: int = 0
    # token-priced sources (adapters/keepa.py): the tokens the answers said they consumed
    tokens_consumed: int | None = None

    @property
    def attributed(self) -> int:
        """Items used for a requested product (one per product)."""
        return len(self.snapshots) + len(self.not_found)


class ApifyError(Exception):
    retryable: bool = True


class ApifyRunError(ApifyError):
    """The actor run did not succeed; `.record` describes it so it can still be stored."""

    def __init__(
        self, run_id: str | None, status: str, message: str, record: FetchResult | None = None
    ) -> None:
        super().__init__(f"Apify run {run_id} ended {status}: {message}")
        self.run_id = run_id
        self.status = status
        self.message = message
        self.record = record


class ApifyUnavailable(ApifyError):
    """Apify kept failing (429/5xx after the client's retries) or could not be reached."""


class ApifyRejected(ApifyError):
    """Apify refused the request (401/403/404/400): a configuration problem."""

    retryable = False


class ApifyProductFetcher:
    def __init__(
        self,
        token: str,
        api_url: str | None = None,
        actor_id: str = DEFAULT_ACTOR,
        input_builder: InputBuilder | None = None,
        wait_secs: int = 300,
        *,
        max_retries: int = 4,
        min_delay_between_retries_millis: int = 500,
        page_size: int = 1000,
    ) -> None:
        """`input_builder` None picks the builder registered for `actor_id` (else axesso's)."""
        if not token:
            raise ApifyRejected("an Apify API token is required")
        self.actor_id = actor_id
        self.input_builder = input_builder or INPUT_BUILDERS.get(actor_id, axesso_input)
        self.wait_secs = wait_secs
        self.page_size = page_size
        kwargs: dict[str, Any] = {
            "max_retries": max_retries,
            "min_delay_between_retries": timedelta(milliseconds=min_delay_between_retries_millis),
        }
        if api_url:
            kwargs["api_url"] = api_url
        self._client = ApifyClient(token, **kwargs)

    def build_input(self, urls: list[str]) -> dict[str, Any]:
        return self.input_builder(urls)

    def fetch(self, refs: Iterable[Ref]) -> FetchResult:
        """Run the actor for these (asin, marketplace) refs and return what it found."""
        wanted = list(dict.fromkeys((a.strip().upper(), m) for a, m in refs))
        if not wanted:
            return FetchResult(None, "EMPTY", None, None, 0.0, 0.0, 0, actor_id=self.actor_id)
        urls = [product_url(asin, marketplace) for asin, marketplace in wanted]
        started = time.monotonic()
        run = self._run(urls)
        record = self._record(run, len(wanted))
        record.wait_s = time.monotonic() - started
        if record.status != "SUCCEEDED":
            raise ApifyRunError(
                record.run_id, record.status, record.status_message or "no message", record
            )
        started = time.monotonic()
        items = self._read_items(record)
        record.read_s = time.monotonic() - started
        self._classify(items, wanted, record)
        return record

    # ---- steps

    def _run(self, urls: list[str]) -> Any:
        actor = self._client.actor(self.actor_id)
        deadline = time.monotonic() + self.wait_secs
        run = _call(
            lambda: actor.start(
                run_input=self.build_input(urls),
                wait_for_finish=min(self.wait_secs, _SERVER_WAIT_CAP_S),
            )
        )
        if run.status in TERMINAL_STATUSES:
            return run
        remaining = max(1.0, deadline - time.monotonic())
        run_client = self._client.run(run.id)
        budget = timedelta(seconds=remaining)
        finished = _call(lambda: run_client.wait_for_finish(wait_duration=budget))
        if finished is not None and finished.status in TERMINAL_STATUSES:
            return finished
        # Still running after our budget: stop paying for it and report it as failed.
        log.warning("apify run %s did not finish within %ss; aborting", run.id, self.wait_secs)
        try:
            aborted = run_client.abort()
        except Exception:  # best effort: the run is reported either way
            aborted = finished or run
        record = self._record(aborted, len(urls))
        raise ApifyRunError(
            run.id,
            record.status,
            f"run did not finish within {self.wait_secs} s and was aborted",
            record,
        )

    def _record(self, run: Any, requested: int) -> FetchResult:
        started = _aware(run.started_at)
        finished = _aware(run.finished_at)
        stats = run.stats
        duration = stats.run_time_secs if stats is not None else None
        if duration is None and started is not None:
            duration = ((finished or datetime.now(UTC)) - started).total_seconds()
        return FetchResult(
            run_id=run.id,
            status=str(run.status),
            started_at=started,
            finished_at=finished,
            duration_s=duration,
            cost_usd=run.usage_total_usd,
            item_count=0,
            actor_id=self.actor_id,
            dataset_id=run.default_dataset_id,
            status_message=run.status_message,
            requested=requested,
        )

    def _read_items(self, record: FetchResult) -> list[Any]:
        dataset = self._client.dataset(record.dataset_id or "")
        return _call(lambda: _all_items(dataset, self.page_size))

    def _classify(self, items: list[Any], wanted: list[Ref], record: FetchResult) -> None:
        record.item_count = len(items)
        with collection_paused():  # the snapshots read live until the run is stored
            attribute(items, wanted, record)


_kept = threading.local()  # kept_fetcher's fetcher, per thread


def kept_fetcher(token: str, api_url: str | None = None, actor_id: str = DEFAULT_ACTOR,
                 input_builder: InputBuilder | None = None, *, max_retries: int = 4,
                 min_delay_between_retries_millis: int = 500) -> ApifyProductFetcher:
    """The same fetcher for this thread as long as the arguments are the same (a Lambda
    instance runs one invocation at a time, so one per thread is one per instance): a new
    one per job cost ≈ 1.3 ms of CPU and a new connection to the API, ≈ 10 µs a product
    at 200 products a run."""
    setup = (token, api_url, actor_id, input_builder, max_retries,
             min_delay_between_retries_millis)
    held = getattr(_kept, "fetcher", None)
    if held is not None and held[0] == setup:
        return held[1]
    fetcher = ApifyProductFetcher(token, api_url, actor_id, input_builder,
                                  max_retries=max_retries,
                                  min_delay_between_retries_millis=min_delay_between_retries_millis)
    _kept.fetcher = (setup, fetcher)
    return fetcher


# --------------------------------------------------------------------------------------------
# Attribution: an item belongs to the product whose URL was requested.

_SHORT = 160


def attribute(items: list[Any], wanted: list[Ref], record: FetchResult) -> None:
    """Sort a run's items onto the requested products and record every problem on `record`
    (pure: no I/O). What an item is, and which requested page it answers, is read by
    domain.normalize.read_item; here each is kept, counted, or refused with its reason.
    One item per product is kept, chosen by `item_preference` (the earlier on a tie);
    the others are duplicates. An unusable item counts as one only before any usable one."""
    requested = set(wanted)
    kept: dict[Ref, _Kept] = {}  # the item each product will be stored from, so far
    unusable_reason: dict[Ref, str] = {}
    sandbox = False
    for index, item in enumerate(items):
        reading = read_item(item)
        if isinstance(item, dict):
            sandbox = sandbox or item.get("sandbox") is True
        url = _url_of(item)
        ref = reading.url_ref
        if ref is None or ref not in requested:
            record.unattributed += 1
            record.problems.append(RunProblem(
                "unattributed", _unattributed_reason(reading, ref), index=index, url=url,
                asin=reading.page_asin))
            continue
        snap = reading.snapshot
        held = kept.get(ref)
        if snap is None and held is None:
            refusal = reading.reason or str(reading.problem)
            record.unusable += 1
            unusable_reason[ref] = refusal
            record.problems.append(RunProblem(
                "unusable", refusal, index=index, url=url, asin=reading.page_asin, ref=ref))
            continue
        candidate = None if snap is None else _Kept(index, item, url, reading.page_asin, snap,
                                                     item_preference(snap))
        if held is not None and (candidate is None or candidate.preference <= held.preference):
            loser = candidate or _Kept(index, item, url, reading.page_asin, None, (0, 0, 0))
        else:
            loser, kept[ref] = held, candidate  # type: ignore[assignment]
        if loser is not None:
            record.duplicates += 1
            record.problems.append(RunProblem(
                "duplicate", f"another item for {_name(ref)}; {_KEEP_RULE}",
                index=loser.index, url=loser.url, asin=loser.page_asin, ref=ref))
    for ref, chosen in sorted(kept.items(), key=lambda pair: pair[1].index):
        _keep(ref, chosen, record)
    # problems in dataset order (the kept items' notes were added after the loop)
    record.problems.sort(key=lambda p: (p.index is None, p.index or 0))
    for ref in wanted:
        if ref not in kept:
            record.no_data.append(ref)
            reason = unusable_reason.get(ref)
            what = f"no usable item ({reason})" if reason else "no item for this URL"
            record.problems.append(RunProblem(
                "no_item", f"{what}; what is stored about the product is unchanged", ref=ref))
    record.data_source = "sandbox" if sandbox else "apify"


_KEEP_RULE = "the most complete item is kept (the first on a tie; docs/actor-formats.md)"


@dataclass(slots=True)
class _Kept:
    index: int
    item: Any
    url: str | None
    page_asin: str | None
    snapshot: Snapshot | None
    preference: tuple[int, int, int]


def _keep(ref: Ref, chosen: _Kept, record: FetchResult) -> None:
    """The product's one item of the run: its snapshot, or its 404 page."""
    snap = chosen.snapshot
    assert snap is not None
    if not snap.found:  # the actor's 404 page: the one way a product is not found
        record.not_found.append(ref)
        return
    served = _served_asin(chosen.item, ref, chosen.page_asin)
    snap.asin, snap.marketplace = ref
    if served is not None:
        snap.served_asin = served
        note = (f"the page showed ASIN {served}, not the requested {ref[0]} (a variation"
                " served instead, a redirect or a merged listing)")
        snap.parse_warnings.append(note)
        record.problems.append(RunProblem(
            "redirected", note, index=chosen.index, url=chosen.url, asin=served, ref=ref))
    record.snapshots.append(snap)


def requested_refs(items: list[Any]) -> list[Ref]:
    """The products a dataset's items answer, in order (for an export imported without its
    run: each item's requested URL stands for the request)."""
    found: dict[Ref, None] = {}
    for item in items:
        ref = read_item(item).url_ref
        if ref is not None:
            found[ref] = None
    return list(found)


def _unattributed_reason(reading: ItemReading, ref: Ref | None) -> str:
    if ref is not None:
        return f"it names {_name(ref)}, which this run did not request"
    if reading.problem is not None:
        return reading.reason or str(reading.problem)
    also = (f" (it reports ASIN {reading.page_asin}, which is never trusted alone)"
            if reading.page_asin else "")
    return f"the item carries no product URL{also}; it cannot be attributed"


def _url_of(item: object) -> str | None:
    if not isinstance(item, dict):
        return None
    for name in ("input", "url"):
        value = item.get(name)
        if isinstance(value, dict):  # {"url": ...} as junglee takes its start URLs
            value = value.get("url")
        if isinstance(value, str) and value.strip():
            return _clip(value.strip(), 300)
    return None


def _served_asin(item: object, ref: Ref, page_asin: str | None) -> str | None:
    """The ASIN the page showed when it is not the requested one: the item's own `asin`,
    else the page's `url` when the request came back in another field (junglee)."""
    if page_asin is not None and page_asin != ref[0] and len(page_asin) == 10:
        return page_asin
    page_url = item.get("url") if isinstance(item, dict) else None
    if isinstance(page_url, str):
        try:
            shown = parse_product_ref(page_url.strip()[:MAX_REF_LENGTH])
        except InvalidProductRef:
            return None
        if shown.asin != ref[0]:
            return shown.asin
    return None


def _name(ref: Ref) -> str:
    return f"{ref[0]} on amazon.{ref[1]}"


def _clip(text: str, limit: int = _SHORT) -> str:
    """One line of at most `limit` characters (item text goes on the run's record)."""
    text = " ".join(text[:limit * 2].split())
    return text if len(text) <= limit else text[:limit] + "…"


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


class _Unreadable(Exception):
    """A dataset page that is not a JSON array."""


def _all_items(dataset: Any, page_size: int) -> list[Any]:
    """Every item of the dataset, a page at a time until an empty page (as apify-client's
    `iterate_items` pages it; no filter is asked for, so a page's rows are its items).
    Each page is decoded with orjson from the raw body (a page of 200 items is ≈ 600 KB):
    reading a page cost ≈ 27 to 31 µs of CPU an item with the client's own decoding and
    ≈ 18 to 20 µs so, the stand-in serving the same items."""
    items: list[Any] = []
    while True:
        raw = dataset.get_items_as_bytes(item_format="json", offset=len(items), limit=page_size)
        try:
            page = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise _Unreadable(f"a dataset page is not JSON: {exc}") from exc
        if not isinstance(page, list):
            raise _Unreadable(f"a dataset page is a JSON {type(page).__name__}, not an array")
        if not page:
            return items
        items.extend(page)


def _call(fn: Callable[[], Any]) -> Any:
    """Run one apify-client call, turning its errors into ours."""
    try:
        return fn()
    except (RateLimitError, ServerError) as exc:
        raise ApifyUnavailable(
            f"Apify answered HTTP {exc.status_code} after retries: {exc.message}"
        ) from exc
    except ApifyApiError as exc:
        raise ApifyRejected(
            f"Apify refused the request (HTTP {exc.status_code}): {exc.message}"
        ) from exc
    except (ApifyClientError, _Unreadable) as exc:
        raise ApifyUnavailable(f"Apify answered something unreadable: {exc}") from exc
    except ApifyError:
        raise
    except Exception as exc:  # transport errors (connection refused, timeouts) from the client
        raise ApifyUnavailable(f"Apify could not be reached: {type(exc).__name__}: {exc}") from exc
