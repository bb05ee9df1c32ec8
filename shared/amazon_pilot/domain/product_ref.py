"""Product references: what a seller types (an ASIN or an Amazon product URL) as an
(ASIN, marketplace) pair, and the canonical product URL built from one.

Pure functions, no I/O. Every message of `InvalidProductRef` says why the text was refused,
in words a seller can act on (the API returns it as is).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import urlsplit

__all__ = [
    "MAX_REF_LENGTH",
    "SHORT_LINK_HOSTS",
    "SUPPORTED_MARKETPLACES",
    "InvalidProductRef",
    "ProductRef",
    "ShortLink",
    "is_amazon_store_host",
    "parse_product_ref",
    "product_url",
    "short_link_host",
]

# Amazon stores a product URL may point at (the part after "amazon.").
SUPPORTED_MARKETPLACES: tuple[str, ...] = (
    "com", "co.uk", "de", "fr", "it", "es", "ca", "co.jp", "com.au", "in",
    "com.mx", "com.br", "nl", "se", "pl", "com.tr", "ae", "sa", "sg",
)  # fmt: skip
_SUPPORTED_SET = frozenset(SUPPORTED_MARKETPLACES)
MAX_REF_LENGTH = 2048

_ASIN_RE = re.compile(r"(?:B0[A-Z0-9]{8}|\d{9}[\dX])")
_HOST_RE = re.compile(r"(?:www\.|smile\.)?amazon\.([a-z]{2,3}(?:\.[a-z]{2})?)")
# Every product-page path shape Amazon has used; group 1 is the candidate ASIN.
_PATH_ASIN_RE = re.compile(
    r"(?:^|/)(?:dp(?:/product)?|gp/product|gp/aw/d|exec/obidos/ASIN|exec/obidos/tg/detail/-"
    r"|o(?:/ASIN)?)/([A-Za-z0-9]{10})(?=$|[/?#;&])",
    re.IGNORECASE,
)
_CANONICAL_URL_RE = re.compile(r"https://www\.amazon\.([a-z.]{2,6})/dp/(B0[A-Z0-9]{8}|\d{9}[\dX])")


class InvalidProductRef(ValueError):
    """The text is neither an ASIN nor an Amazon product URL; the message says why."""


class ShortLink(InvalidProductRef):
    """The text is an Amazon short link (a.co, amzn.to…): only following its redirects
    tells which product it names. The URL is in `url`; the message is for a seller."""

    def __init__(self, url: str) -> None:
        super().__init__(
            "Short links (a.co, amzn.to) cannot be resolved right now: open the link in"
            " a browser and paste the full product URL (amazon.<domain>/dp/…) instead.")
        self.url = url


# Amazon's link shorteners: a short link is followed only through these hosts and the
# Amazon stores themselves (SHORT_LINK_HOSTS is the redirect family, with the stores).
SHORT_LINK_HOSTS: tuple[str, ...] = ("a.co", "amzn.to", "amzn.eu", "amzn.asia", "amzn.com")


class ProductRef(NamedTuple):
    """One product on one Amazon store."""

    asin: str
    marketplace: str


def parse_product_ref(text: str) -> ProductRef:
    """Return (ASIN, marketplace) for a bare ASIN or an Amazon product URL."""
    if not isinstance(text, str):
        raise InvalidProductRef(f"Expected text, got {type(text).__name__}.")
    if len(text) > MAX_REF_LENGTH:
        raise InvalidProductRef(
            f"Product reference is {len(text)} characters long; at most {MAX_REF_LENGTH} "
            "are accepted."
        )
    ref = text.strip()
    if not ref:
        raise InvalidProductRef(
            "Product reference is empty: give an ASIN such as B07NM3RSRQ or an Amazon product URL."
        )
    if not any(ch in ref for ch in "/:."):
        return ProductRef(_bare_asin(ref), "com")
    canonical = _CANONICAL_URL_RE.fullmatch(ref)  # what product_url() emits: skip the URL parser
    if canonical is not None and canonical.group(1) in _SUPPORTED_SET:
        return ProductRef(canonical.group(2), canonical.group(1))
    return _asin_from_url(ref)


def _bare_asin(ref: str) -> str:
    asin = ref.upper()
    if len(asin) != 10:
        raise InvalidProductRef(
            f"{_short(ref)} is not an ASIN: an ASIN has exactly 10 characters, this has {len(ref)}."
        )
    if not _ASIN_RE.fullmatch(asin):
        raise InvalidProductRef(
            f"{_short(ref)} is not an ASIN: expected 'B0' followed by 8 letters or digits "
            "(e.g. B07NM3RSRQ) or a 10-digit ISBN."
        )
    return asin


def short_link_host(text: str) -> str | None:
    """The shortener's host when `text` is an http(s) short link with a path, else None."""
    ref = text.strip()
    if ref.lower().startswith(tuple(f"{h}/" for h in SHORT_LINK_HOSTS)):
        ref = "https://" + ref
    try:
        parts = urlsplit(ref)
        host = (parts.hostname or "").lower().rstrip(".")
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or parts.port not in (None, 80, 443):
        return None
    if host.startswith("www."):
        host = host[4:]
    return host if host in SHORT_LINK_HOSTS and parts.path.strip("/") else None


