"""Idempotency-Key on POSTs that create something: a retry with the same key gets the
first answer and creates nothing more; the key cannot be reused for another request."""

from __future__ import annotations

import uuid

import httpx
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from tests.integration.sellers import auth, new_seller


def count(sql: str, **params: object) -> int:
    with get_engine().connect() as conn:
        return int(conn.execute(text(sql), params).scalar_one())


def asin() -> str:
    return "B0" + uuid.uuid4().hex[:8].upper()


def test_a_retried_add_is_replayed_not_repeated(api: httpx.Client) -> None:
    seller = new_seller(api)
    key = {"Idempotency-Key": f"add-{uuid.uuid4()}"}
    body = {"asin": asin()}
    first = api.post("/v1/products", json=body, headers={**auth(seller), **key})
    again = api.post("/v1/products", json=body, headers={**auth(seller), **key})
    assert first.status_code == again.status_code == 202, (first.text, again.text)
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert count("SELECT count(*) FROM tracked_products WHERE user_id = :u",
                 u=seller["id"]) == 1
    # without the key the same body is a new request: the product is already tracked
    assert api.post("/v1/products", json=body, headers=auth(seller)).status_code == 409


def test_a_retried_group_creation_makes_one_group(api: httpx.Client) -> None:
    seller = new_seller(api)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"name": "rivals", "main": asin(), "competitors": [asin(), asin(), asin()]}
    answers = [api.post("/v1/competitor-groups", json=body, headers={**auth(seller), **key})
               for _ in range(3)]
    assert {a.status_code for a in answers} == {201}
    assert len({a.json()["id"] for a in answers}) == 1
    assert count("SELECT count(*) FROM competitor_groups WHERE user_id = :u",
                 u=seller["id"]) == 1


def test_the_same_key_for_another_request_is_refused(api: httpx.Client) -> None:
    seller = new_seller(api)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    assert api.post("/v1/products", json={"asin": asin()},
                    headers={**auth(seller), **key}).status_code == 202
    other = api.post("/v1/products", json={"asin": asin()}, headers={**auth(seller), **key})
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert count("SELECT count(*) FROM tracked_products WHERE user_id = :u",
                 u=seller["id"]) == 1


def test_keys_belong_to_one_user_and_must_be_well_formed(api: httpx.Client) -> None:
    one, two = new_seller(api), new_seller(api)
    key = {"Idempotency-Key": str(uuid.uuid4())}
    body = {"asin": asin()}
    mine = api.post("/v1/products", json=body, headers={**auth(one), **key})
    theirs = api.post("/v1/products", json=body, headers={**auth(two), **key})
    assert mine.status_code == theirs.status_code == 202
    assert mine.json()["id"] != theirs.json()["id"]  # no answer crosses users
    bad = api.post("/v1/products", json={"asin": asin()},
                   headers={**auth(one), "Idempotency-Key": "x" * 256})
    assert bad.status_code == 422
    assert bad.json()["error"]["code"] == "IDEMPOTENCY_KEY_INVALID"
    # an error answer is kept too: the retry of a refused request is refused the same way
    key2 = {"Idempotency-Key": str(uuid.uuid4())}
    refused = api.post("/v1/products", json={"asin": "nope"}, headers={**auth(one), **key2})
    replay = api.post("/v1/products", json={"asin": "nope"}, headers={**auth(one), **key2})
    assert refused.status_code == replay.status_code == 422
    assert replay.headers["idempotent-replayed"] == "true"
