"""Login throttling policy: how long a (e-mail, address) pair waits after failures.

Never a lock on the account alone: the wait belongs to the address that failed, so a
stranger guessing from elsewhere cannot keep the owner out. When many addresses fail
against one account (distributed guessing) each address gets fewer free attempts, which
slows the guessing without refusing the owner's right password from any address.
See docs/security-accounts.md.
"""

from __future__ import annotations

import ipaddress

FREE_FAILURES = 5  # per (e-mail, address) in the window, before any wait
FREE_FAILURES_UNDER_ATTACK = 1  # when the account-wide ceiling is passed
ACCOUNT_CEILING = 20  # failures against one account, all addresses, in the window
FIRST_DELAY_S = 30  # the owner who mistypes five times waits half a minute
MAX_DELAY_S = 15 * 60


def free_failures(account_failures: int) -> int:
    """Free attempts per address, given the account's failures (all addresses)."""
    return FREE_FAILURES_UNDER_ATTACK if account_failures >= ACCOUNT_CEILING else FREE_FAILURES


def delay_after(failures: int, free: int) -> int:
    """Seconds the address waits after its `failures`-th failure: none while within
    `free`, then 30 s, 1, 2, 4, 8 min ... doubling up to 15 minutes."""
    if failures < free:
        return 0
    exponent = min(failures - free, 20)  # 2**20 s is far past the cap already
    return min(FIRST_DELAY_S * 2 ** exponent, MAX_DELAY_S)


def address_key(ip: str) -> str:
    """The unit a wait belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's
    network: a host there can take any of its 2**64 addresses)."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)
