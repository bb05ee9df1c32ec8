"""The listing score's fast readers (issue 18, sixth pass) are derived from readable rules
and must agree with them on every text: the tokens and phrase segments of a text, a
competitor's bullets asked about one keyword at a time, the description's noise tests and
the image angle a URL names."""

from __future__ import annotations

import random
import re

from amazon_pilot.domain import grounding, listing_score
from amazon_pilot.domain.image_angles import _ANGLE_TOKENS, _tokens, angle_of, url_angle
from amazon_pilot.domain.keywords import (
    _PHRASE_BREAK_RE,
    _TOKEN_RE,
    _keyword_stem,
    _read_part,
    _surfaces,
    _TokenCounts,
    tokens,
    word_sequence,
)
from tests.unit.generated_text import listing_texts

# Words of listings (plurals, -ies/-es forms, stopwords, numbers, brands), the phrase
# breaks and separators the tokenizer treats differently, whitespace of every kind
# (\x1c-\x1f are whitespace to the regex's \s) and non-ASCII look-alikes.
_WORDS = re.split(" ", "insulated stainless steel water bottles bottle straw lids lid "
          "leak-proof vacuum double wall BPA free wide mouth sports gym travel cold hot "
          "coffee tumblers boxes box "
          "batteries battery glasses glass dishes the and of for with 32 oz 1000ml 20W usb-c "
          "ipx7 40 hours bluetooth 5.3 acme flowco uses use items item thes 500s gas gases "
          "bus buses is this ss kiss kisses Straße café naïve \uff22\uff30\uff21 水筒 ℃ \u017fteel")
_GLUE = (" ", " ", " ", "  ", ", ", "; ", ": ", " | ", "/", "(", ") ", "[", "] ", "! ", "? ",
         ". ", " & ", "+", " - ", "-", " -", "- ", " \u2013 ", "\u2014", "\t-\t", "\n-\n",
         "\x1c-\x1d", "\xa0-\xa0", " -- ", " - - ", "'", '"', "_", "*", "#", "\n", "\x1f", "\u3000")


def _texts(n: int = 4000) -> list[str]:
    return listing_texts(_WORDS, _GLUE, n, seed=18, max_words=40)


def _segments_by_regex(text: str) -> list[list[str]]:
    segments = (_TOKEN_RE.findall(s) for s in _PHRASE_BREAK_RE.split(text.lower()))
    return [s for s in segments if s]


def _segments_of(sequence: list[str]) -> list[list[str]]:
    out: list[list[str]] = [[]]
    for tok in sequence:
        if tok == "|":
            out.append([])
        else:
            out[-1].append(tok)
    return [s for s in out if s]


def test_word_sequence_reads_the_tokens_and_phrase_segments_the_regexes_read() -> None:
    texts = _texts()
    texts += [t.encode("ascii", "ignore").decode() for t in texts]
    ascii_texts = sum(t.isascii() for t in texts)
    assert ascii_texts > 4000 and len(texts) - ascii_texts > 2000  # the byte table and regexes
    for text in texts:
        assert _segments_of(word_sequence(text)) == _segments_by_regex(text), repr(text)


def test_tokens_and_grounding_words_read_what_their_regexes_read() -> None:
    for text in [*_texts(), "a_b c__d _e_", "snake_case_word", "\x00\x7f~`^"]:
        assert tokens(text) == _TOKEN_RE.findall(text.lower()), repr(text)
        assert grounding.words(text) == grounding._WORD_RE.findall(text.lower()), repr(text)


def test_every_spelling_of_a_stem_is_one_of_its_surfaces() -> None:
    for text in _texts(500):
        for tok in _TOKEN_RE.findall(text.lower()):
            st = _keyword_stem(tok)
            if st is not None:
                assert tok in _surfaces(st), (tok, st)
    for st in ("bottle", "battery", "box", "glass", "bus", "the", "500", "use", "kiss"):
        assert all(_keyword_stem(t) == st for t in _surfaces(st))


def _spellings_by_regex(text: str, exclude: frozenset[str]) -> dict[str, dict[str, int]]:
    """Every keyword and two-word phrase of `text` by stem, with its spellings counted, as
    the regexes read it (a brand word, a stopword or a number breaks a phrase)."""
    out: dict[str, dict[str, int]] = {}

    def add(st: str, surface: str) -> None:
        out.setdefault(st, {})[surface] = out.get(st, {}).get(surface, 0) + 1

    for segment in _PHRASE_BREAK_RE.split(text.lower()):
        prev, prev_stem = None, ""
        for tok in _TOKEN_RE.findall(segment):
            st = _keyword_stem(tok)
            if st is None or tok in exclude:
                prev = None
                continue
            add(st, tok)
            if prev is not None:
                add(f"{prev_stem} {st}", f"{prev} {tok}")
            prev, prev_stem = tok, st
    return out


def test_bullets_asked_one_keyword_at_a_time_answer_as_the_full_reading() -> None:
    r = random.Random(3)
    for text in _texts(1500):
        exclude = frozenset(r.sample(("acme", "flowco", "bottle", "lids", "steel", "zzz"), 2))
        expected = _spellings_by_regex(text, exclude)
        assert _read_part(text).without(exclude).spellings == expected, text
        counts = _TokenCounts.of(text)
        asked = set(expected) | {"bottle", "lid", "stainless steel", "wall bottle",
                                 "water bottle", "battery", "box", "a b c", "the", "|"}
        for st in asked:
            assert counts.spellings(st, exclude) == expected.get(st, {}), (text, st)
            assert counts.uses(st, exclude) == (st in expected), (text, st)


def test_the_split_description_noise_tests_agree_with_the_readable_patterns() -> None:
    extra = ["see https://x.io", "www.acme.com", "mail me@acme.com now", "a@b", "x @ y.z",
             "ftp://host", "wow!!!", "ok..", "--- x", "zzzzz", "zzzz", "ääääää", "11111",
             "__ __", "a" * 4 + "!" * 2, "____", "*" * 3]
    for text in _texts(2000) + extra:
        assert listing_score._has_link(text) == bool(listing_score._URL_RE.search(text)), text
        assert listing_score._has_repeat(text) == bool(listing_score._REPEAT_RE.search(text)), text


def test_a_url_screened_by_one_search_names_the_angle_its_tokens_name() -> None:
    r = random.Random(9)
    words = [w for ws in _ANGLE_TOKENS.values() for w in ws] + [
        "swch", "main", "pt01", "mainly", "usage", "boxed", "lifestyles", "61kQ2vN8TxL", "sl1500"]
    urls = []
    for _ in range(5000):
        name = r.choice(("-", "_", ".", "")).join(
            r.choice((w, w.upper(), w.title())) for w in r.sample(words, r.randint(1, 3)))
        host = r.choice(("https://m.media-amazon.com/images/I/", "https://cdn.shop/",
                         "http://user@x.io/a;b/", "https://x.io/p?q=main#", ""))
        urls.append(host + name + r.choice((".jpg", "._AC_SL1500_.jpg", "", "/")))
    named = 0
    for url in urls:
        expected = angle_of(_tokens(url))
        named += expected is not None
        assert url_angle.__wrapped__(url) == expected, url
    assert named > 1000
    assert re.search(r"[A-Z]", "".join(urls))  # upper-case names are read too
