"""`pilot backup` / `pilot restore`: a consistent copy of the database and its way back.

A backup is one gzip'd tar holding `manifest.json` and one file per table in COPY's text
format, all read inside a single REPEATABLE READ, READ ONLY transaction (one snapshot:
the row counts, the data and the sequences agree with each other even while the
service keeps writing). The manifest carries the schema version (the latest migration
applied), every migration's name, each table's row count and SHA-256, a checksum over
all the data, the sequences' values, the snapshot partitions and when it was taken.

Restore goes into an EMPTY database only: it checks the checksums before touching the
target, applies this code's migrations up to the backup's schema version (never past
it: `pilot migrate` upgrades afterwards), recreates the partitions the data needs, loads
every table and sets the sequences in one transaction, then compares the row counts
with the manifest before committing. Anything off rolls back and names the problem.

No pg_dump: its major version must be at least the server's, and the embedded server,
the CI server and RDS differ; COPY works against all of them with psycopg alone.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

FORMAT = "amazon-pilot-backup/1"
MANIFEST = "manifest.json"
_CHUNK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message names the problem and the fix."""


@dataclass(frozen=True)
class Location:
    """A local file, or s3://bucket/key."""

    raw: str

    @property
    def is_s3(self) -> bool:
        return self.raw.startswith("s3://")

    @property
    def bucket_key(self) -> tuple[str, str]:
        bucket, _, key = self.raw.removeprefix("s3://").partition("/")
        if not bucket or not key:
            raise BackupError(f"{self.raw}: an S3 location is s3://BUCKET/KEY")
        return bucket, key


def _conninfo(url: str) -> str:
    from psycopg.conninfo import make_conninfo

    from amazon_pilot.platform.dbtls import database_tls
    from amazon_pilot.platform.migrate import libpq_url

    return make_conninfo(libpq_url(url), **database_tls(url))


def _connect(url: str) -> psycopg.Connection[Any]:
    try:
        return psycopg.connect(_conninfo(url), connect_timeout=10)
    except psycopg.OperationalError as exc:
        first = (str(exc).strip().splitlines() or [repr(exc)])[0]
        raise BackupError(f"cannot reach the database ({first})") from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


# ---------------------------------------------------------------- what the schema holds


def _tables(conn: psycopg.Connection[Any]) -> list[str]:
    """Every table of the public schema but the migrations' own bookkeeping; partitioned
    tables as their parent (rows find their partition again on restore)."""
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p') AND NOT c.relispartition"
        " AND c.relname <> 'schema_migrations' ORDER BY c.relname").fetchall()
    return [str(r[0]) for r in rows]


def _columns(conn: psycopg.Connection[Any], table: str) -> list[str]:
    """Stored columns in order (generated ones are computed again on load)."""
    rows = conn.execute(
        "SELECT a.attname FROM pg_attribute a WHERE a.attrelid = %s::regclass"
        " AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''"
        " ORDER BY a.attnum", (f"public.{table}",)).fetchall()
    return [str(r[0]) for r in rows]


