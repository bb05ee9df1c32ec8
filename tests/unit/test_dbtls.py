"""TLS to Postgres: plain connections only in local runs, `require` at least elsewhere,
`verify-full` against the RDS CA bundle for RDS endpoints."""

from __future__ import annotations

from pathlib import Path

import pytest

from amazon_pilot.platform.dbtls import DatabaseTlsError, is_rds_host, tls_parameters

RDS = "postgresql://app:pw@pilot.abc123xyz.eu-west-1.rds.amazonaws.com:5432/pilot"
PROXY = "postgresql://app:pw@pilot-proxy.proxy-abc123xyz.us-east-1.rds.amazonaws.com/pilot"
ELSEWHERE = "postgresql://app:pw@db.example.net:5432/pilot"


@pytest.fixture()
def bundle(tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    path.write_text("-----BEGIN CERTIFICATE-----\n")
    return str(path)


def test_local_runs_connect_as_the_url_says() -> None:
    assert tls_parameters("postgresql://postgres@127.0.0.1/pilot", stage="local") == {}
    assert tls_parameters(ELSEWHERE + "?sslmode=disable", stage="local") == {
        "sslmode": "disable"}


@pytest.mark.parametrize("url", [RDS, PROXY, RDS.replace("amazonaws.com", "amazonaws.com.cn")])
def test_rds_endpoints_are_verified_in_full(url: str, bundle: str) -> None:
    assert tls_parameters(url, stage="prod", sslrootcert=bundle) == {
        "sslmode": "verify-full", "sslrootcert": bundle}


def test_rds_without_the_bundle_fails_closed(tmp_path: Path) -> None:
    with pytest.raises(DatabaseTlsError, match=r"CA bundle .* missing.*fetch-rds-ca"):
        tls_parameters(RDS, stage="prod", sslrootcert=str(tmp_path / "absent.pem"))


@pytest.mark.parametrize("mode", ["require", "verify-ca", "disable", "prefer"])
def test_rds_accepts_nothing_weaker_than_verify_full(mode: str, bundle: str) -> None:
    with pytest.raises(DatabaseTlsError, match="RDS connections use verify-full"):
        tls_parameters(RDS + f"?sslmode={mode}", stage="prod", sslrootcert=bundle)


def test_other_hosts_in_aws_require_tls_at_least() -> None:
    assert tls_parameters(ELSEWHERE, stage="prod") == {"sslmode": "require"}
    assert tls_parameters(ELSEWHERE, stage="dev", sslmode="verify-ca",
                          sslrootcert="/ca.pem") == {"sslmode": "verify-ca",
                                                     "sslrootcert": "/ca.pem"}


@pytest.mark.parametrize("mode", ["disable", "allow", "prefer"])
def test_settings_that_could_fall_back_to_plaintext_are_refused(mode: str) -> None:
    with pytest.raises(DatabaseTlsError, match="plaintext"):
        tls_parameters(ELSEWHERE + f"?sslmode={mode}", stage="prod")
    with pytest.raises(DatabaseTlsError, match="plaintext"):
        tls_parameters(ELSEWHERE, stage="prod", sslmode=mode)


def test_rds_host_names() -> None:
    assert is_rds_host("x.cluster-abc.us-east-1.rds.amazonaws.com.")
    assert not is_rds_host("rds.amazonaws.com.attacker.example")
    assert not is_rds_host("localhost")


def test_proxies_are_verified_against_the_amazon_trust_services_roots() -> None:
    import certifi

    params = tls_parameters(PROXY, stage="prod")
    assert params == {"sslmode": "verify-full", "sslrootcert": certifi.where()}
    assert "Amazon Root CA 1" in Path(certifi.where()).read_text()
    # a plain RDS host beside it still needs the RDS bundle
    routed = tls_parameters(ELSEWHERE, stage="prod", host="p.proxy-abc.eu-west-1.rds.amazonaws.com")
    assert routed["sslmode"] == "verify-full"


def test_the_proxy_host_replaces_the_urls_and_decides_the_tls(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from amazon_pilot.platform.dbtls import database_tls
    from amazon_pilot.platform.settings import reset_settings

    monkeypatch.setenv("STAGE", "prod")
    monkeypatch.setenv("DATABASE_PROXY_HOST", "pilot.proxy-abc123.us-east-1.rds.amazonaws.com")
    reset_settings()
    try:
        params = database_tls(ELSEWHERE)
    finally:
        monkeypatch.undo()
        reset_settings()
    assert params["host"] == "pilot.proxy-abc123.us-east-1.rds.amazonaws.com"
    assert params["sslmode"] == "verify-full"
