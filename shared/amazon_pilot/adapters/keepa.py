"""Fetch product snapshots from the Keepa API (`GET /product`), behind the same interface
as the Apify fetcher: `fetch(refs) -> FetchResult`, and the same error family
(`ApifyRejected` / `ApifyUnavailable`: the fetch path handles a source's failures one
way, whichever source it is).

Keepa is priced by token capacity, not per result: every answer says how many tokens the
request consumed (`tokensConsumed`), how many are left, and when the bucket refills
(`refillIn`, ms). One `fetch` asks for its products in requests of at most 100 ASINs per
Amazon domain; a 429 (not enough tokens) is retried after `refillIn`, within a wait
budget (`max_wait_s`): past it the fetch fails as retryable and the queue job runs again
later, so nothing is lost. The tokens of every answer are summed on the result
(`tokens_consumed`) for the run's record.

    KeepaRejected      400/401/402/403/404/405: bad key, bad domain, no subscription.
                       Not retryable: retrying cannot fix configuration.
    KeepaUnavailable   5xx or an unreachable API after retries, or tokens that did not
                       refill within the wait budget. Retryable.

Format facts and their sources: tests/fixtures/keepa/README.md; the mapping of a product
object to a Snapshot is domain/keepa_product.py.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import httpx

from amazon_pilot.adapters.apify import ApifyRejected, ApifyUnavailable, FetchResult, RunProblem
from amazon_pilot.domain.keepa_product import DOMAIN_IDS, map_product

__all__ = [
    "DEFAULT_BASE_URL",
    "MAX_ASINS_PER_REQUEST",
    "SOURCE_ID",
    "KeepaProductFetcher",
    "KeepaRejected",
    "KeepaUnavailable",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.keepa.com"
SOURCE_ID = "keepa/product"  # stands where an actor id does on the run's record
MAX_ASINS_PER_REQUEST = 100  # Keepa's limit for one product request
_REFILL_MARGIN_MS = 100  # Keepa's own client waits refillIn + 100 ms after a 429
# buybox=1: the Buy Box price history (csv 18) and buyBoxSellerIdHistory; stats=1: the
# current values; rating=1: the RATING and COUNT_REVIEWS histories
_PARAMS = {"stats": "1", "buybox": "1", "rating": "1", "history": "1", "days": "1"}

Ref = tuple[str, str]


class KeepaRejected(ApifyRejected):
    """Keepa refused the request (bad key, bad domain, no plan): a configuration problem."""


class KeepaUnavailable(ApifyUnavailable):
    """Keepa kept failing, could not be reached, or its tokens did not refill in time."""


class KeepaProductFetcher:
    def __init__(self, api_key: str, base_url: str | None = None, *, max_wait_s: float = 120.0,
                 max_retries: int = 3, retry_delay_s: float = 0.5, timeout_s: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep,
                 transport: httpx.BaseTransport | None = None) -> None:
        if not api_key:
            raise KeepaRejected("a Keepa API key is required")
        self._key = api_key
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self.max_wait_s = max_wait_s
        self.max_retries = max_retries
        self.retry_delay_s = retry_delay_s
        self._sleep = sleep
        self._waited = 0.0  # seconds slept for token refills in this fetch
        self._client = httpx.Client(timeout=timeout_s, transport=transport)

    def fetch(self, refs: Iterable[Ref]) -> FetchResult:
        """Ask Keepa for these (asin, marketplace) refs and return what it knows."""
        wanted = list(dict.fromkeys((a.strip().upper(), m) for a, m in refs))
        started = datetime.now(UTC)
        clock = time.monotonic()
        record = FetchResult(None, "SUCCEEDED", started, None, None, None, 0,
                             data_source="keepa", actor_id=SOURCE_ID, requested=len(wanted),
                             tokens_consumed=0)
        if not wanted:
            record.status = "EMPTY"
            return record
        self._waited = 0.0
        products: list[tuple[Ref, Any]] = []  # (the request's domain's ref, product)
        for marketplace, asins in _by_marketplace(wanted).items():
            domain = DOMAIN_IDS.get(marketplace)
            if domain is None:  # Keepa has no such Amazon domain: nothing to ask
                record.no_data += [(asin, marketplace) for asin in asins]
                record.problems += [RunProblem(
                    "no_item", f"Keepa serves no amazon.{marketplace} data", ref=(asin,
                                                                                marketplace))
                    for asin in asins]
                continue
            for i in range(0, len(asins), MAX_ASINS_PER_REQUEST):
                batch = asins[i:i + MAX_ASINS_PER_REQUEST]
                answer = self._request(domain, batch, record)
                for product in answer.get("products") or []:
                    asin = product.get("asin") if isinstance(product, dict) else None
                    products.append(((str(asin).upper() if asin else "", marketplace),
                                     product))
        _attribute(products, wanted, record)
        record.finished_at = datetime.now(UTC)
        record.duration_s = time.monotonic() - clock
        return record

    # ---- one request, with its retries

    def _request(self, domain: int, asins: list[str], record: FetchResult) -> dict[str, Any]:
        params = {"key": self._key, "domain": str(domain), "asin": ",".join(asins), **_PARAMS}
        failures = 0
        while True:
            try:
                response = self._client.get(f"{self.base_url}/product", params=params)
            except httpx.HTTPError as exc:
                failures += 1
                if failures > self.max_retries:
                    raise KeepaUnavailable(
                        f"Keepa could not be reached: {type(exc).__name__}: {exc}") from exc
                self._sleep(self.retry_delay_s * 2 ** (failures - 1))
                continue
            body = _json(response)
            record.tokens_consumed = (record.tokens_consumed or 0) + _int(
                body.get("tokensConsumed"))
            status = response.status_code
            if status == 200:
                return body
            if status == 429:  # not enough tokens: wait for the refill, within the budget
                wait_s = (max(0, _int(body.get("refillIn"))) + _REFILL_MARGIN_MS) / 1000
                if self._waited + wait_s > self.max_wait_s:
                    raise KeepaUnavailable(
                        f"Keepa answered 429 (not enough tokens: {body.get('tokensLeft')} "
                        f"left, refill rate {body.get('refillRate')}/min); waiting "
                        f"{wait_s:.1f} s more would pass the {self.max_wait_s:g} s budget")
                log.info("keepa: not enough tokens; waiting %.1f s for the refill", wait_s)
                self._waited += wait_s
                self._sleep(wait_s)
                continue
            message = _error_text(body) or response.reason_phrase
            if status >= 500:
                failures += 1
                if failures > self.max_retries:
                    raise KeepaUnavailable(f"Keepa answered HTTP {status} after retries: "
                                           f"{message}")
                self._sleep(self.retry_delay_s * 2 ** (failures - 1))
                continue
            raise KeepaRejected(f"Keepa refused the request (HTTP {status}): {message}")


def _by_marketplace(wanted: list[Ref]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for asin, marketplace in wanted:
        grouped.setdefault(marketplace, []).append(asin)
    return grouped


def _attribute(products: list[tuple[Ref, Any]], wanted: list[Ref],
               record: FetchResult) -> None:
    """Sort the answers onto the requested products, as the Apify path sorts items: one
    product object per requested ASIN; an unknown ASIN (INVALID, no data) is not found,
    a requested ASIN without an object has no data (what is stored stays as it is)."""
    requested = set(wanted)
    seen: set[Ref] = set()
    record.item_count = len(products)
    for index, (ref, product) in enumerate(products):
        if ref not in requested:
            record.unattributed += 1
            record.problems.append(RunProblem(
                "unattributed", "Keepa answered a product this request did not name",
                index=index, asin=ref[0] or None))
            continue
        if ref in seen:
            record.duplicates += 1
            record.problems.append(RunProblem(
                "duplicate", "another product object for the same ASIN; the first is kept",
                index=index, asin=ref[0], ref=ref))
            continue
        seen.add(ref)
        snap = map_product(product, *ref)
        if snap.found:
            record.snapshots.append(snap)
        else:
            record.not_found.append(ref)
    for ref in wanted:
        if ref not in seen and ref not in record.no_data:
            record.no_data.append(ref)
            record.problems.append(RunProblem(
                "no_item", "Keepa answered no product object for it; what is stored about "
                           "the product is unchanged", ref=ref))


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _int(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _error_text(body: dict[str, Any]) -> str | None:
    error = body.get("error")
    if isinstance(error, dict):
        parts = [str(error[k]) for k in ("type", "message", "details") if error.get(k)]
        return ": ".join(parts) or None
    return None
