"""The first steps of a new seller, in the browser alone: create an account on the sign-up
page, add a product, and set its alert thresholds (the later steps of the issue-17 walk —
short links, tags, quiet hours, Slack and e-mail, groups, exports, keywords, sales
estimates, password — are in test_workflow, test_account_and_channels and test_market)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from pilot_dev.standins.apify_catalog import demo_asins
from tests.e2e.conftest import shoot

pytestmark = pytest.mark.slow


def test_sign_up_add_a_product_and_set_its_thresholds(page: Any) -> None:
    email = f"new-seller-{uuid.uuid4().hex[:8]}@example.com"
    page.goto("/register")
    page.fill("#register-email", email)
    page.fill("#register-password", "New-seller-2026")
    page.fill("#register-company", "Acme Audio")
    shoot(page, "signup", full_page=False)
    page.click("form >> text=Create account")
    page.wait_for_url("**/products")  # signed in at once, on an empty list

    asin = demo_asins("headphones", 40)[-5]
    page.fill("#add-refs", f"https://www.amazon.com/dp/{asin}")
    page.click("#add-submit")
    page.wait_for_selector(f"#add-result >> text=Tracking {asin}")
    row = page.locator(f".products-table tbody tr[data-asin='{asin}']")
    row.wait_for()
    product_id = row.get_attribute("data-product-id")

    page.goto(f"/products/{product_id}")
    form = page.locator("#thresholds-form")
    form.wait_for()
    form.locator("input[name=price_change_pct]").fill("3")
    form.locator("input[name=stock]").uncheck()
    form.locator("text=Save thresholds").click()
    page.wait_for_selector("text=Thresholds saved")
    shoot(page, "thresholds")

    page.reload()  # what the service stored, not what the form still shows
    form = page.locator("#thresholds-form")
    form.wait_for()
    assert form.locator("input[name=price_change_pct]").input_value() == "3"
    assert not form.locator("input[name=stock]").is_checked()
    assert page.watch.errors == []
