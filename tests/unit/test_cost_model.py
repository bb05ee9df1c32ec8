"""`pilot cost`: the arithmetic against figures computed by hand, and the printed report
names every line, every input's origin and every source (docs/benchmarks.md, "Cost
model")."""

from __future__ import annotations

import pytest

from pilot_dev import cli, cost

SHAPE = cost.Shape(architecture="arm64", worker_memory_mb=1024, worker_batch_size=3,
                   outbox_memory_mb=512, outbox_runs_per_month=46_080,
                   scheduler_memory_mb=512, batch_urls=200)


def test_apify_is_results_times_the_published_price() -> None:
    # 10,000 products x 1 fetch x 30 days = 300,000 results x $0.00125 = $375.00
    est = cost.estimate(10_000, 1, cost.PUBLISHED, SHAPE)
    assert dict((ln.name, ln.usd) for ln in est.lines)["Apify"] == pytest.approx(375.00)
    # twice a day doubles it
    est = cost.estimate(10_000, 2, cost.PUBLISHED, SHAPE)
    assert dict((ln.name, ln.usd) for ln in est.lines)["Apify"] == pytest.approx(750.00)


def test_lambda_gb_seconds_by_hand() -> None:
    # 1,000 products daily: 5 runs a day -> 150 runs a month.
    # worker: 150 x 300 s + 30,000 results x 0.0015 s = 45,045 s at 1 GB = 45,045 GB-s
    # fixed: 1 s x (46,080 x 0.5 GB + 30 x 0.5 GB) = 23,055 GB-s
    # GB-s: 68,100 x $0.0000133334 = $0.908004...
    # requests: ceil(150 / 3) + 46,080 + 30 = 46,160 x $0.0000002 = $0.009232
    est = cost.estimate(1_000, 1, cost.PUBLISHED, SHAPE)
    lam = dict((ln.name, ln.usd) for ln in est.lines)["Lambda"]
    assert lam == pytest.approx(68_100 * 0.0000133334 + 46_160 * 0.0000002)
    assert lam == pytest.approx(0.917236, abs=1e-5)


def test_x86_64_pays_the_x86_price() -> None:
    x86 = cost.Shape(**{**SHAPE.__dict__, "architecture": "x86_64"})
    est = cost.estimate(1_000, 1, cost.PUBLISHED, x86)
    lam = dict((ln.name, ln.usd) for ln in est.lines)["Lambda"]
    assert lam == pytest.approx(68_100 * 0.0000166667 + 46_160 * 0.0000002)


def test_sqs_database_and_proxy_by_hand() -> None:
    # 100,000 products daily: 500 runs a day, 15,000 a month; per run message 0.1 send
    # (batches of 10) + 1 receive + 1 delete = 31,500 requests, + 1,944,000 idle polls
    est = cost.estimate(100_000, 1, cost.PUBLISHED, SHAPE, proxy=True)
    lines = dict((ln.name, ln.usd) for ln in est.lines)
    assert lines["SQS"] == pytest.approx((31_500 + 1_944_000) * 0.40 / 1e6)  # $0.7902
    assert lines["Aurora compute"] == pytest.approx(0.5 * 730 * 0.12)  # $43.80
    # 100,000 x 365 days x 1,200 bytes = 43.8 GB x $0.10
    assert lines["Aurora storage"] == pytest.approx(4.38)
    assert lines["RDS Proxy"] == pytest.approx(8 * 730 * 0.015)  # $87.60: 8 ACU minimum
    assert est.total == pytest.approx(sum(lines.values()))


def test_apify_dominates_above_about_1200_products() -> None:
    # issue 18: the per-result price is most of the bill above ~1,200 products
    small = cost.estimate(1_000, 1, cost.PUBLISHED, SHAPE)
    assert small.share("Apify") < 0.5
    for n in (1_500, 10_000, 100_000):
        assert cost.estimate(n, 1, cost.PUBLISHED, SHAPE).share("Apify") > 0.5
    assert cost.estimate(100_000, 1, cost.PUBLISHED, SHAPE).share("Apify") > 0.95


