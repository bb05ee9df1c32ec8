"""Issue 18: each function's cold start from the built artifact (with its precompiled
bytecode), next to reference modules imported the same way.

    .venv/bin/python bench/bench_coldstart.py [--rounds N] [--build-dir DIR] [--no-build]

What is timed: a fresh, isolated Python 3.13 process (-I -S: no site, no PYTHONPATH, as
Lambda's runtime starts) whose sys.path is the function's code folder and then its
layers' python/ folders, as Lambda lays them out (/var/task, /opt/python), importing
the handler's module. Our handlers build everything at import (app, engine, Powertools),
so the import *is* the init. The timing code is scripts/check-artifacts.py's
(`import_sample`, one process per sample), interleaved over N rounds; p50 printed, of the
wall time (what Lambda bills and a user waits) and of the process's CPU time (what the
other load of a shared machine disturbs least: judge the ratio by it when loaded).

The references, in the same kind of process:
- "empty handler": a module that defines `handler` and imports only what the Python
  runtime's own bootstrap needs from the standard library; the floor of a cold start;
- "issue-2 reference": Mangum(FastAPI()) + Powertools + a SQLAlchemy engine, imported
  from the artifact's dependency layer — what issue 2 defined as a minimal API function
  and what the ≤ 1.1x goal is measured against.

If the x86_64 build is missing the bench runs `make build ARCH=x86_64` (2-4 min), unless
--no-build, which prints how to build and exits 0 without figures.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from types import ModuleType

from common import REFERENCE_MODULE, ROOT, goal

GOAL = 1.1

EMPTY_HANDLER = textwrap.dedent("""
    # The runtime's own bootstrap needs these from the standard library before it
    # loads a handler (JSON events, the runtime API over HTTP, logging, tracebacks).
    import json, logging, os, sys, time, traceback, http.client, decimal
    def handler(event, context):
        return None
