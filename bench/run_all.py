"""`make bench`: every benchmark in turn, each printing its own figures.

Run one alone with `.venv/bin/python bench/<name>.py`. Figures are only comparable
within one run (each script measures its own reference next to its figures).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORDER = [
    "bench_runtime.py",      # issue 2: start-up, cold start, HTTP round trip
    "bench_auth.py",         # issue 3: auth + rate-limit overhead
    "bench_session_check.py",  # issue 14: the per-request session-revocation probe
    "bench_ingest.py",       # issue 4: ingestion, history
    "bench_competitors.py",  # issue 5: comparison, report
    "bench_optimization.py", # issue 6: listing score, suggestions, experiments
    "bench_web.py",          # issue 7: page load
    "bench_notifications.py",  # issue 18: the notification path under an alert storm
]


def main() -> int:
    failed = []
    for name in ORDER:
        path = HERE / name
        if not path.exists():
            continue
        print(f"\n==================== {name}", flush=True)
        if subprocess.run([sys.executable, str(path)], cwd=HERE).returncode != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
