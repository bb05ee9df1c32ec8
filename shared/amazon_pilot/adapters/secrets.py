"""Secrets Manager values, read on first use and kept in memory for the container's
life (a cold start pays one call per secret; nothing is read at import).

Never log what this returns.
"""

from __future__ import annotations

import json
import threading

from amazon_pilot.adapters.aws import client
from amazon_pilot.platform.settings import credential_scope

# keyed by identity too: the local runtime runs every function in one process, and a
# function whose role may not read a secret must not get it from another's cache
_cache: dict[tuple[str, str], str] = {}
_fields: dict[tuple[str, ...], str] = {}
_lock = threading.Lock()


def get_secret_string(secret_id: str) -> str:
    key = (credential_scope(), secret_id)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    with _lock:
        cached = _cache.get(key)
        if cached is None:
            response = client("secretsmanager").get_secret_value(SecretId=secret_id)
            cached = str(response["SecretString"])
            _cache[key] = cached
    return cached


def secret_field(secret_id: str, *names: str) -> str:
    """A secret's value: the first of `names` that is set when it holds a JSON object
    (as RDS-style secrets do), else the whole string. Cached: callers on hot paths (the
    database URL on every connection) pay a dict lookup."""
    key = (credential_scope(), secret_id, *names)
    cached = _fields.get(key)
    if cached is not None:
        return cached
    raw = get_secret_string(secret_id).strip()
    value = raw
    if raw.startswith("{"):
        data = json.loads(raw)
        found = [str(data[name]) for name in names if data.get(name)]
        if not found:
            raise RuntimeError(f"secret {secret_id.rsplit(':', 1)[-1]} is JSON without any "
                               f"of the fields {', '.join(names)}")
        value = found[0]
    _fields[key] = value
    return value


def forget_secrets() -> None:
    with _lock:
        _cache.clear()
        _fields.clear()
