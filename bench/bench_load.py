"""Issue 18 figures: the local runtime under concurrent load, next to a bare uvicorn app.

    .venv/bin/python bench/bench_load.py            # 32 connections, 8 s per server
    .venv/bin/python bench/bench_load.py --quick    # 3 s per server

The load generator is a separate process (asyncio, raw keep-alive HTTP/1.1: one request
in flight per connection, a fresh one as soon as the answer is read), so the servers do
not share its interpreter. Printed for each server: requests per second, p50 and p99,
and the runtime's ratio to the bare app measured in the same run (goal: p99 within 3x).

1. GET /v1/health/live with 32 connections: `pilot run` against bare uvicorn + a minimal
   FastAPI app (the HTTP floor on this machine), in turn for three rounds; the figure is
   the median of the rounds' p99 ratios.
2. GET /v1/products for a seller with 500 tracked products (30 days of snapshots a
   product), 32 connections. "Today's rate" of "list products >= 2x today's rate" is the
   code as it was when issue 18 was filed: the parent of the commit that added migration
   0017, exported from git (`git archive`) and run as ITS `pilot run` (its shared/,
   devtools/ and functions/ first on PYTHONPATH) on a database of its own made by its own
   migrations and seeded with the same seller; it and today's `pilot run` are measured in
   turn for three rounds, and the goal's figure is the median of the rounds' ratios;
   each round also prints the CPU a request cost (the pilot run process from /proc, its
   database's Postgres backends from pg_stat_activity), steadier than wall rates on a
   shared machine. `--compare REV` adds REV's tree to the rounds (an A/B of the code).
   Printed once next to them: bare uvicorn running the pre-issue list SQL (sort
   everything, OFFSET, list-plus-count joined) on copies of the list's tables with only
   the pre-issue indexes (schema pre_issue18) and on today's tables: no auth, no runtime,
   a floor. A clone without that commit (shallow) falls back to the pre_issue18 proxy as
   the reference, and says so.
3. GET /v1/products for a seller with 5,000 tracked products, default page: p50 against
   the goal (< 20 ms).

Each is measured with `pilot run --workers N --http-processes N` for every N of
--workers (default 1 and 2: the queue consumers in N processes of their own, the API
served by N processes, pilot run's included, and a request's CPU counts all N), the
references again next to each.

Figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (
    ROOT,
    free_port,
    pilot_run,
    stop_with_this_process,
    wait_http,
    wait_serving,
)
from common import goal as record_goal

CONNECTIONS = 32
P99_GOAL = 3.0
# A 3-8 s window's p99 on a shared machine moves 3x from one window to the next (bare
# uvicorn: 28-88 ms in four rounds of one run), so the ratio is taken per round, the
# two servers in turn, and the median of the rounds' ratios is the figure.
HEALTH_ROUNDS = 3
LIST_P50_GOAL_MS = 20.0
LIST_ROUNDS = 3  # the pre-issue tree's pilot run and today's, in turn
PASSWORD = "Load-bench-2026"
# Both pilot runs (today's and the pre-issue tree's): no rate limit in the way, quiet logs.
SERVE_ENV = {"RATE_LIMIT_ENTERPRISE": "100000000", "RATE_LIMIT_IP": "100000000",
             "RATE_LIMIT_IP_AUTHENTICATED": "100000000", "POWERTOOLS_LOG_LEVEL": "WARNING",
             "LOG_LEVEL": "WARNING"}

# The load generator: argv = port, path, connections, seconds, auth header or "".
LOADGEN = textwrap.dedent(r"""
    import asyncio, json, sys, time
    port, path, auth = sys.argv[1], sys.argv[2], sys.argv[5]
    conns, seconds = int(sys.argv[3]), float(sys.argv[4])
    extra = f"authorization: {auth}\r\n" if auth else ""
    head = f"GET {path} HTTP/1.1\r\nhost: 127.0.0.1\r\n{extra}\r\n"
    request = head.encode()
    samples, errors, answered = [], 0, 0

    async def one(stop):
        global errors, answered
        reader, writer = await asyncio.open_connection("127.0.0.1", int(port))
        while time.perf_counter() < stop:
            t0 = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            await reader.readexactly(length)
            samples.append(time.perf_counter() - t0)
            answered += 1  # the warm-up's too: the CPU read around a load counts them
            if not status.startswith(b"HTTP/1.1 2"):
                errors += 1
        writer.close()

    async def main():
        warm = time.perf_counter() + min(1.0, seconds / 4)
        await asyncio.gather(*(one(warm) for _ in range(conns)))
        samples.clear()
        started = time.perf_counter()
        await asyncio.gather(*(one(started + seconds) for _ in range(conns)))
        elapsed = time.perf_counter() - started
        samples.sort()
        n = len(samples)
        print(json.dumps({"rps": n / elapsed, "n": n, "errors": errors, "all": answered,
                          "p50": samples[n // 2] * 1000,
                          "p99": samples[min(n - 1, round(0.99 * (n - 1)))] * 1000}))

    asyncio.run(main())
""")

BARE_LIVE = textwrap.dedent("""
    import sys, uvicorn
    from fastapi import FastAPI
    app = FastAPI()
    @app.get("/v1/health/live")
    async def live():
        return {"status": "ok"}
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                http="httptools", loop="uvloop", lifespan="off", access_log=False)
""")

# The list query as it was before issue 18 (tracking/store.py at 8f7cb5d^: every column of
# TRACKED_SELECT, sort the seller's rows, OFFSET, a count joined to products), in a bare
# app (eight psycopg connections, no auth). argv = port, url, user id, schema: the schema
# is searched first, so the same SQL reads either today's tables or PRE_ISSUE's copies.
BARE_LIST_OLD = textwrap.dedent("""
    import contextlib, queue, sys, uvicorn
    import psycopg
    from fastapi import FastAPI
    port, url, user, schema = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
    idle = queue.Queue()
    for _ in range(8):
        idle.put(psycopg.connect(url, autocommit=True,
                                 options=f"-c search_path={schema},public"))

    class Pool:  # eight connections, lent out in turn
        @contextlib.contextmanager
        def connection(self):
            conn = idle.get()
            try:
                yield conn
            finally:
                idle.put(conn)

    pool = Pool()
    SELECT = ("SELECT t.id, t.user_id, t.alias, t.thresholds, t.is_paused, t.created_at,"
              " t.updated_at, p.id AS product_id, p.asin, p.marketplace, p.title, p.brand,"
              " p.main_image_url, p.latest, p.latest_captured_at, p.last_fetch_status,"
              " p.data_source, p.last_refresh_requested_at, p.last_fetch_error,"
              " p.last_fetch_failed_at FROM tracked_products t"
              " JOIN products p ON p.id = t.product_id WHERE t.user_id = %s"
              " ORDER BY t.created_at ASC NULLS LAST, t.id LIMIT 50 OFFSET 0")
    COUNT = ("SELECT count(*) FROM tracked_products t JOIN products p"
             " ON p.id = t.product_id WHERE t.user_id = %s")
    app = FastAPI()
    @app.get("/v1/products")
    def products():
        with pool.connection() as conn:
            rows = conn.execute(SELECT, (user,)).fetchall()
            total = conn.execute(COUNT, (user,)).fetchone()[0]
        return {"items": [{"id": str(r[0]), "asin": r[8], "latest": r[13]} for r in rows],
                "total": total}
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning",
                http="httptools", loop="uvloop", lifespan="off", access_log=False)
