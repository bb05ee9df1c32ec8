"""`pilot cost`: what tracking N products costs a month, line by line, with every input
labelled measured (from this stack's database or template) or looked up (with its
source and the date it was read).

    pilot cost                        # 1k, 10k and 100k products, daily
    pilot cost --products 2500 --cadence 12h
    pilot cost --database-url postgresql://...   # price and run times from recorded runs

The arithmetic lives in `estimate()` and takes plain numbers, so tests can check it
against figures computed by hand; `gather_inputs()` decides where each number comes
from. See docs/benchmarks.md, "Cost model".
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from amazon_pilot.platform.settings import Settings

DAYS_PER_MONTH = 30
HOURS_PER_MONTH = 730  # AWS bills a month as 730 hours
LOOKED_UP_ON = "2026-12-07"


@dataclass(frozen=True)
class Input:
    """One number of the model, and where it came from."""

    key: str
    label: str
    value: float
    unit: str
    origin: str  # "measured" | "looked up"
    source: str

    def describe(self) -> str:
        where = (f"measured: {self.source}" if self.origin == "measured"
                 else f"looked up ({self.source}, {LOOKED_UP_ON})")
        return f"{self.label}: {self.value:g} {self.unit} — {where}"


def _looked_up(key: str, label: str, value: float, unit: str, source: str) -> Input:
    return Input(key, label, value, unit, "looked up", source)


# Published prices (us-east-1, on demand). Sources are the pages the figures were read
# from; the stored copy's address is named where the vendor's own page was not stored.
PUBLISHED: dict[str, Input] = {i.key: i for i in [
    _looked_up("apify_per_result", "Apify actor price per result",
               Settings().apify_price_per_result, "USD",
               "APIFY_PRICE_PER_RESULT's default (platform/settings.py): "
               "axesso_data/amazon-product-details-scraper pay-per-result price $1.25 per "
               "1,000 results as issue 18 states it; the actor's Store page "
               "(apify.com/axesso_data/amazon-product-details-scraper) was not in the "
               "searchable corpus, so NOT re-verified; pay-per-result model: "
               "docs.apify.com/platform/actors/publishing/monetize/pay-per-result"),
    _looked_up("lambda_gb_s_arm64", "Lambda duration, arm64", 0.0000133334, "USD per GB-s",
               "aws.amazon.com/lambda/pricing, first 7.5 billion GB-s a month"),
    _looked_up("lambda_gb_s_x86_64", "Lambda duration, x86_64", 0.0000166667,
               "USD per GB-s", "aws.amazon.com/lambda/pricing, first 6 billion GB-s a month"),
    _looked_up("lambda_request", "Lambda requests", 0.20 / 1e6, "USD per request",
               "aws.amazon.com/lambda/pricing ($0.20 per million)"),
    _looked_up("sqs_request", "SQS standard requests", 0.40 / 1e6, "USD per request",
               "aws.amazon.com/sqs/pricing ($0.40 per million, each 64 KB chunk a request; "
               "as quoted by cloudburn.io/blog/amazon-sqs-pricing, March 2026)"),
    _looked_up("sqs_idle_requests", "SQS empty receives of the Lambda pollers", 1_944_000,
               "requests a month",
               "3 queues x 5 long polls (Lambda's starting pollers per SQS event source) x "
               "one 20 s poll each: 3 x 5 x 2,592,000 s / 20 s; docs.aws.amazon.com "
               "Lambda 'Using Lambda with Amazon SQS', scaling"),
    _looked_up("aurora_acu_hour", "Aurora Serverless v2 ACU-hour", 0.12, "USD",
               "aws.amazon.com/rds/aurora/pricing, as quoted by c3x.dev/blog/"
               "aws-aurora-serverless-v2-cost and awsnegotiations.com (2026)"),
    _looked_up("aurora_min_acu", "Aurora Serverless v2 minimum capacity", 0.5, "ACU",
               "the smallest floor without auto-pause (a refresh every day keeps it awake)"),
    _looked_up("aurora_storage_gb_month", "Aurora storage", 0.10, "USD per GB-month",
               "aws.amazon.com/rds/aurora/pricing, Aurora Standard, as quoted by "
               "awsnegotiations.com (2026)"),
    _looked_up("rds_proxy_acu_hour", "RDS Proxy on Aurora Serverless v2", 0.015,
               "USD per ACU-hour, billed on at least 8 ACU",
               "aws.amazon.com/rds/proxy/pricing — NOT verified against a stored copy"),
    _looked_up("snapshot_bytes", "stored bytes per snapshot (row + indexes)", 1200, "bytes",
               "estimate; measured instead when a database is reachable"),
    _looked_up("item_seconds", "worker time per product (read, normalize, store)", 0.0015,
               "s", "docs/benchmarks.md 'Daily refresh', 2026-12-06: ≈1.5 ms of Python per "
               "item on the loaded dev machine (an upper bound)"),
    _looked_up("fixed_seconds", "duration of one outbox, reconcile or scheduler invocation",
               1.0, "s", "estimate (an idle relay claims nothing and returns); not yet read from "
               "the local stack's REPORT log lines"),
    _looked_up("run_seconds", "worker time waiting on one actor run", 300, "s",
               "upper bound: the adapter's wait_secs (docs/architecture.md, 'The daily "
               "refresh at scale'); measured instead from scrape_runs.duration_ms"),
]}

# Other products' prices for similar coverage. None could be read from a stored copy of
# the vendor's own pricing page; the report says so next to each figure.
# "with a single token you can retrieve the complete data set for one product" (Keepa's API
# page, quoted by products.fliplist.co/keepa/about/tokens), plus 2 per product for the Buy
# Box (`buybox=1`, which adapters/keepa.py asks for: the keepa Python package's `query`
# docstring; tests/fixtures/keepa/README.md)
KEEPA_TOKENS_PER_PRODUCT = 3
KEEPA_PLANS = [  # (tokens per minute, EUR a month)
    (20, 49.0),  # issue 18's "≈$49 for 10k products"; keepa.com/#!api NOT verified
]
KEEPA_SOURCE = ("keepa.com/#!api 'Pricing Plans' (a script-rendered page, not in the stored "
                "corpus): the 20 tokens/min plan at 49 EUR/month is issue 18's figure, "
                "NOT verified; 1 token per product per fetch: products.fliplist.co/keepa/"
                "about/tokens quoting Keepa")
HELIUM10_SOURCE = ("helium10.com/pricing: NOT verified (no stored copy); Helium 10 sells "
                   "per-seat plans with caps on tracked ASINs, not per-product fetches, so "
                   "it does not price 10k-100k tracked products at all")


@dataclass(frozen=True)
class Shape:
    """What the deployed stack looks like, read from template.yaml (measured)."""

    architecture: str
    worker_memory_mb: int
    worker_batch_size: int
    outbox_memory_mb: int
    outbox_runs_per_month: int
    scheduler_memory_mb: int
    batch_urls: int


DEFAULT_SHAPE = Shape(architecture="arm64", worker_memory_mb=1024, worker_batch_size=3,
                      outbox_memory_mb=512, outbox_runs_per_month=43_200 + 2_880,
                      scheduler_memory_mb=512, batch_urls=200)


@dataclass(frozen=True)
class Line:
    name: str
    usd: float
    detail: str


@dataclass(frozen=True)
class Estimate:
    products: int
    fetches_per_day: float
    lines: list[Line]

    @property
    def total(self) -> float:
        return sum(line.usd for line in self.lines)

    def share(self, name: str) -> float:
        total = self.total
        return sum(line.usd for line in self.lines if line.name == name) / total if total else 0


def estimate(products: int, fetches_per_day: float, inputs: dict[str, Input], shape: Shape,
             *, proxy: bool = False, retained_days: int = 365) -> Estimate:
    """Monthly cost of fetching `products` products `fetches_per_day` times a day."""
    v = {key: item.value for key, item in inputs.items()}
    fetches = products * fetches_per_day * DAYS_PER_MONTH  # results a month
    runs = math.ceil(products / shape.batch_urls) * fetches_per_day * DAYS_PER_MONTH
    apify = fetches * v["apify_per_result"]

    gb_s_price = v[f"lambda_gb_s_{shape.architecture}"]
    worker_s = runs * v["run_seconds"] + fetches * v["item_seconds"]
    worker_gb_s = worker_s * shape.worker_memory_mb / 1024
    # fixed: the outbox relay (every minute) and reconcile (every 15 min); the scheduler
    # once per planned refresh
    fixed_gb_s = v["fixed_seconds"] * (
        shape.outbox_runs_per_month * shape.outbox_memory_mb / 1024
        + fetches_per_day * DAYS_PER_MONTH * shape.scheduler_memory_mb / 1024)
    invocations = (math.ceil(runs / shape.worker_batch_size) + shape.outbox_runs_per_month
                   + fetches_per_day * DAYS_PER_MONTH)
    lambda_usd = (worker_gb_s + fixed_gb_s) * gb_s_price + invocations * v["lambda_request"]

    # per run message: one tenth of a SendMessageBatch, a receive and a delete (Lambda
    # receives and deletes up to BatchSize at once: counted per message, the upper bound)
    sqs_requests = runs * (0.1 + 1 + 1) + v["sqs_idle_requests"]
    sqs_usd = sqs_requests * v["sqs_request"]

    acu_usd = v["aurora_min_acu"] * HOURS_PER_MONTH * v["aurora_acu_hour"]
    stored_gb = products * fetches_per_day * retained_days * v["snapshot_bytes"] / 1e9
    storage_usd = stored_gb * v["aurora_storage_gb_month"]
    lines = [
        Line("Apify", apify, f"{fetches:,.0f} results x ${v['apify_per_result'] * 1000:.4g}"
                             f"/1,000"),
        Line("Lambda", lambda_usd, f"{worker_gb_s + fixed_gb_s:,.0f} GB-s ({shape.architecture}"
                                   f"), {invocations:,.0f} requests; {runs:,.0f} actor runs"),
        Line("SQS", sqs_usd, f"{sqs_requests:,.0f} requests"),
        Line("Aurora compute", acu_usd, f"{v['aurora_min_acu']:g} ACU x {HOURS_PER_MONTH} h"),
        Line("Aurora storage", storage_usd, f"{stored_gb:,.2f} GB ({retained_days} days of "
                                            f"snapshots)"),
    ]
    if proxy:
        acu = max(8.0, v["aurora_min_acu"])
        lines.append(Line("RDS Proxy", acu * HOURS_PER_MONTH * v["rds_proxy_acu_hour"],
                          f"{acu:g} ACU (its minimum) x {HOURS_PER_MONTH} h"))
    return Estimate(products, fetches_per_day, lines)


def keepa_plan(products: int, fetches_per_day: float) -> tuple[float | None, str]:
    """(EUR a month or None when no known plan covers it, explanation)."""
    needed = products * fetches_per_day * KEEPA_TOKENS_PER_PRODUCT / 1440
    for tokens, eur in KEEPA_PLANS:
        if needed <= tokens:
            return eur, (f"≈{eur:.0f} EUR/month ({tokens} tokens/min plan; needs "
                         f"{needed:.1f} tokens/min)")
    return None, (f"needs {needed:.0f} tokens/min, above the one plan whose price is "
                  f"known: not verified")


# ---------------------------------------------------------------- where inputs come from


def shape_from_template(path: Path | None = None) -> tuple[Shape, list[str]]:
    """Memory, batch sizes and schedules from template.yaml (what deploys)."""
    from pilot_dev.runtime.template import load_template

    template = load_template(path)
    notes = []
    fns = template.functions
    arch = template.parameter_defaults().get("Architecture", "arm64")
    worker = fns["DefaultWorkerFunction"]
    events = worker.properties.get("Events") or {}
    batch = next((int(e["Properties"].get("BatchSize", 10)) for e in events.values()
                  if e.get("Type") == "SQS"), 10)
    outbox = fns.get("OutboxFunction", worker)
    scheduler = fns.get("SchedulerFunction", worker)
    batch_urls = Settings().apify_batch_size  # the default; APIFY_BATCH_SIZE overrides it
    notes.append(f"measured: template.yaml — {arch}, DefaultWorker {worker.memory} MB "
                 f"(BatchSize {batch}), Outbox {outbox.memory} MB every minute + reconcile "
                 f"every 15 min, Scheduler {scheduler.memory} MB; {batch_urls} URLs per "
                 f"actor run (APIFY_BATCH_SIZE)")
    return (Shape(arch, worker.memory, batch, outbox.memory, DEFAULT_SHAPE.outbox_runs_per_month,
                  scheduler.memory, int(batch_urls)), notes)


def measured_inputs(database_url: str) -> list[Input]:
    """Price per result and run time from recorded scrape runs; bytes per snapshot from
    the table's size. Only real Apify runs (data_source 'apify') price a result: the
    stand-in's costs are made up."""
    from sqlalchemy import create_engine, text

    from amazon_pilot.platform.db import sqlalchemy_url

    engine = create_engine(sqlalchemy_url(database_url))
    found = []
    try:
        with engine.connect() as conn:
            row = conn.execute(text(
                "SELECT count(*), sum(cost_usd), sum(item_count) FROM scrape_runs"
                " WHERE data_source = 'apify' AND cost_usd IS NOT NULL AND item_count > 0"
            )).one()
            if row[0] and row[2]:
                found.append(Input("apify_per_result", "Apify actor price per result",
                                   float(row[1]) / float(row[2]), "USD", "measured",
                                   f"{row[0]} recorded Apify runs (scrape_runs.cost_usd / "
                                   f"item_count)"))
            row = conn.execute(text(
                "SELECT count(*), avg(duration_ms) FROM scrape_runs"
                " WHERE status = 'succeeded' AND duration_ms IS NOT NULL"
                " AND data_source = 'apify'")).one()
            if row[0]:
                found.append(Input("run_seconds", "worker time waiting on one actor run",
                                   float(row[1]) / 1000, "s", "measured",
                                   f"mean scrape_runs.duration_ms of {row[0]} Apify runs"))
            row = conn.execute(text(
                "SELECT pg_total_relation_size('snapshots'), (SELECT count(*) FROM snapshots)"
            )).one()
            if row[1] and row[1] >= 1000:
                found.append(Input("snapshot_bytes", "stored bytes per snapshot (row + "
                                   "indexes)", round(row[0] / row[1]), "bytes", "measured",
                                   f"pg_total_relation_size('snapshots') / {row[1]:,} rows"))
    finally:
        engine.dispose()
    return found


