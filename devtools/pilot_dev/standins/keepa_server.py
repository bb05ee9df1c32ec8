"""Offline stand-in for the Keepa API's product request (`GET /product`), faults included.

Its products are built from the same synthetic catalog as the Apify stand-in
(`apify_catalog.item_for`, read through the project's own normalizer), so an ASIN has the
same price, rank, rating and reviews whichever source is configured. They are written in
Keepa's documented product format (tests/fixtures/keepa/README.md): csv histories in
Keepa minutes, prices in cents (-1: no offer), rating x 10, salesRanks per category id,
salesRankReference, categoryTree, imagesCSV, buyBoxSellerIdHistory, stats.current.

    standin = KeepaStandIn(port=0).start()     # in-process, background thread
    KeepaProductFetcher("sandbox-key", base_url=standin.url)
    standin.stop()

    python -m pilot_dev.standins.keepa_server --port 8766

Behaviour, as Keepa's API documents it:
- a token bucket: `tokens` to start, `refill_rate` tokens added every `refill_interval_s`
  (Keepa: per minute) up to `capacity`; a request is served while the balance is positive
  (it may go negative) and answers 429 with `refillIn` (ms to the next refill) when it
  is not. Every answer carries tokensLeft, refillIn, refillRate, tokensConsumed, timestamp.
- cost per product answered: 1, plus 2 with `buybox=1` (Keepa's extra Buy Box cost).
- 400 for a missing or wrong key, an unknown `domain`, no ASIN, or more than 100 ASINs.
- an unknown ASIN (the catalog's: ending in "0000", or not an ASIN) is answered with an
  INVALID product (productType 4, no data), as Keepa answers one.
Control plane (no key, for tests and demos):
    POST /_sandbox/tokens {"tokens", "refill_rate", "refill_interval_s", "capacity"}
    POST /_sandbox/faults {"mode": "http_500", "count": N}     DELETE /_sandbox/faults
    GET  /_sandbox/requests    what was asked (ASINs, domain, status, tokens)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
import time
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from amazon_pilot.domain.keepa_product import (
    DOMAIN_IDS,
    KEEPA_EPOCH_MINUTE,
    MARKETPLACES,
    CsvType,
)
from amazon_pilot.domain.normalize import normalize_item
from amazon_pilot.domain.snapshot import Availability, Snapshot
from pilot_dev.standins.apify_catalog import item_for
from pilot_dev.standins.served import ServedStandIn

__all__ = ["KeepaStandIn", "keepa_product", "main"]

CSV_TYPES = 34  # the csv array's length in current answers (indices 0..33)
MAX_ASINS = 100
BUYBOX_EXTRA_TOKENS = 2


def _keepa_now() -> int:
    return int(time.time() // 60) - KEEPA_EPOCH_MINUTE


def _category_id(name: str) -> int:
    """A stable category node id for a category name (the catalog has names only)."""
    return 1_000_000 + zlib.crc32(name.encode()) % 900_000_000


def _cents(value: float | None, marketplace: str) -> int:
    if value is None:
        return -1
    return round(value) if marketplace == "co.jp" else round(value * 100)


def keepa_product(asin: str, marketplace: str, now_minute: int | None = None) -> dict[str, Any]:
    """The Keepa product object for this product today (an INVALID one when unknown)."""
    minute = _keepa_now() if now_minute is None else now_minute
    domain = DOMAIN_IDS[marketplace]
    item = item_for(asin, marketplace, datetime.now(UTC).date())
    if item is None:
        return {"asin": asin, "domainId": domain, "productType": 4, "csv": None,
                "title": None, "lastUpdate": minute}
    return _from_snapshot(normalize_item(item, marketplace=marketplace), asin, marketplace,
                          minute)


def _from_snapshot(snap: Snapshot, asin: str, marketplace: str,
                   minute: int) -> dict[str, Any]:
    domain = DOMAIN_IDS[marketplace]
    csv: list[list[int] | None] = [None] * CSV_TYPES
    in_stock = snap.availability in (Availability.IN_STOCK, Availability.LOW_STOCK)
    price = _cents(snap.price, marketplace) if in_stock else -1
    sold_by_amazon = (snap.buy_box_seller or "").lower().startswith("amazon")
    buy_box = (_cents(snap.buy_box_price or snap.price, marketplace)
               if in_stock and snap.availability is not Availability.NO_FEATURED_OFFER else -1)
    csv[CsvType.AMAZON] = [minute, price if sold_by_amazon else -1]
    csv[CsvType.NEW] = [minute, price]
    if snap.list_price is not None:
        csv[CsvType.LISTPRICE] = [minute, _cents(snap.list_price, marketplace)]
    if snap.bsr_rank is not None:
        csv[CsvType.SALES] = [minute, snap.bsr_rank]
    if snap.offer_count is not None:
        csv[CsvType.COUNT_NEW] = [minute, snap.offer_count]
    if snap.rating is not None:
        csv[CsvType.RATING] = [minute, round(snap.rating * 10)]
    if snap.review_count is not None:
        csv[CsvType.COUNT_REVIEWS] = [minute, snap.review_count]
    csv[CsvType.BUY_BOX_SHIPPING] = [minute, buy_box, 0]  # a triple: price, shipping

    tree: list[dict[str, Any]] = []
    ranks: dict[str, list[int]] = {}
    reference = -1
    if snap.bsr_category:
        reference = _category_id(snap.bsr_category)
        tree.append({"catId": reference, "name": snap.bsr_category})
        if snap.bsr_rank is not None:
            ranks[str(reference)] = [minute, snap.bsr_rank]
    for sub in snap.subcategory_ranks:
        cat = _category_id(sub.category)
        tree.append({"catId": cat, "name": sub.category})
        ranks[str(cat)] = [minute, sub.rank]
    product: dict[str, Any] = {
        # the stand-in's label, as on the Apify stand-in's items: not Keepa's field
        "sandbox": True,
        "asin": asin, "domainId": domain, "productType": 0, "title": snap.title,
        "brand": snap.brand, "features": list(snap.bullet_points) or None,
        "description": snap.description,
        "imagesCSV": ",".join(url.rsplit("/", 1)[-1] for url in snap.image_urls) or None,
        "categoryTree": tree or None, "rootCategory": reference if reference > 0 else 0,
        "salesRankReference": reference, "salesRanks": ranks or None,
        "lastUpdate": minute, "lastPriceChange": minute, "csv": csv,
        "stats": {"current": [series[1] if series else -1 for series in csv]},
    }
    if snap.buy_box_seller_id:
        product["buyBoxSellerIdHistory"] = [str(minute), snap.buy_box_seller_id]
    return product


# --------------------------------------------------------------------------------------------
# State: the token bucket, faults, and what was asked


@dataclass
class _Bucket:
    tokens: float = 300
    capacity: float = 300
    refill_rate: int = 20  # tokens added at each refill
    refill_interval_s: float = 60.0  # Keepa refills per minute
    last_refill: float = field(default_factory=time.monotonic)

    def refill(self, now: float) -> None:
        intervals = int((now - self.last_refill) // self.refill_interval_s)
        if intervals > 0:
            self.tokens = min(self.capacity, self.tokens + intervals * self.refill_rate)
            self.last_refill += intervals * self.refill_interval_s

    def refill_in_ms(self, now: float) -> int:
        return max(0, int((self.last_refill + self.refill_interval_s - now) * 1000))


class _State:
    def __init__(self, api_key: str | None) -> None:
        self.api_key = api_key
        self.lock = threading.Lock()
        self.bucket = _Bucket()
        self.faults: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []

    def status(self, now: float, consumed: int) -> dict[str, Any]:
        return {"timestamp": int(time.time() * 1000), "tokensLeft": int(self.bucket.tokens),
                "refillIn": self.bucket.refill_in_ms(now),
                "refillRate": self.bucket.refill_rate, "tokenFlowReduction": 0.0,
                "tokensConsumed": consumed, "processingTimeInMs": 0}


class _Handler(BaseHTTPRequestHandler):
    state: _State
    server_version = "KeepaStandIn/1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b"{}"
        parsed = json.loads(raw or b"{}")
        return parsed if isinstance(parsed, dict) else {}

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        if parts.path == "/_sandbox/requests":
            with self.state.lock:
                self._send(200, {"requests": list(self.state.requests)})
            return
        if parts.path.rstrip("/") != "/product":
            self._send(404, {"error": {"type": "NOT_FOUND", "message": "no such endpoint"}})
            return
        self._product(parse_qs(parts.query))

    def do_POST(self) -> None:
        path = urlsplit(self.path).path
        body = self._body()
        with self.state.lock:
            if path == "/_sandbox/tokens":
                bucket = self.state.bucket
                for name in ("tokens", "capacity", "refill_rate", "refill_interval_s"):
                    if name in body:
                        setattr(bucket, name, type(getattr(bucket, name))(body[name]))
                bucket.last_refill = time.monotonic()
                self._send(200, {"ok": True})
                return
            if path == "/_sandbox/faults":
                self.state.faults[str(body.get("mode", "http_500"))] = int(body.get("count", 1))
                self._send(200, {"ok": True})
                return
        self._send(404, {"error": {"type": "NOT_FOUND", "message": "no such endpoint"}})

    def do_DELETE(self) -> None:
        if urlsplit(self.path).path == "/_sandbox/faults":
            with self.state.lock:
                self.state.faults.clear()
            self._send(200, {"ok": True})
            return
        self._send(404, {"error": {"type": "NOT_FOUND", "message": "no such endpoint"}})

    def _product(self, query: dict[str, list[str]]) -> None:
        def one(name: str) -> str:
            return (query.get(name) or [""])[0]

        state = self.state
        asins = [a.strip().upper() for a in one("asin").split(",") if a.strip()]
        now = time.monotonic()
        with state.lock:
            state.bucket.refill(now)
            log: dict[str, Any] = {"asins": asins, "domain": one("domain")}
            state.requests.append(log)
            if state.faults.get("http_500", 0) > 0:
                state.faults["http_500"] -= 1
                log["status"] = 500
                self._send(500, {"error": {"type": "INTERNAL_SERVER_ERROR",
                                           "message": "stand-in fault"}})
                return
            problem = self._rejection(one("key"), one("domain"), asins)
            if problem:
                log["status"] = 400
                self._send(400, {**state.status(now, 0),
                                 "error": {"type": "REQUEST_REJECTED", "message": problem}})
                return
            if state.bucket.tokens <= 0:
                log["status"] = 429
                self._send(429, {**state.status(now, 0), "error": {
                    "type": "NOT_ENOUGH_TOKEN", "message": "not enough tokens"}})
                return
            marketplace = MARKETPLACES[int(one("domain"))]
            minute = _keepa_now()
            products = [keepa_product(a, marketplace, minute) for a in asins]
            per_product = 1 + (BUYBOX_EXTRA_TOKENS if one("buybox") == "1" else 0)
            consumed = per_product * len(products)
            state.bucket.tokens -= consumed  # may go negative, as Keepa's balance may
            log.update(status=200, tokens=consumed)
            self._send(200, {**state.status(now, consumed), "products": products})

    def _rejection(self, key: str, domain: str, asins: list[str]) -> str | None:
        if not key or (self.state.api_key is not None and key != self.state.api_key):
            return "invalid access key"
        if not domain.isdigit() or int(domain) not in MARKETPLACES:
            return f"invalid domain {domain!r}"
        if not asins:
            return "no asin given"
        if len(asins) > MAX_ASINS:
            return f"at most {MAX_ASINS} ASINs per request, got {len(asins)}"
        return None


# --------------------------------------------------------------------------------------------
# Lifecycle


class KeepaStandIn(ServedStandIn):
    """The stand-in server; `start()` serves in a daemon thread, `.url` is its base URL.
    `api_key` None accepts any non-empty key."""

    thread_name = "keepa-standin"

    def __init__(self, port: int = 0, host: str = "127.0.0.1", *,
                 api_key: str | None = None) -> None:
        self.state = _State(api_key)
        handler = type("Handler", (_Handler,), {"state": self.state})
        self._serve(ThreadingHTTPServer((host, port), handler))

    def set_tokens(self, tokens: float, *, refill_rate: int | None = None,
                   refill_interval_s: float | None = None) -> None:
        """Set the bucket (and restart its refill clock)."""
        with self.state.lock:
            bucket = self.state.bucket
            bucket.tokens = tokens
            if refill_rate is not None:
                bucket.refill_rate = refill_rate
            if refill_interval_s is not None:
                bucket.refill_interval_s = refill_interval_s
            bucket.last_refill = time.monotonic()

    def requests(self) -> list[dict[str, Any]]:
        with self.state.lock:
            return list(self.state.requests)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--key", default=None, help="the one key accepted (default: any)")
    args = parser.parse_args(argv)
    standin = KeepaStandIn(args.port, args.host, api_key=args.key)
    print(f"Keepa stand-in on {standin.url} (KEEPA_BASE_URL={standin.url})", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        standin._server.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
