"""The dashboard's audit log page (/admin/audit), in headless Chromium against the
session's stack: an administrator reads and filters it; a seller gets the API's 403."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import new_admin_with_mfa, sign_in

PASSWORD = "Admin-pass-2026"


def test_an_admin_reads_and_filters_the_audit_log(page: Any) -> None:
    email, secret = new_admin_with_mfa(PASSWORD)  # admin pages need a two-factor session
    sign_in(page, email, PASSWORD, totp_secret=secret)
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
