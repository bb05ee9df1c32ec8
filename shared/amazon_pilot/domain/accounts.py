"""Account rules: e-mail normalization, password policy, roles, password hashing.

Plain Python (argon2-cffi is imported lazily, on the first hash or verify).
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

ROLES: tuple[str, ...] = ("seller", "admin")
DEFAULT_ROLE = "seller"

PASSWORD_MIN_LENGTH = 10
PASSWORD_MAX_LENGTH = 256  # Argon2 cost does not grow with length, but bodies should stay small
EMAIL_MAX_LENGTH = 254

DEFAULT_NOTIFICATION_PREFS: dict[str, Any] = {
    "digest": "off",  # one message per alert (capped); "daily" or "weekly" opt into a digest
    "max_notifications_per_product_per_day": 5,
    "email": True,
}

_LOCAL_PART = re.compile(r"^[a-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}$")
_DOMAIN_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class AccountRuleError(ValueError):
    """A value breaks an account rule; `field` names the input it came from."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class InvalidEmail(AccountRuleError):
    def __init__(self, message: str) -> None:
        super().__init__("email", message)


class WeakPassword(AccountRuleError):
    def __init__(self, message: str, field: str = "password") -> None:
        super().__init__(field, message)


def normalize_email(raw: str) -> str:
    """Trimmed, NFKC-normalized and lower-cased; raises InvalidEmail when not an address.

    The whole address is lower-cased (not only the domain): two accounts differing only
    by case would be a support problem, and the unique index compares lower(email).
    """
    email = unicodedata.normalize("NFKC", raw).strip().lower()
    if not email:
        raise InvalidEmail("email is required")
    if len(email) > EMAIL_MAX_LENGTH:
        raise InvalidEmail(f"email is longer than {EMAIL_MAX_LENGTH} characters")
    if email.count("@") != 1:
        raise InvalidEmail("email must contain exactly one '@'")
    local, domain = email.split("@")
    if (
        not _LOCAL_PART.match(local)
        or local.startswith(".")
        or local.endswith(".")
        or ".." in local
    ):
        raise InvalidEmail("the part of the email before '@' is not valid")
    labels = domain.split(".")
    if len(labels) < 2 or not all(_DOMAIN_LABEL.match(label) for label in labels):
        raise InvalidEmail("the domain of the email is not valid (expected e.g. example.com)")
    if labels[-1].isdigit():
        raise InvalidEmail("the domain of the email is not valid (expected e.g. example.com)")
    return email


def character_classes(password: str) -> set[str]:
    classes = set()
    for ch in password:
        if ch.islower():
            classes.add("lower")
        elif ch.isupper():
            classes.add("upper")
        elif ch.isdigit():
            classes.add("digit")
        else:
            classes.add("other")
    return classes


def password_problem(password: str) -> str | None:
    """The first rule the password breaks, as a message for the user; None when it is fine."""
    if len(password) < PASSWORD_MIN_LENGTH:
        return f"password must be at least {PASSWORD_MIN_LENGTH} characters long"
    if len(password) > PASSWORD_MAX_LENGTH:
        return f"password must be at most {PASSWORD_MAX_LENGTH} characters long"
    if password.strip() == "":
        return "password must not be only spaces"
    if len(character_classes(password)) < 2:
        return (
            "password must mix at least two kinds of characters "
            "(lower-case, upper-case, digits, symbols)"
        )
    return None


def validate_password(password: str, field: str = "password") -> str:
    problem = password_problem(password)
    if problem is not None:
        raise WeakPassword(problem, field)
    return password


def validate_role(role: str) -> str:
    if role not in ROLES:
        raise AccountRuleError("role", f"role must be one of {', '.join(ROLES)}")
    return role


# ------------------------------------------------------------------ hashing (Argon2id)

_hasher: Any = None


def _argon2() -> Any:
    global _hasher
    if _hasher is None:
        from argon2 import PasswordHasher, Type

        _hasher = PasswordHasher(type=Type.ID)  # RFC 9106 low-memory defaults
    return _hasher


def hash_password(password: str) -> str:
    return str(_argon2().hash(password))


def verify_password(password_hash: str, password: str) -> bool:
    from argon2.exceptions import InvalidHashError, VerificationError

    try:
        return bool(_argon2().verify(password_hash, password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    return bool(_argon2().check_needs_rehash(password_hash))


_dummy_hash: str | None = None


def dummy_hash() -> str:
    """A hash to verify against when the account does not exist (same timing class)."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = hash_password("no such account: a fixed dummy password 0")
    return _dummy_hash