""")

# The list's tables as they were before issue 18, copied into a schema of their own with
# today's rows: everything of today's but migration 0017's (user_id, created_at, id) index
# and migration 0018's cadence columns. products.latest is older (migration 0001): the
# pre-issue list read it too.
PRE_ISSUE = "pre_issue18"
ISSUE_18_INDEX = "(user_id, created_at, id) INCLUDE (product_id, is_paused)"
ISSUE_18_COLUMNS = ("refresh_every", "moved_at", "budget_stretched")


def copy_pre_issue_tables(url: str) -> list[str]:
    """Build PRE_ISSUE's products and tracked_products; their index definitions."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {PRE_ISSUE}")
        for table in ("products", "tracked_products"):
            conn.execute(f"CREATE TABLE {PRE_ISSUE}.{table}"
                         f" (LIKE public.{table} INCLUDING ALL)")
        conn.execute(f"ALTER TABLE {PRE_ISSUE}.tracked_products "
                     + ", ".join(f"DROP COLUMN {c}" for c in ISSUE_18_COLUMNS))
        added = [name for name, definition in conn.execute(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = %s",
            (PRE_ISSUE,)) if definition.endswith(ISSUE_18_INDEX)]
        assert len(added) == 1, f"expected one copy of migration 0017's index: {added}"
        conn.execute(f"DROP INDEX {PRE_ISSUE}.{added[0]}")
        for table in ("products", "tracked_products"):
            columns = ", ".join(name for (name,) in conn.execute(
                "SELECT attname FROM pg_attribute WHERE attrelid = %s::regclass"
                " AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
                (f"{PRE_ISSUE}.{table}",)))
            conn.execute(f"INSERT INTO {PRE_ISSUE}.{table} ({columns})"
                         f" SELECT {columns} FROM public.{table}")
        # both sets vacuumed: neither count leans on a visibility map the other lacks
        conn.execute(f"VACUUM ANALYZE {PRE_ISSUE}.products, {PRE_ISSUE}.tracked_products,"
                     " public.products, public.tracked_products")
        return [definition for (definition,) in conn.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s ORDER BY indexname",
            (PRE_ISSUE,))]


