"""Two-step sign-in in the browser: an administrator without it is sent to enrol, scans
(reads) the secret, confirms with a code pyotp computes, sees the recovery codes once,
then signs in with password + code, and with a recovery code."""

from __future__ import annotations

import uuid
from typing import Any

from tests.e2e.conftest import shoot, sign_in


def test_admin_enrols_then_signs_in_with_a_code_and_a_recovery_code(page: Any) -> None:
    import pyotp

    from amazon_pilot.accounts.service import create_user

    email, password = f"admin-{uuid.uuid4().hex[:8]}@example.com", "Admin-pass-2026"
    create_user(email, password, role="admin", plan="enterprise")
    sign_in(page, email, password)
    page.goto("/admin")
    page.wait_for_selector("#admin-enrol-mfa")  # 403 MFA_REQUIRED, with the way out
    assert "MFA_REQUIRED" in page.inner_text("main")
    page.click("#admin-enrol-mfa")
    page.wait_for_url("**/settings")
    page.click("#mfa-start")
    page.wait_for_selector("#mfa-qr")
    src = page.get_attribute("#mfa-qr", "src") or ""
    assert src.startswith("data:image/svg+xml")  # drawn by the API, no QR service
    secret = page.inner_text("#mfa-secret").strip()
    page.fill("#mfa-confirm-code", "000000" if pyotp.TOTP(secret).now() != "000000"
              else "111111")
    page.click("#mfa-confirm")
    page.wait_for_selector("#mfa-confirm-errors .state-error")
    page.fill("#mfa-confirm-code", pyotp.TOTP(secret).now())
    page.click("#mfa-confirm")
    page.wait_for_selector("#mfa-recovery-codes li")
    codes = page.eval_on_selector_all("#mfa-recovery-codes code",
                                      "cs => cs.map(c => c.textContent)")
    assert len(codes) == 10 and len(set(codes)) == 10
    shoot(page, "mfa-recovery-codes")
    # the session was re-issued as a two-factor one: admin pages answer now
    page.goto("/admin")
    page.wait_for_selector("table tbody tr")

    page.click("#sign-out")
    page.wait_for_url("**/login")
    sign_in(page, email, password, totp_secret=secret)
    page.goto("/admin")
    page.wait_for_selector("table tbody tr")

    # a recovery code instead of the app, once
    page.click("#sign-out")
    page.wait_for_url("**/login")
    page.fill("#login-email", email)
    page.fill("#login-password", password)
    page.click("#login-submit")
    page.wait_for_selector("#mfa-code")
    shoot(page, "mfa-second-step")
    page.check("#mfa-use-recovery")
    page.fill("#mfa-code", codes[0])
    page.click("#mfa-submit")
    page.wait_for_url("**/products")
    page.goto("/settings")
    page.wait_for_selector("#mfa-status")
    assert "9 recovery codes left" in page.inner_text("#mfa-status")
    assert page.watch.errors == []
