"""Random listing-like texts for the tests that compare a fast reading with its readable
definition: words in any case, joined by the given glue."""

from __future__ import annotations

import random
from collections.abc import Sequence


def listing_texts(words: Sequence[str], glue: Sequence[str], n: int, seed: int,
                  max_words: int) -> list[str]:
    """`n` texts of 0 to `max_words` words each, the same for the same seed."""
    r = random.Random(seed)
    out = []
    for _ in range(n):
        parts: list[str] = []
        for _ in range(r.randint(0, max_words)):
            word = r.choice(words)
            parts += (r.choice((word, word.upper(), word.title())), r.choice(glue))
        out.append("".join(parts))
    return out