# "Today's rate" of the list goal: the code as it was when issue 18 was filed, the parent
# of the commit that added migration 0017 (issue 18's first; the issue's other first
# commits fork from the same parent).
ISSUE_18_FIRST_FILE = "shared/amazon_pilot/migrations/0017_product_list_index.sql"

# Run with the pre-issue tree first on PYTHONPATH (ahead of the venv's editable installs):
# its migrations on its database, its seller; says which code it imported.
PRE_ISSUE_SETUP = textwrap.dedent("""
    import json, sys
    import amazon_pilot, pilot_dev
    from amazon_pilot.accounts.service import create_user
    from amazon_pilot.platform.migrate import apply_migrations
    url, email, password = sys.argv[1:4]
    applied = apply_migrations(url)
    user = create_user(email, password, role="seller", plan="enterprise")
    print(json.dumps({"amazon_pilot": amazon_pilot.__file__, "pilot_dev": pilot_dev.__file__,
                      "migrations": len(applied), "user": str(user.id)}))
""")
PRE_ISSUE_PILOT = "import sys; from pilot_dev.cli import main; sys.exit(main(sys.argv[1:]))"


@dataclass
class Reference:
    """The pre-issue tree's `pilot run`, serving its own database."""

    commit: str
    port: int
    auth: str
    code: str  # where its amazon_pilot was imported from
    pid: int  # its pilot run's process (CPU read from /proc)
    database: str  # its Postgres backends' database (their CPU too)


def pre_issue_commit() -> tuple[str | None, str]:
    """The commit before issue 18's first, or None and why it is not available."""
    git = ["git", "-C", str(ROOT)]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*git, *args], capture_output=True, text=True)

    shallow = run("rev-parse", "--is-shallow-repository")
    if shallow.returncode != 0:
        return None, "not a git checkout"
    if shallow.stdout.strip() == "true":
        return None, "a shallow clone, without the history"
    added = run("log", "--diff-filter=A", "--format=%H", "--", ISSUE_18_FIRST_FILE).stdout.split()
    if not added:
        return None, "no commit in this clone adds migration 0017"
    first = added[-1]
    parent = run("rev-parse", "--verify", "--quiet", first + "^")
    if parent.returncode != 0:
        return None, f"the parent of {first[:7]} is not in this clone"
    return parent.stdout.strip(), f"{first[:7]}^"


