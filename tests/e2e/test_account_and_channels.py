"""The seller's account and alert control in the browser (issue 17): notification
settings with quiet hours, Slack and e-mail channels (the e-mail confirmed by the link
SES carried), snoozing a product, ending a session and changing the password. Each saves
a screenshot (docs/screenshots/ when PILOT_SCREENSHOTS points there)."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from amazon_pilot.platform.settings import reset_settings
from pilot_dev.standins.slack_server import SlackStandIn
from tests.e2e.conftest import shoot, sign_in

PASSWORD = "Account-pass-2026!"


def new_seller(api: httpx.Client) -> dict[str, Any]:
    from amazon_pilot.accounts.service import create_user

    email = f"account-{uuid.uuid4().hex[:8]}@example.com"
    user = create_user(email, PASSWORD, plan="pro")
    return {"id": str(user.id), "email": email}


def token(api: httpx.Client, email: str, password: str = PASSWORD) -> dict[str, str]:
    response = api.post("/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


@pytest.fixture()
def slack() -> Iterator[SlackStandIn]:
    standin = SlackStandIn().start()
    saved = os.environ.get("WEBHOOK_ALLOW_HOSTS")
    os.environ["WEBHOOK_ALLOW_HOSTS"] = f"127.0.0.1:{standin.port}"
    reset_settings()
    yield standin
    if saved is None:
        os.environ.pop("WEBHOOK_ALLOW_HOSTS", None)
    else:
        os.environ["WEBHOOK_ALLOW_HOSTS"] = saved
    reset_settings()
    standin.stop()


def test_notification_settings_with_quiet_hours(page: Any, api: httpx.Client) -> None:
    seller = new_seller(api)
    sign_in(page, seller["email"], PASSWORD)
    page.click("nav >> text=Settings")
    page.wait_for_selector("#prefs-form")
    page.select_option("#prefs-digest", "weekly")
    page.fill("#prefs-cap", "3")
    page.check("#prefs-quiet-on")
    page.fill("#prefs-quiet-start", "21:30")
    page.fill("#prefs-quiet-end", "06:45")
    page.fill("#prefs-timezone", "Mars/Olympus")
    page.click("#prefs-save")
    page.wait_for_selector("#prefs-errors .error-box, #prefs-errors *")
    assert "time zone" in page.inner_text("#prefs-errors").lower()
    page.fill("#prefs-timezone", "Europe/Berlin")
    page.click("#prefs-save")
    page.wait_for_selector(".toast >> text=Notification settings saved")
    prefs = api.get("/v1/auth/me", headers=token(api, seller["email"])).json()[
        "notification_prefs"]
    assert prefs["digest"] == "weekly" and prefs["max_notifications_per_product_per_day"] == 3
    assert prefs["timezone"] == "Europe/Berlin"
    assert prefs["quiet_hours"] == {"enabled": True, "start": "21:30", "end": "06:45"}
    page.reload()
    page.wait_for_selector("#prefs-form")
    assert page.input_value("#prefs-quiet-start") == "21:30"
    page.locator("#notifications").scroll_into_view_if_needed()
    shoot(page, "settings-notifications")
    assert page.watch.errors == []


def test_connect_slack_and_an_email_confirmed_by_its_link(
    page: Any, api: httpx.Client, slack: SlackStandIn
) -> None:
    from tests.integration.test_notifications import confirm_email_link

    seller = new_seller(api)
    sign_in(page, seller["email"], PASSWORD)
    page.click("nav >> text=Channels")
    page.wait_for_selector("#channel-form")
    page.select_option("#channel-kind", "slack")
    page.fill("#channel-target", "https://example.com/not-slack")
    page.click("#channel-add")
    page.wait_for_selector("#channel-result >> text=hooks.slack.com")
    hook = slack.webhook_url("T0001", "BE2E")
    page.fill("#channel-target", hook)
    page.fill("#channel-name", "#pricing")
    page.click("#channel-add")
    page.wait_for_selector("[data-kind=slack] >> text=#pricing")

    address = f"alerts-{uuid.uuid4().hex[:6]}@example.com"
    page.select_option("#channel-kind", "email")
    page.fill("#channel-target", address)
    page.click("#channel-add")
    page.wait_for_selector("#channel-confirm-notice")
    page.wait_for_selector("[data-kind=email] >> text=waiting for confirmation")
    shoot(page, "channels-unconfirmed", full_page=False)
    link = confirm_email_link(address)
    page.goto("/" + link.split("://", 1)[1].split("/", 1)[1])  # as a mail client would
    page.wait_for_url("**/channels?verified=**")
    page.wait_for_selector(".toast >> text=Address confirmed")
    page.wait_for_selector("[data-kind=email] .channel-status >> text=active")
    # edit the Slack channel in place: only digests from now on
    slack_card = page.locator("[data-kind=slack]")
    slack_card.locator("button >> text=Edit").click()
    slack_card.locator("input[value=alert]").uncheck()
    slack_card.locator("input[value=report]").uncheck()
    slack_card.locator("button >> text=Save").click()
    page.wait_for_selector("[data-kind=slack] >> text=Digests · from info up")
    shoot(page, "channels")
    assert page.watch.errors == []


def test_snooze_a_product_from_its_page(page: Any, api: httpx.Client) -> None:
    sign_in(page)  # the demo seller
    first = page.locator(".products-table tbody tr a").first
    first.click()
    page.wait_for_selector("#snooze-product")
    page.select_option("#snooze-product-hours", "168")
    page.click("#snooze-product")
    page.wait_for_selector(".toast >> text=Snoozed until")
    page.goto("/settings")
    page.wait_for_selector("#snooze-list")
    assert "All alert types of one product" in page.inner_text("#snooze-list")
    page.locator("#snoozes").scroll_into_view_if_needed()
    shoot(page, "settings-snoozes", full_page=False)
    page.locator("#snooze-list button >> text=End now").first.click()
    page.wait_for_selector(".toast >> text=Snooze ended")


def test_end_a_session_and_change_the_password(page: Any, api: httpx.Client) -> None:
    seller = new_seller(api)
    elsewhere = token(api, seller["email"])  # a session on another device
    assert api.get("/v1/auth/me", headers=elsewhere).status_code == 200
    sign_in(page, seller["email"], PASSWORD)
    page.click("nav >> text=Settings")
    page.wait_for_selector("#sessions-table tbody tr")
    assert page.locator("#sessions-table tbody tr").count() == 2
    assert page.locator("#sessions-table >> text=\"this session\"").count() == 1
    page.locator("#sessions-table button >> text=End this session").click()
    page.wait_for_function(
        "() => document.querySelectorAll('#sessions-table tbody tr').length === 1")
    assert api.get("/v1/auth/me", headers=elsewhere).status_code == 401

    page.fill("#password-current", "not-my-password-1")
    page.fill("#password-new", "Brand-new-pass-2026")
    page.fill("#password-again", "Brand-new-pass-2026")
    page.click("#password-save")
    page.wait_for_selector("#password-errors >> text=not correct")
    page.fill("#password-current", PASSWORD)
    page.fill("#password-new", "Brand-new-pass-2026")
    page.fill("#password-again", "Brand-new-pass-2026")
    page.click("#password-save")
    page.wait_for_selector(".toast >> text=Password changed")
    page.locator("#password").scroll_into_view_if_needed()
    shoot(page, "settings-account")
    # the page keeps working on its fresh tokens; the old password no longer signs in
    page.reload()
    page.wait_for_selector("#sessions-table tbody tr")
    assert api.post("/v1/auth/login", json={"email": seller["email"],
                                            "password": PASSWORD}).status_code == 401
    assert api.post("/v1/auth/login", json={"email": seller["email"],
                                            "password": "Brand-new-pass-2026"}
                    ).status_code == 200
    assert page.watch.errors == []
