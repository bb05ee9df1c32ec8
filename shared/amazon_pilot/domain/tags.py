"""Tags a seller puts on tracked products: normalised words, so "Q4 Launch" and
"q4 launch " are one tag. Pure functions, no I/O.

A tag is 1 to 32 characters after trimming, lower-case, of letters, digits, spaces,
"-" and "_", starting with a letter or digit; a product carries at most MAX_TAGS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MAX_TAGS = 20
MAX_TAG_LENGTH = 32
MAX_NOTES_LENGTH = 2000
_TAG_RE = re.compile(r"[\w][\w \-]*")


class InvalidTag(ValueError):
    """A tag the service does not accept; the message says why."""


def normalize_tag(raw: str) -> str:
    tag = " ".join(raw.split()).lower()
    if not tag:
        raise InvalidTag("a tag cannot be empty")
    if len(tag) > MAX_TAG_LENGTH:
        raise InvalidTag(f"tag {tag[:MAX_TAG_LENGTH]!r}… is longer than {MAX_TAG_LENGTH}"
                         " characters")
    if not _TAG_RE.fullmatch(tag):
        raise InvalidTag(f"tag {tag!r} may hold only letters, digits, spaces, '-' and '_'"
                         " (starting with a letter or digit)")
    return tag


def normalize_tags(raw: Iterable[str]) -> list[str]:
    """Distinct normalised tags, sorted (the first is the one a sort by tag uses)."""
    tags = sorted({normalize_tag(t) for t in raw})
    if len(tags) > MAX_TAGS:
        raise InvalidTag(f"a product carries at most {MAX_TAGS} tags; {len(tags)} given")
    return tags


def merged(current: Iterable[str], added: Iterable[str]) -> list[str]:
    return normalize_tags([*current, *added])


def without(current: Iterable[str], removed: Iterable[str]) -> list[str]:
    gone = {normalize_tag(t) for t in removed}
    return sorted(t for t in current if t not in gone)