@contextmanager
def pre_issue_stack(url: str, email: str, products: int,
                    prefix: str) -> Iterator[Reference | None]:
    """The pre-issue tree's `pilot run` (exported_stack); None when the clone lacks it."""
    commit, why = pre_issue_commit()
    if commit is None:
        print(f"the code before issue 18 is unavailable ({why}): the list goal's reference"
              f" falls back to the PROXY (bare uvicorn, pre-issue SQL, schema {PRE_ISSUE})")
        yield None
        return
    with exported_stack(url, commit, why, email, products, prefix) as reference:
        yield reference


@contextmanager
def exported_stack(url: str, commit: str, why: str, email: str, products: int,
                   prefix: str) -> Iterator[Reference]:
    """`commit`'s tree exported from git and its `pilot run` on a database of its own
    (next to `url`'s, made by its migrations, dropped afterwards) seeded as today's."""
    import psycopg
    from psycopg import sql

    from pilot_dev.runtime.stack import ensure_database

    plain = url.replace("postgresql+psycopg", "postgresql")
    name = f"pilot_bench_{commit[:8]}_{os.getpid()}"
    with tempfile.TemporaryDirectory(prefix=f"bench-load-{commit[:8]}-") as tmp:
        tree = Path(tmp)
        subprocess.run(f"git -C {shlex.quote(str(ROOT))} archive {commit}"
                       f" | tar -x -C {shlex.quote(tmp)}", shell=True, check=True)
        old_url = ensure_database(plain, name).replace("postgresql:", url.split(":")[0] + ":")
        paths = os.pathsep.join(str(tree / part) for part in ("shared", "devtools", "functions"))
        env = {**os.environ, **SERVE_ENV, "DATABASE_URL": old_url, "PYTHONPATH": paths}
        for local in ("PILOT_STATE_FILE", "PILOT_DATA_DIR", "BENCH_FIGURES"):
            env.pop(local, None)
        process = None
        try:
            done = subprocess.run([sys.executable, "-c", PRE_ISSUE_SETUP, old_url, email,
                                   PASSWORD], cwd=tree, env=env, capture_output=True,
                                  text=True, check=True)
            setup = json.loads(done.stdout.strip().splitlines()[-1])
            if not setup["amazon_pilot"].startswith(tmp):
                raise RuntimeError(f"the exported tree imported this checkout's code: {setup}")
            seed_rows(old_url, setup["user"], products, prefix)
            port = free_port()
            with open(tree / "pilot-run.log", "wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-c", PRE_ISSUE_PILOT, "run", "--port", str(port),
                     "--no-schedules"], cwd=tree, env=env, stdout=log, stderr=log,
                    preexec_fn=stop_with_this_process)
            wait_http(port, timeout=300)
            print(f"the code at {commit[:10]} ({why}), exported to {tmp},"
                  f" {setup['migrations']} of its migrations, amazon_pilot from"
                  f" {setup['amazon_pilot']}")
            yield Reference(commit, port, token(port, email), setup["amazon_pilot"],
                            process.pid, name)
        finally:
            if process is not None:
                process.send_signal(signal.SIGINT)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    process.kill()
            with psycopg.connect(plain, autocommit=True) as conn:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(name)))


@contextmanager
def compared(url: str, rev: str | None) -> Iterator[Reference | None]:
    """--compare REV: that tree's pilot run too (the same seller), or None."""
    if rev is None:
        yield None
        return
    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--verify", rev + "^{commit}"],
                            capture_output=True, text=True, check=True).stdout.strip()
    with exported_stack(url, commit, f"--compare {rev}", "load@example.com", 500,
                        "B0L") as other:
        yield other


