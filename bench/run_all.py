"""`make bench`: every benchmark in turn, each printing its own figures.

    .venv/bin/python bench/run_all.py            # the full figures (make bench)
    .venv/bin/python bench/run_all.py --quick    # small sizes, a few minutes (make bench-quick, CI)

Run one alone with `.venv/bin/python bench/<name>.py`. Figures are only comparable
within one run (each script measures its own reference next to its figures). The quick
mode exists so that CI runs every bench on every change: a bench that cannot run
measures nothing. Its figures are noisier; read the full run's.

Exits 1 when a bench fails (a non-zero exit), naming it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import stop_with_this_process  # also: SIGTERM unwinds, stopping the bench in hand

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_runtime.py",      # issue 2: start-up, cold start, HTTP round trip
    "bench_coldstart.py",    # issue 18: cold start from the built x86_64 artifact
    "bench_auth.py",         # issue 3: auth + rate-limit overhead
    "bench_session_check.py",  # issue 14: the per-request session-revocation probe
    "bench_ingest.py",       # issue 4: ingestion, history
    "bench_refresh.py",      # issue 18: daily refresh end to end, 1 and 2 workers
    "bench_history.py",      # issue 18: history latency flat in the table's size
    "bench_load.py",         # issue 18: 32 connections against bare uvicorn; product list
    "bench_competitors.py",  # issue 5: comparison, report
    "bench_optimization.py", # issue 6 / 18: listing score, suggestions, experiments
    "bench_web.py",          # issue 7: page load
    "bench_notifications.py",  # issue 18: the notification path under an alert storm
]

# Quick mode: (arguments, environment) per bench; the sizes are small, the code paths
# the same.
QUICK: dict[str, tuple[list[str], dict[str, str]]] = {
    "bench_runtime.py": ([], {"BENCH_ROUNDS": "2", "BENCH_REQUESTS": "300"}),
    "bench_coldstart.py": (["--rounds", "2"], {}),
    "bench_auth.py": (["--requests", "300"], {}),
    "bench_session_check.py": (["--n", "300", "--users", "2000"], {}),
    "bench_ingest.py": ([], {"BENCH_PRODUCTS": "1000", "BENCH_DAYS": "3",
                             "BENCH_REQUESTS": "300"}),
    "bench_refresh.py": (["--products", "300", "--workers", "1"], {}),
    "bench_history.py": (["--quick"], {}),
    "bench_notifications.py": (["--alerts", "2000", "--products", "50"], {}),
    "bench_load.py": (["--quick"], {}),
    "bench_competitors.py": (["--days", "90", "--n", "50", "--reports", "2"], {}),
    "bench_optimization.py": (["--quick"], {}),
    "bench_web.py": ([], {"BENCH_ROUNDS": "1", "BENCH_PRODUCTS": "100"}),
}


# Full mode: the issue-18 scale figures (the refresh curve at 1k/10k/100k with 1 and 2
# workers; history at 1M and 10M rows: 50M is `bench_history.py --rows 50000000`, about
# 15 minutes of seeding, recorded in docs/benchmarks.md).
FULL: dict[str, list[str]] = {
    "bench_refresh.py": ["--curve"],
    "bench_history.py": ["--rows", "1000000", "--rows", "10000000"],
}


def print_goals(figures: Path) -> None:
    """Every goal a bench recorded (common.goal), one line each: figure, goal, met,
    reference and ratio from the same run."""
    lines = ([json.loads(line) for line in figures.read_text().splitlines()]
             if figures.exists() else [])
    print("\n==================== goals, this run")
    if not lines:
        print("  (no bench recorded a goal)")
        return
    width = max(len(f["name"]) for f in lines)
    for f in lines:
        mark = "met" if f["met"] else "NOT met"
        extra = "; ".join(x for x in (f["reference"], f["ratio"]) if x)
        value = f["figure"]
        shown = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"
        print(f"  {f['name']:<{width}}  {shown:>10} {f['unit']:<12} "
              f"goal {f['target']:<14} {mark:<8} {extra}")
    met = sum(1 for f in lines if f["met"])
    print(f"  {met} of {len(lines)} goals met in this run")


def main() -> int:
    quick = "--quick" in sys.argv[1:]
    failed = []
    started = time.perf_counter()
    figures = Path(tempfile.mkdtemp(prefix="bench-")) / "figures.jsonl"
    for name in ORDER:
        path = HERE / name
        if not path.exists():
            continue
        args, env = QUICK.get(name, ([], {})) if quick else (FULL.get(name, []), {})
        print(f"\n==================== {name}{' (quick)' if quick else ''}", flush=True)
        t0 = time.perf_counter()
        code = subprocess.run([sys.executable, str(path), *args], cwd=HERE,
                              env={**os.environ, **env, "BENCH_FIGURES": str(figures)},
                              preexec_fn=stop_with_this_process).returncode
        print(f"-------------------- {name}: {time.perf_counter() - t0:.0f} s"
              f"{'' if code == 0 else f', FAILED (exit {code})'}", flush=True)
        if code != 0:
            failed.append(name)
    print_goals(figures)
    print(f"\nall benches: {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
