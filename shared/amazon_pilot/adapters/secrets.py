"""Secrets Manager values, read once per process (cold start) and kept in memory.

Never log what this returns.
"""

from __future__ import annotations

import threading

from amazon_pilot.adapters.aws import client

_cache: dict[str, str] = {}
_lock = threading.Lock()


def get_secret_string(secret_id: str) -> str:
    cached = _cache.get(secret_id)
    if cached is not None:
        return cached
    with _lock:
        cached = _cache.get(secret_id)
        if cached is None:
            response = client("secretsmanager").get_secret_value(SecretId=secret_id)
            cached = str(response["SecretString"])
            _cache[secret_id] = cached
    return cached


def forget_secrets() -> None:
    with _lock:
        _cache.clear()