def gather_inputs(database_url: str | None) -> tuple[dict[str, Input], list[str]]:
    inputs = dict(PUBLISHED)
    notes = []
    if database_url:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            for item in measured_inputs(database_url):
                inputs[item.key] = item
        except SQLAlchemyError as exc:  # unreachable, or not our schema: published prices
            notes.append(f"database not read ({str(exc).splitlines()[0][:120]}): "
                         f"published prices used")
    else:
        notes.append("no database (no --database-url, DATABASE_URL or running stack): "
                     "published prices used")
    return inputs, notes


# ---------------------------------------------------------------- the report


def parse_cadence(text: str) -> float:
    """'24h' / '12h' / '1d' / '2d' / '7d' -> fetches per day; a mix of cadences with the
    percentage of products on each ('1d:60,3d:30,7d:10', what `refresh_every` and the
    `auto` mode produce) -> the mean fetches per product a day."""
    text = text.strip().lower()
    if "," in text or ":" in text:
        return _parse_mix(text)
    try:
        if text.endswith("h"):
            hours = float(text[:-1])
        elif text.endswith("d"):
            hours = float(text[:-1]) * 24
        else:
            raise ValueError
    except ValueError as exc:
        raise ValueError(f"cadence {text!r}: give hours or days, e.g. 24h, 12h, 7d, or a mix"
                         f" such as 1d:60,3d:30,7d:10") from exc
    if hours <= 0:
        raise ValueError(f"cadence {text!r}: must be more than 0")
    return 24 / hours


