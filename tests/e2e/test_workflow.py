"""A seller's everyday workflow in the browser: add products by URL and short link, tag
them and act on a selection, export history to CSV, build a group and edit it; the
products table at 1280 px without sideways scrolling, and out-of-stock days as gaps in
the chart. Screenshots go where tests/e2e/conftest.py puts them (docs/screenshots/ keeps
a chosen set)."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from amazon_pilot.platform.db import get_engine
from pilot_dev.standins.apify_catalog import demo_asins
from tests.e2e.conftest import shoot, sign_in

pytestmark = pytest.mark.slow
PASSWORD = "Workflow-pass-2026"


@pytest.fixture()
def seller(page: Any) -> str:
    """A new seller (enterprise plan), signed in in `page`."""
    from amazon_pilot.accounts.service import create_user

    email = f"workflow-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email, PASSWORD, role="seller", plan="enterprise")
    sign_in(page, email, PASSWORD)
    return email


def no_sideways_scroll(page: Any) -> bool:
    return bool(page.evaluate(
        "() => document.documentElement.scrollWidth <= document.documentElement.clientWidth"
        " && [...document.querySelectorAll('.table-host')].every("
        "  (el) => el.scrollWidth <= el.clientWidth + 1)"))


def test_add_by_url_and_short_link_tag_a_selection_and_export_history(
        page: Any, seller: str, shortener: dict[str, str]) -> None:
    asins = demo_asins("headphones", 40)[30:33]
    shortener["a.co/d/e2eLink"] = f"https://www.amazon.com/dp/{asins[1]}?ref=share"
    page.fill("#add-refs", f"https://www.amazon.com/Some-Slug/dp/{asins[0]}/ref=sr_1_1\n"
                           "a.co/d/e2eLink")
    page.click("#add-submit")
    page.wait_for_selector("#add-result >> text=Tracking 2 of 2")
    page.wait_for_selector(f"tr[data-asin='{asins[1]}']")
    # select both with the keyboard: tab to each checkbox, space to tick it
    for asin in asins[:2]:
        page.focus(f"tr[data-asin='{asin}'] input.row-select")
        page.keyboard.press("Space")
    page.wait_for_selector("#selected-count >> text=2 selected")
    page.fill("#bulk-tag", "Launch")
    page.keyboard.press("Enter")
    page.wait_for_selector(f"tr[data-asin='{asins[0]}'] .tag[data-tag='launch']")
    page.wait_for_selector(f"tr[data-asin='{asins[1]}'] .tag[data-tag='launch']")
    page.select_option("#tag-filter", "launch")
    page.wait_for_function(
        "() => document.querySelectorAll('.products-table tbody tr').length === 2")
    shoot(page, "products-tags-selection")

    page.click(f"tr[data-asin='{asins[0]}'] a")
    page.wait_for_selector("#product-tags .tag[data-tag='launch']")
    page.fill("#product-notes", "Reprice after Prime Day")
    page.click("#notes-save")
    page.wait_for_selector("text=Note saved")
    page.select_option("#export-interval", "raw")
    with page.expect_download() as info:
        page.click("#export-history")
    download = info.value
    assert download.suggested_filename == f"history-{asins[0]}-com-raw.csv"
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert rows and rows[0]["captured_at"] and "availability" in rows[0]
    shoot(page, "product-tags-notes-export")


def test_build_a_group_and_edit_it(page: Any, seller: str) -> None:
    asins = demo_asins("headphones", 50)[40:46]
    page.click("nav >> text=Competitors")
    page.wait_for_selector("#group-usage >> text=of 1000 groups")
    page.fill("#group-name", "Earbuds vs rivals")
    page.fill("#group-main", asins[0])
    page.fill("#group-competitors", "\n".join(asins[1:4]))
    page.click("#group-submit")
    page.wait_for_selector("#group-edit")
    # at the minimum: removing is disabled, with the reason
    remove = page.locator(f"[data-remove-asin='{asins[1]}']")
    assert remove.is_disabled() and "at least 3" in (remove.get_attribute("title") or "")
    page.fill("#competitor-add", asins[4])
    page.click("#competitor-add-submit")
    page.wait_for_selector("#competitor-usage >> text=4 of 5 competitors")
    page.click(f"[data-remove-asin='{asins[1]}']")
    page.wait_for_selector(f"#group-members >> text={asins[4]}")
    page.wait_for_function(
        f"() => !document.querySelector(\"[data-remove-asin='{asins[1]}']\")")
    page.wait_for_selector("#competitor-usage >> text=3 of 5 competitors")
    page.fill("#competitor-add", asins[5])
    page.click("#competitor-add-submit")
    page.wait_for_selector("#competitor-usage >> text=4 of 5 competitors")
    page.fill("#competitor-add", asins[1])
    page.click("#competitor-add-submit")
    page.wait_for_selector("#competitor-usage >> text=5 of 5 competitors: remove one")
    assert page.locator("#competitor-add-submit").is_disabled()
    page.fill("#group-rename", "Earbuds, renamed")
    page.click("#group-rename-save")
    page.wait_for_selector("#group-title >> text=Earbuds, renamed")
    page.click("#group-pause")
    page.wait_for_selector("#group-pause >> text=Resume group")
    with page.expect_download() as info:
        page.click("#export-comparison")
    rows = list(csv.DictReader(io.StringIO(Path(info.value.path()).read_text())))
    assert [r["role"] for r in rows].count("competitor") == 5
    shoot(page, "group-edit")


def test_products_table_fits_1280_and_a_phone(page: Any) -> None:
    page.set_viewport_size({"width": 1280, "height": 900})
    sign_in(page)
    page.wait_for_selector(".products-table tbody tr")
    page.wait_for_timeout(500)
    assert no_sideways_scroll(page)
    shoot(page, "products-1280", full_page=False)
    # the chooser hides a column and the choice survives a reload
    page.click(".column-chooser summary")
    page.uncheck("[data-column='reviews']")
    page.wait_for_function("() => ![...document.querySelectorAll('.products-table th')]"
                           ".some((th) => th.textContent.includes('Reviews'))")
    page.reload()
    page.wait_for_selector(".products-table tbody tr")
    headers = page.locator(".products-table th").all_inner_texts()
    assert not any("Reviews" in h for h in headers)
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_timeout(300)
    assert no_sideways_scroll(page)
    shoot(page, "products-phone-organise", full_page=False)


def test_out_of_stock_days_are_gaps_in_the_price_chart(page: Any, seller: str) -> None:
    asin = demo_asins("headphones", 52)[51]
    page.fill("#add-refs", asin)
    page.click("#add-submit")
    row = page.wait_for_selector(f"tr[data-asin='{asin}']")
    tracked_id = row.get_attribute("data-product-id")
    today = datetime.now(UTC).replace(hour=3, minute=0, second=0, microsecond=0)
    with get_engine().begin() as conn:
        pid = conn.execute(text("SELECT product_id FROM tracked_products WHERE id = :t"),
                           {"t": tracked_id}).scalar_one()
        for days, price in ((6, 20.0), (5, 21.0), (4, None), (3, None), (2, 22.0), (1, 23.0)):
            conn.execute(text(
                "INSERT INTO snapshots (product_id, captured_at, found, price, availability)"
                " VALUES (:p, :t, true, :v, :a) ON CONFLICT DO NOTHING"),
                {"p": pid, "t": today - timedelta(days=days), "v": price,
                 "a": "in_stock" if price else "out_of_stock"})
        conn.execute(text("DELETE FROM cache_entries WHERE key LIKE :k"),
                     {"k": f"history:{pid}:%"})
    page.goto(f"/products/{tracked_id}?metric=price&range=7d")
    page.wait_for_selector("#chart[data-state='ready']")
    assert int(page.get_attribute("#chart", "data-gaps") or "0") == 2
    page.locator("#chart").scroll_into_view_if_needed()
    shoot(page, "chart-gaps", full_page=False)
