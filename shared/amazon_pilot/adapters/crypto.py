"""Secrets at rest: AES-256-GCM (cryptography's AESGCM) with a key from the environment.

Two key sources, chosen by settings:

- ``SECRETS_KMS_KEY_ID`` (AWS): envelope encryption. Each value gets a fresh data key
  from KMS ``GenerateDataKey``; the KMS-wrapped data key is stored next to the
  ciphertext and unwrapped with KMS ``Decrypt`` (unwrapped keys are cached in memory
  per process, so a warm worker does not call KMS for every webhook).
- ``SECRETS_KEY_FILE`` (`pilot run`: .pilot/secrets.key, mode 0600): a key ring, one
  ``<key id>:<base64 32-byte key>`` per line; the FIRST line encrypts, every line
  decrypts.

Stored form (text; the key id is in it, so rotation never strands an old value)::

    enc:v1:file:<key id>:<base64url(nonce || ciphertext+tag)>
    enc:v1:kms:<base64url(wrapped data key)>:<base64url(nonce || ciphertext+tag)>

The purpose ("notification_channels.secret") is the GCM associated data: a value
copied into another column does not decrypt. A value without the ``enc:`` prefix is a
row written before encryption (migration 0012); it is returned as is, and
``pilot secrets encrypt`` (or the daily maintenance job) encrypts it. docs/security.md
says how to rotate.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from amazon_pilot.platform.settings import settings

PREFIX = "enc:v1:"
NONCE_BYTES = 12
KEY_BYTES = 32
_KMS_CACHE_MAX = 256


class SecretsKeyError(RuntimeError):
    """No usable key, or a value that cannot be decrypted (wrong key, tampered)."""


@dataclass(frozen=True)
class Sealed:
    value: str  # what to store
    key_id: str  # "file:<id>" or "kms:<key arn>": which key can open it


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise SecretsKeyError("the stored secret is not valid base64") from exc


def is_sealed(value: str | None) -> bool:
    return bool(value) and str(value).startswith(PREFIX)


# ------------------------------------------------------------------ the local key ring


def new_key_line(key_id: str | None = None) -> str:
    key_id = key_id or f"k{secrets.token_hex(4)}"
    return f"{key_id}:{base64.b64encode(os.urandom(KEY_BYTES)).decode()}"


def create_key_file(path: Path) -> bool:
    """Write a new one-key ring at `path` (0600) unless one is there; True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    try:
        os.write(fd, (new_key_line() + "\n").encode())
    finally:
        os.close(fd)
    return True


def read_key_ring(path: Path) -> list[tuple[str, bytes]]:
    """[(key id, key)], the encrypting key first."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise SecretsKeyError(f"SECRETS_KEY_FILE {path} cannot be read ({exc.strerror})") from exc
    ring: list[tuple[str, bytes]] = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key_id, _, encoded = line.partition(":")
        try:
            key = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if not key_id or ":" in key_id or len(key) != KEY_BYTES:
            raise SecretsKeyError(f"{path} line {number}: expected '<key id>:<base64 of "
                                  f"{KEY_BYTES} bytes>'")
        ring.append((key_id, key))
    if not ring:
        raise SecretsKeyError(f"{path} holds no key")
    return ring


# ------------------------------------------------------------------ KMS

_kms_keys: dict[bytes, bytes] = {}
_kms_lock = threading.Lock()


def _kms_unwrap(wrapped: bytes) -> bytes:
    with _kms_lock:
        cached = _kms_keys.get(wrapped)
    if cached is not None:
        return cached
    from botocore.exceptions import ClientError

    from amazon_pilot.adapters.aws import client

    try:
        plain = bytes(client("kms").decrypt(CiphertextBlob=wrapped)["Plaintext"])
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        raise SecretsKeyError(f"KMS could not unwrap the data key ({code})") from exc
    with _kms_lock:
        if len(_kms_keys) >= _KMS_CACHE_MAX:
            _kms_keys.clear()
        _kms_keys[wrapped] = plain
    return plain


def forget_keys() -> None:
    with _kms_lock:
        _kms_keys.clear()


# ------------------------------------------------------------------ seal / open


def seal(plaintext: str, purpose: str) -> Sealed:
    """Encrypt `plaintext` with the active key; `purpose` must be given again to open."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cfg = settings()
    nonce = os.urandom(NONCE_BYTES)
    if cfg.secrets_kms_key_id:
        from amazon_pilot.adapters.aws import client

        response = client("kms").generate_data_key(KeyId=cfg.secrets_kms_key_id,
                                                   KeySpec="AES_256")
        key, wrapped = bytes(response["Plaintext"]), bytes(response["CiphertextBlob"])
        body = nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
        return Sealed(f"{PREFIX}kms:{_b64(wrapped)}:{_b64(body)}", f"kms:{response['KeyId']}")
    if cfg.secrets_key_file:
        key_id, key = read_key_ring(Path(cfg.secrets_key_file))[0]
        body = nonce + AESGCM(key).encrypt(nonce, plaintext.encode(), purpose.encode())
        return Sealed(f"{PREFIX}file:{key_id}:{_b64(body)}", f"file:{key_id}")
    raise SecretsKeyError("no key for secrets at rest: set SECRETS_KMS_KEY_ID (AWS) or "
                          "SECRETS_KEY_FILE (local); see docs/security.md")


def open_sealed(value: str, purpose: str) -> str:
    """The plaintext of a stored value (a legacy plaintext value is returned as is)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    if not is_sealed(value):
        return value
    kind, _, rest = value[len(PREFIX):].partition(":")
    first, _, encoded = rest.partition(":")
    if not first or not encoded:
        raise SecretsKeyError("the stored secret is malformed")
    if kind == "kms":
        key = _kms_unwrap(_unb64(first))
    elif kind == "file":
        path = settings().secrets_key_file
        if not path:
            raise SecretsKeyError("a secret sealed with a key file, but SECRETS_KEY_FILE "
                                  "is not set")
        ring = dict(read_key_ring(Path(path)))
        if first not in ring:
            raise SecretsKeyError(f"key {first!r} is not in the key ring (rotated out too "
                                  "early? see docs/security.md)")
        key = ring[first]
    else:
        raise SecretsKeyError(f"unknown key kind {kind!r}")
    body = _unb64(encoded)
    try:
        plain = AESGCM(key).decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], purpose.encode())
    except InvalidTag as exc:
        raise SecretsKeyError("the stored secret does not decrypt (wrong key or altered)") \
            from exc
    return plain.decode()


def active_key_id() -> str | None:
    """The key id new values get ("kms:<key ARN>" or "file:<id>"), to find the rows a
    rotation has left under an older key; None when no key is configured."""
    cfg = settings()
    if cfg.secrets_kms_key_id:
        from amazon_pilot.adapters.aws import client

        arn = client("kms").describe_key(KeyId=cfg.secrets_kms_key_id)["KeyMetadata"]["Arn"]
        return f"kms:{arn}"
    if cfg.secrets_key_file:
        return f"file:{read_key_ring(Path(cfg.secrets_key_file))[0][0]}"
    return None
