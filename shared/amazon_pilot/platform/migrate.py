"""Schema migrations: numbered SQL files applied once each, in order, under a lock.

Plain SQL (not generated) because the schema leans on PostgreSQL features an ORM
diff would not express: range partitions, partial indexes, advisory locks.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg.conninfo import make_conninfo

MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
_LOCK_KEY = 7_210_001  # pg_advisory_lock key reserved for migrations


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def migrations_dir() -> Path:
    from amazon_pilot.platform.settings import settings

    override = settings().migrations_dir
    if override:
        return Path(override)
    # Shipped inside the package (the SharedLayer) so the migration function finds them.
    return Path(__file__).resolve().parents[1] / "migrations"


def discover(directory: Path | None = None) -> list[Migration]:
    directory = directory or migrations_dir()
    found = []
    for path in sorted(directory.glob("*.sql")):
        match = MIGRATION_FILE.match(path.name)
        if not match:
            raise ValueError(f"migration file name {path.name!r} is not NNNN_name.sql")
        found.append(Migration(int(match.group(1)), match.group(2), path))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise ValueError(f"two migrations share a version number in {directory}")
    return found


def migrations_hash(directory: Path | None = None) -> str:
    """SHA-256 over every migration's file name and bytes, in order. template.yaml's
    SchemaMigrations resource carries it, so a change of any migration changes the
    custom resource and CloudFormation runs the migration function again."""
    digest = hashlib.sha256()
    for migration in discover(directory):
        digest.update(migration.path.name.encode() + b"\0")
        digest.update(migration.path.read_bytes() + b"\0")
    return digest.hexdigest()


def libpq_url(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def apply_migrations(database_url: str, directory: Path | None = None) -> list[str]:
    """Apply what is missing; returns the names applied. Safe to run concurrently."""
    applied_now: list[str] = []
    from amazon_pilot.platform.dbtls import database_tls

    conninfo = make_conninfo(libpq_url(database_url), **database_tls(database_url))
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version integer PRIMARY KEY, name text NOT NULL,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
            for migration in discover(directory):
                if migration.version in done:
                    continue
                with conn.transaction():
                    conn.execute(migration.path.read_text())
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                applied_now.append(f"{migration.version:04d}_{migration.name}")
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
    return applied_now
