"""Currency truth for prices: which currency a product's price is in, how to print it, and
which of a group's products can be compared with it.

Prices are only compared within one currency; nothing is converted (no exchange rate is
stored), so a product in another currency is left out with the reason.
Plain Python: no web framework, database or AWS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from amazon_pilot.domain.snapshot import MARKETPLACE_CURRENCY, Snapshot

NO_DECIMALS = frozenset({"JPY"})
SYMBOLS = {"USD": "$", "GBP": "£", "EUR": "€", "JPY": "¥"}


def currency_of(product: Snapshot) -> str | None:
    """The stored currency, else the marketplace's (the actor reports none)."""
    return product.currency or MARKETPLACE_CURRENCY.get(product.marketplace)


def money(amount: float, currency: str | None) -> str:
    """``$12.50``, ``€12.50``, ``¥1,980``; an unknown currency prints its code."""
    text = f"{amount:,.0f}" if currency in NO_DECIMALS else f"{amount:,.2f}"
    if currency is None:
        return text
    symbol = SYMBOLS.get(currency)
    return f"{symbol}{text}" if symbol else f"{text} {currency}"


@dataclass(slots=True)
class PriceSplit:
    """The competitors whose price can be compared with the product's, and the others."""

    currency: str | None
    compared: list[Snapshot] = field(default_factory=list)
    left_out: list[dict[str, Any]] = field(default_factory=list)

    def describe_left_out(self) -> str:
        return "; ".join(f"{x['asin']} ({x['reason']})" for x in self.left_out)


def split_by_currency(product: Snapshot, competitors: Sequence[Snapshot]) -> PriceSplit:
    """Competitors with a price in the product's currency; each other one with why not."""
    ours = currency_of(product)
    out = PriceSplit(ours)
    for c in competitors:
        cur = currency_of(c)
        if c.price is None or c.price <= 0:
            out.left_out.append({"asin": c.asin, "marketplace": c.marketplace,
                                 "currency": cur, "reason": "no price"})
        elif ours is None or cur != ours:
            out.left_out.append({
                "asin": c.asin, "marketplace": c.marketplace, "currency": cur,
                "reason": f"priced in {cur or 'an unknown currency'} on amazon.{c.marketplace},"
                          f" not {ours or 'a known currency'}: prices in different currencies"
                          " are not compared"})
        else:
            out.compared.append(c)
    return out
