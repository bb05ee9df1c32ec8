"""How the service reaches Postgres: TLS (which libpq `sslmode` and CA file) and, when
DATABASE_PROXY_HOST is set, an RDS Proxy endpoint in place of the URL's host.

- Local runs (`STAGE=local`) connect as the URL says: the embedded server speaks no TLS.
- Anywhere else TLS is required: `require` at least, and `verify-full` against the
  Amazon RDS CA bundle when the host is an RDS instance, cluster or proxy endpoint
  (`*.rds.amazonaws.com`), so a forged endpoint cannot read the password.
- A URL or DATABASE_SSLMODE asking for less (disable, allow, prefer) outside local runs
  is refused at the first connection, with the reason, instead of silently obeyed.

The bundle is AWS's public "global bundle" of RDS root certificates
(https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem, described in the
Amazon RDS User Guide, "Using SSL/TLS to encrypt a connection to a DB instance"),
placed at certs/rds-global-bundle.pem by scripts/fetch-rds-ca.sh before `sam build`.
RDS Proxy endpoints (`*.proxy-*.rds.amazonaws.com`) present certificates from AWS
Certificate Manager instead, which chain to the Amazon Trust Services roots: those are
verified against certifi's bundle (RDS User Guide, "Using TLS/SSL with RDS Proxy").
"""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

RDS_HOST = re.compile(r"\.rds\.amazonaws\.com(\.cn)?$", re.IGNORECASE)
PROXY_HOST = re.compile(r"\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(\.cn)?$",
                        re.IGNORECASE)
RDS_BUNDLE = Path(__file__).resolve().parent / "certs" / "rds-global-bundle.pem"
ENCRYPTED = ("require", "verify-ca", "verify-full")
PLAINTEXT_POSSIBLE = ("disable", "allow", "prefer")


class DatabaseTlsError(RuntimeError):
    """The connection would not be encrypted (or not verified) where it must be."""


def is_rds_host(host: str) -> bool:
    return bool(RDS_HOST.search(host.rstrip(".")))


def _public_roots() -> str:
    import certifi

    return str(certifi.where())


def tls_parameters(url: str, *, stage: str, sslmode: str | None = None,
                   sslrootcert: str | None = None, host: str | None = None) -> dict[str, str]:
    """libpq keyword parameters to pass beside `url` (they override the URL's own).
    `host`: where the connection really goes, when not the URL's host (a proxy)."""
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    wanted = sslmode or (query.get("sslmode") or [""])[-1] or None
    root = sslrootcert or (query.get("sslrootcert") or [""])[-1] or None
    if stage == "local":
        return {k: v for k, v in (("sslmode", wanted), ("sslrootcert", root)) if v}
    host = host or parts.hostname or (query.get("host") or [""])[-1]
    if PROXY_HOST.search(host.rstrip(".")):
        if wanted and wanted != "verify-full":
            raise DatabaseTlsError(
                f"sslmode={wanted} for the RDS Proxy {host}: proxies are reached with "
                f"verify-full")
        return {"sslmode": "verify-full", "sslrootcert": root or _public_roots()}
    if is_rds_host(host):
        if wanted and wanted != "verify-full":
            raise DatabaseTlsError(
                f"sslmode={wanted} for the RDS host {host}: RDS connections use verify-full")
        cert = Path(root) if root else RDS_BUNDLE
        if not cert.is_file():
            raise DatabaseTlsError(
                f"the RDS CA bundle {cert} is missing: run scripts/fetch-rds-ca.sh before "
                f"`sam build`, or set DATABASE_SSLROOTCERT")
        return {"sslmode": "verify-full", "sslrootcert": str(cert)}
    if wanted in PLAINTEXT_POSSIBLE:
        raise DatabaseTlsError(
            f"sslmode={wanted} may connect in plaintext; outside local runs use require, "
            f"verify-ca or verify-full")
    if wanted and wanted not in ENCRYPTED:
        raise DatabaseTlsError(f"unknown sslmode {wanted!r}")
    params = {"sslmode": wanted or "require"}
    if root:
        params["sslrootcert"] = root
    return params


def database_tls(url: str) -> dict[str, str]:
    """The libpq parameters this process adds to `url`: the RDS Proxy host when one is
    configured (DATABASE_PROXY_HOST: same user, password and database, other host),
    and the TLS that host requires."""
    from amazon_pilot.platform.settings import settings

    cfg = settings()
    params = tls_parameters(url, stage=cfg.stage, sslmode=cfg.database_sslmode,
                            sslrootcert=cfg.database_sslrootcert,
                            host=cfg.database_proxy_host)
    if cfg.database_proxy_host:
        params["host"] = cfg.database_proxy_host
    return params
