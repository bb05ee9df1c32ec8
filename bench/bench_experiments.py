"""Benchmark: experiment analysis time and listing-score + suggestion throughput.

Run: .venv/bin/python bench/bench_experiments.py

1. analyze_experiment on a 180-day series (change on day 150), 2,000 resamples, median of
   20 runs, next to the 200 ms target: once with BSR only, once with all six metrics
   (BSR, subcategory BSR, review velocity, rating, buy-box share, price) and 5 controls.
2. score_listing + suggest for 1,000 synthetic products (5 competitors, 90-day history
   each), products per second.
"""

from __future__ import annotations

import math
import random
import statistics
import time
from datetime import date, datetime, timedelta

import numpy as np

from amazon_pilot.domain.experiments import analyze_experiment
from amazon_pilot.domain.listing_score import score_listing
from amazon_pilot.domain.snapshot import HistoryPoint, Snapshot
from amazon_pilot.domain.suggestions import suggest

TARGET_MS = 200.0
Series = dict[str, list[tuple[date, float | None]]]


def _ar1(rng: np.random.Generator, n: int, rho: float, sd: float) -> np.ndarray:
    e = rng.standard_normal(n) * sd
    x = np.empty(n)
    x[0] = e[0]
    for i in range(1, n):
        x[i] = rho * x[i - 1] + e[i]
    return x


def _series(rng: np.random.Generator, n: int, level: float, all_metrics: bool) -> Series:
    ds = [date(2026, 1, 1) + timedelta(days=i) for i in range(n)]
    out: Series = {
        "bsr": [
            (d, float(level * math.exp(v))) for d, v in zip(ds, _ar1(rng, n, 0.6, 0.1), strict=True)
        ]
    }
    if all_metrics:
        sub = _ar1(rng, n, 0.6, 0.1)
        out["subcategory_bsr"] = [
            (d, float(level / 20 * math.exp(v))) for d, v in zip(ds, sub, strict=True)
        ]
        reviews = np.cumsum(rng.poisson(4, n)).astype(float)
        out["review_count"] = [(d, float(v)) for d, v in zip(ds, reviews, strict=True)]
        rating = np.round(4.3 + 0.05 * _ar1(rng, n, 0.9, 0.3), 1)
        out["rating"] = [(d, float(v)) for d, v in zip(ds, rating, strict=True)]
        out["buy_box_share"] = [(d, float(v)) for d, v in zip(ds, rng.random(n) < 0.8, strict=True)]
        out["price"] = [(d, 24.99 if i < 150 else 22.99) for i, d in enumerate(ds)]
    return out


def bench_experiment(all_metrics: bool, runs: int = 20) -> float:
    rng = np.random.default_rng(1)
    n = 180
    product = _series(rng, n, 5000.0, all_metrics)
    controls = [_series(rng, n, 2000.0 * (j + 1), all_metrics) for j in range(5)]
    changed_at = date(2026, 1, 1) + timedelta(days=150)
    analyze_experiment(product, controls, changed_at)  # warm-up (imports, caches)
    times = []
    for run in range(runs):
        t0 = time.perf_counter()
        analyze_experiment(product, controls, changed_at, n_boot=2000, seed=run)
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


_VOCAB = (
    "insulated stainless steel water bottle straw lid leak proof vacuum double wall bpa free "
    "wide mouth sports gym travel cold hot coffee tumbler handle dishwasher safe powder coat "
    "cup holder kids adults hiking camping"
)
WORDS = _VOCAB.split()


def _snapshot(r: random.Random, asin: str, brand: str) -> Snapshot:
    title = f"{brand} " + " ".join(r.sample(WORDS, r.randint(6, 18))).title()
    bullets = [
        " ".join(r.choices(WORDS, k=r.randint(12, 40))).capitalize() + "."
        for _ in range(r.randint(2, 6))
    ]
    n_img = r.randint(2, 9)
    return Snapshot(
        asin=asin,
        brand=brand,
        title=title,
        price=round(r.uniform(15, 45), 2),
        rating=round(r.uniform(3.4, 4.9), 1),
        review_count=r.randint(0, 20000),
        bsr_rank=r.randint(50, 200000),
        bullet_points=bullets,
        description=" ".join(r.choices(WORDS, k=r.randint(0, 120))) or None,
        image_urls=[f"https://m.media-amazon.com/images/I/{asin}{i}.jpg" for i in range(n_img)],
        image_count=n_img,
        video_count=r.randint(0, 1),
    )


def _history(r: random.Random) -> list[HistoryPoint]:
    t0 = datetime(2026, 1, 1, 12)
    price, bsr, out = 29.99, 4000, []
    for d in range(90):
        if r.random() < 0.05:
            price = round(price * r.uniform(0.85, 1.15), 2)
        bsr = max(1, int(bsr * math.exp(r.gauss(0, 0.1))))
        out.append(HistoryPoint(captured_at=t0 + timedelta(days=d), price=price, bsr_rank=bsr))
    return out


def bench_scoring(n_products: int = 1000) -> float:
    r = random.Random(7)
    cases = []
    for i in range(n_products):
        product = _snapshot(r, f"B0P{i:07d}", "HydroPeak")
        comps = [_snapshot(r, f"B0C{i:05d}{j}", f"Rival{j}") for j in range(5)]
        cases.append((product, comps, _history(r)))
    t0 = time.perf_counter()
    for product, comps, hist in cases:
        suggest(product, comps, score_listing(product, comps), hist)
    return n_products / (time.perf_counter() - t0)


def bench_reference(runs: int = 20) -> float:
    """A fixed numpy workload (draw and sum a 2,000 x 180 matrix) timed in the same run:
    these machines are noisy, so read the figures above against this one."""
    rng = np.random.default_rng(0)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rng.standard_normal((2000, 180)).sum()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def main() -> None:
    print(f"reference: 2,000 x 180 normal draws + sum, median {bench_reference():.2f} ms")
    for label, all_metrics in (("BSR only, 5 controls", False), ("6 metrics, 5 controls", True)):
        ms = bench_experiment(all_metrics)
        verdict = "OK" if ms < TARGET_MS else "OVER"
        print(
            f"analyze_experiment, 180 days, 2,000 resamples, {label}: "
            f"median {ms:.1f} ms over 20 runs (target < {TARGET_MS:.0f} ms: {verdict})"
        )
    rate = bench_scoring()
    print(f"score_listing + suggest, 1,000 products x 5 competitors: {rate:,.0f} products/s")


if __name__ == "__main__":
    main()