def test_a_measured_price_replaces_the_published_one() -> None:
    inputs = cost.with_value(cost.PUBLISHED, "apify_per_result", 0.0005)
    est = cost.estimate(10_000, 1, inputs, SHAPE)
    assert dict((ln.name, ln.usd) for ln in est.lines)["Apify"] == pytest.approx(150.0)


def test_keepa_plan_covers_what_20_tokens_a_minute_allow() -> None:
    # 20 tokens/min x 1,440 min = 28,800 tokens a day = 9,600 products at 3 tokens each
    assert cost.keepa_plan(9_600, 1)[0] == 49.0
    price, why = cost.keepa_plan(9_601, 1)
    assert price is None and "not verified" in why
    assert cost.keepa_plan(5_000, 1)[1].startswith("≈49 EUR/month")


@pytest.mark.parametrize("text, per_day", [("24h", 1), ("12h", 2), ("1d", 1), ("7d", 1 / 7)])
def test_cadence(text: str, per_day: float) -> None:
    assert cost.parse_cadence(text) == pytest.approx(per_day)


@pytest.mark.parametrize("text, per_day", [("1d:50,7d:50", 0.5 + 0.5 / 7),
                                           ("12h:10, 1d:60, 3d:30", 0.2 + 0.6 + 0.1)])
def test_cadence_mix(text: str, per_day: float) -> None:
    assert cost.parse_cadence(text) == pytest.approx(per_day)


@pytest.mark.parametrize("text", ["", "x", "0h", "-2d", "12", "1d:50,7d:40", "1d:x",
                                  "1d:110,7d:-10"])
def test_bad_cadence_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="cadence"):
        cost.parse_cadence(text)


def test_report_has_every_row_origin_and_source(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--no-database", "--proxy"]) == 0
    out = capsys.readouterr().out
    for size in ("1,000 products", "10,000 products", "100,000 products"):
        assert size in out
    for row in ("Apify", "Lambda", "SQS", "Aurora compute", "Aurora storage", "RDS Proxy",
                "total", "Apify share", "Keepa API", "Helium 10"):
        assert any(line.startswith(row) for line in out.splitlines()), row
    # every input printed with its origin; looked-up ones with a source and a date
    for item in cost.PUBLISHED.values():
        assert f"{item.label}: " in out
        assert f"looked up ({item.source}, {cost.LOOKED_UP_ON})" in out
    assert "measured: template.yaml" in out  # memory and batch sizes come from the template
    assert "keepa.com" in out and "helium10.com" in out and "NOT verified" in out
    # the headline figures, by hand: $375 Apify + the rest for 10k products
    assert "3,750.00" in out and "375.00" in out


def test_one_size_and_a_cadence(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--no-database", "--products", "2500", "--cadence", "12h"]) == 0
    out = capsys.readouterr().out
    assert "2 times a day" in out and "2,500 products" in out
    assert "187.50" in out  # 2,500 x 2 x 30 x $0.00125
    assert "RDS Proxy" not in out.split("Inputs:")[0]


def test_a_cadence_mix_is_priced_with_the_comparisons_sources(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--no-database", "--products", "10000",
                     "--cadence", "1d:40,3d:40,7d:20"]) == 0
    out = capsys.readouterr().out
    assert "cadence mix (40 % every 1d, 40 % every 3d, 20 % every 7d" in out
    # 10,000 x (0.4 + 0.4/3 + 0.2/7) a day x 30 days x $0.00125
    assert f"{10_000 * (0.4 + 0.4 / 3 + 0.2 / 7) * 30 * 0.00125:,.2f}" in out
    assert "keepa.com" in out and "helium10.com" in out and "NOT verified" in out


def test_bad_arguments_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cost", "--no-database", "--cadence", "sometimes"]) == 2
    assert "cadence" in capsys.readouterr().err
    assert cli.main(["cost", "--no-database", "--products", "0"]) == 2
