"""`pilot cost` against a database with recorded scrape runs: the Apify price per result
and the run time are measured from real Apify runs only (the stand-in's costs are made
up), and the report says so."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg
import pytest

from amazon_pilot.platform.migrate import apply_migrations
from pilot_dev import cli, cost
from pilot_dev.runtime.stack import ensure_database


@pytest.fixture()
def runs(pg_admin_url: str) -> Iterator[str]:
    """A database of its own: the measured means read every recorded run, and the shared
    database holds other tests' runs, some of them labelled 'apify' (one with 12 ms made
    the mean run time 20.004 s in a random order)."""
    name = f"pilot_cost_{uuid.uuid4().hex[:8]}"
    url = ensure_database(pg_admin_url, name)
    apply_migrations(url)
    rows = [  # (data_source, status, items, cost, duration_ms)
        ("apify", "succeeded", 200, "0.300000", 40_000),
        ("apify", "succeeded", 100, "0.100000", 20_000),
        ("sandbox", "succeeded", 1_000, "0.500000", 1_000),  # the stand-in: ignored
        ("apify", "failed", 0, None, None),
    ]
    with psycopg.connect(url, autocommit=True) as conn:
        for i, (source, status, items, usd, ms) in enumerate(rows):
            conn.execute(
                "INSERT INTO scrape_runs (idempotency_key, trigger, status, item_count,"
                " cost_usd, data_source, captured_at, duration_ms)"
                " VALUES (%s, 'schedule', %s, %s, %s, %s, now(), %s)",
                (f"cost-{i}", status, items, usd, source, ms))
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_price_and_run_time_measured_from_real_runs(runs: str) -> None:
    measured = {item.key: item for item in cost.measured_inputs(runs)}
    # (0.30 + 0.10) / (200 + 100) results; the sandbox run and the failed one left out
    assert measured["apify_per_result"].value == pytest.approx(0.4 / 300)
    assert measured["apify_per_result"].origin == "measured"
    assert measured["run_seconds"].value == pytest.approx(30.0)  # mean of 40 s and 20 s


def test_report_says_measured(runs: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--database-url", runs, "--products", "10000"]) == 0
    out = capsys.readouterr().out
    # 300,000 results x $0.0013333 = $400.00
    assert "400.00" in out
    assert "measured: 2 recorded Apify runs" in out
    assert "measured: mean scrape_runs.duration_ms of 2 Apify runs" in out


def test_unreachable_database_falls_back_to_published_prices(
        capsys: pytest.CaptureFixture[str]) -> None:
    url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2"
    assert cli.main(["cost", "--database-url", url, "--products", "10000"]) == 0
    out = capsys.readouterr().out
    assert "database not read" in out and "375.00" in out
