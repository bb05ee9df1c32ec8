"""The restore drill: load the demo, back it up with `pilot backup`, restore it with
`pilot restore` into a fresh database, and find the same rows there (counts of every
table, a product's history, the alerts, the reports). A corrupted backup and a
non-empty target are refused with a message that says so, and touch nothing."""

from __future__ import annotations

import io
import json
import os
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from pilot_dev.cli import main
from pilot_dev.runtime.stack import Stack, ensure_database


def rows(url: str, query: str, **params: Any) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(query, params).fetchall()]


def counts(url: str) -> dict[str, int]:
    with psycopg.connect(url) as conn:
        tables = [r[0] for r in conn.execute(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
            " ORDER BY 1").fetchall()]
        return {t: int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(t))).fetchone()[0]) for t in tables}  # type: ignore[index]


@pytest.fixture(scope="module")
def demo(stack: Stack) -> str:
    from pilot_dev.demo import DEMO_EMAIL, create_demo

    create_demo(days=20, products=5)
    return DEMO_EMAIL


@pytest.fixture()
def empty_database(pg_admin_url: str) -> Iterator[Callable[[], str]]:
    made: list[str] = []

    def make() -> str:
        name = f"pilot_restore_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        made.append(name)
        return ensure_database(pg_admin_url, name)

    yield make
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        for name in made:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                sql.Identifier(name)))


@pytest.fixture(scope="module")
def archive(demo: str, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("backup") / "drill.tar.gz"
    assert main(["backup", "--to", str(path), "--database-url", database_url]) == 0
    return path


def manifest_of(path: Path) -> dict[str, Any]:
    with tarfile.open(path, "r:gz") as tar:
        handle = tar.extractfile("manifest.json")
        assert handle is not None
        return dict(json.loads(handle.read()))


def test_restore_drill_brings_back_every_row_of_the_demo(
    archive: Path, database_url: str, empty_database: Callable[[], str], demo: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    manifest = manifest_of(archive)
    assert archive.stat().st_mode & 0o777 == 0o600  # password hashes, sealed secrets
    applied = rows(database_url, "SELECT max(version) FROM schema_migrations")[0][0]
    assert manifest["schema_version"] == applied
    assert manifest["tables"]["snapshots"]["rows"] > 0 and manifest["tables"]["alerts"]["rows"] > 0
    assert len(manifest["checksum"]) == 64 and manifest["created_at"]

    target = empty_database()
    assert main(["restore", str(archive), "--database-url", target]) == 0
    assert "row counts verified" in capsys.readouterr().out

    restored = counts(target)
    assert {t: restored[t] for t in manifest["tables"]} == {
        t: meta["rows"] for t, meta in manifest["tables"].items()}
    assert rows(target, "SELECT version, name FROM schema_migrations ORDER BY 1") == rows(
        database_url, "SELECT version, name FROM schema_migrations ORDER BY 1")

    # a sample of the demo seller's data, field for field
    user = "SELECT id FROM users WHERE lower(email) = %(e)s"
    history = ("SELECT s.* FROM snapshots s JOIN tracked_products t ON t.product_id = s.product_id"
               f" WHERE t.user_id = ({user}) ORDER BY s.product_id, s.captured_at LIMIT 200")
    source_history = rows(database_url, history, e=demo)
    assert len(source_history) > 20
    assert rows(target, history, e=demo) == source_history
    alerts = f"SELECT * FROM alerts WHERE user_id = ({user}) ORDER BY id"
    assert rows(database_url, alerts, e=demo)
    assert rows(target, alerts, e=demo) == rows(database_url, alerts, e=demo)
    reports = "SELECT * FROM competitor_reports ORDER BY id"
    assert rows(target, reports) == rows(database_url, reports)

    # the restored database takes new rows: its sequences continue where the source's were
    sequences = "SELECT sequencename, last_value FROM pg_sequences ORDER BY 1"
    assert rows(target, sequences) == [tuple(x) for x in manifest["sequences"].items()]
    assert manifest["sequences"] and any(v for v in manifest["sequences"].values())

    # and it is at the schema version of the backup: `pilot migrate` has nothing to do
    from amazon_pilot.platform.migrate import apply_migrations

    assert apply_migrations(target) == []


def _tampered(archive: Path, out: Path) -> None:
    """The same archive, one byte of the snapshots' data changed, gzip and tar intact
    (only the manifest's checksums can tell)."""
    with tarfile.open(archive, "r:gz") as src, tarfile.open(out, "w:gz") as dst:
        for member in src.getmembers():
            handle = src.extractfile(member)
            assert handle is not None
            body = handle.read()
            if member.name == "data/snapshots.copy":
                at = len(body) // 2
                body = body[:at] + (b"7" if body[at:at + 1] != b"7" else b"8") + body[at + 1:]
            member.size = len(body)
            dst.addfile(member, io.BytesIO(body))


def test_a_corrupted_backup_is_refused_and_the_target_stays_empty(
    archive: Path, empty_database: Callable[[], str], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = empty_database()
    edited = tmp_path / "edited.tar.gz"
    _tampered(archive, edited)
    assert main(["restore", str(edited), "--database-url", target]) == 2
    assert "checksum mismatch in table snapshots" in capsys.readouterr().err

    broken = tmp_path / "truncated.tar.gz"
    broken.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    assert main(["restore", str(broken), "--database-url", target]) == 2
    assert "corrupted or truncated" in capsys.readouterr().err

    assert counts(target) == {}  # nothing was created: the checks come first


def test_a_non_empty_target_is_refused(
    archive: Path, database_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    before = counts(database_url)["users"]
    assert main(["restore", str(archive), "--database-url", database_url]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "empty database" in err
    assert counts(database_url)["users"] == before


def test_backup_to_s3_and_restore_from_it(
    demo: str, database_url: str, stack: Stack, empty_database: Callable[[], str],
    open_aws: None, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the CLI's client with --endpoint-url: boto3's usual credentials and region
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", os.environ.get("AWS_ACCESS_KEY_ID", "testing"))
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", os.environ.get("AWS_SECRET_ACCESS_KEY", "testing"))
    monkeypatch.setenv("AWS_DEFAULT_REGION", stack.config.region)
    s3 = stack.client("s3")
    bucket = f"pilot-backups-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    where = f"s3://{bucket}/nightly/demo.tar.gz"
    endpoint = ["--endpoint-url", str(stack.endpoint_url)]
    assert main(["backup", "--to", where, "--database-url", database_url, *endpoint]) == 0
    stored = json.loads(s3.get_object(Bucket=bucket, Key="nightly/demo.tar.gz.manifest.json")
                        ["Body"].read())
    head = s3.head_object(Bucket=bucket, Key="nightly/demo.tar.gz")
    assert len(head["Metadata"]["sha256"]) == 64

    target = empty_database()
    assert main(["restore", where, "--database-url", target, *endpoint]) == 0
    assert counts(target)["snapshots"] == stored["tables"]["snapshots"]["rows"]
    capsys.readouterr()