def _partitions(conn: psycopg.Connection[Any]) -> list[dict[str, str]]:
    rows = conn.execute(
        "SELECT c.relname, p.relname, pg_get_expr(c.relpartbound, c.oid)"
        " FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " JOIN pg_class p ON p.oid = i.inhparent JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relispartition ORDER BY c.relname").fetchall()
    return [{"name": str(r[0]), "parent": str(r[1]), "bound": str(r[2])} for r in rows]


def _sequences(conn: psycopg.Connection[Any]) -> dict[str, int | None]:
    rows = conn.execute("SELECT sequencename, last_value FROM pg_sequences"
                        " WHERE schemaname = 'public' ORDER BY sequencename").fetchall()
    return {str(r[0]): (None if r[1] is None else int(r[1])) for r in rows}


def _foreign_keys(conn: psycopg.Connection[Any]) -> dict[str, set[str]]:
    """table -> the tables it references (partitions folded into their parent)."""
    rows = conn.execute(
        "SELECT DISTINCT coalesce(pc.relname, c.relname), coalesce(pr.relname, r.relname)"
        " FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid"
        " JOIN pg_class r ON r.oid = k.confrelid"
        " LEFT JOIN pg_inherits ic ON ic.inhrelid = c.oid"
        " LEFT JOIN pg_class pc ON pc.oid = ic.inhparent"
        " LEFT JOIN pg_inherits ir ON ir.inhrelid = r.oid"
        " LEFT JOIN pg_class pr ON pr.oid = ir.inhparent"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE k.contype = 'f' AND n.nspname = 'public'").fetchall()
    refs: dict[str, set[str]] = {}
    for table, referenced in rows:
        if table != referenced:
            refs.setdefault(str(table), set()).add(str(referenced))
    return refs


def load_order(tables: list[str], refs: dict[str, set[str]]) -> list[str]:
    """Referenced tables before the tables that reference them (a cycle, if a schema
    ever has one, keeps name order for its members)."""
    ordered: list[str] = []
    placed: set[str] = set()
    remaining = sorted(tables)
    while remaining:
        ready = [t for t in remaining if not (refs.get(t, set()) & set(remaining)) - placed]
        if not ready:  # a cycle: take the first and go on
            ready = [remaining[0]]
        for table in ready:
            ordered.append(table)
            placed.add(table)
        remaining = [t for t in remaining if t not in placed]
    return ordered


def _schema_versions(conn: psycopg.Connection[Any]) -> list[str]:
    try:
        rows = conn.execute("SELECT version, name FROM schema_migrations ORDER BY version")
    except psycopg.errors.UndefinedTable:
        raise BackupError("the database has no schema_migrations table: not an Amazon "
                          "Pilot database (run `pilot migrate` on a new one)") from None
    return [f"{int(v):04d}_{n}" for v, n in rows.fetchall()]


# ---------------------------------------------------------------- backup


def dump(database_url: str, out: Path, now: Callable[[], datetime] | None = None
         ) -> dict[str, Any]:
    """Write the backup archive to `out`; returns its manifest."""
    with tempfile.TemporaryDirectory(prefix="pilot-backup-") as tmp:
        work = Path(tmp)
        with _connect(database_url) as conn:
            conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
            conn.read_only = True
            with conn.transaction():
                migrations = _schema_versions(conn)
                tables: dict[str, dict[str, Any]] = {}
                overall = hashlib.sha256()
                for table in _tables(conn):
                    columns = _columns(conn, table)
                    rows = int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
                        sql.Identifier(table))).fetchone()[0])  # type: ignore[index]
                    path = work / f"{table}.copy"
                    lines = 0
                    digest = hashlib.sha256()
                    query = sql.SQL("COPY (SELECT {} FROM {}) TO STDOUT").format(
                        sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(table))
                    with conn.cursor() as cur, cur.copy(query) as copy, path.open("wb") as fh:
                        for chunk in copy:
                            data = bytes(chunk)
                            fh.write(data)
                            digest.update(data)
                            lines += data.count(b"\n")
                    if lines != rows:
                        raise BackupError(f"{table}: counted {rows} rows but copied {lines}")
                    overall.update(f"{table}\0{digest.hexdigest()}\n".encode())
                    tables[table] = {"rows": rows, "columns": columns,
                                     "sha256": digest.hexdigest()}
                manifest: dict[str, Any] = {
                    "format": FORMAT,
                    "created_at": (now or (lambda: datetime.now(UTC)))().isoformat(),
                    "schema_version": int(migrations[-1][:4]) if migrations else 0,
                    "migrations": migrations,
                    "server_version": conn.info.server_version,
                    "tables": tables,
                    "sequences": _sequences(conn),
                    "partitions": _partitions(conn),
                    "checksum": overall.hexdigest(),
                }
        out.parent.mkdir(parents=True, exist_ok=True)
        partial = out.with_name(out.name + ".partial")
        # the archive holds password hashes and sealed secrets: readable by its owner only
        partial.touch(mode=0o600)
        partial.chmod(0o600)
        with tarfile.open(partial, "w:gz") as tar:
            body = json.dumps(manifest, indent=2, sort_keys=True).encode()
            info = tarfile.TarInfo(MANIFEST)
            info.size, info.mtime = len(body), int(datetime.now(UTC).timestamp())
            tar.addfile(info, io.BytesIO(body))
            for table in tables:
                tar.add(work / f"{table}.copy", arcname=f"data/{table}.copy")
        partial.replace(out)  # never a half-written file under the final name
    return manifest