def _parse_mix(text: str) -> float:
    total_pct = per_day = 0.0
    for part in text.split(","):
        every, _, pct = part.partition(":")
        try:
            share = float(pct)
        except ValueError:
            raise ValueError(f"cadence mix {text!r}: each part is CADENCE:PERCENT, e.g."
                             f" 3d:30") from None
        if share < 0:
            raise ValueError(f"cadence mix {text!r}: a percentage cannot be negative")
        total_pct += share
        per_day += parse_cadence(every) * share / 100
    if abs(total_pct - 100) > 0.01:
        raise ValueError(f"cadence mix {text!r}: the percentages add up to {total_pct:g},"
                         f" not 100")
    return per_day


def cadence_words(text: str, fetches_per_day: float) -> str:
    if "," in text or ":" in text:
        mix = ", ".join(f"{pct.strip()} % every {every.strip()}" for every, _, pct in
                        (part.partition(":") for part in text.split(",")))
        return f"at a cadence mix ({mix}: {fetches_per_day:.3g} fetches a product a day)"
    return "daily" if fetches_per_day == 1 else f"{fetches_per_day:g} times a day"


def render(sizes: list[int], fetches_per_day: float, inputs: dict[str, Input], shape: Shape,
           notes: list[str], *, proxy: bool = False, cadence: str | None = None) -> str:
    estimates = [estimate(n, fetches_per_day, inputs, shape, proxy=proxy) for n in sizes]
    cadence = cadence or cadence_words("", fetches_per_day)
    out = [f"Monthly cost of tracking products {cadence} (USD, {DAYS_PER_MONTH}-day month, "
           f"us-east-1 on-demand prices)", ""]
    names = [line.name for line in estimates[0].lines]
    head = f"{'':<16}" + "".join(f"{f'{e.products:,} products':>18}" for e in estimates)
    out.append(head)
    for name in names:
        cells = "".join(f"{next(ln.usd for ln in e.lines if ln.name == name):>18,.2f}"
                        for e in estimates)
        out.append(f"{name:<16}{cells}")
    out.append(f"{'total':<16}" + "".join(f"{e.total:>18,.2f}" for e in estimates))
    out.append(f"{'Apify share':<16}" + "".join(f"{e.share('Apify'):>18.0%}" for e in estimates))
    keepa = [keepa_plan(e.products, fetches_per_day)[0] for e in estimates]
    out.append(f"{'Keepa API (EUR)':<16}" + "".join(
        f"{f'≈{eur:,.0f}*' if eur is not None else 'not verified':>18}" for eur in keepa))
    out.append(f"{'Helium 10':<16}" + "".join(f"{'not verified':>18}" for _ in estimates))
    out.append("  * issue 18's figure for Keepa's plan, not verified against Keepa's own page")
    out.append("")
    for e in estimates:
        out.append(f"{e.products:,} products: " + "; ".join(
            f"{ln.name} {ln.detail}" for ln in e.lines))
        why = keepa_plan(e.products, fetches_per_day)[1]
        out.append(f"  Keepa API for the same fetches: {why}")
    out.append("")
    out.append("Inputs:")
    for item in inputs.values():
        out.append(f"  - {item.describe()}")
    out.append("Shape and notes:")
    for note in notes:
        out.append(f"  - {note}")
    out.append("Other products, similar coverage:")
    out.append(f"  - Keepa API: {KEEPA_SOURCE}")
    out.append(f"  - Helium 10: {HELIUM10_SOURCE}")
    out.append("Not modelled: Aurora I/O requests, CloudWatch logs and metrics, data transfer, "
               "the API functions' own traffic, the free tiers (they lower small totals).")
    return "\n".join(out)


def run(sizes: list[int], cadence: str, database_url: str | None, proxy: bool,
        template: Path | None = None) -> str:
    fetches_per_day = parse_cadence(cadence)
    inputs, notes = gather_inputs(database_url)
    shape, shape_notes = shape_from_template(template)
    return render(sizes, fetches_per_day, inputs, shape, shape_notes + notes, proxy=proxy,
                  cadence=cadence_words(cadence, fetches_per_day))


def with_value(inputs: dict[str, Input], key: str, value: float) -> dict[str, Input]:
    """A copy of `inputs` with one value replaced (kept as its origin says)."""
    return {**inputs, key: replace(inputs[key], value=value)}


def as_dict(est: Estimate) -> dict[str, Any]:
    return {"products": est.products, "total": est.total,
            "lines": {ln.name: ln.usd for ln in est.lines}}
