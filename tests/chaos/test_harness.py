"""The harness itself: a stack starts, signs a seller in, dies by kill -9 and starts again
on the same database with the seller's data intact."""

from __future__ import annotations

from typing import Any

import pytest

pytestmark = pytest.mark.chaos


def test_stack_survives_kill9_and_restarts(pilot_stack: Any, seller_login: Any,
                                           chaos_report: Any) -> None:
    stack = pilot_stack()
    headers = seller_login(stack)
    added = stack.client.post("/v1/products", headers=headers,
                              json={"url": "https://www.amazon.com/dp/B0C33XXS56"})
    assert added.status_code in (200, 201, 202), added.text
    first_pid = stack.process.pid
    stack.kill9()
    stack.start()
    assert stack.process.pid != first_pid
    listed = stack.client.get("/v1/products", headers=headers)
    assert listed.status_code == 200, listed.text
    chaos_report("harness", starts=stack.starts, products=len(listed.json()["items"]))
