"""Fixed-window rate limits counted in Postgres, so every Lambda instance shares them.

One statement per decision::

    INSERT INTO rate_limit_counters (bucket, window_start, count) VALUES (:b, :w, 1)
    ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_limit_counters.count + 1
    RETURNING count

The row lock taken by ON CONFLICT ... DO UPDATE makes concurrent increments serial, so
across any number of processes exactly `limit` requests of a window are allowed.

Buckets: ``user:<uuid>`` (authenticated requests, limit from the user's plan, see
amazon_pilot.domain.plans), ``ip:<address>`` (requests without a valid access
token; ``RATE_LIMIT_IP``, default 60) and ``ipauth:<address>``, the ceiling on all
authenticated requests from one address together (``RATE_LIMIT_IP_AUTHENTICATED``,
default 120, but never below the caller's own plan limit): accounts opened side by side
cannot add their allowances up. A request counts in both of its buckets and is refused
when either is over. Window length: ``RATE_LIMIT_WINDOW_SECONDS``
(default 60). Exempt: /v1/health, /v1/health/live, /v1/openapi.json, /v1/docs and its assets.

Response headers: ``X-RateLimit-Limit`` (requests per window), ``X-RateLimit-Remaining``,
``X-RateLimit-Reset`` (seconds until the window resets) and, on a 429, ``Retry-After``.
"""

from __future__ import annotations

import random
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, text

from amazon_pilot.platform.db import autocommit_engine
from amazon_pilot.platform.edge import from_the_edge, header
from amazon_pilot.platform.settings import settings

EXEMPT_PATHS = frozenset({"/v1/health", "/v1/health/live", "/v1/openapi.json", "/v1/docs"})
EXEMPT_PREFIXES = ("/v1/docs/",)

_HIT = """
INSERT INTO rate_limit_counters AS r (bucket, window_start, count)
VALUES (:bucket, to_timestamp(:window_start), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET count = r.count + 1
RETURNING r.count
"""

_HIT_IP = """
INSERT INTO rate_limit_counters AS r (bucket, window_start, count)
VALUES (:ip_bucket, to_timestamp(:window_start), 1)
ON CONFLICT (bucket, window_start) DO UPDATE SET count = r.count + 1
RETURNING r.count
"""

# The authenticated hot path: both counter increments (user, address), the user lookup
# and whether the token's session was revoked (a probe of a partial index), in one round trip.
_HIT_WITH_USER = f"""
WITH hit AS ({_HIT}), ip_hit AS ({_HIT_IP})
SELECT hit.count AS hits, ip_hit.count AS ip_hits,
       u.email, u.role, u.plan, u.is_active, u.auth_epoch,
       EXISTS (SELECT 1 FROM refresh_tokens t WHERE t.family_id = CAST(:session_id AS uuid)
               AND t.revoked_at IS NOT NULL) AS session_revoked
FROM hit CROSS JOIN ip_hit LEFT JOIN users u ON u.id = :user_id
"""

_HIT_WITH_USER_TEXT = text(_HIT_WITH_USER)  # every signed-in request: parsed once

_CLEANUP = "DELETE FROM rate_limit_counters WHERE window_start < now() - interval '1 hour'"
_CLEANUP_PROBABILITY = 0.001

def window_seconds() -> int:
    return settings().rate_limit_window_s


def ip_limit() -> int:
    return settings().rate_limit_ip


def authenticated_ip_limit(plan_limit: int) -> int:
    """The per-address ceiling for signed-in traffic: the setting, or the caller's own
    plan limit when that is higher (one paying user is never capped below the plan)."""
    return max(settings().rate_limit_ip_authenticated, plan_limit)


def is_exempt(path: str) -> bool:
    """The API (/v1) is limited; the dashboard's static pages and files are not."""
    if not path.startswith("/v1/"):
        return True
    return path in EXEMPT_PATHS or path.startswith(EXEMPT_PREFIXES)


