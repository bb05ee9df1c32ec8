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
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from apify_client import ApifyClient
from apify_client.errors import (
    ApifyApiError,
    ApifyClientError,
    RateLimitError,
    ServerError,
)

from amazon_pilot.domain.normalize import identify_item, normalize_item
from amazon_pilot.domain.product_ref import product_url
from amazon_pilot.domain.snapshot import Snapshot

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
    "axesso_input",
    "junglee_input",
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


@dataclass
class FetchResult:
    """One actor run and what came out of it."""

    run_id: str | None
    status: str
    started_at: datetime | None
    finished_at: datetime | None
    duration_s: float | None
    cost_usd: float | None
    item_count: int
    snapshots: list[Snapshot] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)  # ASINs with no item or a not-found item
    malformed: list[tuple[str | None, str]] = field(default_factory=list)  # (asin, reason)
    data_source: str = "apify"  # "sandbox" when the items came from the offline stand-in
    actor_id: str = DEFAULT_ACTOR
    dataset_id: str | None = None
    status_message: str | None = None
    requested: int = 0


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
        run = self._run(urls)
        record = self._record(run, len(wanted))
        if record.status != "SUCCEEDED":
            raise ApifyRunError(
                record.run_id, record.status, record.status_message or "no message", record
            )
        items = self._read_items(record)
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
        return _call(lambda: list(dataset.iterate_items(chunk_size=self.page_size)))

    def _classify(self, items: list[Any], wanted: list[Ref], record: FetchResult) -> None:
        by_key = {ref: ref for ref in wanted}
        marketplaces_of: dict[str, list[str]] = {}
        for wanted_asin, wanted_mp in wanted:
            marketplaces_of.setdefault(wanted_asin, []).append(wanted_mp)
        seen: set[Ref] = set()
        sandbox = False
        record.item_count = len(items)
        for item in items:
            if not isinstance(item, dict):
                kind = type(item).__name__
                record.malformed.append((None, f"item is not a JSON object ({kind})"))
                continue
            sandbox = sandbox or item.get("sandbox") is True
            asin, found_in = identify_item(item)
            if asin is None:
                record.malformed.append((None, "item has neither an 'asin' nor a product 'url'"))
                continue
            if found_in is None and len(marketplaces_of.get(asin, ())) == 1:
                found_in = marketplaces_of[asin][0]  # url missing: the batch says where
            key = (asin, found_in or "com")
            if not _has_actor_fields(item):
                reason = item.get("error") or "item carries none of the actor's fields"
                record.malformed.append((asin, str(reason)[:200]))
                seen.add(key)
                continue
            snapshot = normalize_item(item, marketplace=key[1])
            seen.add(key)
            if key not in by_key:
                log.info("apify returned an item nobody asked for: %s/%s", *key)
            if snapshot.found:
                record.snapshots.append(snapshot)
            else:
                record.not_found.append(asin)
        record.not_found.extend(asin for asin, mp in wanted if (asin, mp) not in seen)
        record.data_source = "sandbox" if sandbox else "apify"


def _has_actor_fields(item: dict[str, Any]) -> bool:
    # statusCode/title for the default actor; stars/price for junglee-style crawlers.
    return any(k in item for k in ("statusCode", "title", "stars", "reviewsCount", "price"))


def _aware(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


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
    except ApifyClientError as exc:
        raise ApifyUnavailable(f"Apify answered something unreadable: {exc}") from exc
    except ApifyError:
        raise
    except Exception as exc:  # transport errors (connection refused, timeouts) from the client
        raise ApifyUnavailable(f"Apify could not be reached: {type(exc).__name__}: {exc}") from exc
