"""Explainable feature extraction from the product-details table, bullet points and titles.

Deterministic rules, no model: every feature records where it came from (a details-table
row, a bullet by 0-based index, or the title) and which exact span of text produced it,
plus the rule's name, so a seller can see why we think a competitor has "IPX7" or "32 fl
oz". Units are normalised: hours, months, grams, millilitres, centimetres, watts, volts, mAh.

The details table is read first and its named rows win ("Capacity: 32 Fluid Ounces" is the
page's own structured claim, for any category); bullets come next because they carry the
qualified claims ("8 hrs (32 with case)"), and the title only fills what both left out.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence, Set
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from amazon_pilot.domain.anchored import Anchored, anchored
from amazon_pilot.domain.keywords import ascii_tokens
from amazon_pilot.domain.lazy_pattern import lazy_re
from amazon_pilot.domain.snapshot import Snapshot

FeatureValue = float | int | bool | str
Kind = Literal["number", "flag", "text", "theme"]
Better = Literal["higher", "lower"]
Merge = Literal["first", "max", "min"]


@dataclass(slots=True, frozen=True)
class AttributeSpec:
    kind: Kind
    unit: str | None = None
    better: Better | None = None  # numeric attributes: which way is stronger
    merge: Merge = "first"  # several mentions: keep the first, or the max/min value


ATTRIBUTES: dict[str, AttributeSpec] = {
    "battery_hours": AttributeSpec("number", "h", "higher", "max"),
    "battery_total_hours": AttributeSpec("number", "h", "higher", "max"),
    "water_resistance": AttributeSpec("number", "ip_level", "higher", "max"),
    "bluetooth_version": AttributeSpec("number", None, "higher", "max"),
    "anc": AttributeSpec("flag"),
    "anc_hybrid": AttributeSpec("flag"),
    "anc_db": AttributeSpec("number", "dB", "higher", "max"),
    "call_noise_reduction": AttributeSpec("flag"),
    "warranty_months": AttributeSpec("number", "months", "higher", "max"),
    "usb_c": AttributeSpec("flag"),
    "wireless_charging": AttributeSpec("flag"),
    "fast_charge": AttributeSpec("flag"),
    "fast_charge_minutes": AttributeSpec("number", "min", "lower"),
    "fast_charge_hours": AttributeSpec("number", "h", "higher"),
    "weight_grams": AttributeSpec("number", "g", "lower"),
    "driver_mm": AttributeSpec("number", "mm", "higher", "max"),
    "codec_aac": AttributeSpec("flag"),
    "codec_aptx": AttributeSpec("flag"),
    "codec_ldac": AttributeSpec("flag"),
    "codec_lc3": AttributeSpec("flag"),
    "codec_sbc": AttributeSpec("flag"),
    "multipoint": AttributeSpec("flag"),
    "app_support": AttributeSpec("flag"),
    "microphones": AttributeSpec("number", "mics", "higher", "max"),
    "wattage_w": AttributeSpec("number", "W", "higher", "max"),
    "capacity_mah": AttributeSpec("number", "mAh", "higher", "max"),
    "ports": AttributeSpec("number", "ports", "higher", "max"),
    "dimensions_cm": AttributeSpec("text", "cm"),
    # Any category, mostly from the details table.
    "capacity_ml": AttributeSpec("number", "ml", "higher", "max"),
    "materials": AttributeSpec("text"),
    "item_count": AttributeSpec("number", "items"),
    "pieces": AttributeSpec("number", "pieces"),
    "speeds": AttributeSpec("number", "speeds", "higher", "max"),
    "voltage_v": AttributeSpec("number", "V", "higher", "max"),
    "speed_rpm": AttributeSpec("number", "rpm", "higher", "max"),
    "power_source": AttributeSpec("text"),
    "pages": AttributeSpec("number", "pages"),
    "book_format": AttributeSpec("text"),
    "language": AttributeSpec("text"),
    "care_instructions": AttributeSpec("text"),
    "closure_type": AttributeSpec("text"),
    "insulated": AttributeSpec("flag"),
    "dishwasher_safe": AttributeSpec("flag"),
    "bpa_free": AttributeSpec("flag"),
}


Source = Literal["details", "bullet", "title"]


@dataclass(slots=True, frozen=True)
class Evidence:
    source: Source
    # 0-based index into bullet_points (or into details_table for a details row); None
    # for the title.
    bullet_index: int | None
    text: str  # the matched span exactly as written
    start: int
    end: int
    row_name: str | None = None  # the details-table row's name ("Capacity")

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "bullet_index": self.bullet_index,
            "text": self.text,
            "start": self.start,
            "end": self.end,
            "row_name": self.row_name,
        }


@dataclass(slots=True, frozen=True)
class Feature:
    name: str
    value: FeatureValue
    unit: str | None
    kind: Kind
    label: str  # human wording: "IPX5", "8 h", "aptX Adaptive"
    rule: str  # which rule matched, for explanations
    evidence: Evidence

    def to_dict(self) -> dict[str, Any]:
        return {
            "value": self.value,
            "unit": self.unit,
            "kind": self.kind,
            "label": self.label,
            "rule": self.rule,
            "evidence": self.evidence.to_dict(),
        }


@dataclass(slots=True)
class ProductFeatures:
    asin: str
    features: dict[str, Feature] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.features

    def value(self, name: str) -> FeatureValue | None:
        feature = self.features.get(name)
        return feature.value if feature else None

    def to_dict(self) -> dict[str, Any]:
        return {"asin": self.asin, "features": {k: f.to_dict() for k, f in self.features.items()}}


# --------------------------------------------------------------------------- regexes

_I = re.IGNORECASE
_NUM = r"\d+(?:\.\d+)?"
_HOURS = r"(?:h|hrs?|hours?)"
_WORD_NUMBERS: dict[str, int] = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "eight": 8,
    "dual": 2,
    "triple": 3,
    "quad": 4,
}
_COUNTS = r"\d+|one|two|three|four|five|six|eight|dual|triple|quad"
_COUNT = rf"(?P<n>{_COUNTS})"

FAST_CHARGE_RE = lazy_re(
    rf"(?P<min>\d+)\s*-?\s*min(?:ute)?s?\.?\s*(?:of\s+)?(?:quick\s+|fast\s+|rapid\s+)?"
    rf"(?:charg(?:e|ing))?\s*(?:=|gives?|provides?|delivers?|for|gets?|offers?|->|→|:)\s*"
    rf"(?:you\s+)?(?:up\s+to\s+)?(?:an?\s+)?(?:extra\s+|additional\s+)?"
    rf"(?P<hrs>{_NUM})\s*{_HOURS}\b",
    _I,
)
FAST_CHARGE_REV_RE = lazy_re(
    rf"(?P<hrs>{_NUM})\s*{_HOURS}\b[^.;]{{0,30}}?\b(?:from|with|after|in)\s+(?:a\s+|just\s+|only\s+)*"
    rf"(?P<min>\d+)\s*-?\s*min(?:ute)?s?\.?\s*(?:of\s+)?(?:quick\s+|fast\s+|rapid\s+)?charg(?:e|ing)?",
    _I,
)
BATTERY_PAREN_RE = lazy_re(
    rf"(?P<main>{_NUM})\s*{_HOURS}\b[^()\d]{{0,30}}?\(\s*(?:up\s+to\s+)?(?P<total>{_NUM})\s*"
    rf"(?:{_HOURS}\b)?\s*(?:in\s+total\s+|total\s+)?(?:with|w/|incl\.?|including|using)\s+"
    rf"(?:the\s+)?(?:charging\s+)?case",
    _I,
)
DURATION_RE = lazy_re(
    rf"(?P<num>{_NUM})\s*-?\s*(?P<addon>(?:extra|additional|more)\s+)?(?P<unit>h|hrs?|hours?|days?)\b",
    _I,
)
BATTERY_CONTEXT_RE = lazy_re(
    r"play\s*time|playback|battery|listening|talk\s*time|music\s+time|charg|working\s+time|"
    r"usage\s+time|run\s*time|lasts?\b",
    _I,
)
# Durations right after these words are charging times, not battery life.
CHARGE_TIME_BEFORE_RE = lazy_re(
    r"(?:(?:charg\w*|recharg\w*)\s+(?:time\s*(?:is\s+|of\s+|:\s*)?|in\s+|within\s+)|"
    r"takes\s+|standby\s+(?:time\s+)?(?:of\s+)?)"
    r"(?:only\s+|just\s+|about\s+|approx\.?\s+|approximately\s+|around\s+|up\s+to\s+)*$",
    _I,
)
NOT_BATTERY_NEAR_RE = lazy_re(
    r"\b(?:standby|warrant\w*|returns?|refunds?|money|guarantee\w*|trial|shipping|delivery)\b",
    _I,
)
SINGLE_CHARGE_NEAR_RE = lazy_re(
    r"single\s+charge|per\s+charge|one\s+charge|on\s+a\s+charge|earbuds?\s+alone|"
    r"fully\s+charged\s+earbuds?",
    _I,
)
TOTAL_NEAR_RE = lazy_re(r"\b(?:case|total|combined|in\s+all|overall)\b", _I)
ADDON_NEAR_RE = lazy_re(r"\b(?:extra|additional|more|another)\b", _I)
CLAUSE_BREAK_RE = lazy_re(r"[.;|!]\s")

WARRANTY_BEFORE_RE = lazy_re(
    r"\b(?P<num>\d+|one|two|three|four|five)\s*[- ]?\s*(?P<unit>years?|yrs?|months?|mos?)\b"
    r"[^.;]{0,25}?\b(?:warranty|guarantee)",
    _I,
)
WARRANTY_AFTER_RE = lazy_re(
    r"\b(?:warranty|guarantee)\b[^.;]{0,25}?\b(?P<num>\d+|one|two|three|four|five)\s*[- ]?\s*"
    r"(?P<unit>years?|yrs?|months?|mos?)\b",
    _I,
)
BLUETOOTH_RE = lazy_re(
    r"\b(?:bluetooth|BT)\s*(?:version\s*|v(?:er\.?)?\s*)?(?P<ver>[1-6]\.\d)\b", _I
)
BLUETOOTH_BEFORE_RE = lazy_re(r"\bV?(?P<ver>[4-6]\.\d)\s*(?:version\s+)?(?:bluetooth|BT)\b", _I)
IP_RE = lazy_re(r"\bIP[\s-]?(?P<dust>[0-6X])[\s-]?(?P<water>[0-8])\b", _I)

ANC_RE = lazy_re(
    r"\b(?P<hybrid>hybrid\s+)?(?:(?:active|adaptive)\s+noise[\s-]+(?:cancell?(?:ing|ation)|"
    r"reduction)|ANC)\b",
    _I,
)
NOISE_CANCEL_RE = lazy_re(r"\b(?P<hybrid>hybrid\s+)?noise[\s-]+cancell?(?:ing|ation)\b", _I)
CALL_NEAR_RE = lazy_re(r"\b(?:mic(?:rophone)?s?|calls?|ENC|CVC|environmental|voice)\b", _I)
NEGATION_BEFORE_RE = lazy_re(r"\b(?:no|not|without|non)[\s-]+$", _I)
CALL_NR_RE = lazy_re(
    r"\bENC\b|\bCVC\s*\d*(?:\.\d)?\b|environmental\s+noise\s+cancell?(?:ing|ation)|"
    r"noise[\s-]+cancell?ing\s+mic",
    _I,
)
DB_RE = lazy_re(r"(?P<db>\d{2})\s*dB\b", _I)

USB_C_RE = lazy_re(r"\b(?:USB[\s-]?C|Type[\s-]?C)\b", _I)
WIRELESS_CHARGING_RE = lazy_re(
    r"\bwireless(?:ly)?[\s-]+charg(?:ing|er|eable|e)\b|(?-i:\bQi\b)", _I
)
FAST_CHARGE_FLAG_RE = lazy_re(
    r"\b(?:fast|quick|rapid|turbo|super)[\s-]*charg(?:e|es|ed|ing|er)\b|\bpower\s+delivery\b|"
    r"(?-i:\bPD\b)|(?-i:\bQC\s*\d\.\d\b)",
    _I,
)
WEIGHT_RE = lazy_re(
    r"(?P<num>\d+(?:\.\d+)?)\s*(?P<unit>g|grams?|oz|ounces?|lbs?|pounds?|kg|kilograms?)\b(?!/)",
    _I,
)
WEIGHT_NEAR_RE = lazy_re(r"weigh|light|only|each|per\s+(?:bud|earbud)|ultra", _I)
DRIVER_RE = lazy_re(r"(?P<num>\d+(?:\.\d+)?)\s*mm\b(?:[\s-]+[\w-]+){0,3}?[\s-]+drivers?\b", _I)
DRIVER_AFTER_RE = lazy_re(r"\bdrivers?\b[^.;]{0,20}?(?P<num>\d+(?:\.\d+)?)\s*mm\b", _I)
CODEC_RES: dict[str, re.Pattern[str]] = {
    "codec_ldac": lazy_re(r"\bLDAC\b", _I),
    "codec_aptx": lazy_re(r"\baptX(?:[\s-]+(?:Adaptive|HD|Lossless|Low\s+Latency))?\b", _I),
    "codec_aac": lazy_re(r"\bAAC\b", _I),
    "codec_lc3": lazy_re(r"\bLC3(?:plus)?\b", _I),
    "codec_sbc": lazy_re(r"\bSBC\b", _I),
}
MULTIPOINT_RE = lazy_re(
    r"\bmulti[\s-]?point\b|\bconnect(?:s|ed|ion)?\s+(?:to\s+)?(?:two|2)\s+devices\b|"
    r"\b(?:two|2|dual)[\s-]+devices?\s+(?:at\s+once|simultaneously|connection)\b|"
    r"\bdual[\s-]device\b",
    _I,
)
APP_RE = lazy_re(r"\b(?:companion\s+|dedicated\s+|free\s+)?app\b", _I)
MIC_RE = lazy_re(
    rf"\b{_COUNT}[\s-]*(?:built[\s-]in\s+|AI\s+|noise[\s-]cancell?ing\s+|ENC\s+|"
    r"beamforming\s+|call\s+)*mic(?:rophone)?s?\b",
    _I,
)
WATT_RE = lazy_re(r"(?P<num>\d+(?:\.\d+)?)\s*(?:W|watts?)\b(?!/)", _I)
MAH_RE = lazy_re(r"(?P<num>\d{1,3}(?:,\d{3})+|\d+)\s*mAh\b", _I)
PORTS_RE = lazy_re(rf"\b{_COUNT}[\s-]*(?:USB[\s-]?C?\s+|output\s+)?ports?\b", _I)
DIMENSIONS_RE = lazy_re(
    r"(?P<a>\d+(?:\.\d+)?)\s*[x\u00d7*]\s*(?P<b>\d+(?:\.\d+)?)\s*[x\u00d7*]\s*(?P<c>\d+(?:\.\d+)?)\s*"
    r"(?P<unit>mm|cm|inch(?:es)?|in\b|\")",
    _I,
)

# Keyword themes: a small, reviewable lexicon rather than a model.
THEME_LEXICON: dict[str, tuple[str, ...]] = {
    "comfort": (
        r"comfort(?:able)?",
        r"ergonomic",
        r"lightweight",
        r"all[\s-]day\s+wear",
        r"soft\s+(?:silicone\s+)?ear\s*tips",
        r"no\s+ear\s+fatigue",
        r"pain[\s-]free",
    ),
    "gaming_low_latency": (r"gaming", r"game\s+mode", r"low[\s-]latency", r"\d+\s*ms\s+latency"),
    "sport_secure_fit": (
        r"sports?",
        r"workouts?",
        r"running",
        r"gym",
        r"ear\s*hooks?",
        r"secure\s+fit",
        r"sweat[\s-]?proof",
        r"exercis(?:e|ing)",
    ),
    "premium_sound_bass": (
        r"(?:deep|powerful|punchy|rich)\s+bass",
        r"bass\s+boost",
        r"hi[\s-]?fi",
        r"hi[\s-]res",
        r"high[\s-]fidelity",
        r"premium\s+sound",
        r"immersive\s+sound",
    ),
    "gift": (r"gifts?", r"birthday", r"christmas", r"father'?s\s+day", r"mother'?s\s+day"),
    "clear_calls": (
        r"(?:crystal[\s-])?clear\s+calls?",
        r"call\s+quality",
        r"hands[\s-]free\s+call(?:s|ing)?",
    ),
    "travel_portable": (r"portable", r"compact", r"travel(?:ing|ling)?", r"pocket[\s-]sized"),
}
THEME_RES: dict[str, re.Pattern[str]] = {
    theme: lazy_re(r"\b(?:" + "|".join(words) + r")\b", _I)
    for theme, words in THEME_LEXICON.items()
}
_THEME_RULES = tuple((f"theme_{theme}", regex) for theme, regex in THEME_RES.items())

# --------------------------------------------------------------------------- screening

# What every match of a rule contains: a digit, one of some lower-case words, or both
# (_DigitAnd), or a token matching a pattern whole (_WholeToken). A text without it skips
# the rule's regex (most bullets hold few of the ~45 rules' words). A rule not listed here
# always runs; tests/unit/test_features_screening.py checks each entry. The words are
# letters and digits only, so each lies inside one token of the text: _Scan reads the
# text's tokens once and looks each up (see _token_rules).


class _DigitAnd(tuple[str, ...]):
    """Needs: a digit and one of these words ("IP67" holds "ip" and a digit)."""

    __slots__ = ()


class _WholeToken(tuple[str, ...]):
    """Needs: a token that is all of this pattern, where a word inside a longer token would
    let too much through ("port" is inside "sports": a ports claim is "ports", "4ports" or
    "dualport", a count and the word in one token at most)."""

    __slots__ = ()


_A_DIGIT: tuple[str, ...] = ("<a digit>",)
_NEEDS: dict[re.Pattern[str], tuple[str, ...]] = {
    FAST_CHARGE_RE: _DigitAnd(("min",)),
    FAST_CHARGE_REV_RE: _DigitAnd(("charg",)),
    FAST_CHARGE_FLAG_RE: ("charg", "delivery", "pd", "qc"),
    BATTERY_PAREN_RE: _DigitAnd(("case",)),
    DURATION_RE: _A_DIGIT,
    WARRANTY_BEFORE_RE: ("warranty", "guarantee"),
    WARRANTY_AFTER_RE: ("warranty", "guarantee"),
    BLUETOOTH_RE: _DigitAnd(("bluetooth", "bt")),
    BLUETOOTH_BEFORE_RE: _DigitAnd(("bluetooth", "bt")),
    IP_RE: _DigitAnd(("ip",)),
    ANC_RE: ("anc", "noise"),
    NOISE_CANCEL_RE: ("noise",),
    CALL_NR_RE: ("enc", "cvc", "noise"),
    DB_RE: _DigitAnd(("db",)),
    USB_C_RE: ("usb", "type"),
    WIRELESS_CHARGING_RE: ("wireless", "qi"),
    MULTIPOINT_RE: ("point", "device"),
    APP_RE: ("app",),
    CODEC_RES["codec_ldac"]: ("ldac",),
    CODEC_RES["codec_aptx"]: ("aptx",),
    CODEC_RES["codec_aac"]: ("aac",),
    CODEC_RES["codec_lc3"]: ("lc3",),
    CODEC_RES["codec_sbc"]: ("sbc",),
    WEIGHT_RE: _A_DIGIT,
    DRIVER_RE: _DigitAnd(("driver",)),
    DRIVER_AFTER_RE: _DigitAnd(("driver",)),
    MIC_RE: ("mic",),
    WATT_RE: _A_DIGIT,
    MAH_RE: _DigitAnd(("mah",)),
    PORTS_RE: _WholeToken((rf"(?:{_COUNTS})?ports?",)),
    DIMENSIONS_RE: _A_DIGIT,
}
_THEME_NEEDS: dict[str, tuple[str, ...]] = {
    "comfort": ("comfort", "ergonomic", "lightweight", "wear", "tips", "fatigue", "pain"),
    "gaming_low_latency": ("gaming", "game", "latency"),
    "sport_secure_fit": (
        "sport", "workout", "running", "gym", "hook", "fit", "sweat", "exercis",
    ),
    "premium_sound_bass": ("bass", "fi", "res", "sound"),
    "gift": ("gift", "birthday", "christmas", "day"),
    "clear_calls": ("call",),
    "travel_portable": ("portable", "compact", "travel", "pocket"),
}
_NEEDS.update({THEME_RES[theme]: words for theme, words in _THEME_NEEDS.items()})


class _Scan:
    """One text, read once for the words and digits the rules need: `blocked` holds the ids
    of the screened regexes that cannot match it (empty for text beyond ASCII)."""

    __slots__ = ("blocked", "low")

    def __init__(self, text: str, screen: bool = True) -> None:
        # Only ASCII text is screened: IGNORECASE also matches a few other letters (the
        # Kelvin sign for k, the long s for s) that lower() does not turn into ASCII.
        if not screen or not text.isascii():
            self.blocked: frozenset[int] = frozenset()
            self.low: str | None = None  # no anchored search (see _search, _finds)
            return
        self.low = low = text.lower()
        words = ascii_tokens(low)  # repeats and all: a set of them cost more than the lookups
        table = _RULES_OF_TOKEN
        try:
            found: set[int] = set().union(*map(table.__getitem__, words))  # in C: no Python step
        except KeyError:  # a word seen for the first time
            new = set(words).difference(table)
            if len(table) + len(new) > _TABLE_BOUND:  # a long-lived worker's memory
                table.clear()
                new = set(words)
            for word in new:
                table[word] = _token_rules(word)
            found = set().union(*map(table.__getitem__, words))
        # a digit lets the digit-only rules run; without one no digit-and-word rule can
        allowed = found | _DIGIT_ONLY if _DIGIT in found else found - _DIGIT_AND_WORD
        self.blocked = _SCREENED - allowed

    def may(self, regex: re.Pattern[str]) -> bool:
        """False only when the regex cannot match this text."""
        return id(regex) not in self.blocked

    def none_of(self, group: frozenset[int]) -> bool:
        """True when no regex of a rule group (by id, all screened) can match this text."""
        return group <= self.blocked


# A rule's regex by its id -> the regex and its anchored form (domain.anchored), None when
# it has none; filled at a regex's first search. The rules are module constants, so their
# ids stay theirs; the regex is kept beside its form so that an id reused is noticed.
_ANCHORS: dict[int, tuple[re.Pattern[str], Anchored | None]] = {}


def _anchor(regex: re.Pattern[str]) -> Anchored | None:
    entry = _ANCHORS.get(id(regex))
    if entry is None or entry[0] is not regex:
        entry = _ANCHORS[id(regex)] = (regex, anchored(regex))
    return entry[1]


def _finds(regex: re.Pattern[str], text: str, scan: _Scan | None) -> Iterable[re.Match[str]]:
    """regex.finditer(text), skipped when screened out, anchored on a screened text."""
    if scan is None:
        return regex.finditer(text)
    if id(regex) in scan.blocked:
        return ()
    low = scan.low
    if low is not None and (fast := _anchor(regex)) is not None:
        return fast.finditer(text, low)
    return regex.finditer(text)


def _search(regex: re.Pattern[str], text: str, scan: _Scan | None) -> re.Match[str] | None:
    """regex.search(text), None when screened out, anchored on a screened text."""
    if scan is None:
        return regex.search(text)
    if id(regex) in scan.blocked:
        return None
    low = scan.low
    if low is not None and (fast := _anchor(regex)) is not None:
        return fast.search(text, low)
    return regex.search(text)


_OZ_G = 28.3495
_LB_G = 453.592


# --------------------------------------------------------------------------- candidates


class _Hit(NamedTuple):  # a tuple: built ≈ 2 a text, 3x faster than a frozen dataclass
    name: str
    value: FeatureValue
    start: int
    end: int
    rule: str
    label: str | None = None
    # Qualified claims ("8 h per charge", "(32 with case)") outrank bare headline numbers.
    priority: int = 0


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def _count(text: str) -> int:
    return _WORD_NUMBERS.get(text.lower()) or int(text)


def _clean(value: float) -> float | int:
    return int(value) if float(value).is_integer() else round(value, 1)


def _hours(num: str, unit: str) -> float:
    return _num(num) * (24.0 if unit.lower().startswith("d") else 1.0)


def _overlaps(start: int, end: int, spans: Iterable[tuple[int, int]]) -> bool:
    return any(start < e and s < end for s, e in spans)


def _fast_charge(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for regex, rule in (
        (FAST_CHARGE_RE, "fast_charge.min_for_hours"),
        (FAST_CHARGE_REV_RE, "fast_charge.hours_from_min"),
    ):
        for m in _finds(regex, text, scan):
            if _overlaps(m.start(), m.end(), [(h.start, h.end) for h in hits]):
                continue
            minutes, hours = int(m["min"]), _clean(_num(m["hrs"]))
            label = f"{minutes} min = {hours} h"
            hits.append(_Hit("fast_charge", True, m.start(), m.end(), rule, label))
            hits.append(_Hit("fast_charge_minutes", minutes, m.start(), m.end(), rule, label))
            hits.append(_Hit("fast_charge_hours", hours, m.start(), m.end(), rule, label))
    for m in _finds(FAST_CHARGE_FLAG_RE, text, scan):
        hits.append(_Hit("fast_charge", True, m.start(), m.end(), "fast_charge.keyword"))
    return hits


def _clause_window(text: str, start: int, end: int, stops: list[int]) -> tuple[str, str]:
    """Text around a duration, cut at clause breaks and at neighbouring durations."""
    lo = max([0, start - 25, *(s for s in stops if s < start)])
    hi = min([len(text), end + 45, *(s for s in stops if s > end)])
    before, after = text[lo:start], text[end:hi]
    breaks = list(CLAUSE_BREAK_RE.finditer(before))
    if breaks:
        before = before[breaks[-1].end() :]
    cut = CLAUSE_BREAK_RE.search(after)
    return before, after[: cut.start()] if cut else after


def _battery(text: str, used: list[tuple[int, int]], scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    # "8 hrs (32 with case)" is battery talk by itself; bare durations need context.
    for m in _finds(BATTERY_PAREN_RE, text, scan):
        main_h, total_h = _clean(_num(m["main"])), _clean(_num(m["total"]))
        span = (m.start(), m.end())
        hits.append(_Hit("battery_hours", main_h, *span, "battery.paren_case", priority=2))
        hits.append(_Hit("battery_total_hours", total_h, *span, "battery.paren_case", priority=2))
        used.append((m.start(), m.end()))
    # Without a duration (they need a digit) there is nothing to read. The context is
    # searched anchored (5x faster on a bullet than the case-blind alternation).
    if not hits and not (
        (scan is None or scan.may(DURATION_RE)) and _search(BATTERY_CONTEXT_RE, text, scan)
    ):
        return []
    durations = [
        m for m in _finds(DURATION_RE, text, scan) if not _overlaps(m.start(), m.end(), used)
    ]
    stops = [m.start() for m in durations] + [m.end() for m in durations]
    addons: list[_Hit] = []
    for m in durations:
        before, after = _clause_window(text, m.start(), m.end(), stops)
        if CHARGE_TIME_BEFORE_RE.search(text[: m.start()]) or NOT_BATTERY_NEAR_RE.search(
            before + after
        ):
            continue
        hit = _classify_duration(m, before + m.group(0) + after)
        (addons if hit.name == "battery_addon" else hits).append(hit)
    return hits + _addon_totals(hits, addons)


def _classify_duration(m: re.Match[str], near: str) -> _Hit:
    hours = _clean(_hours(m["num"], m["unit"]))
    span = (m.start(), m.end())
    if TOTAL_NEAR_RE.search(near) and ADDON_NEAR_RE.search(near):
        return _Hit("battery_addon", hours, *span, "battery.case_extra", priority=2)
    if TOTAL_NEAR_RE.search(near):
        return _Hit("battery_total_hours", hours, *span, "battery.total", priority=2)
    if SINGLE_CHARGE_NEAR_RE.search(near):
        return _Hit("battery_hours", hours, *span, "battery.single_charge", priority=2)
    return _Hit("battery_hours", hours, *span, "battery.duration")


def _addon_totals(hits: list[_Hit], addons: list[_Hit]) -> list[_Hit]:
    # "8 hours, plus 24 extra hours from the case" means 32 in total.
    mains = [h for h in hits if h.name == "battery_hours"]
    if not addons or not mains or any(h.name == "battery_total_hours" for h in hits):
        return []
    main = max(mains, key=lambda h: float(h.value))
    add = max(addons, key=lambda h: float(h.value))
    total = _clean(float(main.value) + float(add.value))
    return [
        _Hit("battery_total_hours", total, add.start, add.end, "battery.main_plus_case", None, 2)
    ]


def _warranty(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for regex in (WARRANTY_BEFORE_RE, WARRANTY_AFTER_RE):
        for m in _finds(regex, text, scan):
            n = _count(m["num"])
            months = n * 12 if m["unit"].lower().startswith("y") else n
            hits.append(_Hit("warranty_months", months, m.start(), m.end(), "warranty"))
    return hits


def _bluetooth(text: str, scan: _Scan | None = None) -> list[_Hit]:
    return [
        _Hit("bluetooth_version", float(m["ver"]), m.start(), m.end(), "bluetooth", m["ver"])
        for regex in (BLUETOOTH_RE, BLUETOOTH_BEFORE_RE)
        for m in _finds(regex, text, scan)
    ]


def _water(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _finds(IP_RE, text, scan):
        dust = m["dust"].upper()
        # Ordered by water digit first (what buyers ask about), then dust protection.
        level = int(m["water"]) * 10 + (0 if dust == "X" else int(dust))
        label = f"IP{dust}{m['water']}"
        hits.append(_Hit("water_resistance", level, m.start(), m.end(), "ip_rating", label))
    return hits


def _is_call_only(text: str, start: int, end: int) -> bool:
    return bool(CALL_NEAR_RE.search(text[max(0, start - 20) : end + 30]))


def _anc(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for regex, rule in ((ANC_RE, "anc.explicit"), (NOISE_CANCEL_RE, "anc.noise_cancelling")):
        for m in _finds(regex, text, scan):
            if NEGATION_BEFORE_RE.search(text[max(0, m.start() - 12) : m.start()]):
                continue
            # Plain "noise cancelling" next to mics/calls is call noise reduction, not ANC.
            if regex is NOISE_CANCEL_RE and _is_call_only(text, m.start(), m.end()):
                continue
            hits.append(_Hit("anc", True, m.start(), m.end(), rule))
            if m["hybrid"]:
                hits.append(_Hit("anc_hybrid", True, m.start(), m.end(), rule))
    for m in _finds(CALL_NR_RE, text, scan):
        hits.append(_Hit("call_noise_reduction", True, m.start(), m.end(), "call_noise"))
    if any(h.name == "anc" for h in hits):
        for m in _finds(DB_RE, text, scan):
            hits.append(_Hit("anc_db", int(m["db"]), m.start(), m.end(), "anc.db"))
    return hits


_PLAIN_FLAGS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("usb_c", USB_C_RE),
    ("wireless_charging", WIRELESS_CHARGING_RE),
    ("multipoint", MULTIPOINT_RE),
    ("app_support", APP_RE),
    *CODEC_RES.items(),
)


def _flags(text: str, scan: _Scan | None = None, settled: Set[str] = frozenset()
           ) -> list[_Hit]:
    hits: list[_Hit] = []
    for name, regex in _PLAIN_FLAGS:
        if name in settled:
            continue
        for m in _finds(regex, text, scan):
            hits.append(_Hit(name, True, m.start(), m.end(), name, m.group(0)))
    return hits


def _weight(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _finds(WEIGHT_RE, text, scan):
        unit = m["unit"]
        # "2.4G"/"5G" are radio bands; a weight in capital G needs a weight word nearby.
        if unit == "G" and not WEIGHT_NEAR_RE.search(text[max(0, m.start() - 20) : m.end() + 20]):
            continue
        low = unit.lower()
        # "32 oz water bottle" is a capacity, not a weight ("weighs 14 oz" is a weight).
        if low.startswith(("oz", "ounce")) and _oz_is_volume(text, m.start(), m.end()):
            continue
        factor = _OZ_G if low.startswith(("oz", "ounce")) else 1.0
        factor = _LB_G if low.startswith(("lb", "pound")) else factor
        factor = 1000.0 if low.startswith(("kg", "kilogram")) else factor
        grams = _clean(_num(m["num"]) * factor)
        hits.append(_Hit("weight_grams", grams, m.start(), m.end(), "weight", m.group(0)))
    return hits


def _numbers(text: str, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for regex in (DRIVER_RE, DRIVER_AFTER_RE):
        for m in _finds(regex, text, scan):
            hits.append(_Hit("driver_mm", _clean(_num(m["num"])), m.start(), m.end(), "driver"))
    for m in _finds(MIC_RE, text, scan):
        hits.append(_Hit("microphones", _count(m["n"]), m.start(), m.end(), "microphones"))
    for m in _finds(WATT_RE, text, scan):
        hits.append(_Hit("wattage_w", _clean(_num(m["num"])), m.start(), m.end(), "wattage"))
    for m in _finds(MAH_RE, text, scan):
        hits.append(_Hit("capacity_mah", int(_num(m["num"])), m.start(), m.end(), "capacity"))
    for m in _finds(PORTS_RE, text, scan):
        hits.append(_Hit("ports", _count(m["n"]), m.start(), m.end(), "ports"))
    for m in _finds(DIMENSIONS_RE, text, scan):
        hits.append(_dimensions(m))
    return hits


def _dimensions(m: re.Match[str]) -> _Hit:
    label = _dimensions_label([m["a"], m["b"], m["c"]], m["unit"])
    return _Hit("dimensions_cm", label, m.start(), m.end(), "dimensions", label)


def _dimensions_label(sides: Sequence[str], unit: str) -> str:
    unit = unit.lower()
    factor = 2.54 if unit.startswith(("in", '"')) else (0.1 if unit.startswith("m") else 1.0)
    return " x ".join(str(_clean(round(_num(x) * factor, 1))) for x in sides) + " cm"


def _themes(text: str, scan: _Scan | None = None, settled: Set[str] = frozenset()
            ) -> list[_Hit]:
    hits: list[_Hit] = []
    blocked = scan.blocked if scan is not None else frozenset()
    for name, regex in _THEME_RULES:
        if id(regex) in blocked or name in settled:
            continue
        m = _search(regex, text, scan)
        if m:
            hits.append(_Hit(name, True, m.start(), m.end(), "lexicon", m.group(0)))
    return hits


def _hits_for(text: str, screen: bool = True, settled: Set[str] = frozenset()) -> list[_Hit]:
    """Every rule's hits in one text, in rule order. The text is tokenised once (_Scan) and
    a rule group runs only when one of its regexes may match (every rule, unscreened, with
    screen=False: the tests compare the two). The flags and themes in `settled` (a
    listing's earlier texts stated them: see extract_features) are not looked for."""
    scan = _Scan(text, screen)
    skip = scan.none_of
    fast = [] if skip(_FAST_GROUP) else _fast_charge(text, scan)
    used = [(h.start, h.end) for h in fast if h.name != "fast_charge" or h.label]
    hits = fast
    if not skip(_BATTERY_GROUP):
        hits += _battery(text, used, scan)
    if not skip(_WARRANTY_GROUP):
        hits += _warranty(text, scan)
    if not skip(_BLUETOOTH_GROUP):
        hits += _bluetooth(text, scan)
    if not skip(_WATER_GROUP):
        hits += _water(text, scan)
    if not skip(_ANC_GROUP):
        hits += _anc(text, scan)
    if not skip(_FLAGS_GROUP):
        hits += _flags(text, scan, settled)
    if not skip(_WEIGHT_GROUP):
        hits += _weight(text, scan)
    if not skip(_NUMBERS_GROUP):
        hits += _numbers(text, scan)
    if not skip(_ANY_GROUP):
        hits += _any_category(text, scan, settled)
    if not skip(_THEMES_GROUP):
        hits += _themes(text, scan, settled)
    return hits


# --------------------------------------------------------------------------- any category

_FL_OZ_ML = 29.5735
# Volume units -> millilitres. US customary (Amazon .com states "Fluid Ounces", "Cups").
_VOLUME_ML: tuple[tuple[re.Pattern[str], float], ...] = (
    (lazy_re(r"^(?:fl\.?\s*oz|fluid\s+ounces?|oz|ounces?)$", _I), _FL_OZ_ML),
    (lazy_re(r"^(?:ml|millilit(?:er|re)s?)$", _I), 1.0),
    (lazy_re(r"^(?:cl|centilit(?:er|re)s?)$", _I), 10.0),
    (lazy_re(r"^(?:l|lit(?:er|re)s?)$", _I), 1000.0),
    (lazy_re(r"^cups?$", _I), 236.588),
    (lazy_re(r"^(?:pints?|pt)$", _I), 473.176),
    (lazy_re(r"^(?:quarts?|qt)$", _I), 946.353),
    (lazy_re(r"^(?:gallons?|gal)$", _I), 3785.41),
)
_VOLUME_UNITS = (
    r"fl\.?\s*oz|fluid\s+ounces?|ounces?|oz|millilit(?:er|re)s?|ml|centilit(?:er|re)s?|cl|"
    r"lit(?:er|re)s?|l|cups?|pints?|pt|quarts?|qt|gallons?|gal"
)
VOLUME_RE = lazy_re(rf"(?P<num>\d+(?:[.,]\d+)?)\s*-?\s*(?P<unit>{_VOLUME_UNITS})\b(?!/)", _I)
# In bullets and titles a bare "oz" is a volume only next to a container word.
CONTAINER_NEAR_RE = lazy_re(
    r"\b(?:bottles?|tumblers?|mugs?|cups?|jars?|pitchers?|blenders?|flasks?|carafes?|"
    r"capacity|holds?|kettles?|thermos|canteen|jugs?|containers?)\b",
    _I,
)
EXPLICIT_VOLUME_RE = lazy_re(r"^(?:fl|fluid|ml|millilit|l$|lit|cl|centilit|gallon|gal)", _I)
PACK_RE = lazy_re(
    r"\b(?:pack|set|case|box)\s+of\s+(?P<n>\d{1,4})\b|\b(?P<m>\d{1,4})[\s-]*(?:pack|pk|count)\b",
    _I,
)
PIECES_RE = lazy_re(r"\b(?P<n>\d{1,4})[\s-]*(?:pieces?|pcs?|piece)\b", _I)
VOLT_RE = lazy_re(r"(?P<num>\d+(?:\.\d+)?)\s*-?\s*(?:V|volts?)\b(?!/)", _I)
RPM_RE = lazy_re(r"(?P<num>\d{1,3}(?:,\d{3})+|\d+)\s*(?:RPM|r/min)\b", _I)
SPEEDS_RE = lazy_re(rf"\b{_COUNT}[\s-]*(?:variable\s+)?speeds?\b", _I)
MADE_OF_RE = lazy_re(r"\bmade\s+(?:of|from|with)\s+(?P<m>[^.;,()]{3,40})", _I)
FLAG_RES: dict[str, re.Pattern[str]] = {
    "insulated": lazy_re(r"\b(?:vacuum[\s-])?insulat(?:ed|ion)\b|\bdouble[\s-]wall", _I),
    "dishwasher_safe": lazy_re(r"\bdishwasher[\s-](?:safe|friendly)\b", _I),
    "bpa_free": lazy_re(r"\bBPA[\s-]?free\b", _I),
}
# The flags and themes: each is read by one rule of the bullet rules, at priority 0, and
# kept at its first mention, so once a listing has one no later text can change it
# (extract_features stops looking for it).
_SAID_ONCE = frozenset(name for name, _ in (*_PLAIN_FLAGS, *FLAG_RES.items(), *_THEME_RULES))
_MATERIAL_ALIASES: tuple[tuple[re.Pattern[str], str], ...] = (
    (lazy_re(r"\b(?:18/8|18/10|304|316)?\s*stainless(?:\s+steel)?\b", _I), "stainless steel"),
    (lazy_re(r"\bcarbon\s+steel\b", _I), "carbon steel"),
    (lazy_re(r"\balloy\s+steel\b", _I), "alloy steel"),
    (lazy_re(r"\bcast\s+iron\b", _I), "cast iron"),
    (lazy_re(r"\balumin(?:i)?um\b", _I), "aluminum"),
    (lazy_re(r"\b(?:borosilicate\s+)?glass\b", _I), "glass"),
    (lazy_re(r"\btritan\b", _I), "tritan"),
    (lazy_re(r"\bsilicone\b", _I), "silicone"),
    (lazy_re(r"\bceramic\b", _I), "ceramic"),
    (lazy_re(r"\bbamboo\b", _I), "bamboo"),
    (lazy_re(r"\b(?:wood|wooden)\b", _I), "wood"),
    (lazy_re(r"\bleather\b", _I), "leather"),
    (lazy_re(r"\bcotton\b", _I), "cotton"),
    (lazy_re(r"\bpolyester\b", _I), "polyester"),
    (lazy_re(r"\bnylon\b", _I), "nylon"),
    (lazy_re(r"\b(?:spandex|elastane|lycra)\b", _I), "elastane"),
    (lazy_re(r"\bwool\b", _I), "wool"),
    (lazy_re(r"\brayon|viscose\b", _I), "rayon"),
    (lazy_re(r"\b(?:plastic|polypropylene|PP|ABS|PC|polycarbonate|TPU|PET)\b", _I), "plastic"),
    (lazy_re(r"\brubber\b", _I), "rubber"),
    (lazy_re(r"\bpaper\b", _I), "paper"),
    (lazy_re(r"\b(?:copper)\b", _I), "copper"),
    (lazy_re(r"\btitanium\b", _I), "titanium"),
    (lazy_re(r"\bmetal\b", _I), "metal"),
)
_NEEDS.update({
    VOLUME_RE: _A_DIGIT, PACK_RE: _A_DIGIT, PIECES_RE: _A_DIGIT, VOLT_RE: _A_DIGIT,
    RPM_RE: _A_DIGIT, SPEEDS_RE: ("speed",), MADE_OF_RE: ("made",),
    FLAG_RES["insulated"]: ("insulat", "double"), FLAG_RES["dishwasher_safe"]: ("dishwasher",),
    FLAG_RES["bpa_free"]: ("bpa",),
})
# The same table by the regex's id: hashing a compiled pattern hashes its whole pattern and
# code every time (not cached), which made screening cost more than the regexes it skips.
_NEEDS_BY_ID: dict[int, tuple[str, ...]] = {id(regex): needs for regex, needs in _NEEDS.items()}
_SCREENED: frozenset[int] = frozenset(_NEEDS_BY_ID)
_DIGIT = -1  # in a token's rules: the token holds a digit
_DIGIT_ONLY = frozenset(i for i, needs in _NEEDS_BY_ID.items() if needs is _A_DIGIT)
_DIGIT_AND_WORD = frozenset(i for i, n in _NEEDS_BY_ID.items() if isinstance(n, _DigitAnd))
_WORD_RULES: tuple[tuple[str, int], ...] = tuple(
    (word, i) for i, needs in _NEEDS_BY_ID.items()
    if needs is not _A_DIGIT and not isinstance(needs, _WholeToken) for word in needs
)
_TOKEN_RULES: tuple[tuple[re.Pattern[str], int], ...] = tuple(
    (re.compile(needs[0]), i) for i, needs in _NEEDS_BY_ID.items()
    if isinstance(needs, _WholeToken)
)
# token -> ids of the rules whose words it holds (and _DIGIT): a category's vocabulary is
# small, so each token is looked up once per process, not once per text.
_RULES_OF_TOKEN: dict[str, frozenset[int]] = {}


_TABLE_BOUND = 100_000


def _token_rules(tok: str) -> frozenset[int]:
    return frozenset({i for word, i in _WORD_RULES if word in tok}
                     | {i for pattern, i in _TOKEN_RULES if pattern.fullmatch(tok)}
                     | ({_DIGIT} if not tok.isalpha() else set()))


# The rule groups _hits_for runs, by their regexes: a group none of whose regexes can match
# a text is not called at all (its words are absent).
def _group(*regexes: re.Pattern[str]) -> frozenset[int]:
    ids = frozenset(id(r) for r in regexes)
    assert ids <= _SCREENED, "a rule group skipped by screening holds an unscreened regex"
    return ids


_FAST_GROUP = _group(FAST_CHARGE_RE, FAST_CHARGE_REV_RE, FAST_CHARGE_FLAG_RE)
_BATTERY_GROUP = _group(BATTERY_PAREN_RE, DURATION_RE)
_WARRANTY_GROUP = _group(WARRANTY_BEFORE_RE, WARRANTY_AFTER_RE)
_BLUETOOTH_GROUP = _group(BLUETOOTH_RE, BLUETOOTH_BEFORE_RE)
_WATER_GROUP = _group(IP_RE)
_ANC_GROUP = _group(ANC_RE, NOISE_CANCEL_RE, CALL_NR_RE)  # DB_RE only runs after an ANC hit
_FLAGS_GROUP = _group(USB_C_RE, WIRELESS_CHARGING_RE, MULTIPOINT_RE, APP_RE, *CODEC_RES.values())
_WEIGHT_GROUP = _group(WEIGHT_RE)
_NUMBERS_GROUP = _group(DRIVER_RE, DRIVER_AFTER_RE, MIC_RE, WATT_RE, MAH_RE, PORTS_RE,
                        DIMENSIONS_RE)
_ANY_GROUP = _group(VOLUME_RE, PACK_RE, PIECES_RE, VOLT_RE, RPM_RE, SPEEDS_RE, MADE_OF_RE,
                    *FLAG_RES.values())
_THEMES_GROUP = _group(*THEME_RES.values())
_ANY_NUMBERS_GROUP = _group(VOLUME_RE, PACK_RE, PIECES_RE, VOLT_RE, RPM_RE)  # _any_numbers
_DIM_UNIT_RE = lazy_re(
    r"(?P<unit>inch(?:es)?|in\b|\"|millimet(?:er|re)s?|mm|centimet(?:er|re)s?|cm)", _I
)
_DIM_NUMS_RE = lazy_re(
    r"(\d+(?:\.\d+)?)\s*(?:\"|in(?:ch(?:es)?)?|cm|mm)?\s*[a-z]?\s*(?:[x\u00d7*]|$)", _I
)


WEIGHT_BEFORE_RE = lazy_re(r"\b(?:weigh\w*|weight|net\s+wt)\b[^.;]{0,12}$", _I)


def _oz_is_volume(text: str, start: int, end: int) -> bool:
    """A bare "oz" next to a container word and not right after a weight word."""
    if WEIGHT_BEFORE_RE.search(text[max(0, start - 25) : start]):
        return False
    return bool(CONTAINER_NEAR_RE.search(text[max(0, start - 40) : end + 40]))


def materials(text: str) -> list[str]:
    """A material description as a normalized list ("PC+ABS+TPU" -> ["plastic"])."""
    found: list[tuple[int, str]] = []
    for regex, name in _MATERIAL_ALIASES:
        m = regex.search(text)
        if m and name not in (n for _, n in found):
            found.append((m.start(), name))
    return [n for _, n in sorted(found)]


def volume_ml(num: str, unit: str) -> float | None:
    """A volume in millilitres ("32", "Fluid Ounces" -> 946.4); None for a non-volume unit."""
    unit = " ".join(unit.split())
    for regex, factor in _VOLUME_ML:
        if regex.match(unit):
            return round(_num(num.replace(",", ".")) * factor, 1)
    return None


def weight_g(num: str, unit: str) -> float | None:
    low = unit.lower()
    factor = {"g": 1.0, "k": 1000.0, "o": _OZ_G, "l": _LB_G, "p": _LB_G}.get(low[:1])
    if low.startswith("mg"):
        factor = 0.001
    return None if factor is None else round(_num(num) * factor, 1)


def _volume_hits(text: str, *, table: bool, scan: _Scan | None = None) -> list[_Hit]:
    hits: list[_Hit] = []
    for m in _finds(VOLUME_RE, text, scan):
        unit = m["unit"]
        # "12 oz" is a weight unless a container is named; "2 cups" needs one too.
        if not (table or EXPLICIT_VOLUME_RE.match(unit) or _oz_is_volume(text, m.start(), m.end())):
            continue
        ml = volume_ml(m["num"], unit)
        if ml is None or ml <= 0:
            continue
        label = f"{_clean(ml)} ml ({m.group(0).strip()})"
        hits.append(_Hit("capacity_ml", _clean(ml), m.start(), m.end(), "capacity.volume", label))
    return hits


def _any_numbers(text: str, scan: _Scan | None) -> list[_Hit]:
    hits = _volume_hits(text, table=False, scan=scan)
    for m in _finds(PACK_RE, text, scan):
        n = int(m["n"] or m["m"])
        if n > 0:
            hits.append(_Hit("item_count", n, m.start(), m.end(), "count.pack"))
    for m in _finds(PIECES_RE, text, scan):
        hits.append(_Hit("pieces", int(m["n"]), m.start(), m.end(), "count.pieces"))
    for m in _finds(VOLT_RE, text, scan):
        hits.append(_Hit("voltage_v", _clean(_num(m["num"])), m.start(), m.end(), "voltage"))
    for m in _finds(RPM_RE, text, scan):
        hits.append(_Hit("speed_rpm", int(_num(m["num"])), m.start(), m.end(), "rpm"))
    return hits


def _any_category(text: str, scan: _Scan | None = None, settled: Set[str] = frozenset()
                  ) -> list[_Hit]:
    """Bullet and title patterns that hold for any category (the flags in `settled` are
    not looked for)."""
    if scan is not None and scan.none_of(_ANY_NUMBERS_GROUP):  # most bullets: no digit
        hits: list[_Hit] = []
    else:
        hits = _any_numbers(text, scan)
    for m in _finds(SPEEDS_RE, text, scan):
        hits.append(_Hit("speeds", _count(m["n"]), m.start(), m.end(), "speeds"))
    for name, regex in FLAG_RES.items():
        if name in settled:
            continue
        for m in _finds(regex, text, scan):
            if not NEGATION_BEFORE_RE.search(text[max(0, m.start() - 12) : m.start()]):
                hits.append(_Hit(name, True, m.start(), m.end(), name, m.group(0)))
    for m in _finds(MADE_OF_RE, text, scan):
        found = materials(m["m"])
        if found:
            label = ", ".join(found)
            hits.append(_Hit("materials", label, m.start(), m.end(), "material.made_of", label))
    return hits


# Details-table rows by normalized name. Rows not named here are read with the bullet rules.
_ROW_KINDS: tuple[tuple[re.Pattern[str], str], ...] = (
    (lazy_re(r"battery\s+capacity|^capacity$", _I), "capacity"),
    (
        lazy_re(r"^(?:capacity|volume|liquid\s+volume|item\s+volume|capacity\s*\(.*\))", _I),
        "capacity",
    ),
    (
        lazy_re(r"^(?:wattage|output\s+wattage|power|maximum\s+power|power\s+output)$", _I),
        "wattage",
    ),
    (lazy_re(r"^(?:item\s+weight|weight|net\s+weight|product\s+weight)$", _I), "weight"),
    (lazy_re(r"^(?:product|item)\s+dimensions|^dimensions$|^size\s*\(l\s*x", _I), "dims"),
    (lazy_re(r"material|fabric\s+type", _I), "material"),
    (
        lazy_re(
            r"^(?:number\s+of\s+items|item\s+package\s+quantity|unit\s+count|"
            r"number\s+of\s+(?:bottles|units))$",
            _I,
        ),
        "count",
    ),
    (lazy_re(r"^number\s+of\s+pieces$", _I), "pieces"),
    (lazy_re(r"^number\s+of\s+speeds$", _I), "speeds"),
    (lazy_re(r"^voltage$", _I), "voltage"),
    (lazy_re(r"^(?:maximum\s+)?(?:rotational\s+)?speed$|rotational\s+speed", _I), "rpm"),
    (lazy_re(r"^power\s+source$", _I), "power_source"),
    (
        lazy_re(
            r"^(?:print\s+length|paperback|hardcover|mass\s+market\s+paperback|"
            r"board\s+book|spiral-bound)$",
            _I,
        ),
        "book",
    ),
    (lazy_re(r"^language$", _I), "language"),
    (lazy_re(r"^care\s+instructions$", _I), "care"),
    (lazy_re(r"^closure\s+type$", _I), "closure"),
    (lazy_re(r"^battery\s+life$|^(?:average\s+)?battery\s+(?:average\s+)?life", _I), "battery"),
    (lazy_re(r"case\s+battery\s+(?:average\s+)?life", _I), "battery_total"),
    (lazy_re(r"^bluetooth\s+version$", _I), "bluetooth"),
    (lazy_re(r"driver\s+size", _I), "driver"),
)
_FIRST_NUM_RE = lazy_re(
    r"(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)\s*(?P<unit>[A-Za-z\"]+(?:\s+[A-Za-z]+)?)?"
)
_SKIP_ROWS_RE = lazy_re(
    r"^(?:brand|manufacturer|asin|upc|ean|isbn|model|item\s+model|date\s+first|"
    r"series|part\s+number|global\s+trade|department|country|batteries|color|colour|"
    r"style|pattern|theme|customer|best\s+sellers|publisher|publication|isbn)",
    _I,
)


def _row_kind(name: str) -> str | None:
    if name.lower().startswith("carrying case") and "life" in name.lower():
        return "battery_total"
    for regex, kind in _ROW_KINDS:
        if regex.search(name):
            return kind
    return None


_NUMBER_ROWS: dict[str, tuple[str, str]] = {  # kind -> (attribute, unit pattern)
    "count": ("item_count", r""),
    "pieces": ("pieces", r""),
    "speeds": ("speeds", r""),
    "voltage": ("voltage_v", r"(?:v|volts?)?$"),
    "rpm": ("speed_rpm", r"(?:rpm|revolutions|r/min)?"),
    "battery": ("battery_hours", r"h(?:ou)?rs?|hours?$"),
    "battery_total": ("battery_total_hours", r"h(?:ou)?rs?|hours?$"),
    "bluetooth": ("bluetooth_version", r""),
    "driver": ("driver_mm", r"mm|millimet"),
}
_TEXT_ROWS: dict[str, str] = {
    "power_source": "power_source",
    "language": "language",
    "care": "care_instructions",
    "closure": "closure_type",
}


def _table_hits(name: str, value: str) -> list[_Hit]:
    """Features of one details-table row; named rows outrank bullet claims (priority 3)."""
    kind = _row_kind(name)
    if not value.strip():
        return []
    if kind is None:
        if _SKIP_ROWS_RE.search(name):
            return []
        # Unnamed rows ("Special Feature: IP55 & Sweatproof"): the bullet rules, no themes.
        return [h for h in _hits_for(value) if not h.name.startswith("theme_")]
    rule = f"details.{kind}"
    whole = (0, len(value))
    if kind in _TEXT_ROWS:
        text = value.strip()
        return [_Hit(_TEXT_ROWS[kind], text.lower(), *whole, rule, text, 3)]
    if kind == "material":
        found = materials(value)
        label = ", ".join(found)
        return [_Hit("materials", label, *whole, rule, label, 3)] if found else []
    if kind == "dims":
        main = value.split(";")[0]
        unit_m = _DIM_UNIT_RE.search(main)
        sides = _DIM_NUMS_RE.findall(main)
        if unit_m and 2 <= len(sides) <= 3:
            label = _dimensions_label(sides, unit_m["unit"])
            return [_Hit("dimensions_cm", label, 0, len(main), rule, label, 3)]
        return []
    m = _FIRST_NUM_RE.search(value)
    if m is None:
        return []
    return _measure_row(kind, name, m, value, rule)


def _measure_row(kind: str, name: str, m: re.Match[str], value: str, rule: str) -> list[_Hit]:
    num, unit, span = m["num"], (m["unit"] or "").strip(), (m.start(), m.end())
    if _num(num) <= 0:  # "0 watts", "0.0 Pounds": a placeholder, not a spec
        return []
    if kind == "capacity":
        if re.match(r"milliamp|mah", unit, _I):
            return [_Hit("capacity_mah", int(_num(num)), *span, rule, None, 3)]
        vols = _volume_hits(value, table=True)
        return [_Hit(h.name, h.value, h.start, h.end, rule, h.label, 3) for h in vols[:1]]
    if kind == "wattage":
        if unit and not re.match(r"w|watts?|kilowatts?|kw", unit, _I):
            return []
        factor = 1000.0 if unit.lower().startswith(("kilo", "kw")) else 1.0
        return [_Hit("wattage_w", _clean(_num(num) * factor), *span, rule, None, 3)]
    if kind == "weight":
        grams = weight_g(num, unit) if unit else None
        label = f"{_clean(grams)} g ({m.group(0)})" if grams else None
        return [_Hit("weight_grams", _clean(grams), *span, rule, label, 3)] if grams else []
    if kind == "book":
        if not re.match(r"pages?", unit, _I):
            return []
        hits = [_Hit("pages", int(_num(num)), *span, rule, None, 3)]
        if not name.lower().startswith("print"):
            fmt = name.strip().capitalize()
            hits.append(_Hit("book_format", fmt.lower(), 0, len(value), rule, fmt, 3))
        return hits
    attr, unit_re = _NUMBER_ROWS[kind]
    if unit_re and not re.match(unit_re, unit, _I):
        return []
    value_n = _clean(_num(num))
    if attr in ("item_count", "pieces", "speeds", "speed_rpm"):
        value_n = int(value_n)
        # "Unit Count: 1.0 Count" is every single-item listing: not a feature.
        if value_n <= (1 if attr == "item_count" else 0):
            return []
    return [_Hit(attr, value_n, *span, rule, None, 3)]


# --------------------------------------------------------------------------- assembly


DISPLAY_NAMES: dict[str, str] = {
    "battery_hours": "battery life per charge",
    "battery_total_hours": "total battery life with case",
    "water_resistance": "water resistance rating",
    "bluetooth_version": "Bluetooth version",
    "anc": "active noise cancelling",
    "anc_hybrid": "hybrid ANC",
    "anc_db": "ANC depth (dB)",
    "call_noise_reduction": "call noise reduction (ENC/CVC)",
    "warranty_months": "warranty",
    "usb_c": "USB-C",
    "wireless_charging": "wireless charging",
    "fast_charge": "fast charging",
    "fast_charge_minutes": "fast-charge minutes",
    "fast_charge_hours": "hours from a fast charge",
    "weight_grams": "weight",
    "driver_mm": "driver size",
    "codec_aac": "AAC codec",
    "codec_aptx": "aptX codec",
    "codec_ldac": "LDAC codec",
    "codec_lc3": "LC3 codec",
    "codec_sbc": "SBC codec",
    "multipoint": "multipoint pairing",
    "app_support": "companion app",
    "microphones": "microphone count",
    "wattage_w": "wattage",
    "capacity_mah": "battery capacity",
    "ports": "port count",
    "dimensions_cm": "dimensions",
    "capacity_ml": "capacity",
    "materials": "material",
    "item_count": "items in the pack",
    "pieces": "piece count",
    "speeds": "speed settings",
    "voltage_v": "voltage",
    "speed_rpm": "maximum speed",
    "power_source": "power source",
    "pages": "page count",
    "book_format": "format",
    "language": "language",
    "care_instructions": "care instructions",
    "closure_type": "closure",
    "insulated": "insulated",
    "dishwasher_safe": "dishwasher safe",
    "bpa_free": "BPA free",
}


def display_name(name: str) -> str:
    """Seller-facing wording of a feature name ("anc" -> "active noise cancelling")."""
    if name.startswith("theme_"):
        return name.removeprefix("theme_").replace("_", " ") + " (theme)"
    return DISPLAY_NAMES.get(name, name.replace("_", " "))


_THEME_SPEC = AttributeSpec("theme")  # frozen: one for every theme


def _spec(name: str) -> AttributeSpec:
    if name.startswith("theme_"):
        return _THEME_SPEC
    return ATTRIBUTES[name]


def _label(hit: _Hit, spec: AttributeSpec, matched: str) -> str:
    if hit.label is not None and (
        spec.kind != "number" or hit.name in ("water_resistance", "capacity_ml")
    ):
        return hit.label
    if spec.kind == "number":
        return f"{hit.value} {spec.unit}" if spec.unit else str(hit.value)
    return matched


def _keep(current: _Hit | None, hit: _Hit, spec: AttributeSpec) -> bool:
    if current is None or hit.priority > current.priority:
        return True
    if hit.priority < current.priority:
        return False
    if spec.merge == "first" or not isinstance(hit.value, int | float):
        return False
    new, old = float(hit.value), float(current.value)
    return new > old if spec.merge == "max" else new < old


def extract_features(
    asin: str,
    bullets: Sequence[str],
    title: str | None = None,
    details: Sequence[tuple[str, str]] = (),
) -> ProductFeatures:
    """Features of one product from its details table, its bullets, then its title."""
    found: dict[str, Feature] = {}
    chosen: dict[str, _Hit] = {}
    sources: list[tuple[Source, int | None, str, str | None]] = [
        ("details", i, value, name) for i, (name, value) in enumerate(details)
    ]
    sources += [("bullet", i, b, None) for i, b in enumerate(bullets)]
    title_start = len(sources)
    if title:
        sources.append(("title", None, title, None))
    # Flags and themes already found: every rule gives them priority 0 and the first
    # mention is kept (_keep), so later texts need not look for them again.
    settled: set[str] = set()
    for position, (source, index, text, row_name) in enumerate(sources):
        hits = (_table_hits(row_name, text) if row_name is not None
                else _hits_for(text, settled=settled))
        for hit in hits:
            if hit.name == "battery_addon":
                continue
            spec = _spec(hit.name)
            current = chosen.get(hit.name)
            # The title only fills gaps: a headline never overrides a bullet's claim.
            if position >= title_start and current is not None:
                continue
            if not _keep(current, hit, spec):
                continue
            matched = text[hit.start : hit.end]
            evidence = Evidence(source, index, matched, hit.start, hit.end, row_name)
            chosen[hit.name] = hit
            if hit.name in _SAID_ONCE:
                settled.add(hit.name)
            found[hit.name] = Feature(
                hit.name,
                hit.value,
                spec.unit,
                spec.kind,
                _label(hit, spec, matched),
                hit.rule,
                evidence,
            )
    ordered = {k: found[k] for k in sorted(found, key=_order_key)}
    return ProductFeatures(asin=asin, features=ordered)


_ATTRIBUTE_ORDER = {name: i for i, name in enumerate(ATTRIBUTES)}


def _order_key(name: str) -> tuple[int, str]:
    """Attributes in their table's order, then the rest (themes) by name."""
    return (_ATTRIBUTE_ORDER.get(name, len(_ATTRIBUTE_ORDER)), name)


def features_from_snapshot(snapshot: Snapshot) -> ProductFeatures:
    """The snapshot's features, extracted once per listing text: a suggestion run reads
    each competitor's features for the gaps and again for the advantages, and a group's
    products share their competitors (cached by content; a copy each call, so a caller
    may change what it gets)."""
    found = _features_of(snapshot.asin, tuple(snapshot.bullet_points), snapshot.title,
                         tuple(snapshot.details_table))
    return ProductFeatures(found.asin, dict(found.features))


@functools.lru_cache(maxsize=4096)
def _features_of(asin: str, bullets: tuple[str, ...], title: str | None,
                 details: tuple[tuple[str, str], ...]) -> ProductFeatures:
    return extract_features(asin, bullets, title, details)


# --------------------------------------------------------------------------- comparison

Position = Literal["best", "worst", "middle", "tied"]


@dataclass(slots=True, frozen=True)
class FeatureGap:
    """A feature the main product lacks, and which competitors claim it."""

    name: str
    holders: tuple[str, ...]
    labels: dict[str, str]  # asin -> how that competitor states it

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "holders": list(self.holders), "labels": dict(self.labels)}


