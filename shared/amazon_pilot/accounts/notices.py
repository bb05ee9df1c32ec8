"""Security notices to an account's owner, by e-mail through the notifications adapter
(SES): failed sign-ins that started a wait, a sign-up attempt with their e-mail, a
welcome to a new account, a password change, a new or removed second factor.

A notice is best effort: a failure is logged and never fails or changes the request
that caused it (its audit-log row is the durable record).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

log = logging.getLogger("amazon_pilot.accounts.notices")


@dataclass(frozen=True)
class Notice:
    subject: str
    text: str  # str.format fields: ip, failures


_FOOTER = "\n\n(Amazon Pilot security notice: sent to the account's e-mail only.)"

FAILED_LOGINS = Notice(
    "Failed sign-ins to your Amazon Pilot account",
    "There were {failures} failed sign-in attempts to your account from the address {ip}. "
    "That address now waits before each new attempt; you can still sign in from your own "
    "devices as usual.\n\nIf this was not you, nothing is needed unless you think your "
    "password is known: then change it in Settings and turn on two-step sign-in." + _FOOTER)
REGISTER_EXISTING = Notice(
    "Someone tried to sign up with your e-mail",
    "Somebody (address {ip}) tried to create an Amazon Pilot account with this e-mail, "
    "which already has one. No account was created and nothing changed.\n\nIf it was you, "
    "sign in instead (or ask for help if you forgot your password)." + _FOOTER)
WELCOME = Notice(
    "Welcome to Amazon Pilot",
    "Your Amazon Pilot account is ready: sign in with this e-mail. If you did not create "
    "it (address {ip}), tell us." + _FOOTER)
PASSWORD_CHANGED = Notice(
    "Your Amazon Pilot password was changed",
    "The password of your account was changed (address {ip}) and every other session was "
    "signed out. If this was not you, contact support at once." + _FOOTER)
MFA_CODES_FAILED = Notice(
    "Your password was used with wrong two-step codes",
    "Someone signed in to your account with the right password from the address {ip}, "
    "then entered several wrong two-step codes and was stopped. If this was not you, your "
    "password is known to someone: change it now in Settings." + _FOOTER)
MFA_ENABLED = Notice(
    "Two-step sign-in is on",
    "Two-step sign-in was turned on for your account (address {ip}). Keep your recovery "
    "codes somewhere safe." + _FOOTER)
MFA_DISABLED = Notice(
    "Two-step sign-in was turned off",
    "Two-step sign-in was turned off for your account (address {ip}) and every other "
    "session was signed out. If this was not you, change your password at once." + _FOOTER)


def send(to: str, notice: Notice, *, ip: str | None = None, failures: int = 0) -> bool:
    """Send one notice; True when the e-mail service accepted it."""
    from amazon_pilot.adapters import notify

    try:
        result = notify.send_email(to, notice.subject,
                                   notice.text.format(ip=ip or "unknown", failures=failures))
    except Exception:  # best effort: never fail the request that caused the notice
        log.exception("security notice %r not sent", notice.subject)
        return False
    if not result.delivered:
        log.warning("security notice %r not sent: %s", notice.subject, result.error)
    return result.delivered