def backup(database_url: str, destination: str, s3: Any = None) -> dict[str, Any]:
    """Dump to a file, or to s3://bucket/key (the manifest also next to it as
    KEY.manifest.json, readable without downloading the archive)."""
    where = Location(destination)
    if not where.is_s3:
        return dump(database_url, Path(destination))
    bucket, key = where.bucket_key
    with tempfile.TemporaryDirectory(prefix="pilot-backup-") as tmp:
        archive = Path(tmp) / "backup.tar.gz"
        manifest = dump(database_url, archive)
        sha = _sha256(archive)
        s3.upload_file(str(archive), bucket, key,
                       ExtraArgs={"Metadata": {"sha256": sha,
                                               "schema-version": str(manifest["schema_version"])}})
        s3.put_object(Bucket=bucket, Key=key + ".manifest.json",
                      Body=json.dumps(manifest, indent=2, sort_keys=True).encode(),
                      ContentType="application/json")
    return manifest


# ---------------------------------------------------------------- restore


@contextmanager
def _fetched(source: str, s3: Any) -> Iterator[Path]:
    where = Location(source)
    if not where.is_s3:
        path = Path(source)
        if not path.is_file():
            raise BackupError(f"{source}: no such backup file")
        yield path
        return
    bucket, key = where.bucket_key
    with tempfile.TemporaryDirectory(prefix="pilot-restore-") as tmp:
        path = Path(tmp) / "backup.tar.gz"
        try:
            s3.download_file(bucket, key, str(path))
        except Exception as exc:  # botocore's ClientError and friends
            raise BackupError(f"{source}: cannot download it ({exc})") from None
        yield path


def read_verified(archive: Path, into: Path) -> dict[str, Any]:
    """Unpack into `into` and check everything the manifest promises; returns it."""
    try:
        with tarfile.open(archive, "r:gz") as tar:
            members = {m.name: m for m in tar.getmembers()}
            if MANIFEST not in members:
                raise BackupError(f"{archive}: no {MANIFEST} inside: not a pilot backup")
            handle = tar.extractfile(members[MANIFEST])
            assert handle is not None
            manifest: dict[str, Any] = json.loads(handle.read())
            if manifest.get("format") != FORMAT:
                raise BackupError(f"{archive}: format {manifest.get('format')!r}, this "
                                  f"version reads {FORMAT!r}")
            overall = hashlib.sha256()
            for table, meta in manifest["tables"].items():
                member = members.get(f"data/{table}.copy")
                if member is None or not member.isfile():
                    raise BackupError(f"{archive}: the data of table {table} is missing")
                source = tar.extractfile(member)
                assert source is not None
                digest = hashlib.sha256()
                lines = 0
                with (into / f"{table}.copy").open("wb") as out:
                    while chunk := source.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        lines += chunk.count(b"\n")
                if digest.hexdigest() != meta["sha256"] or lines != meta["rows"]:
                    raise BackupError(
                        f"{archive}: checksum mismatch in table {table} (the file is "
                        "corrupted or was edited); restore from another backup")
                overall.update(f"{table}\0{digest.hexdigest()}\n".encode())
            if overall.hexdigest() != manifest["checksum"]:
                raise BackupError(f"{archive}: checksum mismatch over the whole backup")
    except (tarfile.TarError, gzip.BadGzipFile, EOFError, OSError, json.JSONDecodeError,
            KeyError, zlib.error) as exc:
        raise BackupError(f"{archive}: not a readable backup ({type(exc).__name__}: {exc}); "
                          "it is corrupted or truncated") from None
    return manifest


