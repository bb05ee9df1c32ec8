"""The shared read-through cache (cache_entries): one Postgres table that every
function and worker sees, so a value computed once serves them all until it expires."""

from __future__ import annotations

from typing import Protocol

from amazon_pilot.db.tracking import cache_get, cache_put
from amazon_pilot.platform.db import transaction


class Cache(Protocol):
    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str, ttl_s: int) -> None: ...


class DbCache:
    """cache_entries rows; each call is its own short transaction."""

    def get(self, key: str) -> str | None:
        with transaction() as conn:
            return cache_get(conn, key)

    def put(self, key: str, value: str, ttl_s: int) -> None:
        with transaction() as conn:
            cache_put(conn, key, value, ttl_s, [])
