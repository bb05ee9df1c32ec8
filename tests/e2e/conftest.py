"""Browser tests of the dashboard: headless Chromium (Debian's package) driven by
Playwright against the session's running stack, with the demo data loaded in process.

Chromium comes from scripts/install-browser.sh (make test runs it); Playwright's own
browser download is never used. Without either, these tests are skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pilot_dev.runtime.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = Path(os.environ.get("PILOT_SCREENSHOTS") or ROOT / ".pilot" / "screenshots")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DEMO_EMAIL = "demo@amazon-pilot.local"
DEMO_PASSWORD = "demo-pilot-2026"


def chromium_path() -> str | None:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                      shutil.which("chromium-browser")):
        if candidate and Path(candidate).is_file():
            return candidate
    return None


@pytest.fixture(scope="session")
def demo(stack: Stack) -> str:
    """The demo seller's products, history, alerts (and group, when that feature is there)."""
    from pilot_dev.demo import create_demo

    return create_demo(days=30, products=8)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[dev]')")
    executable = chromium_path()
    if executable is None:
        pytest.skip("Chromium is missing: run scripts/install-browser.sh")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


class Watch:
    """What the page did that a test may want to refuse: dialogs, errors, failed requests."""

    def __init__(self) -> None:
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        self.console: list[str] = []


@pytest.fixture()
def page(browser: Any, stack: Stack, demo: str) -> Iterator[Any]:
    context = browser.new_context(base_url=stack.url, viewport={"width": 1440, "height": 900})
    context.set_default_timeout(20_000)
    tab = context.new_page()
    watch = Watch()

    def on_dialog(dialog: Any) -> None:
        watch.dialogs.append(dialog.message)
        dialog.dismiss()

    tab.on("dialog", on_dialog)
    tab.on("pageerror", lambda exc: watch.errors.append(str(exc)))
    tab.on("console", lambda msg: watch.console.append(f"{msg.type}: {msg.text}"))
    tab.watch = watch
    yield tab
    context.close()


def sign_in(page: Any, email: str = DEMO_EMAIL, password: str = DEMO_PASSWORD,
            totp_secret: str | None = None) -> None:
    """Sign in through the login page; with `totp_secret`, also its second step (the
    code computed by pyotp, as an authenticator app would)."""
    page.goto("/login")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    if totp_secret is not None:
        import pyotp

        page.wait_for_selector("#mfa-code")
        # the next step's code: the enrolment may have spent this step's
        page.fill("#mfa-code", pyotp.TOTP(totp_secret).at(int(time.time()) + 30))
        page.click("#mfa-submit")
    page.wait_for_url("**/products")
    page.wait_for_selector(".products-table tbody tr, .state-empty")


def shoot(page: Any, name: str, *, full_page: bool = True) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.wait_for_timeout(300)  # let the last frame settle (charts, fonts)
    page.screenshot(path=str(path), full_page=full_page)
    return path


def new_admin_with_mfa(password: str = "Admin-pass-2026") -> tuple[str, str]:
    """An administrator enrolled in two-step sign-in (through the accounts service, as
    the API would); returns (email, TOTP secret)."""
    import pyotp

    from amazon_pilot.accounts import service
    from amazon_pilot.platform.security import CurrentUser

    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    user = service.create_user(email, password, role="admin", plan="enterprise")
    caller = CurrentUser(id=user.id, email=user.email, role="admin", plan="enterprise")
    ctx = service.RequestContext(ip="127.0.0.1", request_id=None, user_agent="e2e")
    secret = service.start_mfa_enrolment(caller, ctx).secret
    service.confirm_mfa_enrolment(caller, pyotp.TOTP(secret).now(), ctx)
    return email, secret
