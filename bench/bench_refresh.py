"""Issue 18: the daily refresh end to end, through `pilot run` and its stand-ins.

N products (known to the stand-in catalog) tracked by one seller, all due; the
DailyRefresh schedule is fired through the runtime's control surface and the bench
waits until every product has the run's observation. Printed per size and per worker
count: planning seconds (the fire call: due products paged, outbox rows written,
SendMessageBatch relay), end-to-end snapshots/s, peak RSS of `pilot run` and its
children; where the time went (the fetch runs' step metrics, summed over runs, read
from the workers' EMF lines in the embedded CloudWatch Logs: actor run wait, dataset
read, store, notify) and the CPU seconds of each process kind (the runtime with its
stand-ins and embedded AWS, the worker processes, the database's backends); next to the
references measured in the same run: a bare COPY of N snapshot rows into the same
table, and bare SendMessageBatch calls to the same kind of queue.

    .venv/bin/python bench/bench_refresh.py                  (1,000 products, 1 and 2 workers)
    .venv/bin/python bench/bench_refresh.py --products 100000 --workers 2
    .venv/bin/python bench/bench_refresh.py --curve          (1k, 10k, 100k)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from common import ROOT, VENV_BIN, bench_database, free_port, goal


def catalog_asins(n: int) -> list[str]:
    from pilot_dev.standins.apify_catalog import CATEGORIES, demo_asins

    per = n // len(CATEGORIES) + 1
    asins: list[str] = []
    for category in CATEGORIES:
        asins.extend(demo_asins(category, per))
    return sorted(set(asins))[:n]


def seed(url: str, n: int) -> None:
    """One enterprise seller tracking n products observed two days ago (all due)."""
    import psycopg

    asins = catalog_asins(n)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("TRUNCATE products, tracked_products, snapshots, scrape_runs, outbox,"
                     " processed_messages, alerts CASCADE")
        conn.execute("INSERT INTO users (email, password_hash, plan) VALUES"
                     " ('refresh@example.com', 'x', 'enterprise') ON CONFLICT DO NOTHING")
        conn.execute(
            "INSERT INTO products (asin, marketplace, latest_captured_at)"
            " SELECT a, 'com', now() - interval '2 days' FROM unnest(%s::text[]) AS a",
            (asins,))
        conn.execute(
            "INSERT INTO tracked_products (user_id, product_id)"
            " SELECT u.id, p.id FROM users u, products p"
            " WHERE u.email = 'refresh@example.com'")
        conn.execute("ANALYZE products; ANALYZE tracked_products")


def tree_rss(pid: int, by_process: dict[int, int] | None = None) -> int:
    """RSS of `pilot run` and its children, summed; each process's own in `by_process`."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            rss = proc.memory_info().rss
            total += rss
            if by_process is not None:
                by_process[proc.pid] = rss
    return total


def tree_high_water(pid: int) -> dict[int, int]:
    """Each process's own peak RSS so far (the kernel's VmHWM, bytes): exact, where sampling
    every 0.25 s can miss a short peak (a 1k refresh lasts about a second)."""
    import psutil

    out: dict[int, int] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(OSError), open(f"/proc/{proc.pid}/status") as status:
                for line in status:
                    if line.startswith("VmHWM:"):
                        out[proc.pid] = int(line.split()[1]) * 1024
    return out


def process_cpu(pid: int, database: str) -> dict[int, tuple[str, float]]:
    """CPU seconds (user + system) so far of `pilot run` ("runtime"), its worker
    processes ("workers") and the database's backends serving `database` ("postgres")."""
    import psutil

    out: dict[int, tuple[str, float]] = {}
    with contextlib.suppress(psutil.NoSuchProcess):
        root = psutil.Process(pid)
        for role, proc in [("runtime", root),
                           *(("workers", c) for c in root.children(recursive=True))]:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = proc.cpu_times()
                out[proc.pid] = (role, times.user + times.system)
    for proc in psutil.process_iter(["name", "cmdline"]):
        with contextlib.suppress(psutil.Error):
            if database in " ".join(proc.info["cmdline"] or ()) and proc.pid not in out:
                times = proc.cpu_times()
                out[proc.pid] = ("postgres", times.user + times.system)
    return out


