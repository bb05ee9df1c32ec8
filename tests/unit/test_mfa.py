"""The second factor's rules against published ones: RFC 6238's test vectors (computed
by pyotp, the implementation authenticator apps agree with), the acceptance window, one
use per code, and recovery codes."""

from __future__ import annotations

import base64
import itertools
import re

import pyotp
import pytest

from amazon_pilot.domain import login_throttle as throttle
from amazon_pilot.domain import mfa

# RFC 6238 Appendix B, SHA-1 rows: the key is the ASCII string "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode()
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS)
def test_codes_match_the_rfc_6238_test_vectors(at: int, expected: str) -> None:
    assert mfa.code_at(RFC_SECRET, at, digits=8) == expected
    # six digits (what apps show) are the same value modulo 10**6
    assert mfa.code_at(RFC_SECRET, at) == expected[-6:]


@pytest.mark.parametrize(("at", "expected"), RFC_VECTORS[:4])
def test_a_vector_code_is_accepted_at_its_time_and_refused_far_from_it(
        at: int, expected: str) -> None:
    step = mfa.matching_step(RFC_SECRET, expected[-6:], after_step=None, now=at)
    assert step == at // 30
    assert mfa.matching_step(RFC_SECRET, expected[-6:], after_step=None, now=at + 300) is None


def test_the_window_is_one_step_either_side_and_a_step_is_accepted_once() -> None:
    secret = mfa.new_secret()
    assert len(secret) == 32 and re.fullmatch(r"[A-Z2-7]+", secret)
    now = 1_800_000_000.0
    current = int(now // 30)
    for offset, accepted in ((-2, False), (-1, True), (0, True), (1, True), (2, False)):
        code = pyotp.TOTP(secret).at(int(now) + 30 * offset)
        found = mfa.matching_step(secret, code, after_step=None, now=now)
        assert (found == current + offset) if accepted else found is None, offset
    code = pyotp.TOTP(secret).at(int(now))
    assert mfa.matching_step(secret, code, after_step=current, now=now) is None  # replay
    assert mfa.matching_step(secret, code, after_step=current - 1, now=now) == current
    assert mfa.matching_step(secret, " " + code[:3] + " " + code[3:], after_step=None,
                             now=now) == current  # spaces as apps show them
    for junk in ("", "12345", "1234567", "abcdef", "12345x"):
        assert mfa.matching_step(secret, junk, after_step=None, now=now) is None


def test_the_enrolment_uri_and_qr_code_are_built_locally() -> None:
    secret = mfa.new_secret()
    uri = mfa.provisioning_uri(secret, "seller@example.com")
    assert uri.startswith("otpauth://totp/Amazon%20Pilot:seller%40example.com?")
    assert f"secret={secret}" in uri and "issuer=Amazon%20Pilot" in uri
    parsed = pyotp.parse_uri(uri)
    assert parsed.secret == secret and parsed.digits == 6 and parsed.interval == 30
    qr = mfa.qr_svg_data_uri(uri)
    assert qr.startswith("data:image/svg+xml") and "http" not in qr.split(",", 1)[0]


def test_recovery_codes_are_random_long_and_hashed_after_normalizing() -> None:
    codes = mfa.new_recovery_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    for code in codes:
        assert re.fullmatch(r"[a-z2-7]{4}(-[a-z2-7]{4}){3}", code)  # 80 bits
    code = codes[0]
    assert mfa.hash_recovery_code(code) == mfa.hash_recovery_code(
        " " + code.upper().replace("-", " ") + " ")
    assert mfa.hash_recovery_code(code) != mfa.hash_recovery_code(codes[1])
    assert code not in mfa.hash_recovery_code(code)


def test_login_waits_grow_per_address_and_never_exceed_the_cap() -> None:
    free = throttle.FREE_FAILURES
    waits = [throttle.delay_after(n, free) for n in range(1, 16)]
    assert waits[:free - 1] == [0] * (free - 1)
    assert waits[free - 1:free + 3] == [30, 60, 120, 240]
    assert all(b >= a for a, b in itertools.pairwise(waits))
    assert max(waits) == throttle.MAX_DELAY_S == throttle.delay_after(10_000, free)
    # distributed guessing: past the account-wide ceiling each address gets one free try
    assert throttle.free_failures(throttle.ACCOUNT_CEILING - 1) == free
    assert throttle.free_failures(throttle.ACCOUNT_CEILING) == 1
    assert throttle.delay_after(1, 1) == 30


def test_a_wait_belongs_to_an_ipv4_address_or_an_ipv6_64() -> None:
    assert throttle.address_key("203.0.113.7") == "203.0.113.7"
    assert throttle.address_key("2001:db8:1:2:aaaa::1") == \
        throttle.address_key("2001:db8:1:2:ffff:ffff:ffff:ffff") == "2001:db8:1:2::/64"
    assert throttle.address_key("2001:db8:1:3::1") != throttle.address_key("2001:db8:1:2::1")
    assert throttle.address_key("::ffff:198.51.100.9") == "198.51.100.9"
    assert throttle.address_key("unknown") == "unknown"
