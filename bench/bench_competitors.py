"""Speed of the competitor comparison and of report generation, through the local runtime.

    .venv/bin/python bench/bench_competitors.py [--days 365] [--n 200]

Starts the whole stack in this process as the tests do (moto, the Apify and OpenAI
stand-ins) on a fresh database (common.bench_database: the embedded Postgres under
.pilot/bench-postgres unless BENCH_DATABASE_URL is set), backfills a group of 6 products
(main + 5 competitors) with `--days` days of daily history from the sandbox catalog, then:

1. GET /v1/competitor-groups/{id}/comparison for each window: cold (the cached answer is
   deleted before every request, so each one runs the query and the domain) and warm.
2. the same comparison in process, split into the one SQL round trip and the domain work.
3. POST .../reports -> GET until done, with the OpenAI stand-in: a model call (cache miss)
   and a repeat with the same inputs (cache hit).

Prints the figures; it is not a test.
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

from common import bench_database, local_stack, percentile


def line(label: str, values: list[float]) -> str:
    return (f"  {label:<44} n={len(values):<4} p50={percentile(values, 50):8.2f} ms"
            f"  p99={percentile(values, 99):8.2f} ms"
            f"  mean={statistics.fmean(values):8.2f} ms")


def timed(fn: Callable[[], Any], n: int, before: Callable[[], Any] | None = None
          ) -> list[float]:
    out = []
    for _ in range(n):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        out.append((time.perf_counter() - started) * 1000)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--n", type=int, default=200, help="requests per measurement")
    parser.add_argument("--reports", type=int, default=5, help="reports per measurement")
    args = parser.parse_args()

    import httpx
    from sqlalchemy import text

    from amazon_pilot.platform.db import transaction

    # the bench sends more than a plan allows in a minute: lift the limits for it
    limits = {"RATE_LIMIT_IP": "1000000", "RATE_LIMIT_ENTERPRISE": "1000000"}
    with bench_database() as database_url, local_stack(database_url, extra_env=limits) as stack:
        print(f"stack up in {stack.timings.get('http', 0):.1f} s at {stack.url}")
        from amazon_pilot.accounts.service import create_user
        from amazon_pilot.tracking.store import upsert_product
        from pilot_dev.standins.apify_catalog import demo_asins
        from pilot_dev.timetravel import backfill

        asins = demo_asins("wireless earbuds", 6)
        with transaction() as conn:
            ids = [upsert_product(conn, a, "com")[0] for a in asins]
        started = time.perf_counter()
        stored = backfill(ids, args.days)
        with transaction() as conn:
            rows = conn.execute(text("SELECT count(*) FROM snapshots WHERE product_id ="
                                     " ANY(:ids)"), {"ids": ids}).scalar_one()
        print(f"backfilled {stored} snapshots ({rows} stored) for 6 products x {args.days}"
              f" days in {time.perf_counter() - started:.1f} s")

        email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
        create_user(email, "Bench-pass-2026", role="seller", plan="enterprise")
        with httpx.Client(base_url=stack.url, timeout=60) as api:
            token = api.post("/v1/auth/login", json={"email": email,
                                                     "password": "Bench-pass-2026"}
                             ).json()["access_token"]
            headers = {"Authorization": f"Bearer {token}"}
            created = api.post("/v1/competitor-groups", headers=headers, json={
                "name": "bench", "main": asins[0], "competitors": asins[1:]})
            assert created.status_code == 201, created.text
            gid = created.json()["id"]

            def drop_cache() -> None:
                with transaction() as conn:
                    conn.execute(text("DELETE FROM cache_entries WHERE key LIKE"
                                      " 'comparison:%'"))

            print("\ncomparison through the local runtime (HTTP -> gateway -> Lambda handler):")
            for window in ("7d", "30d", "90d"):
                path = f"/v1/competitor-groups/{gid}/comparison?window={window}"

                def get(path: str = path) -> None:
                    response = api.get(path, headers=headers)
                    assert response.status_code == 200, response.text

                get()  # warm the function
                cold = timed(get, args.n, drop_cache)
                warm = timed(get, args.n)
                print(line(f"window={window} cold (query + domain)", cold))
                print(line(f"window={window} warm (cached answer)", warm))
            body = api.get(f"/v1/competitor-groups/{gid}/comparison?window=90d",
                           headers=headers).json()
            print(f"  90d answer: {len(body['comparison']['competitors'])} competitors,"
                  f" main history points {body['comparison']['main']['history_points']},"
                  f" {len(httpx.Response(200, json=body).content) // 1024} KiB")

            print("\nin process (no HTTP):")
            from amazon_pilot.competitors import store as cdb
            from amazon_pilot.domain.comparison import compare_group

            with transaction() as conn:
                products = cdb.group_products(conn, [uuid.UUID(gid)])[uuid.UUID(gid)]
            for days in (30, 90, 365):
                views_holder: list[Any] = []

                def load(days: int = days, holder: list[Any] = views_holder) -> None:
                    with transaction() as conn:
                        holder.append(cdb.load_views(conn, products, days))

                sql = timed(load, args.n)
                views = views_holder[-1]
                def compare(days: int = days, views: Any = views) -> None:
                    compare_group(views.main, views.competitors, days)

                domain = timed(compare, args.n)
                print(line(f"{days}d: one SQL round trip -> ProductViews", sql))
                print(line(f"{days}d: compare_group (domain)", domain))

            print("\nreport end to end (POST -> low queue -> worker -> GET done), "
                  "OpenAI stand-in:")
            openai = stack.standins["openai"]
            for label, clear in (("model call (cache miss)", True),
                                 ("same inputs (cache hit)", False)):
                times: list[float] = []
                calls_before = openai.request_count
                for _ in range(args.reports):
                    if clear:
                        with transaction() as conn:
                            conn.execute(text("DELETE FROM cache_entries WHERE key LIKE"
                                              " 'llm:report:%'"))
                    started = time.perf_counter()
                    rid = api.post(f"/v1/competitor-groups/{gid}/reports", headers=headers,
                                   json={"window": "30d"}).json()["id"]
                    while True:
                        report = api.get(f"/v1/competitor-groups/{gid}/reports/{rid}",
                                         headers=headers).json()
                        if report["status"] in ("done", "failed"):
                            break
                        time.sleep(0.01)
                    times.append((time.perf_counter() - started) * 1000)
                    assert report["status"] == "done", report
                print(line(label, times) + f"  generated_by={report['generated_by']}"
                      f" cache={report['cache']} model calls="
                      f"{openai.request_count - calls_before}")


if __name__ == "__main__":
    main()
