"""Keyword and text tools the listing score and the suggestions share: tokens, light
stemming, keyword-like terms and two-word phrases, and the high-value keywords of a
competitor set (with the helpers to tell whether a title covers them). Pure; no I/O."""

from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache

from amazon_pilot.domain.snapshot import Snapshot

KEYWORDS_TOP_N = 15
KEYWORD_MIN_COMPETITORS = 2

# Grammar words plus listing filler that every competitor uses and no shopper searches for.
_STOPWORD_TEXT = """
    a an the and or but if of for to in on at by with from into over under as is are be
    been it its this that these those your you our we us my me i they them their he she
    his her not no nor so than too very can will just also up down out off about more most
    other some such only own same all any each both few per via etc use used using
    new perfect great ideal best premium quality high design designed easy make makes made
    include includes including included item items product products gift gifts
    men women kids adult adults pack set pcs piece pieces count inch inches color colors
    size sizes one two three four five six seven eight nine ten day days year years
    keep keeps every time times well even like get way hour hours
    through away while when where which what who whom then there here after before during
    without within around again ever never always still yet already whether because since
    until enough much many lot lots really simply truly
    give gives giving go goes going gone got gets getting let lets allow allows allowing
    help helps helping provide provides providing come comes coming take takes taking
    ensure ensures enjoy enjoys need needs want wants being does do did doing has have
    having had was were would should could may might must shall"""
# The verbs and adverbs in the list break phrases: "charge gives" and "going through"
# are fragments of sentences, not search terms.
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())

_TOKEN_RE = re.compile(r"[a-z0-9]+")  # hyphens split: "leak-proof" matches "leak proof"
# Punctuation ends a phrase: "Leak Proof, BPA-Free" holds no phrase "proof bpa".
_PHRASE_BREAK_RE = re.compile(r"[,;:|/()\[\]!?.&+\u2013\u2014]|\s-\s")


# An ASCII text is split by one byte table (C, 3-4x faster than the regex on a bullet):
# letters and digits kept, every other byte a space; split() then gives _TOKEN_RE's runs.
_ASCII_SPACES = bytes(c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789" else ord(" ")
                      for c in range(256))


def ascii_tokens(low: str) -> list[str]:
    """_TOKEN_RE.findall(low) for a lower-cased ASCII text."""
    return low.encode("ascii").translate(_ASCII_SPACES).decode("ascii").split()


def tokens(text: str) -> list[str]:
    """Lower-case alphanumeric tokens (hyphens and punctuation split)."""
    low = text.lower()
    return ascii_tokens(low) if low.isascii() else _TOKEN_RE.findall(low)


@lru_cache(maxsize=65536)  # the vocabulary of a category is small; stemming showed in profiles
def stem(token: str) -> str:
    """A light plural folding so "bottles" matches "bottle"; enough for title matching."""
    if len(token) > 4 and token.endswith("ies"):
        return token[:-3] + "y"
    if len(token) > 4 and token.endswith("es") and token[-3] in "sxz":
        return token[:-2]
    if len(token) > 3 and token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


def _keep(tok: str, exclude: frozenset[str]) -> bool:
    if tok.isdigit() or tok in STOPWORDS or tok in exclude:
        return False
    return len(tok) >= 3 or any(c.isdigit() for c in tok)