def _refuse_non_empty(conn: psycopg.Connection[Any], url: str) -> None:
    rows = conn.execute(
        "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S')"
        " ORDER BY c.relname").fetchall()
    if rows:
        from pilot_dev.runtime.stack import _redact

        names = ", ".join(str(r[0]) for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise BackupError(
            f"{_redact(url)} is not empty ({len(rows)} relations: {names}); restore only "
            "goes into an empty database: create one (createdb NAME) and pass its URL")


def _migrations_up_to(manifest: dict[str, Any], into: Path) -> None:
    """This code's migration files up to the backup's schema version, which must be the
    same files (by name) the backed-up database had applied."""
    from amazon_pilot.platform.migrate import discover

    ours = {f"{m.version:04d}_{m.name}": m for m in discover()}
    missing = [name for name in manifest["migrations"] if name not in ours]
    if missing:
        raise BackupError(f"the backup's schema has migrations this code does not know "
                          f"({', '.join(missing)}): restore with the release that took it")
    for name in manifest["migrations"]:
        shutil.copy(ours[name].path, into / ours[name].path.name)


def restore(source: str, database_url: str, s3: Any = None) -> dict[str, Any]:
    """Restore `source` (file or s3://) into the empty database at `database_url`."""
    from amazon_pilot.platform.migrate import apply_migrations

    with tempfile.TemporaryDirectory(prefix="pilot-restore-") as tmp, \
            _fetched(source, s3) as archive:
        data, schema = Path(tmp) / "data", Path(tmp) / "migrations"
        data.mkdir()
        schema.mkdir()
        manifest = read_verified(archive, data)  # nothing touched before this passes
        _migrations_up_to(manifest, schema)
        with _connect(database_url) as conn:
            _refuse_non_empty(conn, database_url)
            conn.commit()
        apply_migrations(database_url, schema)
        try:
            with _connect(database_url) as conn, conn.transaction():
                _load(conn, manifest, data)
        except (BackupError, psycopg.Error) as exc:
            raise BackupError(
                f"{exc}; the data was rolled back but the target now holds the schema: drop "
                "and create the database again before retrying") from None
    return manifest


def _load(conn: psycopg.Connection[Any], manifest: dict[str, Any], data: Path) -> None:
    existing = {p["name"] for p in _partitions(conn)}
    for part in manifest["partitions"]:
        if part["name"] not in existing:
            conn.execute(sql.SQL("CREATE TABLE {} PARTITION OF {} {}").format(
                sql.Identifier(part["name"]), sql.Identifier(part["parent"]),
                sql.SQL(part["bound"])))  # the bound as the server printed it
    tables = list(manifest["tables"])
    unknown = set(tables) - set(_tables(conn))
    if unknown:
        raise BackupError(f"tables {sorted(unknown)} are not in the schema the migrations made")
    for table in load_order(tables, _foreign_keys(conn)):
        columns = manifest["tables"][table]["columns"]
        query = sql.SQL("COPY {} ({}) FROM STDIN").format(
            sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, columns)))
        with conn.cursor() as cur, cur.copy(query) as copy, \
                (data / f"{table}.copy").open("rb") as fh:
            while chunk := fh.read(_CHUNK):
                copy.write(chunk)
    for name, value in manifest["sequences"].items():
        if value is not None:
            conn.execute("SELECT setval(%s, %s, true)", (f"public.{name}", value))
    for table in tables:
        count = int(conn.execute(sql.SQL("SELECT count(*) FROM {}").format(
            sql.Identifier(table))).fetchone()[0])  # type: ignore[index]
        if count != manifest["tables"][table]["rows"]:
            raise BackupError(f"{table}: {count} rows after loading, the manifest says "
                              f"{manifest['tables'][table]['rows']}; nothing was committed")


def summary(manifest: dict[str, Any]) -> str:
    rows = sum(t["rows"] for t in manifest["tables"].values())
    return (f"schema version {manifest['schema_version']:04d}, {len(manifest['tables'])} "
            f"tables, {rows} rows, checksum {manifest['checksum'][:16]}..., "
            f"taken {manifest['created_at']}")