@dataclass(slots=True, frozen=True)
class NumericStanding:
    name: str
    unit: str | None
    better: Better
    main_value: float
    values: dict[str, float]  # competitors that state it
    position: Position
    best_asins: tuple[str, ...]  # may include the main ASIN

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "unit": self.unit,
            "better": self.better,
            "main_value": self.main_value,
            "values": dict(self.values),
            "position": self.position,
            "best_asins": list(self.best_asins),
        }


@dataclass(slots=True, frozen=True)
class FeatureComparison:
    main_asin: str
    main_lacks: tuple[FeatureGap, ...]
    main_only: tuple[str, ...]
    shared: tuple[str, ...]  # main and every competitor state it
    numeric: tuple[NumericStanding, ...]
    labels: dict[str, str]  # main product's label per feature

    def metric_keys(self) -> list[str]:
        names = {g.name for g in self.main_lacks} | set(self.main_only) | set(self.shared)
        names |= {n.name for n in self.numeric}
        return sorted(f"features.{n}" for n in names)

    def to_dict(self) -> dict[str, Any]:
        return {
            "main_asin": self.main_asin,
            "main_lacks": [g.to_dict() for g in self.main_lacks],
            "main_only": [{"name": n, "label": self.labels[n]} for n in self.main_only],
            "shared": list(self.shared),
            "numeric": [n.to_dict() for n in self.numeric],
            "metric_keys": self.metric_keys(),
        }


