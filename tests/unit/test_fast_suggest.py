"""The suggestion path's fast forms (issue 18, seventh pass) against their readable
definitions: joining a title's keywords into the phrases competitor titles run together
looks a pair up only when the two words meet in enough titles."""

from __future__ import annotations

import random

from amazon_pilot.domain import grounding, suggestions
from amazon_pilot.domain.keywords import stem

_WORDS = ("noise", "cancelling", "earphones", "wireless", "bluetooth", "water", "bottle",
          "bottles", "insulated", "steel", "stainless", "the", "with", "for", "kids", "lid",
          "lids", "straw", "sport", "sports", "gym", "travel", "mug", "cup", "cups")
_SEPARATORS = (" ", " ", " ", ", ", " - ", " | ", "/", " (", ") ", "; ")


def _readable(keywords: tuple[str, ...], titles: tuple[str | None, ...]
              ) -> tuple[tuple[str, ...], dict[str, str]]:
    """The join as first written: every ordered pair of keywords, its words' run counted
    in the competitor title segments."""
    segs = suggestions._title_segments(titles)

    def runs(words: tuple[str, ...]) -> int:
        n = len(words)
        return sum(1 for seg in segs
                   if any(tuple(seg[i:i + n]) == words for i in range(len(seg) - n + 1)))

    def stems(kw: str) -> tuple[str, ...]:
        return tuple(stem(w) for w in kw.split())

    kws = list(keywords)
    merged = True
    while merged:
        merged = False
        for a in kws:
            for b in kws:
                if a == b:
                    continue
                if runs(stems(a) + stems(b)) >= grounding.MIN_COMPETITOR_TITLES:
                    kws[kws.index(a)] = f"{a} {b}"
                    kws.remove(b)
                    merged = True
                    break
            if merged:
                break
    return suggestions._without_fragments(kws, segs)  # the tail is shared, not tested here


def _title(r: random.Random, phrases: list[str]) -> str:
    """A title of phrases from a small pool, so rival titles share runs of words."""
    parts = []
    for _ in range(r.randint(0, 6)):
        parts += (r.choice(phrases).title(), r.choice(_SEPARATORS))
    return "".join(parts)


def test_keywords_join_into_the_phrases_competitor_titles_run_together_as_first_written() -> None:
    r = random.Random(1807)
    joined = joined_long = 0
    for _ in range(3000):
        phrases = [" ".join(r.sample(_WORDS, r.randint(1, 4))) for _ in range(6)]
        titles = tuple(_title(r, phrases) if r.random() > 0.05 else None
                       for _ in range(r.randint(0, 6)))
        # keywords: single words, and runs cut out of the pool's phrases
        cuts = []
        for phrase in r.sample(phrases, 3):
            words = phrase.split()
            i = r.randrange(len(words))
            cuts.append(" ".join(words[i:i + r.randint(1, 2)]))
        keywords = tuple(dict.fromkeys([*r.sample(_WORDS, r.randint(0, 6)), *cuts]))
        got = suggestions._phrases_of.__wrapped__(keywords, titles)
        assert got == _readable(keywords, titles), (keywords, titles)
        joined += len(got[0]) < len(keywords)
        joined_long += any(len(kw.split()) >= 3 for kw in got[0])
    assert joined > 300 and joined_long > 100  # the titles do run keywords together

