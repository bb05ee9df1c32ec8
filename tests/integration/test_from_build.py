"""What `make smoke-from-build` proves beyond the marked integration tests: the stack's
functions ran from sam build's artifacts, in Python 3.13 processes that loaded nothing of
the project tree or of this machine's virtualenv, and the dashboard's files are in the
package. Without PILOT_FROM_BUILD the process checks are skipped."""

from __future__ import annotations

import os
import re
from pathlib import Path

import httpx
import pytest

from pilot_dev.runtime.stack import Stack
from pilot_dev.runtime.template import repo_root

pytestmark = pytest.mark.smoke
from_build = pytest.mark.skipif(not os.environ.get("PILOT_FROM_BUILD"),
                                reason="runs against `pilot run --from-build` only")


@pytest.mark.stage  # also against a deployed stage (PILOT_SMOKE_URL)
def test_the_dashboard_and_its_scripts_are_served(api: httpx.Client) -> None:
    page = api.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', page.text)
    assert scripts, page.text[:500]
    for src in scripts:
        asset = api.get(src if src.startswith("/") else "/" + src)
        assert asset.status_code == 200, src
        assert "javascript" in asset.headers["content-type"]


@from_build
def test_functions_run_from_the_artifact_alone(api: httpx.Client, stack: Stack) -> None:
    from pilot_dev.runtime.process_invoker import ProcessFunctionHost

    host = stack.host
    assert isinstance(host, ProcessFunctionHost)
    build = host.build_dir
    assert api.get("/v1/health").status_code == 200  # an instance of SystemFunction
    pids = host.pids("SystemFunction")
    assert pids
    proc = Path("/proc") / str(pids[0])
    exe = os.path.realpath(proc / "exe")
    assert re.search(r"python3\.13$", exe), exe
    argv = (proc / "cmdline").read_bytes().decode().split("\0")
    assert argv[1:3] == ["-I", "-S"]
    paths = [Path(a) for a in argv[5:] if a]
    assert paths and all(p.is_relative_to(build) for p in paths), paths
    # every shared library the function loaded is the artifact's or the interpreter's
    loaded = {line.split()[-1] for line in (proc / "maps").read_text().splitlines()
              if line.rstrip().endswith(".so") or ".so." in line}
    root = repo_root()
    ours = [p for p in loaded if Path(p).is_relative_to(root) and not Path(p).is_relative_to(build)]
    assert ours == [], ours
    assert any("pydantic_core" in p and Path(p).is_relative_to(build) for p in loaded), loaded
    environment = (proc / "environ").read_bytes().decode().split("\0")
    assert "AWS_EXECUTION_ENV=AWS_Lambda_python3.13" in environment
    assert not [e for e in environment if e.startswith(("PYTHONPATH=", "VIRTUAL_ENV="))]


@from_build
def test_the_artifact_holds_the_migrations_the_database_has(stack: Stack) -> None:
    from sqlalchemy import text

    from amazon_pilot.platform.db import get_engine
    from amazon_pilot.platform.migrate import discover
    from pilot_dev.runtime.process_invoker import ProcessFunctionHost

    assert isinstance(stack.host, ProcessFunctionHost)
    folders = [p / "amazon_pilot" / "migrations" for p in stack.host.paths["SystemFunction"]]
    packaged = next(folder for folder in folders if folder.is_dir())
    with get_engine().connect() as conn:
        applied = sorted(conn.execute(text("SELECT version FROM schema_migrations")).scalars())
    assert [m.version for m in discover(packaged)] == applied