def page_shape(port: int, auth: str) -> tuple[int, int, int]:
    """A page's status, item count and total (both servers must answer alike)."""
    import httpx

    answer = httpx.get(f"http://127.0.0.1:{port}/v1/products", timeout=30,
                       headers={"authorization": auth})
    body = answer.json() if answer.status_code == 200 else {}
    return answer.status_code, len(body.get("items", [])), int(body.get("total", -1))


def process_cpu(pid: int) -> float:
    """Seconds of CPU (user + system) a process has used, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serving_cpu(pid: int) -> float:
    """process_cpu of a pilot run and of its HTTP processes (not its queue workers)."""
    total = process_cpu(pid)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        with suppress(OSError):
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            command = (entry / "cmdline").read_bytes()
            if int(stat[1]) == pid and b"runtime.http_processes" in command:
                total += process_cpu(int(entry.name))
    return total


def backends_cpu(admin: str, database: str) -> dict[int, float]:
    """Each Postgres backend of `database`: its CPU seconds so far."""
    import psycopg

    with psycopg.connect(admin, autocommit=True) as conn:
        pids = [pid for (pid,) in conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s", (database,))]
    out = {}
    for pid in pids:
        with suppress(FileNotFoundError, ProcessLookupError):
            out[pid] = process_cpu(pid)
    return out


def load_with_cpu(port: int, seconds: float, auth: str, pid: int, admin: str,
                  database: str) -> dict[str, float]:
    """load() of GET /v1/products, with the CPU a request cost the pilot run process
    and its HTTP processes (HTTP front, runtime and app: not the queue workers) and its
    database's Postgres backends: wall rates move with whatever else runs, CPU time much
    less."""
    before, pg_before = serving_cpu(pid), backends_cpu(admin, database)
    result = load(port, "/v1/products", seconds, auth)
    after, pg_after = serving_cpu(pid), backends_cpu(admin, database)
    answered = max(1.0, result["all"])
    result["cpu_ms"] = (after - before) / answered * 1000
    result["pg_ms"] = sum(cpu - pg_before.get(backend, 0.0)
                          for backend, cpu in pg_after.items()) / answered * 1000
    return result


def load(port: int, path: str, seconds: float, auth: str = "") -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", LOADGEN, str(port), path, str(CONNECTIONS),
                          str(seconds), auth], capture_output=True, text=True, check=True)
    return dict(json.loads(out.stdout))


def serve(code: str, *args: str) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen([sys.executable, "-c", code, str(port), *args], cwd=ROOT,
                               stdout=subprocess.DEVNULL)
    return process, port


def cpu_of(runs: list[dict[str, float]]) -> float:
    """The median CPU a request cost (pilot run process + its Postgres backends), ms."""
    return statistics.median(r["cpu_ms"] + r["pg_ms"] for r in runs)


def line(label: str, r: dict[str, float], ref: dict[str, float] | None = None) -> str:
    text = (f"  {label:<46} {r['rps']:7.0f} req/s   p50 {r['p50']:7.1f} ms"
            f"   p99 {r['p99']:7.1f} ms")
    if r.get("errors"):
        text += f"   ({int(r['errors'])} errors)"
    if "cpu_ms" in r:
        text += f"   CPU a request: pilot run {r['cpu_ms']:.2f} ms + Postgres {r['pg_ms']:.2f} ms"
    if ref is not None:
        text += (f"   rate x{r['rps'] / ref['rps']:.2f}, p99 x{r['p99'] / ref['p99']:.2f}"
                 f" of the reference")
    return text


HISTORY_DAYS = 30  # a seller's month of daily snapshots a product (both databases)


def seed_rows(url: str, user_id: str, products: int, prefix: str) -> None:
    """`products` tracked products holding a latest value, each with HISTORY_DAYS daily
    snapshots, for the seller `user_id`. Plain SQL that both schemas (today's and the
    pre-issue tree's) accept, so both servers read the same rows."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO products (asin, marketplace, title, latest, latest_captured_at,"
            " last_fetch_status) SELECT %s || lpad(i::text, 7, '0'), 'com', 'Product ' || i,"
            " jsonb_build_object('price', 10 + i %% 50, 'bsr_rank', 1000 + i, 'rating', 4.1,"
            " 'review_count', i), now(), 'ok' FROM generate_series(1, %s) i", (prefix, products))
        conn.execute(
            "INSERT INTO tracked_products (user_id, product_id, created_at)"
            " SELECT %s, id, now() - (id || ' seconds')::interval FROM products"
            " WHERE asin LIKE %s", (user_id, prefix + "%"))
        conn.execute(
            "INSERT INTO snapshots (product_id, captured_at, price, bsr_rank, rating,"
            " review_count) SELECT p.id, now() - d * interval '1 day',"
            " 10 + p.id %% 50 + d * 0.25, 1000 + p.id + d * 3, 4.1, greatest(0, p.id - d)"
            " FROM products p, generate_series(1, %s) d WHERE p.asin LIKE %s",
            (HISTORY_DAYS, prefix + "%"))
        conn.execute("VACUUM ANALYZE")


