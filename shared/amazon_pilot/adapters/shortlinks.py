"""Resolving Amazon short links (a.co/…, amzn.to/…) to the product URL they stand for.

Following a link a seller pasted is a request to a host the seller chose, so it gets the
webhook sender's SSRF guard (adapters.notify, docs/security.md) and tighter bounds:
- only the shortener hosts (domain.product_ref.SHORT_LINK_HOSTS) are ever requested; a
  redirect to an Amazon store ends the walk WITHOUT requesting the store (the URL is all
  we need), a redirect anywhere else is refused;
- at most MAX_HOPS requests, each with a TIMEOUT_S timeout, redirects followed by hand,
  the body never read, proxies from the environment ignored;
- each host is resolved once and every address must be public; the connection goes to
  that checked address (Host header and TLS SNI keep the name), so DNS cannot answer
  "public" to the check and "private" to the connect.
In development, SHORT_LINK_VIA sends a shortener's requests to a local stand-in.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urljoin, urlsplit

from amazon_pilot.adapters.notify import UnresolvableTarget, _addresses
from amazon_pilot.domain.notifications import default_port, is_public_ip
from amazon_pilot.domain.product_ref import is_amazon_store_host, short_link_host
from amazon_pilot.platform.settings import settings

MAX_HOPS = 5
TIMEOUT_S = 4.0
USER_AGENT = "AmazonPilot-LinkResolver/1"
PASTE_FULL_URL = ("open the link in a browser and paste the full product URL"
                  " (amazon.<domain>/dp/…) instead")


class ShortLinkUnresolved(Exception):
    """The link could not be followed to an Amazon product URL; the message says why,
    in words a seller can act on."""


def _target(url: str) -> tuple[str, str, int, str]:
    """(scheme to connect with, host, port, the address to connect to) for one hop."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    via = settings().short_link_via.get(host) or settings().short_link_via.get(
        host.removeprefix("www."))
    if via:  # development: a local stand-in answers for this shortener
        address, _, via_port = via.rpartition(":")
        return "http", host, int(via_port), address
    scheme = parts.scheme.lower()
    port = parts.port or default_port(scheme)
    try:
        addresses = _addresses(host, port)
    except UnresolvableTarget:
        raise ShortLinkUnresolved(f"the short link's host {host} could not be reached;"
                                  f" {PASTE_FULL_URL}") from None
    if not all(is_public_ip(ipaddress.ip_address(a)) for a in addresses):
        raise ShortLinkUnresolved(f"the short link's host {host} is not a public address")
    return scheme, host, port, addresses[0]


def resolve_short_link(url: str) -> str:
    """The Amazon store URL `url` redirects to, following at most MAX_HOPS redirects."""
    import httpx

    if not settings().resolve_short_links:
        raise ShortLinkUnresolved(f"short links cannot be resolved offline; {PASTE_FULL_URL}")
    current = url if "://" in url else "https://" + url  # pasted without the scheme
    with httpx.Client(timeout=TIMEOUT_S, follow_redirects=False, trust_env=False) as http:
        for _ in range(MAX_HOPS):
            parts = urlsplit(current)
            if short_link_host(current) is None:
                raise ShortLinkUnresolved("the short link leads outside Amazon"
                                          f" ({parts.hostname or 'no host'}); {PASTE_FULL_URL}")
            scheme, host, port, address = _target(current)
            pinned = httpx.URL(current).copy_with(scheme=scheme, host=address, port=port)
            extensions = {"sni_hostname": host} if scheme == "https" else {}
            try:
                request = http.build_request(
                    "GET", pinned, headers={"Host": host, "User-Agent": USER_AGENT},
                    extensions=extensions)
                response = http.send(request, stream=True)
                response.close()  # the status and Location are all we need
            except httpx.HTTPError:
                raise ShortLinkUnresolved(f"the short link's host {host} did not answer;"
                                          f" {PASTE_FULL_URL}") from None
            location = response.headers.get("location")
            if response.status_code not in (301, 302, 303, 307, 308) or not location:
                raise ShortLinkUnresolved(
                    f"the short link did not redirect to a product (HTTP"
                    f" {response.status_code}): it may have expired; {PASTE_FULL_URL}")
            current = urljoin(current, location.strip())
            if is_amazon_store_host(urlsplit(current).hostname or ""):
                return current
    raise ShortLinkUnresolved(f"the short link redirects more than {MAX_HOPS} times;"
                              f" {PASTE_FULL_URL}")