class PeakRss(threading.Thread):
    """Peak RSS of the `pilot run` tree, and each process's CPU as last seen (a database
    backend that ends keeps the CPU it had at the last sample)."""

    def __init__(self, pid: int, database: str) -> None:
        super().__init__(daemon=True)
        self.pid, self.database = pid, database
        self.peak, self._stop_at = 0, threading.Event()
        self.peak_of: dict[int, int] = {}  # each process's RSS when the tree's peaked
        self.before = process_cpu(pid, database)
        self.seen = dict(self.before)

    def run(self) -> None:
        while not self._stop_at.wait(0.25):
            now: dict[int, int] = {}
            total = tree_rss(self.pid, now)
            if total > self.peak:
                self.peak, self.peak_of = total, now
            self.seen.update(process_cpu(self.pid, self.database))

    def stop(self) -> int:
        self._stop_at.set()
        self.join()
        self.seen.update(process_cpu(self.pid, self.database))
        return self.peak

    def cpu_by_role(self) -> dict[str, float]:
        spent: dict[str, float] = {"runtime": 0.0, "workers": 0.0, "postgres": 0.0}
        for pid, (role, seconds) in self.seen.items():
            spent[role] += seconds - self.before.get(pid, (role, 0.0))[1]
        return spent


STEP_METRICS = {"ActorWaitTime": "actor_s", "DatasetReadTime": "read_s",
                "FetchStoreTime": "store_s", "FetchNotifyTime": "notify_s"}


def step_seconds(state: dict[str, Any]) -> dict[str, float]:
    """The fetch runs' step metrics, summed: read from the EMF lines the worker functions
    shipped to the runtime's CloudWatch Logs (as CloudWatch would extract them)."""
    import boto3

    creds = state.get("operator") or {}
    logs = boto3.client(
        "logs", endpoint_url=state["aws_endpoint_url"], region_name=state["region"],
        aws_access_key_id=creds.get("AWS_ACCESS_KEY_ID", "testing"),
        aws_secret_access_key=creds.get("AWS_SECRET_ACCESS_KEY", "testing"),
        aws_session_token=creds.get("AWS_SESSION_TOKEN"))
    totals = dict.fromkeys(STEP_METRICS.values(), 0.0)
    for name in state["functions"].values():
        kwargs: dict[str, Any] = {"logGroupName": f"/aws/lambda/{name}"}
        while True:
            try:
                page = logs.filter_log_events(**kwargs)
            except logs.exceptions.ResourceNotFoundException:
                break
            for event in page.get("events", []):
                line = event["message"]
                if '"_aws"' not in line:
                    continue
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    for metric, key in STEP_METRICS.items():
                        value = record.get(metric) or 0  # a list when flushed several times
                        totals[key] += sum(value if isinstance(value, list) else [value]) / 1000
            if not page.get("nextToken"):
                break
            kwargs["nextToken"] = page["nextToken"]
    return totals