@dataclass(frozen=True, slots=True)
class RateDecision:
    limit: int
    count: int
    reset_at: float  # epoch seconds at which the window ends
    per_address: bool = False  # the decision is the address's ceiling, not the user's

    @property
    def allowed(self) -> bool:
        return self.count <= self.limit

    @property
    def remaining(self) -> int:
        return max(0, self.limit - self.count)

    def reset_in(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        return max(1, int(self.reset_at - now + 0.999))

    def headers(self) -> list[tuple[bytes, bytes]]:
        reset = str(self.reset_in()).encode()
        headers = [
            (b"x-ratelimit-limit", str(self.limit).encode()),
            (b"x-ratelimit-remaining", str(self.remaining).encode()),
            (b"x-ratelimit-reset", reset),
        ]
        if not self.allowed:
            headers.append((b"retry-after", reset))
        return headers


def current_window(window: int, now: float | None = None) -> tuple[int, float]:
    """(start of the current window, its end) in epoch seconds."""
    now = time.time() if now is None else now
    start = int(now // window) * window
    return start, float(start + window)


def _engine() -> Engine:
    """One statement per call: the autocommit pool saves the BEGIN/COMMIT round trips."""
    return autocommit_engine()


def _maybe_cleanup(conn: Any) -> None:
    if random.random() < _CLEANUP_PROBABILITY:
        conn.execute(text(_CLEANUP))


def hit(bucket: str, limit: int, window: int | None = None, *,
        now: float | None = None) -> RateDecision:
    """Count one request against `bucket` and say whether it is within `limit`."""
    window = window or window_seconds()
    start, end = current_window(window, now)
    with _engine().connect() as conn:
        count = conn.execute(text(_HIT), {"bucket": bucket, "window_start": start}).scalar_one()
        _maybe_cleanup(conn)
    return RateDecision(limit=limit, count=int(count), reset_at=end)


def hit_with_user(user_id: str, ip: str, window: int | None = None, *,
                  session_id: str | None = None) -> tuple[int, float, Any]:
    """Count one request for the user and for its address (``ipauth:``), and fetch the
    user's row, in one round trip.

    Returns (count, window end, row) where row has ip_hits (the address's count), email,
    role, plan, is_active and auth_epoch, the user's all None when the user no longer
    exists, and session_revoked (whether the session `session_id` was ended; False
    without one).
    """
    window = window or window_seconds()
    start, end = current_window(window)
    with _engine().connect() as conn:
        row = conn.execute(
            _HIT_WITH_USER_TEXT,
            {"bucket": f"user:{user_id}", "ip_bucket": f"ipauth:{ip}",
             "window_start": start, "user_id": user_id, "session_id": session_id},
        ).one()
        _maybe_cleanup(conn)
    return int(row.hits), end, row


def peek(bucket: str, window: int) -> int:
    """The count of the current window without adding to it."""
    start, _ = current_window(window)
    with _engine().connect() as conn:
        value = conn.execute(
            text("SELECT count FROM rate_limit_counters"
                 " WHERE bucket = :bucket AND window_start = to_timestamp(:w)"),
            {"bucket": bucket, "w": start},
        ).scalar()
    return int(value or 0)


def clear(bucket: str) -> None:
    with _engine().connect() as conn:
        conn.execute(text("DELETE FROM rate_limit_counters WHERE bucket = :bucket"),
                     {"bucket": bucket})


def client_ip(scope: MutableMapping[str, Any]) -> str:
    """The caller's address as API Gateway saw it (requestContext.http.sourceIp), or,
    behind the edge, the viewer's address CloudFront put in X-Viewer-Ip: API Gateway
    only sees CloudFront's. That header is believed only on a request carrying the
    edge's X-Origin-Verify token (platform.app.EdgeMiddleware refuses the others)."""
    if from_the_edge(scope):
        viewer = header(scope, b"x-viewer-ip")
        if viewer:
            return viewer
    event = scope.get("aws.event") or {}
    ip = ((event.get("requestContext") or {}).get("http") or {}).get("sourceIp")
    if ip:
        return str(ip)
    client = scope.get("client")
    return str(client[0]) if client else "unknown"
