"""The membership rules of a competitor group, for every change of its members.

A group is one main product and 3 to 5 competitors; a product is (ASIN, marketplace), so
the same ASIN in another marketplace is another product. ``members_after`` applies a
change (create, add, remove) and returns the competitors after it, or raises
``MembershipError`` naming the first rule the change breaks, in this order:

1. the main product is not a competitor (nor can it be removed);
2. no product twice (and a removed competitor must be in the group);
3. 3 to 5 competitors after the change;
4. one marketplace: every competitor is sold on the main product's marketplace, so prices
   are in one currency (a group made before this rule may still mix them; pricing then
   compares only same-currency members and names the others).

Plain Python: no web framework, database or AWS imports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

MIN_COMPETITORS = 3
MAX_COMPETITORS = 5

Ref = tuple[str, str]  # (asin, marketplace)


@dataclass(frozen=True, slots=True)
class Create:
    competitors: Sequence[Ref]


@dataclass(frozen=True, slots=True)
class Add:
    competitor: Ref


@dataclass(frozen=True, slots=True)
class Remove:
    asin: str  # the path names the ASIN only; normalised (stripped, upper case)


Change = Create | Add | Remove


class MembershipError(ValueError):
    """``field`` is the request field at fault (``competitors.2``, ``competitor``, ``asin``);
    ``kind`` is "missing" when the change names a competitor the group does not have."""

    def __init__(self, field: str, message: str,
                 kind: Literal["invalid", "missing"] = "invalid") -> None:
        super().__init__(message)
        self.field, self.message, self.kind = field, message, kind


def members_after(main: Ref, current: Sequence[Ref], change: Change) -> list[Ref]:
    """The group's competitors after ``change`` (``current`` is empty for a new group)."""
    _main_is_not_a_competitor(main, change)
    after = _each_product_once(current, change)
    _three_to_five(after, change)
    _one_marketplace(main, change)
    return after


def _main_is_not_a_competitor(main: Ref, change: Change) -> None:
    def message(ref: Ref) -> str:
        return f"the main product {ref[0]} cannot also be a competitor"

    if isinstance(change, Create):
        for i, ref in enumerate(change.competitors):
            if ref == main:
                raise MembershipError(f"competitors.{i}", message(ref))
    elif isinstance(change, Add):
        if change.competitor == main:
            raise MembershipError("competitor", message(main))
    elif change.asin == main[0]:
        raise MembershipError("asin", f"{change.asin} is the main product of this group;"
                                      " create a new group to change it")


def _each_product_once(current: Sequence[Ref], change: Change) -> list[Ref]:
    """The competitors after the change; a removed competitor must be in the group."""
    if isinstance(change, Create):
        seen: dict[Ref, int] = {}
        for i, ref in enumerate(change.competitors):
            if ref in seen:
                raise MembershipError(f"competitors.{i}", f"competitor {ref[0]} is listed"
                                                          f" twice (items {seen[ref]} and {i})")
            seen[ref] = i
        return list(change.competitors)
    if isinstance(change, Add):
        if change.competitor in current:
            raise MembershipError("competitor", f"{change.competitor[0]} is already a"
                                                " competitor in this group")
        return [*current, change.competitor]
    gone = next((ref for ref in current if ref[0] == change.asin), None)
    if gone is None:
        raise MembershipError("asin", f"{change.asin} is not a competitor in this group",
                              kind="missing")
    return [ref for ref in current if ref != gone]


def _three_to_five(after: Sequence[Ref], change: Change) -> None:
    # An add can only overshoot and a remove only undershoot; each says what to do instead.
    n = len(after)
    if isinstance(change, Add) and n > MAX_COMPETITORS:
        raise MembershipError("competitor", f"a group has at most {MAX_COMPETITORS}"
                                            f" competitors; remove one before adding"
                                            f" {change.competitor[0]}")
    if isinstance(change, Remove) and n < MIN_COMPETITORS:
        raise MembershipError("asin", f"a group needs at least {MIN_COMPETITORS} competitors;"
                                      f" add another before removing {change.asin}")
    if isinstance(change, Create) and not MIN_COMPETITORS <= n <= MAX_COMPETITORS:
        raise MembershipError("competitors", f"a group needs {MIN_COMPETITORS} to"
                                             f" {MAX_COMPETITORS} competitors; got {n}")


def _one_marketplace(main: Ref, change: Change) -> None:
    def message(ref: Ref) -> str:
        return (f"competitor {ref[0]} is on amazon.{ref[1]} but the main product {main[0]} is"
                f" on amazon.{main[1]}: a group is one marketplace, so its prices are in one"
                " currency; add the competitor's listing on the same marketplace instead")

    if isinstance(change, Create):
        for i, ref in enumerate(change.competitors):
            if ref[1] != main[1]:
                raise MembershipError(f"competitors.{i}", message(ref))
    elif isinstance(change, Add) and change.competitor[1] != main[1]:
        raise MembershipError("competitor", message(change.competitor))
