"""Tags, CSV cells and short-link recognition (pure), and the short-link resolver's
refusals that need no network: offline, and a shortener resolving to a private address."""

from __future__ import annotations

import csv
import io
import socket
from typing import Any

import pytest

from amazon_pilot.domain import csv_export
from amazon_pilot.domain.product_ref import (
    InvalidProductRef,
    ShortLink,
    is_amazon_store_host,
    parse_product_ref,
    short_link_host,
)
from amazon_pilot.domain.tags import InvalidTag, merged, normalize_tags, without
from amazon_pilot.platform.settings import SettingsError, environment_view, load_settings


def test_tags_are_normalised_merged_and_bounded() -> None:
    assert normalize_tags([" Q4  Launch ", "q4 launch", "Audio"]) == ["audio", "q4 launch"]
    assert merged(["audio"], ["Gift-Ideas"]) == ["audio", "gift-ideas"]
    assert without(["audio", "gift"], ["GIFT"]) == ["audio"]
    for bad in ("", "   ", "a/b", "-lead", "x" * 33, "<b>"):
        with pytest.raises(InvalidTag):
            normalize_tags([bad])
    with pytest.raises(InvalidTag, match="at most 20"):
        normalize_tags([f"t{i}" for i in range(21)])


def test_csv_cells_are_spreadsheet_safe_and_parse_back() -> None:
    rows = [{"a": "=SUM(A1)", "b": 12.5, "c": None, "d": ["x", "y"], "e": True},
            {"a": 'quote " and, comma', "b": 1e-7, "c": 0, "d": [], "e": False}]
    text = csv_export.header("abcde") + csv_export.lines("abcde", rows)
    parsed = list(csv.DictReader(io.StringIO(text)))
    assert parsed[0] == {"a": "'=SUM(A1)", "b": "12.5", "c": "", "d": "x; y", "e": "yes"}
    assert parsed[1] == {"a": 'quote " and, comma', "b": "0.0000001", "c": "0", "d": "",
                         "e": "no"}
    assert csv_export.words("availability", "out_of_stock") == "Out of stock"
    assert csv_export.words("availability", "never_fetched") == "Never fetched"


def test_short_links_are_recognised_and_only_they() -> None:
    assert short_link_host("https://a.co/d/7xYz") == "a.co"
    assert short_link_host("amzn.to/3abc") == "amzn.to"
    assert short_link_host("https://amzn.eu/d/x") == "amzn.eu"
    for other in ("https://a.co/", "https://a.co.evil.com/d/x", "https://a.co:8443/d/x",
                  "ftp://a.co/d/x", "https://www.amazon.com/dp/B0C33XXS56"):
        assert short_link_host(other) is None, other
    with pytest.raises(ShortLink, match="paste the full product URL") as refused:
        parse_product_ref("a.co/d/7xYz")
    assert refused.value.url == "https://a.co/d/7xYz"
    assert isinstance(refused.value, InvalidProductRef)
    assert is_amazon_store_host("www.amazon.co.uk") and not is_amazon_store_host("amazon.evil")


def test_short_link_via_is_for_development_only() -> None:
    assert load_settings({"SHORT_LINK_VIA": "a.co=127.0.0.1:9"}).short_link_via == {
        "a.co": "127.0.0.1:9"}
    with pytest.raises(SettingsError, match="SHORT_LINK_VIA is for development only"):
        load_settings({"STAGE": "prod", "SHORT_LINK_VIA": "a.co=127.0.0.1:9"})
    with pytest.raises(SettingsError, match="SHORT_LINKS must be on or off"):
        load_settings({"SHORT_LINKS": "maybe"})
    assert load_settings({}).resolve_short_links is False  # the stand-in serves: offline
    assert load_settings({"APIFY_TOKEN": "apify_api_x"}).resolve_short_links is True
    assert load_settings({"SHORT_LINKS": "on"}).resolve_short_links is True


def test_a_shortener_resolving_to_a_private_address_is_never_requested(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from amazon_pilot.adapters import shortlinks

    asked: list[str] = []
    real_dns = socket.getaddrinfo

    def private_dns(host: str, port: Any, *args: Any, **kwargs: Any) -> list[Any]:
        if host != "a.co":  # the process's other threads (a session stack) resolve as ever
            return real_dns(host, port, *args, **kwargs)
        asked.append(host)  # DNS is the boundary: it answers with the metadata address
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", port))]

    monkeypatch.setattr(socket, "getaddrinfo", private_dns)
    with (environment_view({"SHORT_LINKS": "on"}),
          pytest.raises(shortlinks.ShortLinkUnresolved, match="not a public address")):
        shortlinks.resolve_short_link("https://a.co/d/7xYz")
    assert asked == ["a.co"]
    with (environment_view({"SHORT_LINKS": "off"}),
          pytest.raises(shortlinks.ShortLinkUnresolved, match="offline")):
        shortlinks.resolve_short_link("https://a.co/d/7xYz")
