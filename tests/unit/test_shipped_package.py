"""What Lambda gets holds no local tooling: the shared layer's folder (template.yaml's
SharedLayer ContentUri) and the function folders import nothing of devtools/pilot_dev,
and the shipped package's dependencies leave the local runtime's packages out.
`scripts/check-artifacts.py` checks the same on the artifacts `sam build` makes."""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

from pilot_dev.runtime.template import load_template, repo_root

LOCAL_ONLY = {"pilot_dev", "moto", "pgserver", "httptools", "localstack_client", "uvicorn",
              "pytest", "playwright", "hypothesis", "schemathesis"}
LOCAL_DISTRIBUTIONS = {"moto", "pgserver", "httptools", "localstack-client", "uvicorn"}
TEMPLATE = load_template()


def _shipped_folders() -> list[Path]:
    root = repo_root()
    layer = TEMPLATE.resources["SharedLayer"]["Properties"]["ContentUri"]
    functions = {spec.handler_file.parent for spec in TEMPLATE.functions.values()}
    return [root / layer, *sorted(functions)]


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", _shipped_folders(), ids=lambda p: p.name)
def test_no_shipped_module_imports_local_tooling(folder: Path) -> None:
    offenders = {str(path.relative_to(folder)): sorted(_imports(path) & LOCAL_ONLY)
                 for path in folder.rglob("*.py") if _imports(path) & LOCAL_ONLY}
    assert offenders == {}


def test_the_layer_folder_holds_only_the_shipped_package() -> None:
    layer = _shipped_folders()[0]
    packages = {p.name for p in layer.iterdir() if (p / "__init__.py").is_file()}
    assert packages == {"amazon_pilot"}


def _requirement_name(requirement: str) -> str:
    for stop in "[<>=!~; ":
        requirement = requirement.split(stop)[0]
    return requirement.strip().lower()


def test_local_runtime_packages_are_not_dependencies_of_what_ships() -> None:
    project = tomllib.loads((repo_root() / "pyproject.toml").read_text())["project"]
    shipped = {_requirement_name(r) for r in project["dependencies"]}
    layer = TEMPLATE.resources["DependenciesLayer"]["Properties"]["ContentUri"]
    lines = (repo_root() / layer / "requirements.txt").read_text().splitlines()
    in_layer = {_requirement_name(line) for line in lines if line and not line.startswith("#")}
    assert shipped & LOCAL_DISTRIBUTIONS == set()
    assert in_layer & LOCAL_DISTRIBUTIONS == set()
    # the local extra is what `make run` and `make test` install for pilot run
    local = {_requirement_name(r) for r in project["optional-dependencies"]["local"]}
    assert {"moto", "pgserver", "httptools"} <= local
