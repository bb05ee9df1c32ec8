"""Second factor: TOTP codes (RFC 6238, 30 s steps, 6 digits, SHA-1 as every
authenticator app expects), the QR code of an enrolment, and recovery codes.

Plain Python; pyotp and segno are imported on first use (only MFA routes pay them).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import time

ISSUER = "Amazon Pilot"
DIGITS = 6
STEP_SECONDS = 30
# One step either side: a phone clock 30 s off still works; a code stays usable at
# most ~90 s, and the store refuses a step at or before the last accepted one.
VALID_WINDOW = 1
SECRET_LENGTH = 32  # base32 characters: 160 bits, RFC 4226's recommended key size
RECOVERY_CODE_COUNT = 10
_RECOVERY_GROUPS, _RECOVERY_GROUP_LENGTH = 4, 4  # 16 base32 characters: 80 bits
_RECOVERY_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_CODE = re.compile(r"^\d{6}$")


def new_secret() -> str:
    import pyotp

    return pyotp.random_base32(SECRET_LENGTH)


def provisioning_uri(secret: str, account: str) -> str:
    """The otpauth:// URI an authenticator app reads from the QR code."""
    import pyotp

    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account, issuer_name=ISSUER)


def qr_svg_data_uri(uri: str) -> str:
    """The QR code of `uri` as an SVG data URI, drawn here (no external service sees
    the secret)."""
    import segno

    return str(segno.make(uri, error="m").svg_data_uri(scale=5, border=2))


def step_at(for_time: float) -> int:
    return int(for_time // STEP_SECONDS)


def code_at(secret: str, for_time: float, digits: int = DIGITS) -> str:
    import pyotp

    return str(pyotp.TOTP(secret, digits=digits, interval=STEP_SECONDS).at(int(for_time)))


def looks_like_code(code: str) -> bool:
    return bool(_CODE.match(code.strip().replace(" ", "")))


def matching_step(secret: str, code: str, *, after_step: int | None,
                  now: float | None = None) -> int | None:
    """The time step `code` is valid for (within the window and later than
    `after_step`, so a code is accepted once), or None."""
    code = code.strip().replace(" ", "")
    if not _CODE.match(code):
        return None
    now = time.time() if now is None else now
    current = step_at(now)
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if after_step is not None and step <= after_step:
            continue
        if secrets.compare_digest(code_at(secret, step * STEP_SECONDS), code):
            return step
    return None


# ------------------------------------------------------------------ recovery codes


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Codes like "k7qd-m2xa-9pzt-w4cn": shown once, each good for one sign-in."""
    codes = []
    for _ in range(count):
        chars = "".join(secrets.choice(_RECOVERY_ALPHABET)
                        for _ in range(_RECOVERY_GROUPS * _RECOVERY_GROUP_LENGTH))
        codes.append("-".join(chars[i:i + _RECOVERY_GROUP_LENGTH]
                              for i in range(0, len(chars), _RECOVERY_GROUP_LENGTH)))
    return codes


def normalize_recovery_code(code: str) -> str:
    return re.sub(r"[\s-]", "", code).lower()


def hash_recovery_code(code: str) -> str:
    """sha256 of the normalized code: 80 random bits need no slow hash."""
    return hashlib.sha256(normalize_recovery_code(code).encode()).hexdigest()
