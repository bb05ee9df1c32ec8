"""Two `pilot run` from one checkout, each with its own data folder (`--data-dir`), and
`pilot demo` loading into the one that runs there. Lives with the chaos suite: it needs
`pilot run` subprocesses, which only that suite starts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx

from tests.chaos.conftest import ROOT, PilotProcess

DEMO = {"email": "demo@amazon-pilot.local", "password": "demo-pilot-2026"}


def test_two_stacks_run_side_by_side_and_the_demo_goes_into_the_one_named(
        tmp_path: Path) -> None:
    first = PilotProcess(None, tmp_path / "a", data_dir=tmp_path / "a")
    second = PilotProcess(None, tmp_path / "b", data_dir=tmp_path / "b")
    for stack in (first, second):
        stack.workdir.mkdir()
    try:
        first.start()
        second.start()
        databases = {stack.status()["database"] for stack in (first, second)}
        assert len(databases) == 2, databases  # two embedded servers, one per folder
        assert (tmp_path / "a" / "postgres").is_dir() and (tmp_path / "b" / "postgres").is_dir()

        pilot = str(Path(sys.executable).parent / "pilot")
        demo = subprocess.run([pilot, *second.data_dir_args(), "demo", "--days", "3",
                               "--products", "4"], cwd=ROOT, env=second.environment(),
                              capture_output=True, text=True, timeout=600)
        assert demo.returncode == 0, demo.stderr[-2000:]
        # the URL printed is the one that stack serves, not the default port
        assert f"open:     {second.url}/" in demo.stdout, demo.stdout
        assert "127.0.0.1:3000" not in demo.stdout

        signed_in = httpx.post(f"{second.url}/v1/auth/login", json=DEMO, timeout=30)
        assert signed_in.status_code == 200, signed_in.text
        token = signed_in.json()["access_token"]
        products = httpx.get(f"{second.url}/v1/products",
                             headers={"authorization": f"Bearer {token}"}, timeout=30)
        assert products.status_code == 200 and len(products.json()["items"]) == 4
        # the other stack's database never saw the demo seller
        refused = httpx.post(f"{first.url}/v1/auth/login", json=DEMO, timeout=30)
        assert refused.status_code == 401, refused.text
    finally:
        for stack in (first, second):
            stack.stop()  # a clean stop also stops its embedded Postgres
            stack.close()
