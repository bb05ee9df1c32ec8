"""Inspects what `sam build` made (scripts/build.sh) before anything ships it.

    .venv/bin/python scripts/check-artifacts.py .aws-sam/build [--import-times] [--list]

Fails (exit 1) with one line per problem when:
- a compiled file (any ELF file: .so, numpy.libs/*.so.N) is not for the declared architecture;
- an installed wheel's tags do not fit the runtime: CPython 3.13 on Amazon Linux 2023,
  whose glibc is 2.34, so manylinux tags up to 2_34 (PEP 600: manylinux_X_Y runs on glibc
  >= X.Y; manylinux1/2010/2014 are 2_5/2_12/2_17); musllinux and other OSes do not;
- a handler of template.yaml does not resolve: its module file is not in the function's
  code or its layers, or has no top-level `handler` (read with ast, so an arm64 artifact
  is checked without running it);
- a function plus its layers exceed Lambda's 250 MB unzipped quota (sizes are printed);
- a .py file has no .pyc compiled by Python 3.13 (the right magic number) next to it, or
  a .pyc of another Python ships;
- local tooling or tests ship (pilot_dev, moto, pgserver, httptools, devtools, tests ...),
  or shipped code of ours imports them.
With --import-times (only for an artifact of this host's architecture), prints each
handler's cold import time from the artifact (with its .pyc) next to the same import from
the source tree without .pyc, in fresh Python 3.13 processes.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import platform
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "devtools"))
from pilot_dev.runtime.process_invoker import artifact_paths
from pilot_dev.runtime.template import load_template, repo_root

LAMBDA_UNZIPPED_LIMIT = 250 * 1024 * 1024  # function + layers, unzipped
GLIBC = (2, 34)  # Amazon Linux 2023, the python3.13 runtime's OS
PYTHON = (3, 13)
ELF_MACHINE = {"arm64": 0xB7, "x86_64": 0x3E}  # EM_AARCH64, EM_X86_64
WHEEL_ARCH = {"arm64": "aarch64", "x86_64": "x86_64"}
LEGACY_MANYLINUX = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}
# Top-level names that are local tooling or test trees; never in an artifact root.
FORBIDDEN_TOP = {"pilot_dev", "devtools", "moto", "pgserver", "httptools", "localstack_client",
                 "uvicorn", "pytest", "_pytest", "playwright", "hypothesis", "schemathesis",
                 "tests", "test", "bench", "web", "infra"}


@dataclass
class Problems:
    lines: list[str]

    def add(self, line: str) -> None:
        self.lines.append(line)


def tree_size(root: Path) -> int:
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file() and not p.is_symlink())


def mb(size: int) -> str:
    return f"{size / 1024 / 1024:.1f} MB"


# ------------------------------------------------------------------ architecture (ELF)

def elf_machine(path: Path) -> int | None:
    """e_machine of an ELF file, or None if it is not one (the first 20 bytes suffice)."""
    with path.open("rb") as handle:
        head = handle.read(20)
    if len(head) < 20 or head[:4] != b"\x7fELF":
        return None
    endian = "<" if head[5] == 1 else ">"
    return int(struct.unpack(endian + "H", head[18:20])[0])


def check_elf(root: Path, arch: str, problems: Problems) -> int:
    count = 0
    for path in root.rglob("*"):
        if not path.is_file() or path.is_symlink():
            continue
        machine = elf_machine(path)
        if machine is None:
            continue
        count += 1
        if machine != ELF_MACHINE[arch]:
            problems.add(f"{path}: ELF machine 0x{machine:x}, not {arch}")
    return count


# ------------------------------------------------------------------ wheel tags

def tag_fits(tag: str, arch: str) -> bool:
    interpreter, abi, plat = tag.split("-")
    if interpreter not in ("py3", f"py{PYTHON[0]}{PYTHON[1]}", "cp313") and not (
        interpreter.startswith("cp3") and abi == "abi3"
        and int(interpreter[3:]) <= PYTHON[1]
    ):
        return False
    if abi not in ("none", "abi3", "cp313"):
        return False
    if plat == "any":
        return True
    for name, glibc in LEGACY_MANYLINUX.items():
        if plat == f"{name}_{WHEEL_ARCH[arch]}":
            return glibc <= GLIBC
    parts = plat.split("_", 3)
    if len(parts) == 4 and parts[0] == "manylinux" and parts[3] == WHEEL_ARCH[arch]:
        return (int(parts[1]), int(parts[2])) <= GLIBC
    return False


def check_wheels(root: Path, arch: str, problems: Problems) -> int:
    count = 0
    for wheel_file in sorted(root.glob("*.dist-info/WHEEL")):
        count += 1
        tags = [line.split(":", 1)[1].strip() for line in wheel_file.read_text().splitlines()
                if line.startswith("Tag:")]
        # a wheel may carry several compressed tags; one fitting tag is enough
        if not any(tag_fits(tag, arch) for tag in tags):
            problems.add(f"{wheel_file.parent.name}: tags {tags} do not fit CPython "
                         f"{PYTHON[0]}.{PYTHON[1]} on glibc {GLIBC[0]}.{GLIBC[1]} {arch}")
    return count


# ------------------------------------------------------------------ .pyc

def python313() -> str:
    return subprocess.run([str(repo_root() / "scripts/py313.sh")], check=True,
                          capture_output=True, text=True).stdout.strip()


def check_pyc(root: Path, magic: bytes, problems: Problems) -> tuple[int, int]:
    missing, total = [], 0
    for source in root.rglob("*.py"):
        total += 1
        compiled = source.parent / "__pycache__" / f"{source.stem}.cpython-313.pyc"
        if not compiled.is_file():
            missing.append(source)
        elif compiled.read_bytes()[:4] != magic:
            problems.add(f"{compiled}: not compiled by Python 3.13")
    if missing:
        problems.add(f"{root}: {len(missing)} of {total} .py files have no 3.13 .pyc, "
                     f"e.g. {missing[0]}")
    strays = [p for p in root.rglob("*.pyc") if ".cpython-313." not in p.name]
    if strays:
        problems.add(f"{root}: {len(strays)} .pyc of another Python, e.g. {strays[0]}")
    return total - len(missing), total


# ------------------------------------------------------------------ tooling

LOCAL_IMPORTS = {"pilot_dev", "moto", "pgserver", "httptools", "localstack_client"}


def check_no_tooling(root: Path, ours: bool, problems: Problems) -> None:
    for child in root.iterdir():
        if child.name in FORBIDDEN_TOP:
            problems.add(f"{child}: local tooling or tests in the artifact")
    if not ours:
        return  # third-party packages' own test modules are theirs to ship
    for path in root.rglob("*"):
        if path.is_dir() and path.name in ("tests", "pilot_dev", "devtools"):
            problems.add(f"{path}: local tooling or tests in the artifact")
    for source in root.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            hits = {n.split(".")[0] for n in names} & LOCAL_IMPORTS
            if hits:
                problems.add(f"{source}: imports local-only {sorted(hits)}")


# ------------------------------------------------------------------ data files

def check_package_data(layer: Path, problems: Problems) -> int:
    """Every file of our package that is not Python (migrations, the dashboard, JSON data)
    is in the layer with the same bytes; the source's links (web_assets, migrations) are
    followed, as the build copies what they point to."""
    source = repo_root() / "shared" / "amazon_pilot"
    count = 0
    for dirpath, dirnames, filenames in os.walk(source, followlinks=True):
        dirnames[:] = [d for d in dirnames if d != "__pycache__"]
        for name in filenames:
            if name.endswith((".py", ".pyc")):
                continue
            path = Path(dirpath) / name
            relative = path.relative_to(source)
            built = layer / "amazon_pilot" / relative
            count += 1
            if not built.is_file() or built.read_bytes() != path.read_bytes():
                problems.add(f"{built}: missing or not the same as shared/amazon_pilot/{relative}")
    return count


# ------------------------------------------------------------------ handlers

def defines(module: Path, name: str) -> bool:
    tree = ast.parse(module.read_text(), str(module))
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            if node.name == name:
                return True
        elif isinstance(node, ast.Assign):
            if any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
                return True
        elif isinstance(node, ast.AnnAssign | ast.ImportFrom | ast.Import):
            targets = ([node.target] if isinstance(node, ast.AnnAssign) else [])
            if any(isinstance(t, ast.Name) and t.id == name for t in targets):
                return True
            if isinstance(node, ast.ImportFrom | ast.Import) and any(
                    (a.asname or a.name) == name for a in node.names):
                return True
    return False


def resolve_handler(handler: str, paths: list[Path]) -> Path | None:
    module, _, attr = handler.rpartition(".")
    relative = module.replace(".", "/")
    for base in paths:
        for candidate in (base / f"{relative}.py", base / relative / "__init__.py"):
            if candidate.is_file():
                return candidate if defines(candidate, attr) else None
    return None


# ------------------------------------------------------------------ import times

IMPORT_SNIPPET = (
    "import sys, time; sys.path[:0] = sys.argv[2:]; t = time.perf_counter(); "
    "c = time.process_time(); import importlib; m = importlib.import_module(sys.argv[1]); "
    "print((time.perf_counter() - t) * 1000, (time.process_time() - c) * 1000)"
)


def import_sample(py: str, module: str, paths: list[Path], *, use_pyc: bool,
                  pycache: str | None = None) -> tuple[float, float]:
    """One cold import of `module` in a fresh isolated process (no site, no PYTHONPATH):
    (wall ms, CPU ms of that process). The CPU figure is what other load on the machine
    disturbs least. Without .pyc: an empty pycache prefix hides every .pyc, -B writes none."""
    env = {"PATH": os.environ.get("PATH", ""), "AWS_REGION": "us-east-1",
           "AWS_DEFAULT_REGION": "us-east-1", "POWERTOOLS_TRACE_DISABLED": "true"}
    flags = [] if use_pyc else ["-B", "-X", f"pycache_prefix={pycache}"]
    out = subprocess.run([py, "-I", "-S", *flags, "-c", IMPORT_SNIPPET, module,
                          *map(str, paths)], check=True, capture_output=True,
                         text=True, env=env, timeout=120)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def import_ms(py: str, module: str, paths: list[Path], *, use_pyc: bool, runs: int) -> float:
    """Best (least disturbed by other load on the machine) wall time of `runs` cold
    imports of `module`, each in a fresh process (import_sample)."""
    with tempfile.TemporaryDirectory() as empty:
        return min(import_sample(py, module, paths, use_pyc=use_pyc, pycache=empty)[0]
                   for _ in range(runs))


# ------------------------------------------------------------------ main

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build_dir", type=Path)
    parser.add_argument("--import-times", action="store_true")
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args(argv)
    build = args.build_dir
    manifest = json.loads((build / "pilot-build.json").read_text())
    arch, runtime = manifest["architecture"], manifest["runtime"]
    problems = Problems([])
    template = load_template(build / "template.yaml")
    globals_fn = (template.raw.get("Globals") or {}).get("Function") or {}
    if globals_fn.get("Runtime") != runtime:
        problems.add(f"template Runtime {globals_fn.get('Runtime')} is not the built {runtime}")
    py = python313()
    magic = bytes.fromhex(subprocess.run(
        [py, "-c", "import importlib.util; print(importlib.util.MAGIC_NUMBER.hex())"],
        check=True, capture_output=True, text=True).stdout.strip())

    layers: dict[str, Path] = {}
    for logical_id, resource in template.resources_of_type(
            "AWS::Serverless::LayerVersion").items():
        layers[logical_id] = build / str(resource["Properties"]["ContentUri"]) / "python"
    declared = template.parameter_defaults().get("Architecture", "?")
    print(f"check-artifacts: {build} — {runtime}, {arch} "
          f"(glibc {GLIBC[0]}.{GLIBC[1]}, {len(template.functions)} functions, "
          f"{len(layers)} layers; the template deploys {declared})")
    if build.resolve() == (repo_root() / ".aws-sam" / "build").resolve() and arch != declared:
        problems.add(f"{build} is what `sam deploy` ships, but holds {arch} artifacts for a "
                     f"template that deploys {declared}")
    sizes: dict[Path, int] = {}
    for logical_id, root in layers.items():
        if not root.is_dir():
            problems.add(f"layer {logical_id}: {root} missing")
            continue
        sizes[root] = tree_size(root)
        elf = check_elf(root, arch, problems)
        wheels = check_wheels(root, arch, problems)
        compiled, total = check_pyc(root, magic, problems)
        ours = (root / "amazon_pilot").is_dir()
        check_no_tooling(root, ours=ours, problems=problems)
        data = f", {check_package_data(root, problems)} data files" if ours else ""
        print(f"  layer {logical_id:<18} {mb(sizes[root]):>9}  {elf} ELF files ({arch}), "
              f"{wheels} wheels, {compiled}/{total} modules with 3.13 .pyc{data}")

    paths = artifact_paths(build)  # what pilot run --from-build puts on sys.path, too
    timings: list[tuple[str, float, float]] = []
    for logical_id, spec in template.functions.items():
        path = paths[logical_id]  # Lambda: /var/task first, then /opt/python
        code, fn_layers = path[0], path[1:]
        size = tree_size(code) + sum(sizes.get(layer, 0) for layer in fn_layers)
        check_elf(code, arch, problems)
        check_pyc(code, magic, problems)
        check_no_tooling(code, ours=True, problems=problems)
        found = resolve_handler(spec.handler, path)
        if found is None:
            problems.add(f"{logical_id}: handler {spec.handler} does not resolve in {code} "
                         f"or its layers")
        if size > LAMBDA_UNZIPPED_LIMIT:
            problems.add(f"{logical_id}: {mb(size)} unzipped with its layers, over 250 MB")
        where = found.relative_to(build) if found else "MISSING"
        print(f"  function {logical_id:<24} {mb(size):>9} with layers  "
              f"{spec.handler} -> {where}")
        if args.import_times and found is not None and (  # the workers share one handler
                template_code_uri(logical_id), spec.handler) not in {
                (template_code_uri(f), template.functions[f].handler) for f, *_ in timings}:
            module = spec.handler.rpartition(".")[0]
            if arch != {"x86_64": "x86_64", "aarch64": "arm64"}.get(platform.machine()):
                problems.add(f"--import-times: {arch} artifacts cannot run on "
                             f"{platform.machine()} (build ARCH={platform.machine()})")
                args.import_times = False
                continue
            # the same import from the project's folders, as an uncompiled build shipped it
            source = [repo_root() / template_code_uri(logical_id),
                      repo_root() / "shared", layers.get("DependenciesLayer", code)]
            built = import_ms(py, module, path, use_pyc=True, runs=args.runs)
            plain = import_ms(py, module, source, use_pyc=False, runs=max(1, args.runs - 1))
            timings.append((logical_id, built, plain))
    if timings:
        print(f"cold-start import of each handler (Python 3.13, {arch}, best of "
              f"{args.runs} fresh processes):")
        print(f"  {'function':<24} {'artifact+.pyc':>14} {'source, no .pyc':>16}  ratio")
        for logical_id, built, plain in timings:
            print(f"  {logical_id:<24} {built:>11.0f} ms {plain:>13.0f} ms  "
                  f"{plain / built:.1f}x")
    for line in problems.lines:
        print(f"check-artifacts: {line}", file=sys.stderr)
    verdict = f"FAILED, {len(problems.lines)} problems" if problems.lines else "ok"
    print(f"check-artifacts: {verdict}")
    return 1 if problems.lines else 0


def template_code_uri(logical_id: str) -> str:
    """The function's CodeUri in the project's template.yaml (the source tree)."""
    return load_template().functions[logical_id].code_uri


if __name__ == "__main__":
    sys.exit(main())