""")

ISSUE2_REFERENCE = REFERENCE_MODULE  # bench/common.py: issue 2's reference module


def check_artifacts() -> ModuleType:
    """scripts/check-artifacts.py as a module (its file name has a dash)."""
    path = ROOT / "scripts" / "check-artifacts.py"
    spec = importlib.util.spec_from_file_location("check_artifacts", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def ensure_build(build: Path, allow_build: bool) -> bool:
    if (build / "pilot-build.json").is_file():
        return True
    if not allow_build:
        print(f"no build in {build}: run `make build ARCH=x86_64` first (2-4 min), "
              f"then this bench again")
        return False
    print(f"no build in {build}: running `make build ARCH=x86_64` (2-4 min)", flush=True)
    subprocess.run(["make", "build", "ARCH=x86_64"], cwd=ROOT, check=True)
    return True


def stale_warning(build: Path) -> str | None:
    """The artifact is what is timed: say so when the source changed after the build."""
    built_at = (build / "pilot-build.json").stat().st_mtime
    newer = [p for folder in ("shared", "functions", "layers") for p in (ROOT / folder).rglob("*")
             if p.is_file() and p.suffix in (".py", ".lock", ".txt")
             and "__pycache__" not in p.parts and p.stat().st_mtime > built_at]
    if not newer:
        return None
    return (f"note: {len(newer)} source file(s) changed after this build (e.g. "
            f"{newer[0].relative_to(ROOT)}): `make build ARCH=x86_64` to time them")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--build-dir", type=Path, default=ROOT / ".aws-sam" / "build-x86_64")
    parser.add_argument("--no-build", action="store_true")
    args = parser.parse_args()
    if platform.machine() not in ("x86_64", "AMD64"):
        print(f"this bench runs the x86_64 artifact; this machine is {platform.machine()}")
        return 0
    if not ensure_build(args.build_dir, allow_build=not args.no_build):
        return 0
    ca = check_artifacts()
    build = args.build_dir.resolve()
    warning = stale_warning(build)
    if warning:
        print(warning)
    py = ca.python313()
    template = ca.load_template(build / "template.yaml")
    paths = ca.artifact_paths(build)
    deps = next((p for fn_paths in paths.values() for p in fn_paths[1:]
                 if (p / "fastapi").is_dir()), None)
    if deps is None:
        print(f"{build}: no layer with the dependencies (fastapi) found")
        return 1

    # one import per distinct (code folder, handler): the workers share theirs
    targets: dict[tuple[str, ...], tuple[str, list[Path]]] = {}
    owners: dict[tuple[str, ...], list[str]] = {}
    for logical_id, spec in template.functions.items():
        key = (str(paths[logical_id][0]), spec.handler)
        targets.setdefault(key, (spec.handler.rpartition(".")[0], paths[logical_id]))
        owners.setdefault(key, []).append(logical_id)

    with tempfile.TemporaryDirectory() as folder:
        refs = Path(folder)
        (refs / "empty_handler.py").write_text(EMPTY_HANDLER)
        (refs / "issue2_reference.py").write_text(ISSUE2_REFERENCE)
        runs: dict[str, tuple[str, list[Path]]] = {
            "empty": ("empty_handler", [refs]),
            "issue2": ("issue2_reference", [refs, deps]),
            **{"|".join(key): value for key, value in targets.items()},
        }
        # compile the references' own .pyc once, as the build did for the functions
        subprocess.run([py, "-m", "compileall", "-q", str(refs)], check=True)
        times: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        for module, path in runs.values():  # warm the page cache once
            ca.import_sample(py, module, path, use_pyc=True)
        for _ in range(args.rounds):  # interleaved: drift hits every module alike
            for name, (module, path) in runs.items():
                wall_ms, cpu_ms = ca.import_sample(py, module, path, use_pyc=True)
                times[name].append(wall_ms)
                cpu[name].append(cpu_ms)

    p50 = {name: statistics.median(samples) for name, samples in times.items()}
    cpu50 = {name: statistics.median(samples) for name, samples in cpu.items()}
    empty, issue2 = p50.pop("empty"), p50.pop("issue2")
    empty_cpu, issue2_cpu = cpu50.pop("empty"), cpu50.pop("issue2")
    manifest = json.loads((build / "pilot-build.json").read_text())
    built = f"{manifest['architecture']}, {manifest['runtime']}"
    where = build.relative_to(ROOT) if build.is_relative_to(ROOT) else build
    print(f"Cold start from the artifact ({where}: {built}), Python 3.13, fresh -I -S "
          f"process each, p50 of {args.rounds} interleaved rounds")
    print(f"  {'module':<46} {'p50':>8}  {'vs issue-2 ref':>14}  {'vs empty':>9}  "
          f"{'CPU p50':>8}  {'CPU vs ref':>10}")
    print(f"  {'reference: empty handler (bootstrap stdlib)':<46} {empty:6.0f} ms  "
          f"{empty / issue2:13.2f}x  {1:8.2f}x  {empty_cpu:5.0f} ms  "
          f"{empty_cpu / issue2_cpu:9.2f}x")
    print(f"  {'reference: issue 2 (Mangum+FastAPI+Powertools)':<46} {issue2:6.0f} ms  "
          f"{1:13.2f}x  {issue2 / empty:8.2f}x  {issue2_cpu:5.0f} ms  {1:9.2f}x")
    worst = worst_cpu = 0.0
    for key, value in p50.items():
        names = owners[tuple(key.split("|"))]
        ratio, cpu_ratio = value / issue2, cpu50[key] / issue2_cpu
        worst, worst_cpu = max(worst, ratio), max(worst_cpu, cpu_ratio)
        flag = "" if max(ratio, cpu_ratio) <= GOAL else f"   over the {GOAL}x goal"
        label = ", ".join(n.removesuffix("Function") for n in names)
        print(f"  {label:<46} {value:6.0f} ms  {ratio:13.2f}x  {value / empty:8.2f}x  "
              f"{cpu50[key]:5.0f} ms  {cpu_ratio:9.2f}x{flag}")
    print(f"worst function: {worst:.2f}x the issue-2 reference in wall time, {worst_cpu:.2f}x "
          f"in CPU time (goal ≤ {GOAL}x); the empty handler is the floor no Python "
          f"function starts below")
    goal("cold start from the artifact, worst function (wall)", worst, "x reference",
         f"<= {GOAL}x", worst <= GOAL, reference=f"issue-2 module {issue2:.0f} ms",
         ratio=f"CPU time {worst_cpu:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
