"""Which shot types (angles) a listing's image gallery probably has and lacks, inferred
from image file names and gallery size against the competitors'. Pure; no I/O."""

from __future__ import annotations

import math
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


def image_total(snap: Snapshot) -> int:
    return max(snap.image_count, len(snap.image_urls))


def url_angles(urls: list[str]) -> set[str]:
    """Angles named in image file names (seller-uploaded names sometimes survive)."""
    found: set[str] = set()
    for url in urls:
        tokens = set(re.split(r"[^a-z0-9]+", urlparse(url).path.lower()))
        found.update(a for a, words in _ANGLE_TOKENS.items() if tokens & words)
    return found


def infer_angles(product: Snapshot, competitors: list[Snapshot]) -> dict[str, Any]:
    """Which shot types the gallery probably has and lacks.

    Amazon's URLs are usually opaque, so: angles named in file names count as present; the
    first image is the main image on white (Amazon requires it); a full gallery needs about
    max(6, competitors' mean count) images to cover the 6 angles (galleries repeat angles),
    so our n images are credited with floor(n * 6 / that) angles, filled in ANGLE_ORDER.
    Missing angles that competitors' file names show are listed first.
    """
    n = image_total(product)
    detected = url_angles(product.image_urls)
    comp_counts = [image_total(c) for c in competitors]
    comp_mean = statistics.fmean(comp_counts) if comp_counts else 0.0
    expected = max(float(len(ANGLE_ORDER)), comp_mean)
    credited = min(len(ANGLE_ORDER), math.floor(n * len(ANGLE_ORDER) / expected))
    present = set(detected)
    if n >= 1:
        present.add("main_white")  # Amazon requires the first image on white
    for angle in ANGLE_ORDER:
        if len(present) >= credited:
            break
        present.add(angle)
    comp_shown: set[str] = set()
    for c in competitors:
        comp_shown |= url_angles(c.image_urls)
    missing = [a for a in ANGLE_ORDER if a not in present]
    missing.sort(key=lambda a: (a not in comp_shown, ANGLE_ORDER.index(a)))
    return {
        "detected": [a for a in ANGLE_ORDER if a in detected],
        "inferred": [a for a in ANGLE_ORDER if a in present and a not in detected],
        "missing": missing,
        "competitor_mean_images": round(comp_mean, 2),
        "competitors_show": [a for a in ANGLE_ORDER if a in comp_shown],
    }
