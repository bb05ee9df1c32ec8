"""The CLI answers every user mistake with one line naming the problem and the fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from pilot_dev.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_unknown_function_lists_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "invoke", "nope", "-e", "events/system-health.json")
    assert code == 2
    assert err.count("\n") == 1 and "no function named 'nope'" in err and "SystemFunction" in err


def test_malformed_and_missing_event_files(capsys: pytest.CaptureFixture[str],
                                           tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    code, _, err = run(capsys, "invoke", "system", "-e", str(bad))
    assert code == 2 and "is not valid JSON" in err
    code, _, err = run(capsys, "invoke", "system", "-e", str(tmp_path / "missing.json"))
    assert code == 2 and "not found" in err and "events/" in err
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    code, _, err = run(capsys, "invoke", "system", "-e", str(listed))
    assert code == 2 and "JSON object" in err


def test_a_template_that_does_not_parse(capsys: pytest.CaptureFixture[str],
                                        tmp_path: Path) -> None:
    broken = tmp_path / "template.yaml"
    broken.write_text("Resources: {unclosed\n")
    code, _, err = run(capsys, "--template", str(broken), "invoke", "system")
    assert code == 2 and "does not parse" in err


def test_normalize_prints_one_json_object_per_item(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps([
        {"statusCode": 200, "asin": "B0C33XXS56", "url": "https://www.amazon.com/dp/B0C33XXS56",
         "title": "Earbuds", "price": 0, "retailPrice": 0, "productRating": "4.4 out of 5 stars",
         "countReview": 1200, "productDetails": [{"name": "Best Sellers Rank", "value":
         "#1,234 in Electronics (See Top 100 in Electronics) #5 in Earbud Headphones"}]},
        "not an item",
    ]))
    code, out, _ = run(capsys, "normalize", str(export))
    assert code == 0
    first, second = (json.loads(line) for line in out.strip().splitlines())
    assert first["price"] is None and first["rating"] == 4.4 and first["bsr_rank"] == 1234
    assert first["subcategory_ranks"] == [{"rank": 5, "category": "Earbud Headphones"}]
    assert second["parse_warnings"]


def test_commands_needing_a_running_stack_say_how_to_start_it(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import pilot_dev.cli as cli

    monkeypatch.setattr(cli, "STATE_FILE", tmp_path / "stack.json")
    for argv in (["queues"], ["logs", "system"], ["redrive", "critical"], ["fire", "X"]):
        code, _, err = run(capsys, *argv)
        assert code == 2 and "pilot run" in err, argv


def test_bad_since_value(capsys: pytest.CaptureFixture[str]) -> None:
    from pilot_dev.cli import CliError, parse_since

    with pytest.raises(CliError, match=r"e\.g\. 30s"):
        parse_since("ten minutes")
    assert parse_since("10m").total_seconds() == 600


def test_runs_names_what_it_cannot_read() -> None:
    # in a process of its own: the command points the process at the database it reads
    def pilot(*args: str) -> tuple[int, str]:
        env = {**os.environ, "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none"}
        done = subprocess.run([sys.executable, "-m", "pilot_dev.cli", "runs", *args], env=env,
                              capture_output=True, text=True, timeout=60)
        return done.returncode, done.stderr

    code, err = pilot()
    assert code == 2 and err.count("\n") == 1 and "cannot read the database" in err
    code, err = pilot("nope")
    assert code == 2 and "'nope' is not a run id" in err
    code, err = pilot("--limit", "0")
    assert code == 2 and "--limit 0" in err