def terms(text: str | None, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """(stem, surface) for every keyword-like token: no stopwords, numbers or brand words."""
    if not text:
        return []
    return [(stem(t), t) for t in tokens(text) if _keep(t, exclude)]


def phrases(text: str | None, exclude: frozenset[str] = frozenset()) -> list[tuple[str, str]]:
    """terms() plus two-word phrases of adjacent keyword tokens ("stainless steel"), keyed
    by their space-joined stems: shoppers search phrases, and a title built from loose
    words reads as stuffing."""
    return list(_phrases(text, exclude)) if text else []


# Competitors' text is read by the score and again by the suggestions, and the same rivals
# recur across a seller's products: memoise the tokenising.
@lru_cache(maxsize=4096)
def _phrases(text: str, exclude: frozenset[str]) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    prev: str | None = None
    prev_stem = ""
    for tok in word_sequence(text):
        st = _keyword_stem(tok)
        if st is None or tok in exclude:  # "|", a phrase break, has no stem either
            prev = None
            continue
        out.append((st, tok))
        if prev is not None:
            out.append((f"{prev_stem} {st}", f"{prev} {tok}"))
        prev, prev_stem = tok, st
    return tuple(out)


@lru_cache(maxsize=65536)
def _keyword_stem(tok: str) -> str | None:
    """The stem of a keyword-like token, None for a stopword or a number (brands aside)."""
    return stem(tok) if _keep(tok, frozenset()) else None


def brand_tokens(brands: list[str | None]) -> frozenset[str]:
    toks: set[str] = set()
    for b in brands:
        if b:
            toks.update(_TOKEN_RE.findall(b.lower()))
    return frozenset(toks)



def competitor_strength(bsr: int | None, fallback: float) -> float:
    """Better (lower) BSR -> stronger: 1/log10(10 + bsr), ~0.96 at #1, 0.25 at #10,000."""
    if bsr is None or bsr <= 0:
        return fallback
    return 1.0 / math.log10(10.0 + bsr)


def drop_bridges(keys: set[str], weight: Mapping[str, float]) -> set[str]:
    """Drop two-word phrases that only straddle real ones ("insulated water" in "insulated
    water bottle", "seasoned cast" in "pre-seasoned cast iron"). Greedy, heaviest first: a
    phrase that chains onto an already kept one (its first word is the kept one's last, or
    the reverse) is a bridge."""
    kept: list[tuple[str, str]] = []
    out = {k for k in keys if " " not in k}
    for k in sorted((k for k in keys if " " in k), key=lambda k: (-weight[k], k)):
        first, last = k.split()
        if any(first == k_last or last == k_first for k_first, k_last in kept):
            continue
        kept.append((first, last))
        out.add(k)
    return out


@dataclass(slots=True, frozen=True)
class _TextPart:
    """The keyword statistics of one text of one competitor snapshot (its title, or its
    bullets): which stems it uses and how it spells them, before brand words are taken
    out. Excluding a word later drops exactly the pairs whose surface contains it (an
    excluded token breaks a phrase, so no new pair appears), hence ``without``."""

    stems: frozenset[str]
    words: frozenset[str]  # every surface token, to tell cheaply whether exclusion matters
    spellings: Mapping[str, Mapping[str, int]]  # stem -> surface -> occurrences

    def without(self, exclude: frozenset[str]) -> _TextPart:
        present = exclude & self.words  # every token of a phrase is a word of the text too
        if not present:
            return self
        # Only entries whose stems hold an excluded word's stem can lose a spelling; the
        # others are shared as they are (a rival's title usually holds just its brand).
        gone = {_keyword_stem(w) for w in present}
        spellings: dict[str, Mapping[str, int]] = {}
        for s, spelt in self.spellings.items():
            if s not in gone and (" " not in s or gone.isdisjoint(s.split(" "))):
                spellings[s] = spelt
                continue
            kept = {surf: n for surf, n in spelt.items() if present.isdisjoint(surf.split(" "))}
            if kept:
                spellings[s] = kept
        return _TextPart(frozenset(spellings), self.words - present, spellings)


@lru_cache(maxsize=1024)  # a competitor's text recurs across the products that watch it
def _competitor_text(title: str | None, bullets: tuple[str, ...]
                     ) -> tuple[_TextPart, _TokenCounts]:
    # " | " between bullets: no phrase spans two bullets.
    return _read_part(title or ""), _TokenCounts.of(" | ".join(bullets))


# Every surface a keyword stem can have: stem() only ever drops "s" or "es" or turns "ies"
# into "y", so a stem s is spelt s, s+"s", s+"es" or (for a final "y") ...ies, and exactly
# those of them whose keyword stem is s (the others are spelt but fold elsewhere, or are
# stopwords) are its spellings. This lets a text be asked about one keyword without
# stemming every word it holds.
@lru_cache(maxsize=65536)
def _surfaces(st: str) -> tuple[str, ...]:
    forms = [st, st + "s", st + "es"]
    if st.endswith("y"):
        forms.append(st[:-1] + "ies")
    return tuple(t for t in forms if _keyword_stem(t) == st)


# Reading an ASCII text with one byte table and split (C, ≈ 4 µs a bullet list) instead of
# the two regexes (≈ 30 µs): letters and digits are kept, the ASCII phrase breaks of
# _PHRASE_BREAK_RE become a "|" token, anything else separates words as _TOKEN_RE does.
# " - " (a dash between spaces) is the one break that needs a regex; it starts with its
# literal dash so the search skips ahead quickly. Matching the dash alone (its spaces
# left) breaks at least where the regex does, and any extra break it finds follows a
# break with no word between, so the words and their segments are the same.
_DASH_BREAK_RE = re.compile(r"-(?<=\s-)(?=\s)")
_ASCII_WORDS = bytes(
    c if chr(c) in "abcdefghijklmnopqrstuvwxyz0123456789"
    else ord("|") if chr(c) in ",;:|/()[]!?.&+" else ord(" ")
    for c in range(256))
_SEQUENCE_RE = re.compile(r"[a-z0-9]+|\|")


def word_sequence(text: str) -> list[str]:
    """The lower-cased tokens of `text` in order, "|" where a phrase break stands: the
    words tokens() reads, split into the segments _PHRASE_BREAK_RE makes."""
    low = text.lower()
    if not low.isascii():
        return _SEQUENCE_RE.findall(_PHRASE_BREAK_RE.sub("|", low))
    if "-" in low:
        low = _DASH_BREAK_RE.sub("|", low)
    return (low.encode("ascii").translate(_ASCII_WORDS).replace(b"|", b" | ")
            .decode("ascii").split())


@dataclass(slots=True, frozen=True)
class _TokenCounts:
    """A competitor's bullets, counted but not stemmed: how often each token occurs, and
    the tokens in order to find a pair. Only the few keywords its set's titles make
    candidates are ever asked about (≈ 20 a set, nearly all single words), so stemming
    and pairing every one of the ≈ 100 words (≈ 0.5 µs of Python each) is left out; a
    keyword's spellings are looked up from its stem (``_surfaces``). Brand words are left
    out at the question, as ``_TextPart.without`` would: spellings holding one are dropped."""

    tokens: Mapping[str, int]
    # The tokens in order, "|" at each phrase break; a tuple of strings, which the cyclic
    # collector stops tracking (a cached list would be walked at every full collection).
    sequence: tuple[str, ...]

    @staticmethod
    def of(text: str) -> _TokenCounts:
        seq = word_sequence(text)
        return _TokenCounts(Counter(seq), tuple(seq))

    def _pair_count(self, first: str, second: str) -> int:
        """How often `second` directly follows `first` (one segment: "|" is neither)."""
        seq, n, i = self.sequence, 0, -1
        count = self.tokens[first]
        for _ in range(count):  # list.index scans in C; one call per occurrence of `first`
            i = seq.index(first, i + 1)
            if i + 1 < len(seq) and seq[i + 1] == second:
                n += 1
        return n

    def spellings(self, st: str, exclude: frozenset[str]) -> dict[str, int]:
        """surface -> occurrences of the keyword or two-word phrase stem `st`."""
        tokens = self.tokens
        if " " not in st:
            return {t: tokens[t] for t in _surfaces(st) if t in tokens and t not in exclude}
        first, _, second = st.partition(" ")
        if " " in second:  # no phrase is longer than two words
            return {}
        out: dict[str, int] = {}
        for a in _surfaces(first):
            if a in tokens and a not in exclude:
                for b in _surfaces(second):
                    if b in tokens and b not in exclude and (n := self._pair_count(a, b)):
                        out[f"{a} {b}"] = n
        return out

    def uses(self, st: str, exclude: frozenset[str]) -> bool:
        if " " not in st:  # the common question, answered without building the counts
            tokens = self.tokens
            for t in _surfaces(st):  # noqa: SIM110 (a loop: any() would make a generator)
                if t in tokens and t not in exclude:
                    return True
            return False
        return bool(self.spellings(st, exclude))


def _read_part(text: str) -> _TextPart:
    """The stems and spellings of Counter(_phrases(text)) in one pass: the same terms and
    phrases, counted as they are read (nothing else keeps this text's phrases, so no list
    is built)."""
    spellings: dict[str, dict[str, int]] = {}
    words: set[str] = set()
    prev: str | None = None
    prev_stem = ""
    for tok in word_sequence(text):
        st = _keyword_stem(tok)
        if st is None:  # a stopword, a number, or "|" (a phrase break) ends a phrase
            prev = None
            continue
        words.add(tok)
        spelt = spellings.get(st)
        if spelt is None:
            spellings[st] = {tok: 1}
        else:
            spelt[tok] = spelt.get(tok, 0) + 1
        if prev is not None:
            pair_stem, pair = f"{prev_stem} {st}", f"{prev} {tok}"
            spelt = spellings.get(pair_stem)
            if spelt is None:
                spellings[pair_stem] = {pair: 1}
            else:
                spelt[pair] = spelt.get(pair, 0) + 1
        prev, prev_stem = tok, st
    return _TextPart(frozenset(spellings), frozenset(words), spellings)


def high_value_keywords(
    competitors: list[Snapshot],
    exclude_brands: frozenset[str],
    category_keywords: list[str] | None = None,
    top_n: int = KEYWORDS_TOP_N,
) -> list[tuple[str, str, float, int]]:
    """(stem, display, weight, n_competitors), best first.

    A term qualifies when >= 2 competitors use it in their titles: a title keyword is a
    search phrase the market uses, and only those may be added to a title (the grounding
    rule). Its weight is the sum of the strengths (BSR-based) of the competitors using it,
    a title mention counting 1 and a bullets-only mention 0.5, because the title is what
    search indexes most.
    """
    # Products in one niche watch the same rivals: the statistics of their text are kept
    # per competitor set, and only the weights (their ranks move daily) are recomputed.
    texts = tuple((c.title, tuple(c.bullet_points)) for c in competitors)
    ranks = tuple(c.bsr_rank for c in competitors)
    return list(_high_value_keywords(texts, ranks, exclude_brands,
                                     tuple(category_keywords or ()), top_n))


_NONE: Mapping[str, int] = {}


@dataclass(slots=True, frozen=True)
class _SetStats:
    """What a competitor set's text says, whatever the competitors' ranks: for the stems
    >= 2 titles use (the candidates) who uses it and where, and how many use a stem."""

    # stem -> (competitor index, 1.0 in its title | 0.5 in its bullets only), in set order
    candidates: Mapping[str, tuple[tuple[int, float], ...]]
    users: Mapping[str, int]  # how many competitors use a candidate (title or bullets)
    titles: tuple[_TextPart, ...]  # every competitor's title, brands taken out
    bullets: tuple[_TokenCounts, ...]  # and its bullets (brands left out when asked)
    exclude: frozenset[str]
    # Filled as stems are asked about; they depend on the text only, not on the ranks
    # that reorder the keywords daily.
    counted: dict[str, int] = field(default_factory=dict)
    # stem -> (-count, spelling) of the spelling competitors use most
    spelling: dict[str, tuple[int, str]] = field(default_factory=dict)

    def users_of(self, s: str) -> int:
        """How many competitors use any stem (a seller's keyword may be no candidate)."""
        used = self.users.get(s)
        if used is not None:
            return used
        n = self.counted.get(s)
        if n is None:
            n = self.counted[s] = sum(
                1 for title, bullets in zip(self.titles, self.bullets, strict=True)
                if s in title.stems or bullets.uses(s, self.exclude))
        return n

    def display(self, s: str) -> tuple[int, str]:
        shown = self.spelling.get(s)
        if shown is None:
            counts: dict[str, int] = {}
            for title in self.titles:
                for surf, n in title.spellings.get(s, _NONE).items():
                    counts[surf] = counts.get(surf, 0) + n
            if " " in s:
                for bullets in self.bullets:
                    for surf, n in bullets.spellings(s, self.exclude).items():
                        counts[surf] = counts.get(surf, 0) + n
            else:  # a word: each of its spellings summed over the bullets at once
                for surf in _surfaces(s):
                    if surf not in self.exclude:
                        n = sum(bullets.tokens.get(surf, 0) for bullets in self.bullets)
                        if n:
                            counts[surf] = counts.get(surf, 0) + n
            # The spelling competitors use most; ties go to the alphabetically first.
            shown = self.spelling[s] = min((-count, surf) for surf, count in counts.items())
        return shown


@lru_cache(maxsize=256)  # a worker scores one seller's groups at a time
def _set_stats(texts: tuple[tuple[str | None, tuple[str, ...]], ...],
               exclude_brands: frozenset[str]) -> _SetStats:
    title_users: Counter[str] = Counter()
    titles: list[_TextPart] = []
    bullets: list[_TokenCounts] = []
    for title, bullet_points in texts:
        title_part, bullet_counts = _competitor_text(title, bullet_points)
        title_part = title_part.without(exclude_brands)
        titles.append(title_part)
        bullets.append(bullet_counts)
        title_users.update(title_part.stems)
    candidates: dict[str, tuple[tuple[int, float], ...]] = {}
    for s, n in title_users.items():
        if n >= KEYWORD_MIN_COMPETITORS:
            used: list[tuple[int, float]] = []
            for i, title_part in enumerate(titles):
                if s in title_part.stems:
                    used.append((i, 1.0))
                elif bullets[i].uses(s, exclude_brands):
                    used.append((i, 0.5))
            candidates[s] = tuple(used)
    users = {s: len(used) for s, used in candidates.items()}
    return _SetStats(candidates, users, tuple(titles), tuple(bullets), exclude_brands)


@lru_cache(maxsize=256)
def _high_value_keywords(
    texts: tuple[tuple[str | None, tuple[str, ...]], ...],
    ranks: tuple[int | None, ...],
    exclude_brands: frozenset[str],
    category_keywords: tuple[str, ...],
    top_n: int,
) -> tuple[tuple[str, str, float, int], ...]:
    stats = _set_stats(texts, exclude_brands)
    users = stats.users
    known = [competitor_strength(bsr, 0.0) for bsr in ranks if bsr]
    fallback = min(known) if known else 0.2
    strength = [competitor_strength(bsr, fallback) for bsr in ranks]
    weight: dict[str, float] = {}
    for s, used in stats.candidates.items():
        w = 0.0  # summed in set order, as a running total over the competitors
        for i, share in used:
            w += strength[i] * share
        weight[s] = w
    qualified = drop_bridges(set(weight), weight)
    # A word that nearly always comes inside a qualifying phrase is covered by the phrase.
    inside: dict[str, int] = defaultdict(int)
    for s in qualified:
        if " " in s:
            for part in s.split():
                inside[part] = max(inside[part], users[s])
    qualified = {s for s in qualified if " " in s or inside[s] < 0.8 * users[s]}
    ranked = sorted(qualified, key=lambda s: (-weight[s], -s.count(" "), s))[:top_n]
    out = [(s, stats.display(s)[1], weight[s], users[s]) for s in ranked]
    top_w = out[0][2] if out else 1.0
    seen = {s for s, *_ in out}
    for phrase in category_keywords:
        key = " ".join(stem(t) for t in _TOKEN_RE.findall(phrase.lower()))
        if key and key not in seen:
            # Seller-supplied keywords count as much as the strongest market term.
            seen.add(key)
            out.append((key, phrase.strip().lower(), top_w, stats.users_of(key)))
    return tuple(out)


def covers(key: str, title_stems: set[str]) -> bool:
    return all(part in title_stems for part in key.split())


def shingles(text: str, k: int = 4) -> set[tuple[str, ...]]:
    words = tokens(text)  # _TOKEN_RE's words, split in C for ASCII text
    # Every run of k consecutive words (none when the text is shorter than k).
    return set(zip(*(words[i:] for i in range(k)), strict=False))
