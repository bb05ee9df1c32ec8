"""Who a seller is on Amazon: their seller ids, brands and company name, the rules their
input follows, and whether a Buy Box holder is them. Pure: no I/O.

A seller id is Amazon's merchant id (Seller Central calls it the "Merchant Token"; it is
the `seller=` / `smid=` parameter of Amazon's offer and storefront URLs, and the axesso
actor's `sellerId`): upper-case letters and digits, 13 or 14 of them in every id we have
seen (ATVPDKIKX0DER is Amazon.com itself; A294P4X9EWVXLJ is the Buy Box seller of the
real axesso item in shared/reference/real-items). 10 to 20 are accepted, to leave room.

Ownership is judged by seller id: a Buy Box whose seller id is one of the seller's is
theirs, one with another id is not. Only an observation without a seller id (actor
formats that give the seller's name alone) is judged by name, against the company name
and brands. A seller who has given no seller id has an unknown ownership: nothing is
guessed from names then.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache

MAX_SELLER_IDS = 20
MAX_BRANDS = 20
MAX_BRAND_LENGTH = 100
SELLER_ID_PATTERN = r"^[A-Z0-9]{10,20}$"
_SELLER_ID = re.compile(SELLER_ID_PATTERN)
_SPACES = re.compile(r"\s+")



def ownership_unknown(what: str) -> str:
    """The plain words for a seller who has given no seller id."""
    return ("ownership unknown: you have not told us your Amazon seller ids (add them in "
            f"Settings), so we cannot say {what}")



class IdentityRuleError(ValueError):
    """An identity value breaks a rule; `field` names the input (e.g. "seller_ids[2]")."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def normalize_seller_ids(values: Sequence[object]) -> list[str]:
    """Trimmed, upper-cased (an id pasted in lower case is the same id; one in mixed case
    is a name), deduplicated (first kept), checked against the merchant id format; at
    most MAX_SELLER_IDS."""
    out: list[str] = []
    for index, value in enumerate(values):
        name = f"seller_ids[{index}]"
        if not isinstance(value, str):
            raise IdentityRuleError(name, "must be a string")
        given = value.strip()
        seller_id = given.upper()
        if not seller_id:
            raise IdentityRuleError(name, "is empty")
        if given != seller_id and given != given.lower():
            # ids are shown in capitals; mixed case is a store name ("AnkerDirect")
            raise IdentityRuleError(
                name, f"{_short(value)} looks like a seller name, not a seller id: ids are "
                "10 to 20 capital letters and digits, like A294P4X9EWVXLJ (Seller Central: "
                "Settings > Account Info > Merchant Token)")
        if not _SELLER_ID.match(seller_id):
            raise IdentityRuleError(
                name, f"{_short(value)} is not an Amazon seller id: 10 to 20 letters and "
                "digits, like A294P4X9EWVXLJ (Seller Central: Settings > Account Info > "
                "Merchant Token)")
        if seller_id not in out:
            out.append(seller_id)
    if len(out) > MAX_SELLER_IDS:
        raise IdentityRuleError("seller_ids", f"at most {MAX_SELLER_IDS} seller ids")
    return out


def normalize_brands(values: Sequence[object]) -> list[str]:
    """Trimmed, inner spaces collapsed, deduplicated regardless of case (first spelling
    kept); each 1 to MAX_BRAND_LENGTH characters; at most MAX_BRANDS."""
    out: list[str] = []
    seen: set[str] = set()
    for index, value in enumerate(values):
        name = f"brands[{index}]"
        if not isinstance(value, str):
            raise IdentityRuleError(name, "must be a string")
        brand = _SPACES.sub(" ", unicodedata.normalize("NFKC", value)).strip()
        if not brand:
            raise IdentityRuleError(name, "is empty")
        if len(brand) > MAX_BRAND_LENGTH:
            raise IdentityRuleError(name, f"is longer than {MAX_BRAND_LENGTH} characters")
        if any(unicodedata.category(ch) == "Cc" for ch in brand):
            raise IdentityRuleError(name, "contains control characters")
        key = name_key(brand)
        if key not in seen:
            seen.add(key)
            out.append(brand)
    if len(out) > MAX_BRANDS:
        raise IdentityRuleError("brands", f"at most {MAX_BRANDS} brands")
    return out


# Change detection keys every Buy Box holder and brand of every observation, and a run
# names the same few sellers and brands again and again: each is normalized once.
@lru_cache(maxsize=8192)
def name_key(name: str) -> str:
    """How names are compared: NFKC, case-folded, spaces collapsed."""
    return _SPACES.sub(" ", unicodedata.normalize("NFKC", name)).strip().casefold()


def _short(value: str) -> str:
    return repr(value if len(value) <= 30 else value[:27] + "...")


@dataclass(frozen=True)
class SellerIdentity:
    """One seller's identity, as change detection and the Buy Box share read it."""

    seller_ids: frozenset[str] = frozenset()
    names: frozenset[str] = frozenset()  # name_key of the company name and every brand
    brands: frozenset[str] = frozenset()  # name_key of every brand

    @classmethod
    def of(cls, seller_ids: Iterable[str] | None, brands: Iterable[str] | None,
           company_name: str | None = None) -> SellerIdentity:
        ids = frozenset(s.strip().upper() for s in seller_ids or () if s and s.strip())
        brand_keys = frozenset(name_key(b) for b in brands or () if b and b.strip())
        names = brand_keys | ({name_key(company_name)} if company_name and
                              company_name.strip() else set())
        if not ids and not brand_keys and not names:
            return NO_IDENTITY
        return cls(ids, frozenset(names), brand_keys)

    @property
    def known(self) -> bool:
        """Whether ownership can be judged at all: only with seller ids."""
        return bool(self.seller_ids)

    def holds(self, seller_id: str | None, seller_name: str | None) -> bool | None:
        """Whether this Buy Box holder is this seller: None when ownership is unknown (no
        seller ids given) or nobody holds it."""
        if not self.known:
            return None
        if seller_id:
            return seller_id.strip().upper() in self.seller_ids
        if seller_name:
            return name_key(seller_name) in self.names
        return None

    def owns_brand(self, brand: str | None) -> bool:
        return bool(brand) and name_key(brand or "") in self.brands


NO_IDENTITY = SellerIdentity()


@dataclass(frozen=True)
class BuyBoxDay:
    """The last observation of one day, as the Buy Box share reads it."""

    day: date
    seller_id: str | None
    seller_name: str | None
    nobody: bool  # no offer shown: out of stock or no featured offer


@dataclass(frozen=True)
class BuyBoxShare:
    """Days with a known Buy Box (a holder, or nobody because no offer was shown) and
    how many of them this seller held it; `held` None when ownership is unknown."""

    days: int
    held: int | None
    unknown_days: int = 0  # observed, but the actor reported no seller (format or gap)
    held_on: list[date] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        if self.held is None or not self.days:
            return None
        return round(self.held / self.days, 4)


def buy_box_share(days: Iterable[BuyBoxDay], me: SellerIdentity,
                  since: date | None = None) -> BuyBoxShare:
    """The share of days (from `since`) on which this seller held the Buy Box."""
    known = unknown = 0
    held: list[date] = []
    for d in days:
        if since is not None and d.day < since:
            continue
        if d.nobody:
            known += 1
        elif d.seller_id or d.seller_name:
            known += 1
            if me.holds(d.seller_id, d.seller_name):
                held.append(d.day)
        else:
            unknown += 1
    if not me.known:
        return BuyBoxShare(known, None, unknown)
    return BuyBoxShare(known, len(held), unknown, held)
