"""Who holds the Buy Box, in a real browser: a seller says who they are in Settings, the
product's observations (recorded actor exports replayed through the running stack) raise
Buy Box alerts in their words, and the product page shows who holds it and their share."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from amazon_pilot.platform.db import transaction
from amazon_pilot.tracking.service import fetch_job, run_fetch
from amazon_pilot.tracking.store import upsert_product
from pilot_dev.runtime.stack import Stack
from tests.e2e.conftest import shoot, sign_in
from tests.integration.replay import FIXTURES, replaying

pytestmark = pytest.mark.slow

ASIN = "B0D319J6T2"  # the White variation of the recorded listing (its own product here)
ANKER = "A294P4X9EWVXLJ"
PASSWORD = "Settings-pass-2026"


def export_for(tmp_path: Path, name: str) -> Path:
    """The recorded export of tests/fixtures/buybox, for this test's product."""
    items = json.loads((FIXTURES / "buybox" / name).read_text())
    for item in items:
        item["asin"], item["url"] = ASIN, f"https://www.amazon.com/dp/{ASIN}?psc=1"
    path = tmp_path / name
    path.write_text(json.dumps(items))
    return path


def observe(stack: Stack, product_id: int, captured_at: datetime, export: Path) -> None:
    with replaying(stack, export):
        _, _, key = fetch_job([product_id], "schedule", captured_at)
        assert run_fetch([product_id], "schedule", captured_at, key)["stored"] == 1


def test_settings_tell_who_the_seller_is_and_the_buy_box_alerts_use_it(
    page: Any, api: httpx.Client, stack: Stack, tmp_path: Path
) -> None:
    from amazon_pilot.accounts.service import create_user

    email = f"brand-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email, PASSWORD, plan="pro", company_name="Anker Innovations")
    token = api.post("/v1/auth/login", json={"email": email, "password": PASSWORD})
    headers = {"Authorization": "Bearer " + token.json()["access_token"]}
    sign_in(page, email, PASSWORD)

    # Settings: nothing said yet, so ownership is unknown
    page.click("nav >> text=Settings")
    page.wait_for_url("**/settings")
    page.wait_for_selector("#identity-form")
    assert "No seller id yet" in page.inner_text("#identity-status")
    assert page.input_value("#identity-company") == "Anker Innovations"

    # a store name is not a seller id: refused, with the line at fault, nothing saved
    page.fill("#identity-seller-ids", "AnkerDirect")
    page.fill("#identity-brands", "Soundcore")
    page.click("#identity-save")
    page.wait_for_selector("#identity-errors .state-error")
    error = page.inner_text("#identity-errors")
    assert 'Seller ids, "AnkerDirect"' in error and "looks like a seller name" in error
    assert api.get("/v1/auth/me", headers=headers).json()["seller_ids"] == []

    # the real one, pasted in lower case with a duplicate: saved as Amazon writes it
    page.fill("#identity-seller-ids", f"{ANKER.lower()}\n{ANKER}")
    page.fill("#identity-brands", "Soundcore\nsoundcore")
    page.click("#identity-save")
    page.wait_for_selector("#identity-status >> text=this seller id")
    assert page.input_value("#identity-seller-ids") == ANKER
    assert page.input_value("#identity-brands") == "Soundcore"
    assert page.inner_text("#identity-errors") == ""
    shoot(page, "settings", full_page=False)
    page.reload()
    page.wait_for_selector("#identity-form")
    assert page.input_value("#identity-seller-ids") == ANKER
    me = api.get("/v1/auth/me", headers=headers).json()
    assert me["seller_ids"] == [ANKER] and me["brands"] == ["Soundcore"]

    # three days of the listing: held by the seller, taken by another, won back
    with transaction() as conn:
        product_id = upsert_product(conn, ASIN, "com")[0]
    today = datetime.now(UTC).replace(hour=6, minute=0, second=0, microsecond=0)
    held, taken = export_for(tmp_path, "held-by-anker.json"), export_for(
        tmp_path, "held-by-another-seller.json")
    observe(stack, product_id, today - timedelta(days=3), held)
    tracked = api.post("/v1/products", json={"asin": ASIN}, headers=headers)
    assert tracked.status_code == 202, tracked.text
    tracked_id = tracked.json()["id"]
    observe(stack, product_id, today - timedelta(days=2), taken)
    observe(stack, product_id, today - timedelta(days=1), held)

    page.click("nav >> text=Alerts")
    page.wait_for_selector("#alert-list .alert-item")
    feed = page.inner_text("#alert-list")
    assert "You lost the Buy Box to ShadyCo Deals (seller id A1HJK2CK3R4Q5Z)" in feed
    assert "You won the Buy Box back from ShadyCo Deals" in feed
    assert "A seller not seen before holds the Buy Box on your Soundcore listing" in feed
    assert "Add your Amazon seller ids" not in feed  # the seller told us
    page.select_option("select[name=type]", "buy_box_lost")
    page.wait_for_function(
        "() => document.querySelectorAll('#alert-list .alert-item').length === 1")
    assert "Buy Box lost" in page.inner_text("#alert-list .alert-item")
    shoot(page, "alerts-buy-box", full_page=False)

    page.goto(f"/products/{tracked_id}")
    page.wait_for_selector("#buy-box")
    panel = page.inner_text("#buy-box")
    assert page.get_attribute("#buy-box", "data-ownership") == "known"
    assert "AnkerDirect" in panel and f"seller id {ANKER}" in panel and "that is you" in panel
    week = page.inner_text("#buy-box [data-window='7d']")
    assert "67%" in week and "2 of 3 days" in week
    shoot(page, "product-buy-box")

    # without seller ids the page says ownership is unknown, and where to tell us
    api.patch("/v1/auth/me", json={"seller_ids": []}, headers=headers)
    page.reload()
    page.wait_for_selector("#buy-box-note")
    assert page.get_attribute("#buy-box", "data-ownership") == "unknown"
    note = page.inner_text("#buy-box-note")
    assert "ownership unknown: you have not told us your Amazon seller ids" in note
    page.click("#buy-box-note >> text=Add your seller ids")
    page.wait_for_url("**/settings")
    assert page.watch.errors == []