def is_amazon_store_host(host: str) -> bool:
    """True for amazon.<supported marketplace> (optionally www. or smile.)."""
    return _marketplace_of_host(host) is not None


def _asin_from_url(ref: str) -> ProductRef:
    lowered = ref.lower()
    if lowered.startswith(("amazon.", "www.amazon.", "smile.amazon.")):
        ref = "https://" + ref  # users paste links without the scheme
    if short_link_host(ref) is not None:
        raise ShortLink(ref if "://" in ref else "https://" + ref)
    try:
        parts = urlsplit(ref)
        host = parts.hostname or ""
    except ValueError as exc:
        raise InvalidProductRef(f"{_short(ref)} is not a valid URL ({exc}).") from exc
    if parts.scheme.lower() not in ("http", "https"):
        scheme = parts.scheme or "(none)"
        raise InvalidProductRef(
            f"Only http and https Amazon product URLs are accepted; got scheme {scheme!r}."
        )
    marketplace = _marketplace_of_host(host)
    if marketplace is None:
        raise InvalidProductRef(
            f"{host or '(no host)'!r} is not an Amazon store; accepted hosts are amazon.<domain> "
            f"(optionally www. or smile.) for: {', '.join(SUPPORTED_MARKETPLACES)}."
        )
    match = _PATH_ASIN_RE.search(parts.path)
    if match is None:
        raise InvalidProductRef(
            "The URL does not point at a product page: no ASIN found in its path "
            "(expected e.g. /dp/B07NM3RSRQ or /gp/product/B07NM3RSRQ)."
        )
    asin = match.group(1).upper()
    if not _ASIN_RE.fullmatch(asin):
        raise InvalidProductRef(
            f"{match.group(1)!r} in the URL is not a valid ASIN: expected 'B0' followed by "
            "8 letters or digits, or a 10-digit ISBN."
        )
    return ProductRef(asin, marketplace)


def _marketplace_of_host(host: str) -> str | None:
    match = _HOST_RE.fullmatch(host.lower().rstrip("."))
    if match is None:
        return None
    marketplace = match.group(1)
    return marketplace if marketplace in _SUPPORTED_SET else None


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "…")


@lru_cache(maxsize=8192)
def product_url(asin: str, marketplace: str = "com") -> str:
    """Canonical product page URL, the form sent to the scraper. Cached: a page of the
    product list checked fifty ASINs with a regular expression on every request (a
    quarter of its items' CPU); an invalid one raises each time (nothing cached). Bounded
    well below a daily refresh's product count: a worker asks each product once a day,
    and 65,536 entries held ~13 MB more at 100k products than at 1k."""
    if marketplace not in _SUPPORTED_SET:
        supported = ", ".join(SUPPORTED_MARKETPLACES)
        raise InvalidProductRef(f"Unknown marketplace {marketplace!r}; known: {supported}.")
    return f"https://www.amazon.{marketplace}/dp/{_bare_asin(asin.strip())}"