def _standing(
    name: str, main: ProductFeatures, competitors: Sequence[ProductFeatures]
) -> NumericStanding | None:
    spec = _spec(name)
    main_value = main.value(name)
    if spec.better is None or not isinstance(main_value, int | float):
        return None
    values = {c.asin: float(v) for c in competitors if isinstance(v := c.value(name), int | float)}
    if not values:
        return None
    everyone = {main.asin: float(main_value), **values}
    pick = min if spec.better == "lower" else max
    worst_pick = max if spec.better == "lower" else min
    best, worst = pick(everyone.values()), worst_pick(everyone.values())
    mv = float(main_value)
    position: Position
    if best == worst:
        position = "tied"
    elif mv == best:
        position = "best"
    elif mv == worst:
        position = "worst"
    else:
        position = "middle"
    best_asins = tuple(a for a, v in everyone.items() if v == best)
    return NumericStanding(name, spec.unit, spec.better, mv, values, position, best_asins)


def compare_features(
    main: ProductFeatures, competitors: list[ProductFeatures]
) -> FeatureComparison:
    """Which features main lacks, has alone or shares, and where it stands on numbers."""
    comp_names = {n for c in competitors for n in c.features}
    lacks = tuple(
        FeatureGap(
            name,
            tuple(c.asin for c in competitors if c.has(name)),
            {c.asin: c.features[name].label for c in competitors if c.has(name)},
        )
        for name in sorted(comp_names - set(main.features), key=_order_key)
    )
    only = tuple(n for n in main.features if n not in comp_names)
    shared = tuple(n for n in main.features if competitors and all(c.has(n) for c in competitors))
    numeric = tuple(s for n in main.features if (s := _standing(n, main, competitors)) is not None)
    return FeatureComparison(
        main_asin=main.asin,
        main_lacks=lacks,
        main_only=only,
        shared=shared,
        numeric=numeric,
        labels={n: f.label for n, f in main.features.items()},
    )
