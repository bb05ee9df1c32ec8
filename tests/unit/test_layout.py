"""The house rules, checked: one package per capability with the same rooms, SQL only in
stores and the platform, a pure domain, environment reads only in settings, and
routers that do HTTP only. docs/architecture.md explains the layout."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "shared" / "amazon_pilot"
CAPABILITIES = ("tracking", "competitors", "optimization", "notifications", "accounts",
                "audit", "operations")
ROOMS = ("router", "schemas", "service", "store")
SQL_PACKAGES = {"sqlalchemy", "psycopg"}
INFRASTRUCTURE = SQL_PACKAGES | {"fastapi", "starlette", "boto3", "botocore", "httpx", "mangum",
                                 "aws_lambda_powertools", "openai", "apify_client", "pydantic"}


def _modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "web_assets" not in p.parts)


def _name(path: Path) -> str:
    return ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)


def _imported(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _tops(path: Path) -> set[str]:
    return {name.split(".")[0] for name in _imported(path)}


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_every_capability_has_the_same_rooms(capability: str) -> None:
    folder = PACKAGE / capability
    assert sorted(p.stem for p in folder.glob("*.py") if p.stem in ROOMS) == sorted(ROOMS)


def _speaks_sql(path: Path) -> bool:
    """Imports SQL machinery (the Connection type for passing one along is fine) or
    executes a statement."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import) and any(
                alias.name.split(".")[0] in SQL_PACKAGES for alias in node.names):
            return True
        if (isinstance(node, ast.ImportFrom) and node.module
                and node.module.split(".")[0] in SQL_PACKAGES
                and {alias.name for alias in node.names} - {"Connection"}):
            return True
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("execute", "executemany", "exec_driver_sql")):
            return True
    return False


def test_sql_lives_only_in_stores_and_the_platform() -> None:
    offenders = [_name(p) for p in _modules()
                 if p.stem != "store" and p.parent.name != "platform" and _speaks_sql(p)]
    assert offenders == []


def test_the_domain_is_pure() -> None:
    # pydantic is allowed nowhere in domain/ but the LLM output schemas, which are data
    offenders = {_name(p): sorted(_tops(p) & (INFRASTRUCTURE - {"pydantic"}))
                 for p in (PACKAGE / "domain").glob("*.py")
                 if _tops(p) & (INFRASTRUCTURE - {"pydantic"})}
    assert offenders == {}
    inward = {_name(p): sorted(n for n in _imported(p) if n.startswith("amazon_pilot.")
                               and not n.startswith("amazon_pilot.domain"))
              for p in (PACKAGE / "domain").glob("*.py")}
    assert {k: v for k, v in inward.items() if v} == {}


def test_only_settings_reads_the_environment() -> None:
    offenders = []
    for path in _modules():
        if path == PACKAGE / "platform" / "settings.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv")
                    and isinstance(node.value, ast.Name) and node.value.id == "os"):
                offenders.append(f"{_name(path)}:{node.lineno}")
    assert offenders == []


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_routers_do_http_only(capability: str) -> None:
    router = PACKAGE / capability / "router.py"
    # the store is named only for ownership loaders (platform.ownership.owned)
    forbidden = {n for n in _imported(router)
                 if n.split(".")[0] in SQL_PACKAGES or n.startswith("amazon_pilot.adapters")}
    assert forbidden == set()


@pytest.mark.parametrize("capability", CAPABILITIES)
def test_services_know_nothing_of_http(capability: str) -> None:
    service = PACKAGE / capability / "service.py"
    assert {n for n in _tops(service) if n in {"fastapi", "starlette", "mangum"}} == set()
