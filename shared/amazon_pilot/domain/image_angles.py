"""Which shot types (angles) a listing's image gallery shows, read only from what the image
data says: file names and the gallery slot codes Amazon uses (MAIN, PT01..PT08, SWCH).
Amazon's CDN URLs are usually opaque ids, and then the angles are unknown: nothing is
inferred from the image count (the count has its own rule). Pure; no I/O.
"""

from __future__ import annotations

import functools
import re
import statistics
from typing import Any
from urllib.parse import urlparse

from amazon_pilot.domain.snapshot import Snapshot

# Shot types in the order sellers usually add them; a short gallery is assumed to lack
# the later ones first.
ANGLE_ORDER: tuple[str, ...] = (
    "main_white",
    "lifestyle",
    "infographic",
    "in_use",
    "scale",
    "packaging",
)
ANGLE_LABELS: dict[str, str] = {
    "main_white": "main image on white",
    "lifestyle": "lifestyle",
    "infographic": "infographic",
    "in_use": "in use",
    "scale": "scale / dimensions",
    "packaging": "packaging / what's in the box",
}
_ANGLE_TOKENS: dict[str, frozenset[str]] = {
    "main_white": frozenset({"main", "white", "hero", "front"}),
    "lifestyle": frozenset({"lifestyle", "scene", "model", "outdoor", "kitchen"}),
    "infographic": frozenset({"infographic", "info", "features", "benefits", "callouts"}),
    "in_use": frozenset({"use", "inuse", "using", "action", "demo", "hand"}),
    "scale": frozenset({"scale", "size", "dimension", "dimensions", "measure", "sizing"}),
    "packaging": frozenset({"package", "packaging", "box", "unboxing", "contents"}),
}


# Amazon's gallery slot codes, as they appear in seller file names ("B0XXXX.PT01.jpg"):
# MAIN is the main image (on white, by Amazon's image rules); PT01..PT08 are additional
# slots that say nothing about the shot; SWCH is a colour swatch, not a gallery image.
_SLOT_RE = re.compile(r"^(?:main|pt0[1-8]|swch)$")
# Amazon's CDN names an image by an opaque id ("/images/I/61kQ2vN8TxL._AC_SL1500_.jpg").
_CDN_ID_RE = re.compile(r"/images/I/[^/.]+")


def image_total(snap: Snapshot) -> int:
    return max(snap.image_count, len(snap.image_urls))


# An absolute http(s) URL with nothing urlparse would treat specially (whitespace, ";"
# parameters, brackets, credentials): its path is the text after the host up to "?" or "#".
_PLAIN_URL_RE = re.compile(r"https?://[A-Za-z0-9.:%_\-]*(/[^?#;\s]*)?(?:[?#]\S*)?", re.ASCII)
_SPLIT_RE = re.compile(r"[^a-z0-9]+")


def _url_path(url: str) -> str:
    plain = _PLAIN_URL_RE.fullmatch(url)
    if plain is not None:
        return plain.group(1) or ""
    return urlparse(url).path


def _tokens(url: str) -> set[str]:
    path = _CDN_ID_RE.sub("/", _url_path(url).lower())
    return {t for t in _SPLIT_RE.split(path) if t}


# Any word url_angle looks for, as a whole token of the path: one search (C) tells that a
# URL names no angle, as most CDN URLs do, without splitting it into a set of tokens.
_NAMING_RE = re.compile(
    r"(?<![a-z0-9])(?:"
    + "|".join(sorted({"swch", "main"}.union(*_ANGLE_TOKENS.values()), key=lambda w: (-len(w), w)))
    + r")(?![a-z0-9])")


@functools.lru_cache(maxsize=16384)  # a competitor's gallery recurs across products
def url_angle(url: str) -> str | None:
    """The angle one image's URL names, "swatch" for a swatch, None when it names none."""
    if _NAMING_RE.search(_CDN_ID_RE.sub("/", _url_path(url).lower())) is None:
        return None
    return angle_of(_tokens(url))


def angle_of(tokens: set[str]) -> str | None:
    """The angle a URL's path tokens name (the readable rule url_angle screens for)."""
    if "swch" in tokens:
        return "swatch"
    if "main" in tokens:
        return "main_white"
    for angle, words in _ANGLE_TOKENS.items():
        if tokens & words:
            return angle
    return None


def url_angles(urls: list[str]) -> set[str]:
    """Angles named in image file names (seller-uploaded names sometimes survive)."""
    return {a for u in urls if (a := url_angle(u)) is not None and a != "swatch"}


def infer_angles(product: Snapshot, competitors: list[Snapshot]) -> dict[str, Any]:
    """Which shot types the gallery shows, as far as the image data says.

    status "named": every gallery image's URL names its shot type, so the missing angles
    are known; "partly_named" / "unknown": some or all images are opaque, so which angles
    are missing is not known and nothing is listed as missing. Missing angles that
    competitors' file names show are listed first.
    """
    named = [url_angle(u) for u in product.image_urls]
    gallery = [a for a in named if a != "swatch"]
    n = image_total(product) - (len(named) - len(gallery))
    detected = {a for a in gallery if a is not None}
    unknown = max(0, n - sum(1 for a in gallery if a is not None))
    status = "unknown" if not detected else ("partly_named" if unknown else "named")
    comp_counts = [image_total(c) for c in competitors]
    comp_mean = statistics.fmean(comp_counts) if comp_counts else 0.0
    comp_shown: set[str] = set()
    for c in competitors:
        comp_shown |= url_angles(c.image_urls)
    missing = [a for a in ANGLE_ORDER if a not in detected] if status == "named" else []
    missing.sort(key=lambda a: (a not in comp_shown, ANGLE_ORDER.index(a)))
    return {
        "status": status,
        "detected": [a for a in ANGLE_ORDER if a in detected],
        "unknown_images": unknown,
        "missing": missing,
        "competitor_mean_images": round(comp_mean, 2),
        "competitors_show": [a for a in ANGLE_ORDER if a in comp_shown],
    }
