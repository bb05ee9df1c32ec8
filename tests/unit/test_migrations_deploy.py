"""Migrations on deploy, the parts that need no database: the template's hash is the
shipped migrations' hash, any change of a migration changes it, the schema's readers
wait for it, and the CloudFormation answer keeps to its documented size."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from amazon_pilot.platform.custom_resource import MAX_BODY, response_body
from amazon_pilot.platform.migrate import migrations_dir, migrations_hash
from pilot_dev import migrations_hash as hash_tool
from pilot_dev.runtime.custom_resources import custom_resources
from pilot_dev.runtime.template import load_template

# Serve no schema: the dashboard's static files, the migration function itself, and the
# outside probe (it reaches the service through its public URL only).
NO_SCHEMA = {"WebFunction", "MigrationFunction", "ProbeFunction"}


def test_template_carries_the_hash_of_the_shipped_migrations() -> None:
    assert hash_tool.template_hash() == migrations_hash(), (
        "template.yaml is stale: run python -m pilot_dev.migrations_hash --write")
    assert hash_tool.main([]) == 0


def test_any_change_of_a_migration_changes_the_hash(tmp_path: Path) -> None:
    copy = tmp_path / "m"
    shutil.copytree(migrations_dir(), copy)
    before = migrations_hash(copy)
    assert migrations_hash(copy) == before  # stable
    first = sorted(copy.glob("*.sql"))[0]
    first.write_text(first.read_text() + "\n-- a comment counts: the file is what runs\n")
    edited = migrations_hash(copy)
    (copy / "0999_new.sql").write_text("SELECT 1;")
    added = migrations_hash(copy)
    first.rename(copy / first.name.replace(first.name[:4], "0998"))
    renamed = migrations_hash(copy)
    assert len({before, edited, added, renamed}) == 4


def test_stale_template_is_reported_and_rewritten(tmp_path: Path) -> None:
    from pilot_dev.runtime.template import default_template_path

    copy = tmp_path / "template.yaml"
    text = default_template_path().read_text().replace(migrations_hash(), "0" * 64)
    copy.write_text(text)
    assert hash_tool.template_hash(copy) == "0" * 64
    assert hash_tool.write(copy) is True
    assert hash_tool.template_hash(copy) == migrations_hash()
    assert hash_tool.write(copy) is False


def test_the_custom_resource_runs_the_migration_function() -> None:
    template = load_template()
    (resource,) = custom_resources(template)
    assert resource.logical_id == "SchemaMigrations"
    assert resource.function == "MigrationFunction"
    assert template.functions["MigrationFunction"].handler_file.is_file()


def test_every_reader_of_the_schema_waits_for_the_migrations() -> None:
    template = load_template()
    missing = []
    for logical_id in template.functions:
        depends = template.resources[logical_id].get("DependsOn", [])
        depends = [depends] if isinstance(depends, str) else depends
        if logical_id not in NO_SCHEMA and "SchemaMigrations" not in depends:
            missing.append(logical_id)
    assert not missing, f"DependsOn: SchemaMigrations missing on {missing}"


EVENT = {"StackId": "arn:aws:cloudformation:us-east-1:1:stack/s/x", "RequestId": "r",
         "LogicalResourceId": "SchemaMigrations"}


def test_response_carries_the_fields_cloudformation_reads() -> None:
    body = json.loads(response_body(EVENT, "SUCCESS", physical_id="p", data={"A": "b"}))
    assert body == {"Status": "SUCCESS", "Reason": "", "PhysicalResourceId": "p",
                    "StackId": EVENT["StackId"], "RequestId": "r",
                    "LogicalResourceId": "SchemaMigrations", "NoEcho": False,
                    "Data": {"A": "b"}}
    with pytest.raises(ValueError, match="SUCCESS or FAILED"):
        response_body(EVENT, "OK", physical_id="p")


def test_a_long_reason_is_cut_to_the_documented_4096_bytes() -> None:
    reason = "psycopg.errors.SyntaxError: " + "x" * 10_000
    encoded = response_body(EVENT, "FAILED", physical_id="p", reason=reason)
    assert len(encoded) <= MAX_BODY
    assert json.loads(encoded)["Reason"].startswith("psycopg.errors.SyntaxError: xxx")
