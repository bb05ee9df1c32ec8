"""The grounding rule for listing copy: what a suggestion may add to a title, bullet or
description. Pure; no I/O.

A term a suggestion adds must come from the product's own listing (title, bullets,
description, product-details table) or appear in the titles of at least two competitors
(a search phrase the market uses). A number-and-unit claim (30 hours, 500 ml, IPX7,
Bluetooth 5.3, 2-pack) must be the product's own, whatever competitors say: a rival's
"48h Playtime" in our title is a false claim, not a keyword.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from amazon_pilot.domain.keywords import STOPWORDS, ascii_tokens, brand_tokens, stem
from amazon_pilot.domain.snapshot import Snapshot

MIN_COMPETITOR_TITLES = 2

# Unicode letters and digits: "Kühlbox" and "ワイヤレスイヤホン" are words too.
_WORD_RE = re.compile(r"[^\W_]+")

_UNITS: dict[str, str] = {
    "h": "h", "hr": "h", "hrs": "h", "hour": "h", "hours": "h", "std": "h", "stunden": "h",
    "min": "min", "mins": "min", "minute": "min", "minutes": "min",
    "mah": "mah", "wh": "wh", "kwh": "kwh", "w": "w", "watt": "w", "watts": "w",
    "v": "v", "volt": "v", "volts": "v",
    "oz": "oz", "floz": "oz", "ounce": "oz", "ounces": "oz",
    "ml": "ml", "l": "l", "liter": "l", "liters": "l", "litre": "l", "litres": "l",
    "g": "g", "kg": "kg", "lb": "lb", "lbs": "lb", "pound": "lb", "pounds": "lb",
    "mm": "mm", "cm": "cm", "m": "m", "ft": "ft", "feet": "ft", "inch": "in", "inches": "in",
    "gb": "gb", "tb": "tb", "hz": "hz", "khz": "khz", "mhz": "mhz", "ghz": "ghz", "db": "db",
    "rpm": "rpm", "mph": "mph", "qt": "qt", "quart": "qt", "quarts": "qt", "cups": "cup",
    "cup": "cup", "pack": "pack", "pk": "pack", "pcs": "count", "pieces": "count",
    "piece": "count", "count": "count", "ct": "count", "pairs": "pair", "pair": "pair",
    "stück": "count", "個": "count", "時間": "h",
}
UNIT_WORDS = frozenset(_UNITS)
_UNIT_ALT = "|".join(sorted((re.escape(u) for u in _UNITS), key=len, reverse=True))
_SPEC_RE = re.compile(
    r"(?<![\w.])(?P<ip>ipx?\s?-?\s?\d{1,2})(?!\d)"
    r"|(?:(?P<vword>bluetooth|bt|version|wifi|usb)\s?v?(?P<ver>\d+(?:\.\d+)+))"
    r"|(?<![\w.])(?P<num>\d+(?:[.,]\d+)?)\s?-?\s?(?P<unit>fl\.?\s?oz|" + _UNIT_ALT + r")(?![a-z])",
    re.IGNORECASE,
)
_DECIMAL_RE = re.compile(r"(?<![\w.])v?(\d+\.\d+)(?![\w.])", re.IGNORECASE)

LISTING_FIELDS = ("own title", "own bullets", "own description", "own details")


def words(text: str | None) -> list[str]:
    low = (text or "").lower()
    # In ASCII, [^\W_] is a letter or a digit: the words are keywords.tokens' (≈ 3x faster)
    return ascii_tokens(low) if low.isascii() else _WORD_RE.findall(low)


def details_text(product: Snapshot) -> str:
    """The product-details table as text, when the snapshot carries one."""
    table = getattr(product, "details_table", None)  # (name, value) rows in page order
    if isinstance(table, dict):
        table = list(table.items())
    rows = []
    for row in table or []:
        if isinstance(row, (list, tuple)) and len(row) == 2 and row[1] not in (None, ""):
            rows.append(f"{row[0]}: {row[1]}")
    return " | ".join(rows)


def specs(text: str | None) -> set[str]:
    """Normalised number-and-unit claims: "30H" and "30 hours" are both "30 h"."""
    return set(_specs(text)) if text else set()


_NON_DIGIT_RE = re.compile(r"\D")
_UNIT_NOISE_RE = re.compile(r"[\s.]")
# Every spec holds a digit (any script's: \d, as the patterns): a text without one is not
# searched (the long unit alternation costs ~20 us a description).
_DIGIT_RE = re.compile(r"\d")


# The same listing text is grounded by every suggestion of a run and again the next day.
@lru_cache(maxsize=8192)
def _specs(text: str) -> frozenset[str]:
    out: set[str] = set()
    if not _DIGIT_RE.search(text):
        return frozenset(out)
    for m in _SPEC_RE.finditer(text):
        if m.group("ip"):
            ip = m.group("ip").lower()
            out.add(("ipx" if "x" in ip else "ip") + _NON_DIGIT_RE.sub("", ip))
        elif m.group("ver"):
            out.add(f"v {m.group('ver')}")
        else:
            unit = _UNIT_NOISE_RE.sub("", m.group("unit").lower())
            num = float(m.group("num").replace(",", "."))
            out.add(f"{num:g} {_UNITS.get(unit, unit)}")
    for m in _DECIMAL_RE.finditer(text):
        out.add(f"v {m.group(1)}")
    return frozenset(out)


def spec_surfaces(text: str | None) -> list[tuple[str, str]]:
    """(normalised spec, the text that states it) in order of appearance."""
    return list(_spec_surfaces(text)) if text else []


@lru_cache(maxsize=8192)
def _spec_surfaces(text: str) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    if not _DIGIT_RE.search(text):
        return ()
    for m in _SPEC_RE.finditer(text):
        for key in _specs(m.group(0)):
            out.append((key, m.group(0).strip()))
    return tuple(out)


@dataclass(slots=True)
class Sources:
    """Where each word of the product's own listing and of the market's titles is found."""

    own: dict[str, str]  # stem -> first listing field it appears in
    own_specs: set[str]
    market: dict[str, int]  # stem -> number of competitor titles using it
    foreign_brands: frozenset[str]


def sources(product: Snapshot, competitors: Sequence[Snapshot]) -> Sources:
    fields = (
        product.title,
        " | ".join(product.bullet_points),
        product.description,
        details_text(product),
    )
    own, own_specs = _own_words(fields)
    ours = brand_tokens([product.brand])
    foreign = brand_tokens([c.brand for c in competitors]) - ours
    titles = tuple(c.title for c in competitors if c.asin != product.asin and c.found)
    # Copies: a caller may change its Sources, never the cached reading.
    return Sources(dict(own), set(own_specs), dict(_market_words(titles)), foreign)


# The listing's own text and its rivals' titles, read once across runs (ranks and prices,
# which move daily, are not read here).
@lru_cache(maxsize=4096)
def _own_words(fields: tuple[str | None, ...]) -> tuple[dict[str, str], frozenset[str]]:
    own: dict[str, str] = {}
    own_specs: set[str] = set()
    for label, text in zip(LISTING_FIELDS, fields, strict=True):
        # each distinct stem once, in order of appearance (a description repeats words)
        for s in dict.fromkeys(map(stem, words(text))):
            own.setdefault(s, label)
        own_specs |= specs(text)
    return own, frozenset(own_specs)


@lru_cache(maxsize=1024)
def _market_words(titles: tuple[str | None, ...]) -> dict[str, int]:
    market: dict[str, int] = {}
    for title in titles:
        for s in {stem(w) for w in words(title)}:
            market[s] = market.get(s, 0) + 1
    return market


@lru_cache(maxsize=8192)
def _stems_of(text: str) -> frozenset[str]:
    return frozenset(stem(w) for w in words(text))


@dataclass(slots=True)
class Grounding:
    """What a piece of copy adds and where each added term comes from."""

    term_sources: dict[str, str] = field(default_factory=dict)
    ungrounded: list[str] = field(default_factory=list)  # terms without a source
    foreign_specs: list[str] = field(default_factory=list)  # claims not the product's own

    @property
    def ok(self) -> bool:
        return not self.ungrounded and not self.foreign_specs

    def problems(self) -> list[str]:
        out = []
        if self.ungrounded:
            out.append("terms not in the listing nor in >= 2 competitor titles: "
                       + ", ".join(self.ungrounded))
        if self.foreign_specs:
            out.append("specs that are not the product's own: " + ", ".join(self.foreign_specs))
        return out


def _is_content(w: str) -> bool:
    if w in STOPWORDS or w.isdigit():
        return False
    return len(w) >= 3 or any(c.isdigit() for c in w) or not w.isascii()


def source_of(w: str, src: Sources) -> str | None:
    s = stem(w)
    if s in src.own:
        return src.own[s]
    if w in src.foreign_brands:
        return None  # a rival's brand is never ours to use, however many titles show it
    if any(c.isdigit() for c in w):
        return None  # a model number or spec ("a10", "48h") of a rival's is not ours
    n = src.market.get(s, 0)
    return f"competitor titles ({n})" if n >= MIN_COMPETITOR_TITLES else None


def check(text: str | None, src: Sources, current: str | None = "") -> Grounding:
    """Ground every term `text` adds to `current` and every spec `text` states."""
    g = Grounding()
    # A run checks every keyword against the same title, every bullet against the same
    # bullets: their stems are read once.
    have = _stems_of(current) if current else frozenset()
    spec_words = {w for _, surf in spec_surfaces(text) for w in words(surf)}
    for w in words(text):
        if stem(w) in have or not _is_content(w) or w in g.term_sources or w in g.ungrounded:
            continue
        if w in spec_words and not w.isalpha():
            continue  # "30h" is checked as a spec below
        label = source_of(w, src)
        if label is None:
            g.ungrounded.append(w)
        else:
            g.term_sources[w] = label
    for key, surf in spec_surfaces(text):
        if key not in src.own_specs and surf not in g.foreign_specs:
            g.foreign_specs.append(surf)
    # a version needs a digit: most copy has none, and the regex tries every position
    decimals = _DECIMAL_RE.finditer(text) if text and _DIGIT_RE.search(text) else ()
    for m in decimals:
        key = f"v {m.group(1)}"
        if key not in src.own_specs and m.group(0) not in g.foreign_specs:
            g.foreign_specs.append(m.group(0))
    return g


_SEGMENT_SPLIT_RE = re.compile(r"(\s*,\s*|\s+-\s+|\s*\|\s*|\s*;\s*)")
_SENTENCE_SPLIT_RE = re.compile(r"(?<=[.!?。])\s+")


def _segment_ok(seg: str, src: Sources, current: str | None) -> bool:
    return check(seg, src, current).ok


def repair_title(title: str, src: Sources, current: str | None) -> str:
    """Drop the title segments (between commas, dashes, bars) that carry an ungrounded
    term or a foreign spec; the rest keeps its order."""
    parts = _SEGMENT_SPLIT_RE.split(title)
    kept: list[str] = []
    sep = ""  # the separator after the last kept segment joins the next kept one
    for i in range(0, len(parts), 2):
        seg = parts[i]
        if not seg.strip() or not _segment_ok(seg, src, current):
            continue
        if kept:
            kept.append(sep)
        kept.append(seg)
        sep = parts[i + 1] if i + 1 < len(parts) else ", "
    return "".join(kept).strip(" ,|-;")


def repair_prose(text: str, src: Sources, current: str | None) -> str:
    """Drop the sentences that carry an ungrounded term or a foreign spec."""
    return " ".join(s for s in _SENTENCE_SPLIT_RE.split(text.strip())
                    if s.strip() and _segment_ok(s, src, current)).strip()


def norm(text: str | None) -> str:
    """Whitespace and case folded: what "the same text" means for the no-op check."""
    return " ".join((text or "").split()).casefold()


def same_text(a: str | None, b: str | None) -> bool:
    return norm(a) == norm(b)


def merge_sources(checks: Iterable[Grounding]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for g in checks:
        for k, v in g.term_sources.items():
            out.setdefault(k, v)
    return out
