"""Client-supplied `Idempotency-Key` on POST requests (docs/api.md, "Retrying safely").

A signed-in caller may send `Idempotency-Key: <1-255 visible ASCII characters>` with any
POST. The first request with a key runs and its answer is kept for 24 hours; a retry
with the same key, same caller, same method, path and body gets that answer again
(with `Idempotent-Replayed: true`) and changes nothing. The same key with a different
request is refused (422 IDEMPOTENCY_KEY_REUSED); while the first request is still
running, a retry gets 409 IDEMPOTENCY_KEY_IN_PROGRESS with Retry-After. A 5xx answer is
not kept (the retry runs again). Without a key, or without a valid token, nothing
changes (the route answers 401 itself). Sign-in routes (/v1/auth/...) ignore the header:
their answers carry tokens, which are never stored.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy import text
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from amazon_pilot.platform.db import transaction
from amazon_pilot.platform.errors import error_body

HEADER = b"idempotency-key"
# Sign-in routes answer with tokens, which must never be stored: no keys there.
NOT_KEYED = ("/v1/auth/",)
KEEP_HOURS = 24
IN_PROGRESS_LEASE_S = 60  # a first request that never finished (a crash) frees its key


def _key_of(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == HEADER:
            return value.decode("latin-1")
    return None


def valid_key(key: str) -> bool:
    return 0 < len(key) <= 255 and all(33 <= ord(c) <= 126 for c in key)


class IdempotencyMiddleware:
    """Pure ASGI, inside authentication and rate limits: a refused request keeps no key."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope.get("method") != "POST"
                or str(scope.get("path", "")).startswith(NOT_KEYED)):
            await self.app(scope, receive, send)
            return
        key = _key_of(scope)
        if key is None:
            await self.app(scope, receive, send)
            return
        from amazon_pilot.platform.app import request_id_of
        from amazon_pilot.platform.security import authenticate

        rid = request_id_of(scope)
        if not valid_key(key):
            await _error(scope, receive, send, 422, "IDEMPOTENCY_KEY_INVALID",
                         "Idempotency-Key must be 1 to 255 visible ASCII characters", rid)
            return
        user = authenticate(scope).user
        if user is None:  # the route answers 401 (or 429) itself
            await self.app(scope, receive, send)
            return
        body, receive = await _read_body(receive)
        digest = hashlib.sha256(b"\0".join(
            [scope["method"].encode(), scope["path"].encode(),
             scope.get("query_string", b""), body])).hexdigest()
        claimed, row = claim(user.id, key, scope["method"], scope["path"], digest)
        if not claimed:
            assert row is not None
            if row["request_hash"] != digest:
                await _error(scope, receive, send, 422, "IDEMPOTENCY_KEY_REUSED",
                             "this Idempotency-Key was used for a different request; use a"
                             " new key for a new request", rid)
            elif row["status_code"] is None:
                await _error(scope, receive, send, 409, "IDEMPOTENCY_KEY_IN_PROGRESS",
                             "the first request with this Idempotency-Key is still running;"
                             " retry shortly", rid, headers={"Retry-After": "1"})
            else:
                await _replay(send, row)
            return

        status = 500
        content_type = b"application/json"
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = int(message["status"])
                for name, value in message.get("headers", []):
                    if name == b"content-type":
                        content_type = value
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, capture)
        except BaseException:
            release(user.id, key)
            raise
        if status >= 500:
            release(user.id, key)  # a server failure is not an answer worth keeping
        else:
            record(user.id, key, status, b"".join(chunks), content_type.decode("latin-1"))


async def _read_body(receive: Receive) -> tuple[bytes, Receive]:
    """The whole body (the edge already capped its size), and a receive that replays it."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return body, replay


async def _error(scope: Scope, receive: Receive, send: Send, status: int, code: str,
                 message: str, rid: str, headers: dict[str, str] | None = None) -> None:
    response = JSONResponse(error_body(status, message, rid, code=code), status_code=status,
                            headers=headers)
    await response(scope, receive, send)


async def _replay(send: Send, row: dict[str, Any]) -> None:
    body = bytes(row["response_body"] or b"")
    await send({"type": "http.response.start", "status": int(row["status_code"]), "headers": [
        (b"content-type", str(row["response_type"] or "application/json").encode("latin-1")),
        (b"content-length", str(len(body)).encode()),
        (b"idempotent-replayed", b"true")]})
    await send({"type": "http.response.body", "body": body})


# ---------------------------------------------------------------- the record


def claim(user_id: Any, key: str, method: str, path: str,
          digest: str) -> tuple[bool, dict[str, Any] | None]:
    """(True, None) when this request now owns the key; else (False, the stored row).
    An expired key, or an in-progress claim older than its lease, is taken over."""
    with transaction() as conn:
        row = conn.execute(text(
            "INSERT INTO idempotency_keys (user_id, idempotency_key, method, path, request_hash)"
            " VALUES (:u, :k, :m, :p, :h)"
            " ON CONFLICT (user_id, idempotency_key) DO UPDATE SET method = :m, path = :p,"
            "   request_hash = :h, status_code = NULL, response_body = NULL,"
            "   response_type = NULL, created_at = now()"
            " WHERE idempotency_keys.created_at < now() - make_interval(hours => :keep)"
            "    OR (idempotency_keys.status_code IS NULL AND idempotency_keys.created_at"
            "        < now() - make_interval(secs => :lease))"
            " RETURNING 1"),
            {"u": user_id, "k": key, "m": method, "p": path, "h": digest, "keep": KEEP_HOURS,
             "lease": IN_PROGRESS_LEASE_S}).first()
        if row is not None:
            return True, None
        stored = conn.execute(text(
            "SELECT request_hash, status_code, response_body, response_type"
            " FROM idempotency_keys WHERE user_id = :u AND idempotency_key = :k"),
            {"u": user_id, "k": key}).mappings().one()
        return False, dict(stored)


def record(user_id: Any, key: str, status: int, body: bytes, content_type: str) -> None:
    with transaction() as conn:
        conn.execute(text(
            "UPDATE idempotency_keys SET status_code = :s, response_body = :b,"
            " response_type = :t WHERE user_id = :u AND idempotency_key = :k"),
            {"s": status, "b": body, "t": content_type, "u": user_id, "k": key})


def release(user_id: Any, key: str) -> None:
    with transaction() as conn:
        conn.execute(text(
            "DELETE FROM idempotency_keys WHERE user_id = :u AND idempotency_key = :k"
            " AND status_code IS NULL"), {"u": user_id, "k": key})


def prune() -> int:
    """Keys past their 24 hours go (the reconciler calls this)."""
    with transaction() as conn:
        return int(conn.execute(text(
            "DELETE FROM idempotency_keys WHERE created_at < now() - make_interval(hours => :h)"),
            {"h": KEEP_HOURS}).rowcount)
