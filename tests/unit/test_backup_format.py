"""The parts of `pilot backup` / `pilot restore` that need no database: the load order
and where a backup goes (the restore drill itself is tests/integration/test_backup_restore.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pilot_dev import backup
from pilot_dev.cli import main


def test_referenced_tables_load_before_the_tables_that_reference_them() -> None:
    refs = {"alerts": {"users", "products"}, "tracked_products": {"users", "products"},
            "snapshots": {"products"}, "audit_log": set()}
    order = backup.load_order(["alerts", "audit_log", "products", "snapshots",
                               "tracked_products", "users"], refs)
    for table, referenced in refs.items():
        assert all(order.index(r) < order.index(table) for r in referenced), order
    assert sorted(order) == sorted(set(order))


def test_a_cycle_still_yields_every_table_once() -> None:
    order = backup.load_order(["a", "b", "c"], {"a": {"b"}, "b": {"a"}, "c": {"a"}})
    assert sorted(order) == ["a", "b", "c"] and order.index("c") > order.index("a")


def test_s3_locations_need_a_bucket_and_a_key() -> None:
    assert backup.Location("s3://bucket/a/b.tar.gz").bucket_key == ("bucket", "a/b.tar.gz")
    assert not backup.Location("/tmp/x.tar.gz").is_s3
    with pytest.raises(backup.BackupError, match="s3://BUCKET/KEY"):
        _ = backup.Location("s3://bucket").bucket_key


def test_restore_of_a_missing_or_foreign_file_says_so(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    url = ["--database-url", "postgresql://nobody@127.0.0.1:1/none"]
    assert main(["restore", str(tmp_path / "absent.tar.gz"), *url]) == 2
    assert "no such backup file" in capsys.readouterr().err
    stray = tmp_path / "notes.tar.gz"
    stray.write_text("not an archive")
    assert main(["restore", str(stray), *url]) == 2
    assert "corrupted or truncated" in capsys.readouterr().err


def test_restore_never_picks_a_database_by_itself(monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert main(["restore", "backup.tar.gz"]) == 2
    assert "EMPTY database" in capsys.readouterr().err
