"""The API's answer when the database is unavailable (platform/app.py): a route whose
query times out, or whose connection died, answers 503 SERVICE_UNAVAILABLE with
Retry-After in the one error shape, not a 500; other database errors stay what they were.

The errors are the ones SQLAlchemy raises over psycopg for these cases (psycopg's own
classes; platform/db.is_unavailable is what recognises them)."""

from __future__ import annotations

import psycopg
from aws_lambda_powertools import Logger
from fastapi import APIRouter
from fastapi.testclient import TestClient
from sqlalchemy import exc as sa_exc

from amazon_pilot.platform.app import create_app
from amazon_pilot.platform.db import RETRY_AFTER_S, is_unavailable

router = APIRouter()
FAILURES = {
    "timeout": sa_exc.OperationalError(
        "SELECT 1", {}, psycopg.errors.QueryCanceled("canceling statement due to statement"
                                                     " timeout")),
    "lock": sa_exc.OperationalError(
        "UPDATE", {}, psycopg.errors.LockNotAvailable("canceling statement due to lock"
                                                      " timeout")),
    "pool": sa_exc.TimeoutError("QueuePool limit of size 5 overflow 10 reached"),
    "bug": sa_exc.ProgrammingError("SELECT nope", {}, psycopg.errors.UndefinedColumn("nope")),
}


@router.get("/v1/health")  # an exempt path: no authentication in front of it
async def fail(kind: str) -> None:
    raise FAILURES[kind]


def test_database_unavailability_is_a_503_with_retry_after() -> None:
    client = TestClient(create_app("t", [router], Logger(service="t")),
                        raise_server_exceptions=False)
    for kind in ("timeout", "lock", "pool"):
        response = client.get("/v1/health", params={"kind": kind})
        assert response.status_code == 503, (kind, response.text)
        assert response.headers["retry-after"] == str(RETRY_AFTER_S)
        error = response.json()["error"]
        assert error["code"] == "SERVICE_UNAVAILABLE" and "SELECT" not in error["message"]
    assert client.get("/v1/health", params={"kind": "bug"}).status_code == 500
    assert is_unavailable(FAILURES["timeout"]) and not is_unavailable(FAILURES["bug"])
    assert not is_unavailable(ValueError("not a database error"))