def start_pilot(url: str, workdir: Path, workers: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("AWS_ENDPOINT_URL", "APIFY_TOKEN", "APIFY_REPLAY", "TEST_DATABASE_URL")}
    env.update({"DATABASE_URL": url, "PILOT_STATE_FILE": str(workdir / "stack.json"),
                "POWERTOOLS_LOG_LEVEL": "WARNING", "LOG_LEVEL": "WARNING",
                "JWT_SECRET": "bench-refresh-key-" + "x" * 32})
    # one process serves the API: a refresh hardly calls it, and more HTTP processes
    # would only add their memory and cold starts to the figures
    args = [str(VENV_BIN / "pilot"), "run", "--port", str(port), "--no-schedules",
            "--workers", str(workers), "--http-processes", "1"]
    log = (workdir / "pilot-run.log").open("ab")
    process = subprocess.Popen(args, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    log.close()
    import httpx

    deadline = time.monotonic() + 300  # a loaded machine starts it in minutes
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("pilot run exited:\n"
                               + (workdir / "pilot-run.log").read_text()[-3000:])
        with contextlib.suppress(httpx.HTTPError, OSError, ValueError):
            # the API answers before the workers start; the state file comes once all is up
            if (httpx.get(f"http://127.0.0.1:{port}/v1/health", timeout=5).status_code < 500
                    and json.loads((workdir / "stack.json").read_text())["pid"] == process.pid):
                return process, port
        time.sleep(0.3)
    raise RuntimeError("pilot run did not answer within 300 s")


def stop_pilot(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(60)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def refresh_once(url: str, n: int, workers: int) -> dict[str, float]:
    import httpx
    import psycopg

    seed(url, n)
    with tempfile.TemporaryDirectory(prefix="bench-refresh-") as tmp:
        workdir = Path(tmp)
        process, port = start_pilot(url, workdir, workers)
        try:
            idle = tree_rss(process.pid)
            peak = PeakRss(process.pid, urlsplit(url).path.lstrip("/"))
            peak.start()
            state = json.loads((workdir / "stack.json").read_text())
            token = Path(state["operator_token_file"]).read_text().strip()
            started = time.perf_counter()
            answer = httpx.post(f"http://127.0.0.1:{port}/_pilot/schedules/DailyRefresh/fire",
                                headers={"X-Pilot-Operator-Token": token},
                                timeout=600).json()
            planned = time.perf_counter() - started
            result = answer.get("result", answer)
            captured_at = result["captured_at"]
            done = 0
            with psycopg.connect(url, autocommit=True) as conn:
                deadline = time.monotonic() + max(300, n / 50)
                while time.monotonic() < deadline:
                    done = conn.execute("SELECT count(*) FROM products WHERE"
                                        " latest_captured_at >= %s", (captured_at,)).fetchone()[0]
                    if done >= n:
                        break
                    time.sleep(0.2)
                elapsed = time.perf_counter() - started
                snapshots = conn.execute("SELECT count(*) FROM snapshots WHERE captured_at = %s",
                                         (captured_at,)).fetchone()[0]
                runs = conn.execute("SELECT count(*) FROM scrape_runs WHERE trigger ="
                                    " 'schedule'").fetchone()[0]
            rss = peak.stop()
            high_water = tree_high_water(process.pid)
            time.sleep(1.0)  # the workers' log shippers send every 0.2 s
            try:
                steps = step_seconds(state)
            except Exception as exc:  # the main figures stand without the split
                print(f"  !! could not read the step metrics: {exc!r}")
                steps = dict.fromkeys(STEP_METRICS.values(), 0.0)
        finally:
            stop_pilot(process)
    if done < n:
        print(f"  !! only {done} of {n} products refreshed before the deadline")
    return {"products": n, "workers": workers, "planning_s": planned, "total_s": elapsed,
            "rate": snapshots / elapsed, "snapshots": snapshots, "runs": runs,
            "batches": result.get("batches", 0), "idle_rss_mb": idle / 2**20,
            "peak_rss_mb": rss / 2**20, **steps,
            "hwm_runtime_mb": high_water.get(process.pid, 0) / 2**20,
            "hwm_children_mb": sum(v for p, v in high_water.items() if p != process.pid) / 2**20,
            **{f"cpu_{role}_s": v for role, v in peak.cpu_by_role().items()}}


def bare_copy_rate(url: str, n: int) -> float:
    """Reference: n snapshot rows (the shape a refresh writes) COPYed into snapshots."""
    import psycopg

    at = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) + timedelta(days=3)
    with psycopg.connect(url) as conn:
        ids = [r[0] for r in conn.execute("SELECT id FROM products ORDER BY id LIMIT %s", (n,))]
        conn.execute("SELECT ensure_snapshot_partitions(%s::date, %s::date)", (at, at))
        details = json.dumps({"brand": "Bench", "bullet_points": ["a", "b", "c"],
                              "image_urls": ["https://example.com/i.jpg"]})
        rows = [(pid, at, True, 19.99, 24.99, "USD", 19.99, "Seller", "in_stock", 12, 4.4,
                 1234, 5678, "Kitchen", 12, '[{"rank": 12, "category": "Pans"}]',
                 "A product title", "h" * 16, 7, details, "sandbox") for pid in ids]
        started = time.perf_counter()
        with conn.cursor() as cur, cur.copy(
                "COPY snapshots (product_id, captured_at, found, price, list_price, currency,"
                " buy_box_price, buy_box_seller, availability, stock_count, rating,"
                " review_count, bsr_rank, bsr_category, subcategory_bsr, subcategory_ranks,"
                " title, content_hash, image_count, details, data_source) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        elapsed = time.perf_counter() - started
        conn.rollback()
    return len(rows) / elapsed


def bare_sqs_rate(messages: int = 2000) -> float:
    """Reference: SendMessageBatch (10 a call) of refresh-sized bodies to a moto queue
    served over HTTP, as `pilot run`'s embedded endpoint serves it."""
    import logging

    import boto3
    from moto.server import ThreadedMotoServer

    from pilot_dev.runtime.moto_sqs import install

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    install()  # as `pilot run` serves it
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        sqs = boto3.client("sqs", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                           aws_access_key_id="testing", aws_secret_access_key="testing")
        queue = sqs.create_queue(QueueName="bench-refresh")["QueueUrl"]
        body = json.dumps({"type": "fetch_products", "payload": {
            "product_ids": list(range(1000, 1050)), "trigger": "schedule"}})
        started = time.perf_counter()
        for start in range(0, messages, 10):
            sqs.send_message_batch(QueueUrl=queue, Entries=[
                {"Id": str(i), "MessageBody": body} for i in range(start, start + 10)])
        return messages / (time.perf_counter() - started)
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int,
                        default=int(os.environ.get("BENCH_PRODUCTS", "1000")))
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    parser.add_argument("--curve", action="store_true", help="1k, 10k and 100k products")
    args = parser.parse_args()
    sizes = [1000, 10_000, 100_000] if args.curve else [args.products]
    with bench_database() as url:
        results = [refresh_once(url, n, w) for n in sizes for w in args.workers]
        copy_rate = bare_copy_rate(url, max(sizes))
    sqs_rate = bare_sqs_rate()
    print("\nDaily refresh through `pilot run` (stand-in actor, embedded SQS, one seller"
          " tracks every product)")
    print(f"  {'products':>9} {'workers':>7} {'planning':>9} {'batches':>7} {'total':>8}"
          f" {'snapshots/s':>11} {'idle RSS':>9} {'peak RSS':>9} {'peaks: runtime + workers':>25}")
    for r in results:
        print(f"  {r['products']:9.0f} {r['workers']:7.0f} {r['planning_s']:8.2f}s"
              f" {r['batches']:7.0f} {r['total_s']:7.1f}s {r['rate']:11.0f}"
              f" {r['idle_rss_mb']:7.0f}MB {r['peak_rss_mb']:7.0f}MB"
              f" {r['hwm_runtime_mb']:9.0f} + {r['hwm_children_mb']:4.0f} ="
              f" {r['hwm_runtime_mb'] + r['hwm_children_mb']:4.0f} MB")
    print("\n  where the time went: the fetch runs' steps, summed over runs (they overlap:"
          " several runs at once), and CPU seconds per process kind")
    print(f"  {'products':>9} {'workers':>7} {'planning':>9} {'actor wait':>10} {'read':>7}"
          f" {'store':>7} {'notify':>7} | {'CPU runtime':>11} {'workers':>8} {'postgres':>8}"
          f" {'CPU/snapshot':>12} {'(runtime/workers/postgres)':>26}")
    for r in results:
        per = {role: r[f"cpu_{role}_s"] / max(1, r["snapshots"]) * 1e6
               for role in ("runtime", "workers", "postgres")}
        print(f"  {r['products']:9.0f} {r['workers']:7.0f} {r['planning_s']:8.2f}s"
              f" {r['actor_s']:9.1f}s {r['read_s']:6.1f}s {r['store_s']:6.1f}s"
              f" {r['notify_s']:6.1f}s | {r['cpu_runtime_s']:10.1f}s {r['cpu_workers_s']:7.1f}s"
              f" {r['cpu_postgres_s']:7.1f}s {sum(per.values()):9.0f} µs"
              f" {per['runtime']:10.0f} /{per['workers']:4.0f} /{per['postgres']:4.0f} µs")
    print("  targets: planning <= 5 s at 100k and linear; >= 2,000 snapshots/s end to end;"
          " peak RSS flat in the number of products")
    print(f"  reference: bare COPY of {max(sizes)} snapshot rows   {copy_rate:9.0f} rows/s")
    print(f"  reference: bare SendMessageBatch to moto over HTTP {sqs_rate:9.0f} messages/s"
          " (planning sends one message per actor batch)")
    record_goals(results, copy_rate)


def record_goals(results: list[dict[str, float]], copy_rate: float) -> None:
    """The issue's refresh goals, at the largest size run (for make bench's table)."""
    largest = max(r["products"] for r in results)
    at_largest = [r for r in results if r["products"] == largest]
    best = max(at_largest, key=lambda r: r["rate"])
    size = f"{largest:,.0f} products"
    planning = min(r["planning_s"] for r in at_largest)
    # linear: 5 s for 100k is 50 µs a product (half a second allowed for the fixed part)
    allowed = 5 * largest / 100_000 + (0 if largest >= 100_000 else 0.5)
    goal(f"refresh planning, {size}", planning, "s", "<= 5 s at 100k", planning <= allowed,
         ratio=f"{planning / largest * 1e6:.0f} µs a product")
    goal(f"refresh end to end, {size}, {best['workers']:.0f} worker(s)", best["rate"],
         "snapshots/s", ">= 2,000", best["rate"] >= 2000,
         reference=f"bare COPY {copy_rate:,.0f} rows/s",
         ratio=f"{best['rate'] / copy_rate * 100:.1f}% of bare COPY")
    smallest = min(r["products"] for r in results)
    if smallest < largest:
        peaks = {r["products"]: r["peak_rss_mb"] for r in results}
        growth = peaks[largest] / peaks[smallest]
        goal(f"refresh peak RSS, {smallest:,.0f} -> {largest:,.0f} products",
             peaks[largest], "MB", "flat (x1)", growth <= 1.15,
             reference=f"{peaks[smallest]:.0f} MB at {smallest:,.0f}",
             ratio=f"x{growth:.2f}")


if __name__ == "__main__":
    main()
