"""Migrations on deploy, against real Postgres: the migration function answers
CloudFormation's ResponseURL (a real HTTP PUT to a receiver), SUCCESS when the schema
is applied, FAILED with the database's own error when a migration breaks, and a
FAILED answer stops `pilot run` before anything serves."""

from __future__ import annotations

import logging
import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from amazon_pilot.platform.migrate import migrations_dir, migrations_hash
from amazon_pilot.platform.schema_deploy import handle_custom_resource
from amazon_pilot.platform.settings import reset_settings
from pilot_dev.migrations_hash import write
from pilot_dev.runtime.custom_resources import ResponseReceiver
from pilot_dev.runtime.stack import Stack, StackConfig, StackError, ensure_database
from pilot_dev.runtime.template import default_template_path

log = logging.getLogger("test.migrations")
SHIPPED = len(list(migrations_dir().glob("*.sql")))


@pytest.fixture()
def fresh_db(pg_admin_url: str) -> Iterator[str]:
    name = f"pilot_mig_{uuid.uuid4().hex[:8]}"
    url = ensure_database(pg_admin_url, name)
    yield url
    with psycopg.connect(pg_admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture()
def broken_migrations(tmp_path: Path) -> Path:
    """The shipped migrations and one more whose second statement fails."""
    folder = tmp_path / "migrations"
    shutil.copytree(migrations_dir(), folder)
    (folder / "0999_broken.sql").write_text(
        "CREATE TABLE half_done (id int);\nALTER TABLE no_such_table ADD COLUMN x int;\n")
    return folder


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    yield monkeypatch
    monkeypatch.undo()
    reset_settings()


def _invoke(request_type: str, wanted_hash: str, old_hash: str | None = None
            ) -> tuple[dict, dict]:
    with ResponseReceiver() as receiver:
        event = {
            "RequestType": request_type, "ResponseURL": receiver.url("r1"),
            "StackId": "arn:aws:cloudformation:us-east-1:000000000000:stack/t/1",
            "RequestId": "r1", "LogicalResourceId": "SchemaMigrations",
            "ResourceType": "Custom::Migrations",
            "ResourceProperties": {"MigrationsHash": wanted_hash},
        }
        if old_hash is not None:
            event["OldResourceProperties"] = {"MigrationsHash": old_hash}
        returned = handle_custom_resource(event, log)
        answer = receiver.wait("r1", timeout_s=5)
    assert answer is not None, "no PUT reached the ResponseURL"
    assert answer["Status"] == returned["Status"]
    return answer, returned


def _versions(url: str) -> list[int]:
    with psycopg.connect(url) as conn:
        return [r[0] for r in conn.execute("SELECT version FROM schema_migrations ORDER BY 1")]


def _table_exists(url: str, table: str) -> bool:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT to_regclass(%s)", (table,)).fetchone()[0] is not None


def test_create_applies_every_migration_and_answers_success(
        fresh_db: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", fresh_db)
    reset_settings()
    answer, _ = _invoke("Create", migrations_hash())
    assert answer["Status"] == "SUCCESS", answer["Reason"]
    assert answer["PhysicalResourceId"] == "schema-migrations"
    assert len(answer["Data"]["Applied"].split(",")) == SHIPPED
    assert len(_versions(fresh_db)) == SHIPPED
    again, _ = _invoke("Update", migrations_hash())  # a re-run is a no-op
    assert again["Status"] == "SUCCESS" and again["Data"]["Applied"] == "none"
    gone, _ = _invoke("Delete", migrations_hash())  # the stack goes, the data stays
    assert gone["Status"] == "SUCCESS" and len(_versions(fresh_db)) == SHIPPED


def test_a_stale_hash_fails_without_touching_the_database(
        fresh_db: str, env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", fresh_db)
    reset_settings()
    answer, _ = _invoke("Update", "0" * 64)
    assert answer["Status"] == "FAILED"
    assert "HashMismatch" in answer["Reason"] and "migrations_hash --write" in answer["Reason"]
    assert not _table_exists(fresh_db, "schema_migrations")


def test_a_rollback_to_older_migrations_succeeds_and_changes_nothing(
        fresh_db: str, env: pytest.MonkeyPatch) -> None:
    """CloudFormation reverts SchemaMigrations before MigrationFunction: the newer code
    is asked for the older hash, coming from its own."""
    env.setenv("DATABASE_URL", fresh_db)
    reset_settings()
    answer, _ = _invoke("Update", "0" * 64, old_hash=migrations_hash())
    assert answer["Status"] == "SUCCESS" and "rollback" in answer["Data"]["Applied"]
    assert not _table_exists(fresh_db, "schema_migrations")
    # from any other hash, a mismatch still fails
    other, _ = _invoke("Update", "0" * 64, old_hash="1" * 64)
    assert other["Status"] == "FAILED"


def test_a_failing_migration_answers_failed_with_the_database_error(
        fresh_db: str, broken_migrations: Path, env: pytest.MonkeyPatch) -> None:
    env.setenv("DATABASE_URL", fresh_db)
    env.setenv("PILOT_MIGRATIONS_DIR", str(broken_migrations))
    reset_settings()
    answer, _ = _invoke("Update", migrations_hash(broken_migrations))
    assert answer["Status"] == "FAILED"
    assert "no_such_table" in answer["Reason"]  # Postgres's message, not ours
    # The good ones stay applied; the broken one left nothing half done.
    assert len(_versions(fresh_db)) == SHIPPED
    assert not _table_exists(fresh_db, "half_done")


def test_a_failed_migration_stops_the_stack_before_it_serves(
        fresh_db: str, broken_migrations: Path, env: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    # The template as a deploy would see it: its hash names the broken set.
    template = tmp_path / "template.yaml"
    template.write_text(default_template_path().read_text())
    env.setenv("PILOT_MIGRATIONS_DIR", str(broken_migrations))
    reset_settings()
    write(template)
    saved = dict(os.environ)  # the stack exports its variables into this process
    stack = Stack(StackConfig(template_path=template, port=0, database_url=fresh_db,
                              stack_name=f"mig-{uuid.uuid4().hex[:6]}", pollers=False,
                              schedules=False,
                              # moto's IAM enforcement is process-wide and the session's
                              # stack has it on: this second stack's endpoint stays open
                              enforce_iam=False,
                              extra_env={"PILOT_MIGRATIONS_DIR": str(broken_migrations)}))
    try:
        with pytest.raises(StackError, match=r"SchemaMigrations FAILED .*no_such_table"):
            stack.start()
        assert stack.server is None and not stack.pollers
        assert not _table_exists(fresh_db, "half_done")
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_settings()


BROKEN_LAYER = """
import json, sys
sys.modules["aws_lambda_powertools"] = None  # as if the dependencies layer lacked it
sys.path.insert(0, sys.argv[1])
import app
event = json.loads(sys.argv[2])
print(json.dumps(app.handler(event, None)))
"""


@pytest.mark.parametrize(("request_type", "status"), [("Create", "FAILED"),
                                                      ("Delete", "SUCCESS")])
def test_a_function_that_cannot_import_still_answers(request_type: str, status: str) -> None:
    import json
    import subprocess
    import sys

    from pilot_dev.runtime.template import load_template

    folder = load_template().functions["MigrationFunction"].handler_file.parent
    with ResponseReceiver() as receiver:
        event = {"RequestType": request_type, "ResponseURL": receiver.url("b1"),
                 "StackId": "arn:aws:cloudformation:us-east-1:0:stack/t/1", "RequestId": "b1",
                 "LogicalResourceId": "SchemaMigrations", "ResourceProperties": {}}
        done = subprocess.run([sys.executable, "-c", BROKEN_LAYER, str(folder),
                               json.dumps(event)], capture_output=True, text=True, timeout=60)
        answer = receiver.wait("b1", timeout_s=5)
    assert done.returncode == 0, done.stderr
    assert answer is not None and answer["Status"] == status
    assert "cannot start" in answer["Reason"] and "aws_lambda_powertools" in answer["Reason"]
