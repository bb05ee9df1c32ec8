"""Issue 18 figures: history stays flat as the snapshots table grows.

    .venv/bin/python bench/bench_history.py --rows 1000000 --rows 10000000
    .venv/bin/python bench/bench_history.py --quick        # 100k rows only

For each size, a fresh database gets one year of daily snapshots for rows/365 products
(generated in Postgres with generate_series: no Python per row), is analysed, and then
answers the uncached history query (tracking.store.history: a year of one metric at daily
interval, 365 points) for random products. Printed per size: p50 and p99 over QUERIES
queries, against the goal (p50 < 5 ms, p99 < 15 ms) and against the smallest size (the
flatness ratio), plus the partitions the plan reads (pruning: 13 monthly partitions of a
year, whatever the table holds).

Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import bench_database, goal, percentile

QUERIES = 400
GOAL_P50_MS = 5.0
GOAL_P99_MS = 15.0
DAYS = 365


def _seed(url: str, rows: int) -> tuple[int, float]:
    """rows/365 products with a daily snapshot each over the last year; (products, s)."""
    import psycopg

    products = max(1, rows // DAYS)
    started = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (id, asin, marketplace)"
            " SELECT i, 'B0' || lpad(i::text, 8, '0'), 'com' FROM generate_series(1, %s) i",
            (products,))
        conn.execute("SELECT setval('products_id_seq', %s)", (products,))
        conn.execute("SET maintenance_work_mem = '256MB'")
        # one day at a time: each month's partition receives its rows in key order
        conn.execute(
            "INSERT INTO snapshots (product_id, captured_at, price, bsr_rank, rating,"
            " review_count, availability)"
            " SELECT p, date_trunc('day', now()) - d * interval '1 day' + interval '6 hours',"
            "  (10 + (p %% 90) + (d %% 7) * 0.25)::numeric(12, 2), 1000 + (p * 7 + d) %% 50000,"
            "  4.2, 100 + d, 'in_stock'"
            " FROM generate_series(0, %s) d, generate_series(1, %s) p",
            (DAYS - 1, products))
        conn.execute("VACUUM ANALYZE snapshots")
        conn.execute("VACUUM ANALYZE products")
    return products, time.perf_counter() - started


def _partitions_read(url: str, product_id: int, start: datetime, end: datetime) -> int:
    import psycopg

    with psycopg.connect(url) as conn:
        plan = "\n".join(r[0] for r in conn.execute(
            "EXPLAIN SELECT captured_at, price FROM snapshots WHERE product_id = %s"
            " AND captured_at BETWEEN %s AND %s AND found", (product_id, start, end)))
    return len(set(re.findall(r"\bsnapshots_\d{4}_\d{2}\b", plan)))  # index and heap


def _measure(products: int) -> list[float]:
    from amazon_pilot.platform.db import reading
    from amazon_pilot.tracking.store import history

    rng = random.Random(18)
    end = datetime.now(UTC)
    start = end - timedelta(days=DAYS)
    samples = []
    with reading() as conn:
        for _ in range(20):  # warm the connection and the catalogue
            history(conn, rng.randint(1, products), "price", start, end, "day")
        for _ in range(QUERIES):
            pid = rng.randint(1, products)
            t0 = time.perf_counter()
            points = history(conn, pid, "price", start, end, "day")
            samples.append((time.perf_counter() - t0) * 1000)
            if len(points) < DAYS - 1:
                raise RuntimeError(f"product {pid}: {len(points)} points, expected {DAYS}")
    return samples


def run(rows: int) -> tuple[float, float]:
    import os

    from amazon_pilot.platform.db import dispose_engine
    from amazon_pilot.platform.settings import reset_settings

    with bench_database() as url:
        os.environ["DATABASE_URL"] = url
        reset_settings()
        dispose_engine()
        products, seconds = _seed(url, rows)
        end = datetime.now(UTC)
        parts = _partitions_read(url, 1, end - timedelta(days=DAYS), end)
        samples = _measure(products)
        p50, p99 = statistics.median(samples), percentile(samples, 99)
        print(f"  {products * DAYS:>12,} rows ({products:,} products, seeded in {seconds:5.1f} s):"
              f" p50 {p50:6.2f} ms (goal {GOAL_P50_MS:.0f}: x{p50 / GOAL_P50_MS:.2f})"
              f"   p99 {p99:6.2f} ms (goal {GOAL_P99_MS:.0f}: x{p99 / GOAL_P99_MS:.2f})"
              f"   partitions read {parts}", flush=True)
        goal(f"history SQL, 365 points, {products * DAYS:,} rows: p50", p50, "ms",
             "< 5 ms", p50 < GOAL_P50_MS, ratio=f"{parts} partitions read")
        goal(f"history SQL, 365 points, {products * DAYS:,} rows: p99", p99, "ms",
             "< 15 ms", p99 < GOAL_P99_MS)
        dispose_engine()
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, action="append",
                        help="snapshot rows (repeat for a curve); default 1M")
    parser.add_argument("--quick", action="store_true", help="100k rows only (CI)")
    args = parser.parse_args()
    sizes = [100_000] if args.quick else (args.rows or [1_000_000])
    print(f"history of {DAYS} daily points (tracking.store.history, uncached), {QUERIES}"
          " random products per size:")
    results = [run(rows) for rows in sorted(sizes)]
    if len(results) > 1:
        p50_0, p99_0 = results[0]
        p50_n, p99_n = results[-1]
        print(f"  flatness, largest vs smallest size: p50 x{p50_n / p50_0:.2f},"
              f" p99 x{p99_n / p99_0:.2f} (flat: about x1)")


if __name__ == "__main__":
    main()