def seed_seller(url: str, products: int, email: str, prefix: str) -> str:
    """A seller of today's code with `products` tracked products; the user id."""
    from amazon_pilot.accounts.service import create_user

    user = create_user(email, PASSWORD, role="seller", plan="enterprise")
    seed_rows(url, str(user.id), products, prefix)
    return str(user.id)


def token(port: int, email: str) -> str:
    import httpx

    answer = httpx.post(f"http://127.0.0.1:{port}/v1/auth/login", timeout=30, json={
        "email": email, "password": PASSWORD}).json()
    return f"Bearer {answer['access_token']}"


def one_run(url: str, workers: int, seconds: float, bare_port: int,
            old_ports: tuple[int, int], reference: Reference | None,
            compare: Reference | None = None) -> None:
    port = free_port()
    admin = url.replace("postgresql+psycopg", "postgresql")
    database = urlsplit(admin).path.lstrip("/")
    # The goals are the default pilot run's (N = the cores: "the local runtime uses the
    # machine"); other Ns are printed beside it for comparison, not recorded as goals.
    default = workers == (os.cpu_count() or 1)

    def goal(*args: Any, **kwargs: Any) -> None:
        if default:
            record_goal(*args, **kwargs)
        else:
            print(f"  (N = {workers}: printed for comparison; the goal is pilot run's default,"
                  f" N = {os.cpu_count() or 1})")

    # N processes for each role: the queue consumers, and the API (this one included)
    with pilot_run(port, {"DATABASE_URL": url, **SERVE_ENV}, workers, workers) as server:
        wait_http(port, timeout=300)  # slow on a loaded machine
        wait_serving(port)
        small, large = token(port, "load@example.com"), token(port, "load5000@example.com")
        print(f"pilot run --workers {workers} --http-processes {workers}: {CONNECTIONS}"
              f" connections, {seconds:.0f} s per server, load generator in its own process"
              " (asyncio, keep-alive):")
        print(f"GET /v1/health/live, {HEALTH_ROUNDS} rounds, the reference and pilot run in"
              " turn")
        ratios = []
        for round_no in range(HEALTH_ROUNDS):
            ref = load(bare_port, "/v1/health/live", seconds)
            ours = load(port, "/v1/health/live", seconds)
            ratios.append(ours["p99"] / ref["p99"])
            print(line(f"{round_no + 1}: bare uvicorn + FastAPI (reference)", ref))
            print(line(f"{round_no + 1}: pilot run (gateway -> Mangum -> FastAPI)", ours, ref))
        ratio = statistics.median(ratios)
        state = "OK" if ratio <= P99_GOAL else "OVER"
        print(f"  p99 goal: within {P99_GOAL:.0f}x of the reference (median of the rounds'"
              f" ratios, x{ratio:.2f}): {state}")
        goal(f"health p99 under {CONNECTIONS} connections, {workers} process(es)", ratio,
             "x bare", f"<= {P99_GOAL:.0f}x", ratio <= P99_GOAL,
             reference=f"bare uvicorn in the same rounds (median of {HEALTH_ROUNDS} rounds'"
             f" ratios; the last round's bare p99 {ref['p99']:.1f} ms)")
        print(f"GET /v1/products, seller with 500 tracked products ({HISTORY_DAYS} days of"
              " snapshots each), default page (50)")
        before = load(old_ports[0], "/v1/products", seconds)
        old_sql_now = load(old_ports[1], "/v1/products", seconds)
        print(line("floor: bare uvicorn, pre-issue SQL on pre-issue tables (PROXY)", before))
        print(line("floor: bare uvicorn, pre-issue SQL on today's tables", old_sql_now))
        floor = (f"floor: bare uvicorn + pre-issue SQL, no auth: {before['rps']:.0f} req/s on"
                 f" the pre-issue indexes (schema {PRE_ISSUE}), {old_sql_now['rps']:.0f} on"
                 " today's")
        name = f"list products, 500-product seller, {workers} process(es)"
        if reference is None:
            ours = load(port, "/v1/products", seconds, small)
            print(line("pilot run, GET /v1/products (auth included)", ours, before))
            met = ours["rps"] >= 2 * before["rps"]
            print(f"  rate goal: >= 2x the PROXY (pre-issue SQL on the pre-issue tables, bare"
                  f" uvicorn; the pre-issue code is unavailable): {'OK' if met else 'UNDER'}")
            goal(name, ours["rps"], "req/s", ">= 2x today's rate", met,
                 reference=f"PROXY, the code before issue 18 unavailable here: {floor}",
                 ratio=f"x{ours['rps'] / before['rps']:.2f}")
        else:
            print(f"  today's rate: the code before issue 18 ({reference.commit[:7]}) under its"
                  f" own pilot run, {LIST_ROUNDS} rounds in turn with today's")
            shapes = page_shape(reference.port, reference.auth), page_shape(port, small)
            print(f"  one page (status, items, total): before issue 18 {shapes[0]},"
                  f" today {shapes[1]}")
            refs, ours_runs, ratios, others = [], [], [], []
            for round_no in range(LIST_ROUNDS):
                ref = load_with_cpu(reference.port, seconds, reference.auth, reference.pid,
                                    admin, reference.database)
                ours = load_with_cpu(port, seconds, small, server.pid, admin, database)
                refs.append(ref)
                ours_runs.append(ours)
                ratios.append(ours["rps"] / ref["rps"])
                print(line(f"{round_no + 1}: pilot run before issue 18 (today's rate)", ref))
                print(line(f"{round_no + 1}: pilot run today", ours, ref))
                if compare is not None:
                    other = load_with_cpu(compare.port, seconds, compare.auth, compare.pid,
                                          admin, compare.database)
                    others.append(other)
                    print(line(f"{round_no + 1}: pilot run at {compare.commit[:7]} (--compare)",
                               other, ref))
            if compare is not None:
                mine = statistics.median(r["rps"] for r in ours_runs)
                print(f"  this checkout against {compare.commit[:7]}: rate"
                      f" x{mine / statistics.median(r['rps'] for r in others):.2f}, CPU a"
                      f" request x{cpu_of(ours_runs) / cpu_of(others):.2f}"
                      " (medians of the rounds)")
            print(f"  CPU a request (pilot run + Postgres, medians): before issue 18"
                  f" {cpu_of(refs):.2f} ms, today {cpu_of(ours_runs):.2f} ms: today's rate on"
                  f" CPU alone x{cpu_of(refs) / cpu_of(ours_runs):.2f} of the reference")
            ratio = statistics.median(ratios)
            ref_rps = statistics.median(r["rps"] for r in refs)
            our_rps = statistics.median(r["rps"] for r in ours_runs)
            met = ratio >= 2
            print(f"  rate goal: >= 2x the code before issue 18 (median of the rounds' ratios,"
                  f" x{ratio:.2f}; {our_rps:.0f} against {ref_rps:.0f} req/s):"
                  f" {'OK' if met else 'UNDER'}")
            print(f"  today against the floor (bare, pre-issue SQL on pre-issue tables):"
                  f" x{our_rps / before['rps']:.2f}")
            goal(name, our_rps, "req/s", ">= 2x today's rate", met,
                 reference=f"today's rate = the code before issue 18 ({reference.commit[:7]}),"
                 f" its own pilot run, in turn with today's: {ref_rps:.0f} req/s (median of"
                 f" {LIST_ROUNDS} rounds); CPU a request {cpu_of(refs):.2f} ms before,"
                 f" {cpu_of(ours_runs):.2f} ms today; {floor}", ratio=f"x{ratio:.2f}")
        print("GET /v1/products, seller with 5,000 tracked products, default page (50)")
        ours = load(port, "/v1/products", seconds, large)
        print(line(f"pilot run, {CONNECTIONS} connections", ours))
        alone = subprocess.run([sys.executable, "-c", LOADGEN, str(port), "/v1/products", "1",
                                str(seconds), large], capture_output=True, text=True,
                               check=True)
        single = dict(json.loads(alone.stdout))
        print(line("pilot run, one connection", single))
        state = "OK" if single["p50"] < LIST_P50_GOAL_MS else "OVER"
        print(f"  p50 goal (one client): < {LIST_P50_GOAL_MS:.0f} ms: {state}")
        goal(f"list products p50, 5,000-product seller, {workers} process(es)", single["p50"],
             "ms", f"< {LIST_P50_GOAL_MS:.0f} ms", single["p50"] < LIST_P50_GOAL_MS)


