"""verify-full, proven against a Postgres that speaks TLS: a server of our own (the
pgserver wheel's binaries) with a certificate from a throwaway CA. What we pass, libpq
enforces: the right CA and host name connect encrypted; another CA, or a name the
certificate does not carry, is refused before a password is sent."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from psycopg.conninfo import make_conninfo

from amazon_pilot.platform.dbtls import tls_parameters


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _ca(common: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name(common)).issuer_name(_name(common))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return key, cert


def _server_cert(ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate
                 ) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(_name("localhost")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            # the name "localhost" only: connecting by IP address must fail verify-full
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TlsPostgres:
    def __init__(self, root: Path, bin_dir: Path) -> None:
        self.bin = bin_dir
        self.root = root
        self.data = root / "data"
        self.port = _free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            from pgserver.utils import ensure_user_exists

            ensure_user_exists("pgserver")
            self.as_user = ["runuser", "-u", "pgserver", "--"]

    def run(self, *args: str) -> None:
        subprocess.run([*self.as_user, *args], check=True, capture_output=True, timeout=60)

    def start(self, key: ec.EllipticCurvePrivateKey, cert: x509.Certificate) -> None:
        self.root.chmod(0o777)
        self.run(str(self.bin / "initdb"), "-D", str(self.data), "-U", "postgres",
                 "--auth=trust", "--no-sync")
        (self.data / "server.crt").write_bytes(_pem(cert))
        (self.data / "server.key").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()))
        (self.data / "server.key").chmod(0o600)
        if self.as_user:
            shutil.chown(self.data / "server.crt", "pgserver", "pgserver")
            shutil.chown(self.data / "server.key", "pgserver", "pgserver")
        with (self.data / "postgresql.conf").open("a") as conf:
            conf.write(f"\nssl = on\nlisten_addresses = '127.0.0.1'\nport = {self.port}\n"
                       f"unix_socket_directories = '{self.root}'\nfsync = off\n")
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-w", "-t", "30",
                 "-l", str(self.root / "log"), "start")

    def stop(self) -> None:
        self.run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "stop")


def _postgres_with_tls() -> Path | None:
    """The distribution's Postgres binaries (the machine's Postgres package); the
    pgserver wheel's are built without TLS."""
    for bin_dir in sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True):
        if (bin_dir / "initdb").is_file() and (bin_dir / "pg_ctl").is_file():
            return bin_dir
    return None


Server = tuple[TlsPostgres, Path, Path]  # the server, its CA, another CA


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bin_dir = _postgres_with_tls()
    if bin_dir is None:
        pytest.skip("no Postgres server package with TLS (apt-get install postgresql)")
    root = Path(tempfile.mkdtemp(prefix="pilot-tls-"))
    ca_key, ca = _ca("Test database CA")
    _, other_ca = _ca("Some other CA")
    (root / "ca.pem").write_bytes(_pem(ca))
    (root / "other-ca.pem").write_bytes(_pem(other_ca))
    pg = TlsPostgres(root, bin_dir)
    try:
        pg.start(*_server_cert(ca_key, ca))
    except subprocess.CalledProcessError as exc:
        log = (root / "log").read_text() if (root / "log").exists() else ""
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"the TLS test server did not start: {exc.stderr!r} {log[-2000:]}")
    yield pg, root / "ca.pem", root / "other-ca.pem"
    pg.stop()
    shutil.rmtree(root, ignore_errors=True)


def _connect(url: str, **params: str) -> bool:
    with psycopg.connect(make_conninfo(url, connect_timeout=5, **params)) as conn:
        row = conn.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").fetchone()
        return bool(row and row[0])


def test_verify_full_with_the_right_ca_connects_encrypted(server: Server) -> None:
    pg, ca, _ = server
    url = f"postgresql://postgres@localhost:{pg.port}/postgres"
    params = tls_parameters(url, stage="prod", sslmode="verify-full", sslrootcert=str(ca))
    assert params == {"sslmode": "verify-full", "sslrootcert": str(ca)}
    assert _connect(url, **params) is True


def test_another_ca_is_refused(server: Server) -> None:
    pg, _, other = server
    url = f"postgresql://postgres@localhost:{pg.port}/postgres"
    params = tls_parameters(url, stage="prod", sslmode="verify-full", sslrootcert=str(other))
    with pytest.raises(psycopg.OperationalError, match="certificate verify failed"):
        _connect(url, **params)


def test_a_name_the_certificate_does_not_carry_is_refused(server: Server) -> None:
    pg, ca, _ = server
    url = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    params = tls_parameters(url, stage="prod", sslmode="verify-full", sslrootcert=str(ca))
    with pytest.raises(psycopg.OperationalError, match="does not match host name"):
        _connect(url, **params)


def test_require_is_encrypted_by_default_outside_local_runs(server: Server) -> None:
    pg, _, _ = server
    url = f"postgresql://postgres@127.0.0.1:{pg.port}/postgres"
    params = tls_parameters(url, stage="prod")
    assert params == {"sslmode": "require"}
    assert _connect(url, **params) is True
