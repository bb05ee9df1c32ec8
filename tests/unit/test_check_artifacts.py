"""scripts/check-artifacts.py's rules, on inputs it did not make: this interpreter's own
ELF binary, published wheel tags (PEP 425/600) and handler modules written here."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import pytest

from pilot_dev.runtime.template import repo_root

_spec = importlib.util.spec_from_file_location("check_artifacts",
                                               repo_root() / "scripts/check-artifacts.py")
assert _spec is not None and _spec.loader is not None
check = importlib.util.module_from_spec(_spec)
sys.modules["check_artifacts"] = check  # dataclasses look their module up
_spec.loader.exec_module(check)


@pytest.mark.parametrize(("tag", "arch", "fits"), [
    ("py3-none-any", "arm64", True),
    ("cp313-cp313-manylinux_2_17_aarch64", "arm64", True),
    ("cp313-cp313-manylinux2014_aarch64", "arm64", True),
    ("cp313-cp313-manylinux_2_34_aarch64", "arm64", True),
    ("cp313-cp313-manylinux_2_35_aarch64", "arm64", False),  # newer glibc than AL2023
    ("cp313-cp313-manylinux_2_17_x86_64", "arm64", False),
    ("cp313-cp313-musllinux_1_2_aarch64", "arm64", False),
    ("cp39-abi3-manylinux_2_28_x86_64", "x86_64", True),
    ("cp312-cp312-manylinux_2_17_x86_64", "x86_64", False),  # another CPython's ABI
    ("cp314-abi3-manylinux_2_17_x86_64", "x86_64", False),
])
def test_wheel_tags_against_the_lambda_runtime(tag: str, arch: str, fits: bool) -> None:
    assert check.tag_fits(tag, arch) is fits


def test_elf_machine_of_this_interpreter() -> None:
    binary = Path(os.path.realpath(sys.executable))
    expected = {"x86_64": 0x3E, "aarch64": 0xB7}[os.uname().machine]
    assert check.elf_machine(binary) == expected
    assert check.elf_machine(repo_root() / "template.yaml") is None


def test_a_wrong_architecture_is_reported(tmp_path: Path) -> None:
    host = Path(os.path.realpath(sys.executable))
    (tmp_path / "lib.so").write_bytes(host.read_bytes()[:64])
    problems = check.Problems([])
    other = "arm64" if os.uname().machine == "x86_64" else "x86_64"
    assert check.check_elf(tmp_path, other, problems) == 1
    assert len(problems.lines) == 1 and "not " + other in problems.lines[0]


def test_handlers_resolve_by_their_source(tmp_path: Path) -> None:
    (tmp_path / "app.py").write_text("from x import make\nhandler = make()\n")
    (tmp_path / "other.py").write_text("def handle(event, context):\n    return 1\n")
    assert check.resolve_handler("app.handler", [tmp_path]) == tmp_path / "app.py"
    assert check.resolve_handler("other.handle", [tmp_path]) == tmp_path / "other.py"
    assert check.resolve_handler("other.handler", [tmp_path]) is None
    assert check.resolve_handler("missing.handler", [tmp_path]) is None


def _synthetic_build(root: Path, arch: str) -> Path:
    """A build folder as scripts/build.sh leaves it, with one function and one layer."""
    build = root / "build"
    (build / "Fn").mkdir(parents=True)
    (build / "Layer" / "python" / "pkg-1.0.dist-info").mkdir(parents=True)
    (build / "template.yaml").write_text(
        "Parameters: {Architecture: {Type: String, Default: arm64}}\n"
        "Globals: {Function: {Runtime: python3.13, Layers: [!Ref Layer]}}\n"
        "Resources:\n"
        "  Layer: {Type: AWS::Serverless::LayerVersion, Properties: {ContentUri: Layer}}\n"
        "  Fn: {Type: AWS::Serverless::Function,\n"
        "       Properties: {CodeUri: Fn, Handler: app.handler}}\n")
    (build / "pilot-build.json").write_text(json.dumps({"architecture": arch,
                                                        "runtime": "python3.13"}))
    return build


def test_a_bad_build_fails_with_each_problem_named(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    try:
        check.python313()
    except Exception:
        pytest.skip("no Python 3.13 on this machine")
    other = "arm64" if os.uname().machine == "x86_64" else "x86_64"
    build = _synthetic_build(tmp_path, other)
    (build / "Fn" / "app.py").write_text("def handle(event, context):\n    return 1\n")
    (build / "Fn" / "tests").mkdir()
    layer = build / "Layer" / "python"
    (layer / "lib.so").write_bytes(Path(os.path.realpath(sys.executable)).read_bytes()[:64])
    (layer / "pkg-1.0.dist-info" / "WHEEL").write_text(
        f"Wheel-Version: 1.0\nTag: cp313-cp313-musllinux_1_2_{check.WHEEL_ARCH[other]}\n")
    (layer / "pilot_dev").mkdir()
    assert check.main([str(build)]) == 1
    err = capsys.readouterr().err
    for expected in ("ELF machine", "musllinux", "handler app.handler does not resolve",
                     "no 3.13 .pyc", "Fn/tests: local tooling", "pilot_dev: local tooling"):
        assert expected in err, (expected, err)
