"""The dashboard's audit log page (/admin/audit), in headless Chromium against the
session's stack: an administrator reads and filters it; a seller gets the API's 403."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import sign_in

PASSWORD = "Admin-pass-2026"


def test_an_admin_reads_and_filters_the_audit_log(page: Any) -> None:
    from amazon_pilot.accounts.service import create_user

    email = f"audit-admin-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email, PASSWORD, role="admin", plan="enterprise")
    sign_in(page, email, PASSWORD)
    page.click("nav >> text=Admin")
    page.click("main >> text=Audit log")
    page.wait_for_url("**/admin/audit")
    page.wait_for_selector("#audit-table tbody tr")
    heads = page.eval_on_selector_all("#audit-table th", "ths => ths.map(t => t.textContent)")
    assert heads == ["When", "Action", "Account", "By", "Target", "IP", "Details"]
    assert "auth.login" in page.inner_text("#audit-table")
    page.fill("input[name=action_prefix]", "admin.audit")
    page.click("#audit-filters button")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#audit-table tbody tr td:nth-child(2)')]"
        ".every(td => td.textContent.startsWith('admin.audit'))")
    assert "admin.audit_read" in page.inner_text("#audit-table")
    assert page.watch.errors == []


def test_a_seller_is_refused_by_the_api(page: Any) -> None:
    sign_in(page)  # the demo seller
    page.goto("/admin/audit")
    page.wait_for_selector(".state-error")
    assert "FORBIDDEN" in page.inner_text(".state-error")
    assert "Admin" not in page.inner_text("nav")