def main() -> None:
    from common import bench_database

    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="3 s per server (CI)")
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--workers", type=int, nargs="*", default=[1, 2],
                        help="pilot run --workers N --http-processes N: the Ns to measure"
                        " (default 1 2)")
    parser.add_argument("--compare", metavar="REV",
                        help="also run REV's tree (git archive) in the list rounds: an A/B")
    args = parser.parse_args()
    seconds = 3.0 if args.quick else args.seconds

    with bench_database() as url:
        from amazon_pilot.platform.settings import reset_settings

        os.environ["DATABASE_URL"] = url
        reset_settings()
        user_id = seed_seller(url, 500, "load@example.com", "B0L")
        seed_seller(url, 5000, "load5000@example.com", "B0M")
        indexes = copy_pre_issue_tables(url)
        print(f"pre-issue tables (schema {PRE_ISSUE}, today's rows), their indexes:")
        for definition in indexes:
            print(f"  {definition}")
        plain_url = url.replace("postgresql+psycopg", "postgresql")
        bare, bare_port = serve(BARE_LIVE)
        before, before_port = serve(BARE_LIST_OLD, plain_url, user_id, PRE_ISSUE)
        now, now_port = serve(BARE_LIST_OLD, plain_url, user_id, "public")
        try:
            wait_http(bare_port)
            wait_http(before_port, "/v1/products")
            wait_http(now_port, "/v1/products")
            with (pre_issue_stack(url, "load@example.com", 500, "B0L") as reference,
                  compared(url, args.compare) as compare):
                for workers in args.workers:
                    one_run(url, workers, seconds, bare_port, (before_port, now_port),
                            reference, compare)
        finally:
            for process in (bare, before, now):
                process.terminate()
                process.wait(10)


if __name__ == "__main__":
    main()
