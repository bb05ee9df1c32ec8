"""Secrets at rest: AES-GCM with a local key ring, and envelope encryption with KMS
(moto's KMS, which wraps and unwraps data keys as AWS does)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from amazon_pilot.adapters import crypto
from amazon_pilot.platform.settings import reset_settings

PURPOSE = "notification_channels.secret"


@pytest.fixture()
def env(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str, str], None]]:
    def set_variable(name: str, value: str) -> None:
        monkeypatch.setenv(name, value)
        reset_settings()

    monkeypatch.delenv("SECRETS_KMS_KEY_ID", raising=False)
    monkeypatch.delenv("SECRETS_KEY_FILE", raising=False)
    reset_settings()
    yield set_variable
    monkeypatch.undo()
    reset_settings()
    crypto.forget_keys()


def test_a_key_file_seals_and_opens_and_rotation_keeps_old_values_readable(
    tmp_path: Path, env: Callable[[str, str], None]
) -> None:
    ring = tmp_path / "secrets.key"
    assert crypto.create_key_file(ring) and not crypto.create_key_file(ring)
    assert ring.stat().st_mode & 0o777 == 0o600
    env("SECRETS_KEY_FILE", str(ring))
    old = crypto.seal("whsec_first", PURPOSE)
    assert old.value.startswith("enc:v1:file:") and "whsec_first" not in old.value
    assert crypto.open_sealed(old.value, PURPOSE) == "whsec_first"
    assert crypto.seal("whsec_first", PURPOSE).value != old.value  # a fresh nonce each time

    # rotate: a new key first, the old one kept below it for reading
    ring.write_text(crypto.new_key_line("k2026b") + "\n" + ring.read_text())
    new = crypto.seal("whsec_second", PURPOSE)
    assert new.key_id == "file:k2026b" == crypto.active_key_id() != old.key_id
    assert crypto.open_sealed(old.value, PURPOSE) == "whsec_first"
    assert crypto.open_sealed(new.value, PURPOSE) == "whsec_second"

    # the old key removed too early: a clear error, not garbage
    ring.write_text(ring.read_text().splitlines()[0] + "\n")
    with pytest.raises(crypto.SecretsKeyError, match="not in the key ring"):
        crypto.open_sealed(old.value, PURPOSE)


def test_tampering_or_another_purpose_does_not_open(
    tmp_path: Path, env: Callable[[str, str], None]
) -> None:
    ring = tmp_path / "secrets.key"
    crypto.create_key_file(ring)
    env("SECRETS_KEY_FILE", str(ring))
    sealed = crypto.seal("whsec_x", PURPOSE).value
    with pytest.raises(crypto.SecretsKeyError, match="does not decrypt"):
        crypto.open_sealed(sealed, "users.totp_secret")
    flipped = sealed[:-2] + ("A" if sealed[-2] != "A" else "B") + sealed[-1]
    with pytest.raises(crypto.SecretsKeyError):
        crypto.open_sealed(flipped, PURPOSE)
    assert crypto.open_sealed("whsec_legacy_plaintext", PURPOSE) == "whsec_legacy_plaintext"


def test_no_key_is_a_clear_error(env: Callable[[str, str], None], tmp_path: Path) -> None:
    with pytest.raises(crypto.SecretsKeyError, match="SECRETS_KMS_KEY_ID"):
        crypto.seal("x", PURPOSE)
    bad = tmp_path / "bad.key"
    bad.write_text("k1:not-base64!\n")
    env("SECRETS_KEY_FILE", str(bad))
    with pytest.raises(crypto.SecretsKeyError, match="line 1"):
        crypto.seal("x", PURPOSE)


def test_kms_envelope_encryption(env: Callable[[str, str], None], open_aws: None) -> None:
    # moto's server rather than mock_aws: leaving mock_aws resets every in-process moto
    # backend, the running session stack's queues and roles included
    from moto.server import ThreadedMotoServer

    from amazon_pilot.adapters.aws import client, reset_clients

    env("AWS_ACCESS_KEY_ID", "testing")
    env("AWS_SECRET_ACCESS_KEY", "testing")
    env("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    try:
        reset_clients()
        first = client("kms").create_key(Description="old")["KeyMetadata"]
        env("SECRETS_KMS_KEY_ID", first["KeyId"])
        old = crypto.seal("whsec_kms", PURPOSE)
        assert old.value.startswith("enc:v1:kms:") and old.key_id == f"kms:{first['Arn']}"
        assert crypto.active_key_id() == old.key_id
        crypto.forget_keys()
        assert crypto.open_sealed(old.value, PURPOSE) == "whsec_kms"  # KMS Decrypt
        # a new KMS key: old values still open (the wrapped key names its KMS key)
        second = client("kms").create_key(Description="new")["KeyMetadata"]
        env("SECRETS_KMS_KEY_ID", second["KeyId"])
        crypto.forget_keys()
        assert crypto.open_sealed(old.value, PURPOSE) == "whsec_kms"
        assert crypto.seal("y", PURPOSE).key_id == f"kms:{second['Arn']}"
        # a wrapped key KMS does not accept: a clear error, no plaintext
        crypto.forget_keys()
        head, wrapped, body = old.value.rsplit(":", 2)
        forged = crypto._b64(b"\x01" * 20 + crypto._unb64(wrapped)[20:])
        with pytest.raises(crypto.SecretsKeyError, match="KMS could not unwrap"):
            crypto.open_sealed(f"{head}:{forged}:{body}", PURPOSE)
    finally:
        server.stop()
        reset_clients()
