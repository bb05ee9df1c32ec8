"""A rule's regex searched from where a match can start, derived from the regex itself.

Python's `re` has no literal prefix to skip to in a case-insensitive pattern (and none at
all behind a leading `\\b`), so it tries such a pattern at every position of a text: a
lexicon rule costs 2.5-7 µs on a 160-character bullet however rarely it matches. Yet every
match of `\\b(?:vacuum[\\s-])?insulat(?:ed|ion)\\b|\\bdouble[\\s-]wall` starts with
"vacuum", "insulat" or "double". `heads()` reads those strings off the parsed pattern;
`Anchored` finds them in the lower-cased text with one case-sensitive alternation of
literals (which `re` does skip to, in C) and tries the rule with `match` only there.

Same matches as the rule's own `search`/`finditer`: `search` returns the match found at
the leftmost position where the pattern matches, and a position where none of the heads
starts cannot be one; `match(text, pos)` runs the same matcher at `pos` and, as `search`
with `pos` does, lets `\\b` and lookbehinds see the text before `pos`. Only for ASCII
text (the caller's test): the lower-cased text then has the same length and positions,
and IGNORECASE folds nothing but ASCII letters onto ASCII letters.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

try:  # CPython's own regex parser (3.11+): internal, so its absence only costs speed
    from re import _constants as C  # type: ignore[attr-defined]
    from re import _parser  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - another Python: every rule runs as written
    _parser = None

_Heads = set[tuple[str, bool]]  # (literal text every match on a path starts with, open)


def _sequence(items: Any) -> _Heads:
    """The heads of a run of parsed items: each item's heads extend the open paths."""
    out: _Heads = {("", True)}
    for op, av in items:
        step = _item(op, av)
        nxt: _Heads = set()
        for text, open_ in out:
            if not open_ or step is None:
                nxt.add((text, False))
            else:
                nxt.update((text + more, still) for more, still in step)
        out = nxt
    return out


def _item(op: Any, av: Any) -> _Heads | None:
    """The heads of one parsed item: None when its text is not a known literal."""
    if op is C.LITERAL:
        char = chr(av)
        # Only ASCII: IGNORECASE folds a few other letters onto ASCII ones (the long s).
        return {(char.lower(), True)} if char.isascii() else None
    if op is C.AT or op in (C.ASSERT, C.ASSERT_NOT):
        return {("", True)}  # zero width: the match's text starts after it
    if op is C.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags or del_flags:  # (?-i:...) and the like: not read
            return None
        return _sequence(sub)
    if op is C.BRANCH:
        return set().union(*(_sequence(branch) for branch in av[1]))
    if op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
        low, high, sub = av
        once = _sequence(sub)
        if low == high == 1:
            return once
        if low == 0 and high == 1:
            return {("", True)} | once
        closed = {(text, False) for text, _ in once}
        return closed if low >= 1 else {("", True)} | closed
    return None


def heads(pattern: str, flags: int) -> tuple[str, ...] | None:
    """Lower-case strings one of which every match of the pattern starts with (compared
    case-insensitively), shortest first and none holding another as its start; None when
    some match may start otherwise (a digit, a character class, an empty match)."""
    # Heads are lower-cased whatever the flags: for a case-sensitive pattern the positions
    # found in the lower-cased text are more than it can match at, never fewer.
    if _parser is None:
        return None
    try:
        parsed = _parser.parse(pattern, flags)
    except Exception:  # an internal that changed shape: the rule runs as written
        return None
    texts = {text for text, _ in _sequence(parsed)}
    if "" in texts:
        return None
    kept: list[str] = []
    for text in sorted(texts, key=lambda t: (len(t), t)):
        if not any(text.startswith(k) for k in kept):
            kept.append(text)
    return tuple(kept)


class Anchored:
    """`regex` searched only where one of its heads starts (see the module's docstring)."""

    __slots__ = ("_find", "_match")

    def __init__(self, regex: re.Pattern[str], found: tuple[str, ...]) -> None:
        self._match = regex.match
        self._find = re.compile("|".join(map(re.escape, found))).search

    def search(self, text: str, low: str) -> re.Match[str] | None:
        """regex.search(text); `low` is text.lower() and text is ASCII."""
        find, match = self._find, self._match
        at = find(low)
        while at is not None:
            start = at.start()
            m = match(text, start)
            if m is not None:
                return m
            at = find(low, start + 1)
        return None

    def finditer(self, text: str, low: str) -> Iterator[re.Match[str]]:
        """regex.finditer(text): every match is non-empty (it starts with a head)."""
        find, match = self._find, self._match
        at = find(low)
        while at is not None:
            start = at.start()
            m = match(text, start)
            if m is None:
                at = find(low, start + 1)
            else:
                yield m
                at = find(low, m.end())


def anchored(regex: re.Pattern[str]) -> Anchored | None:
    """The anchored form of a compiled (or lazy) regex, or None when it has no heads."""
    found = heads(regex.pattern, regex.flags)
    return None if found is None else Anchored(regex, found)
