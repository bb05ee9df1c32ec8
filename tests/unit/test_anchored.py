"""A rule's anchored search (domain.anchored, issue 18, seventh pass) is derived from the
rule's regex and must find what the regex finds: the same matches, spans and groups, for
every regex of the feature rules, on thousands of generated ASCII texts."""

from __future__ import annotations

import re

import pytest

from amazon_pilot.domain import features
from amazon_pilot.domain.anchored import anchored, heads
from tests.unit.generated_text import listing_texts
from tests.unit.test_features_screening import _PHRASES


def _rules() -> list[re.Pattern[str]]:
    """Every regex the feature module defines (module constants, dicts and tables)."""
    out: list[re.Pattern[str]] = []
    for value in vars(features).values():
        items = [value]
        if isinstance(value, dict):
            items = [*value.keys(), *value.values()]
        elif isinstance(value, tuple):
            items = [x for v in value for x in (v if isinstance(v, tuple) else (v,))]
        out += [x for x in items if hasattr(x, "finditer") and hasattr(x, "pattern")]
    unique = {id(x): x for x in out}
    return list(unique.values())


_HEADS = sorted({h for r in _rules() for h in (heads(r.pattern, r.flags) or ())})
# The heads as written and cut (a head whose end is missing must not be taken for a match),
# the rules' phrases, punctuation and whitespace of every kind next to them.
_WORDS = [*_HEADS, *(h[:-1] for h in _HEADS if len(h) > 1), *re.split(r"[ ,]+", _PHRASES),
          "x", "re", "insulatedd", "bpafree", "not", "no", "non-", "without", "12", "3.5"]
_GLUE = (" ", " ", " ", "", "-", " - ", ", ", ". ", "(", ")", "'", "/", "\t", "\n", "_", "  ")


def _texts(n: int = 6000) -> list[str]:
    return [_PHRASES, _PHRASES.upper(), _PHRASES.title(), "", " ", "x",
            *listing_texts(_WORDS, _GLUE, n, seed=187, max_words=30)]


def _seen(matches: object) -> list[tuple[tuple[int, int], tuple[str | None, ...]]]:
    return [(m.span(), m.groups()) for m in matches]  # type: ignore[attr-defined]


def test_most_lexicon_rules_have_heads_and_the_insulated_rule_has_its_three_words() -> None:
    rule = features.FLAG_RES["insulated"]
    assert heads(rule.pattern, rule.flags) == ("double", "vacuum", "insulated", "insulation")
    assert heads(r"\bBPA[\s-]?free\b", re.I) == ("bpa",)
    # a digit, a class or an optional start: no heads, the regex runs as written
    assert heads(r"(?P<n>\d+)\s*pack", re.I) is None
    assert heads(r"[a-z]+ing", re.I) is None
    assert heads(r"(?:pre)?amp", re.I) == ("amp", "preamp")
    assert heads(r"x?", 0) is None
    assert heads(r"(?-i:Qi)\b", re.I) is None  # a flag changed inside: not read
    with_heads = [r for r in _rules() if heads(r.pattern, r.flags) is not None]
    assert len(with_heads) >= 40, len(with_heads)


def test_a_head_that_starts_inside_a_failed_one_is_tried() -> None:
    # "aab" at 1 fails (no \b after the x), the match is "ab" at 2, inside that head
    rule = re.compile(r"\baab\b|ab\b", re.I)
    fast = anchored(rule)
    assert fast is not None
    for text in ("xaab", "XAAB aab", "xaab xaab"):
        assert _seen(fast.finditer(text, text.lower())) == _seen(rule.finditer(text))
        got = fast.search(text, text.lower())
        assert got is not None and got.span() == (2, 4)


@pytest.mark.parametrize("rule", [r for r in _rules() if heads(r.pattern, r.flags)],
                         ids=lambda r: r.pattern[:40])
def test_an_anchored_search_finds_what_the_rule_finds(rule: re.Pattern[str]) -> None:
    fast = anchored(rule)
    assert fast is not None
    for text in _texts(1500):
        low = text.lower()
        assert _seen(fast.finditer(text, low)) == _seen(rule.finditer(text)), text
        expected = rule.search(text)
        got = fast.search(text, low)
        assert (got and (got.span(), got.groups())) == (
            expected and (expected.span(), expected.groups())), text


def test_rules_read_through_the_anchored_search_give_the_same_hits_as_every_rule_run() -> None:
    # screen=False runs every regex as written, on the whole text
    for text in _texts():
        assert features._hits_for(text) == features._hits_for(text, screen=False), text
