"""Issue 2 figures: `pilot run` readiness, cold start per function, HTTP round trip.

    .venv/bin/python bench/bench_runtime.py
"""

from __future__ import annotations

import http.client
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from common import (
    REFERENCE_MODULE,
    ROOT,
    free_port,
    goal,
    keep_alive_latencies,
    pilot_run,
    summary,
    wait_http,
    wait_serving,
)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
REQUESTS = int(os.environ.get("BENCH_REQUESTS", "2000"))

BARE_APP = textwrap.dedent("""
    import sys, uvicorn
    from fastapi import FastAPI
    from pydantic import BaseModel
    class Liveness(BaseModel):
        status: str
    app = FastAPI()
    @app.get("/v1/health/live", response_model=Liveness)
    async def live():
        return Liveness(status="ok")
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                http="httptools", loop="uvloop", lifespan="off", access_log=False)
""")


SAME_APP = textwrap.dedent("""
    import os, sys, uvicorn
    os.environ.setdefault("DATABASE_URL", "postgresql://u@127.0.0.1:1/unused")
    from amazon_pilot.platform.handler import make_api_handler
    from amazon_pilot.platform.system import router
    app = make_api_handler("system", [router]).app  # the function's own app, no Lambda
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning",
                http="httptools", loop="uvloop", lifespan="off", access_log=False)
""")


def import_seconds(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=ROOT)
    return time.perf_counter() - started


def cold_starts() -> None:
    from pilot_dev.runtime.template import load_template

    template = load_template()
    env = {**os.environ, "AWS_DEFAULT_REGION": "us-east-1", "QUEUE_PRIORITY": "default",
           "POWERTOOLS_TRACE_DISABLED": "true"}
    loaders = {
        name: (f"import importlib.util as u; s = u.spec_from_file_location('h', "
               f"{str(spec.handler_file)!r}); m = u.module_from_spec(s); s.loader.exec_module(m)")
        for name, spec in template.functions.items()
    }
    with tempfile.TemporaryDirectory() as folder:
        ref = Path(folder) / "reference_handler.py"
        ref.write_text(REFERENCE_MODULE)
        loaders = {"reference": f"import runpy; runpy.run_path({str(ref)!r})", **loaders}
        times: dict[str, list[float]] = {name: [] for name in loaders}
        for code in loaders.values():  # warm the .pyc caches once
            import_seconds(code, env)
        for _ in range(ROUNDS):  # interleaved, so drift hits every function alike
            for name, code in loaders.items():
                times[name].append(import_seconds(code, env))
    reference = statistics.median(times.pop("reference"))
    print(f"\nCold start (import of the handler module, median of {ROUNDS}, interleaved)")
    print(f"  {'reference: Mangum(FastAPI()) + Powertools + engine':<52} "
          f"{reference * 1000:7.0f} ms   1.00x")
    for name, samples in times.items():
        value = statistics.median(samples)
        flag = "" if value <= 1.1 * reference else "   over the 1.1x target"
        print(f"  {name:<52} {value * 1000:7.0f} ms   {value / reference:4.2f}x{flag}")


@contextmanager
def served_by_uvicorn(app_code: str) -> Iterator[int]:
    """A reference app served by bare uvicorn in a subprocess; yields its port."""
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", app_code, str(port)], cwd=ROOT,
                              stdout=subprocess.DEVNULL)
    try:
        wait_http(port)
        yield port
    finally:
        server.terminate()
        server.wait(10)


def interleaved(ports: dict[str, int], total: int, rounds: int = 10) -> dict[str, list[float]]:
    """`total` requests to each server, in `rounds` alternating slices over one keep-alive
    connection each: the host's speed drifts within seconds, and a ratio is only fair
    when every server sees the same drift."""
    connections = {name: http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                   for name, port in ports.items()}
    samples: dict[str, list[float]] = {name: [] for name in ports}
    for conn in connections.values():  # warm-up (and the runtime's cold start)
        keep_alive_latencies(conn, "/v1/health/live", 300)
    for _ in range(rounds):
        for name, conn in connections.items():
            samples[name] += keep_alive_latencies(conn, "/v1/health/live", total // rounds)
    for conn in connections.values():
        conn.close()
    return samples


def readiness_and_latency() -> None:
    # On a fresh clone the first start also creates the embedded database (initdb and the
    # migrations, once per checkout): timed apart from the start a user waits for every day.
    port = free_port()
    with pilot_run(port):
        first = wait_http(port, timeout=180)
    port = free_port()
    with pilot_run(port):
        ready = wait_http(port, timeout=90)  # timed from the launch, before anything else
        print(f"\n`pilot run` ready (API answering) in {ready:.2f} s  (target < 5 s);"
              f" the start before it {first:.2f} s (on a fresh clone: creating the database)")
        goal("pilot run ready", ready, "s", "< 5 s", ready < 5,
             reference=f"the start before it {first:.1f} s")
        wait_serving(port)  # its other HTTP processes loaded: none still warming up
        with served_by_uvicorn(BARE_APP) as bare, served_by_uvicorn(SAME_APP) as same:
            samples = interleaved({"ours": port, "bare": bare, "same": same}, REQUESTS)
    ours, reference, same_app = samples["ours"], samples["bare"], samples["same"]
    ratio = statistics.median(ours) / statistics.median(reference)
    translation = statistics.median(ours) / statistics.median(same_app)
    print(f"\nHTTP round trip, GET /v1/health/live, {REQUESTS} keep-alive requests each, "
          "http.client, the three servers interleaved")
    print(f"  through the local runtime (event -> Mangum -> FastAPI)  {summary(ours)}")
    print(f"  bare uvicorn + minimal FastAPI app, same route          {summary(reference)}")
    print(f"  bare uvicorn + the function's own FastAPI app           {summary(same_app)}")
    print(f"  ratio of p50 to the minimal app: {ratio:.2f}x  (target within 2x)")
    print(f"  ratio of p50 to the same app without the runtime: {translation:.2f}x"
          "  (the cost of event translation, Mangum and the Lambda decorators)")
    goal("HTTP round trip p50 vs a bare app", ratio, "x", "<= 2x", ratio <= 2,
         reference=f"bare p50 {statistics.median(reference):.0f} µs")


if __name__ == "__main__":
    cold_starts()
    readiness_and_latency()
