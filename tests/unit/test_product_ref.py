"""Reading the product references sellers type in: ASINs and Amazon product URLs."""

from __future__ import annotations

import pytest

from amazon_pilot.domain.product_ref import InvalidProductRef, parse_product_ref, product_url


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("B07NM3RSRQ", ("B07NM3RSRQ", "com")),
        ("  b07nm3rsrq ", ("B07NM3RSRQ", "com")),
        ("0596517742", ("0596517742", "com")),
        ("059651774X", ("059651774X", "com")),
        ("https://www.amazon.com/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com")),
        ("http://amazon.com/dp/B07NM3RSRQ/", ("B07NM3RSRQ", "com")),
        ("https://www.amazon.com/Soundcore-Anker-Cancelling-Headphones/dp/B07NM3RSRQ/ref=sr_1_3"
         "?keywords=headphones&qid=1&sr=8-3#customerReviews", ("B07NM3RSRQ", "com")),
        ("https://www.amazon.co.uk/gp/product/B07NM3RSRQ?th=1", ("B07NM3RSRQ", "co.uk")),
        ("https://www.amazon.de/gp/aw/d/B07NM3RSRQ", ("B07NM3RSRQ", "de")),
        ("https://www.amazon.fr/exec/obidos/ASIN/B07NM3RSRQ/", ("B07NM3RSRQ", "fr")),
        ("https://www.amazon.it/o/ASIN/B07NM3RSRQ", ("B07NM3RSRQ", "it")),
        ("https://www.amazon.es/o/B07NM3RSRQ", ("B07NM3RSRQ", "es")),
        ("https://smile.amazon.com/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com")),
        ("https://www.amazon.co.jp/-/en/dp/B07NM3RSRQ", ("B07NM3RSRQ", "co.jp")),
        ("https://amazon.com.au/dp/b07nm3rsrq", ("B07NM3RSRQ", "com.au")),
        ("HTTPS://WWW.AMAZON.CA/dp/B07NM3RSRQ", ("B07NM3RSRQ", "ca")),
        ("https://www.amazon.in/dp/B07NM3RSRQ", ("B07NM3RSRQ", "in")),
        ("https://www.amazon.com.mx/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com.mx")),
        ("https://www.amazon.com.br/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com.br")),
        ("https://www.amazon.nl/dp/B07NM3RSRQ", ("B07NM3RSRQ", "nl")),
        ("https://www.amazon.se/dp/B07NM3RSRQ", ("B07NM3RSRQ", "se")),
        ("https://www.amazon.pl/dp/B07NM3RSRQ", ("B07NM3RSRQ", "pl")),
        ("https://www.amazon.com.tr/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com.tr")),
        ("https://www.amazon.ae/dp/B07NM3RSRQ", ("B07NM3RSRQ", "ae")),
        ("https://www.amazon.sa/dp/B07NM3RSRQ", ("B07NM3RSRQ", "sa")),
        ("https://www.amazon.sg/dp/B07NM3RSRQ", ("B07NM3RSRQ", "sg")),
        ("https://www.amazon.com/dp/product/B07NM3RSRQ", ("B07NM3RSRQ", "com")),
        ("www.amazon.com/dp/B07NM3RSRQ", ("B07NM3RSRQ", "com")),
    ],
)  # fmt: skip
def test_accepted_product_refs(text: str, expected: tuple[str, str]) -> None:
    assert parse_product_ref(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("B07NM3RSR", "exactly 10 characters"),
        ("X07NM3RSRQ", "'B0' followed by 8"),
        ("https://amazon.evil.com/dp/B07NM3RSRQ", "not an Amazon store"),
        ("https://evilamazon.com/dp/B07NM3RSRQ", "not an Amazon store"),
        ("https://www.amazon.com.evil.io/dp/B07NM3RSRQ", "not an Amazon store"),
        ("https://www.amazon.cn/dp/B07NM3RSRQ", "not an Amazon store"),
        ("javascript:alert(1)//www.amazon.com/dp/B07NM3RSRQ", "http and https"),
        ("ftp://www.amazon.com/dp/B07NM3RSRQ", "http and https"),
        ("https://www.amazon.com/s?k=headphones", "no ASIN"),
        ("https://www.amazon.com/dp/ABCDEFGHIJ", "not a valid ASIN"),
        ("https://www.amazon.com/dp/B07NM3RSRQ" + "a" * 2100, "at most 2048"),
    ],
)
def test_rejected_product_refs_say_why(text: str, message: str) -> None:
    with pytest.raises(InvalidProductRef, match=message) as excinfo:
        parse_product_ref(text)
    assert isinstance(excinfo.value, ValueError)


def test_product_url_is_canonical() -> None:
    assert product_url("b07nm3rsrq", "co.uk") == "https://www.amazon.co.uk/dp/B07NM3RSRQ"
    assert parse_product_ref(product_url("B07NM3RSRQ", "de")) == ("B07NM3RSRQ", "de")
    with pytest.raises(InvalidProductRef):
        product_url("B07NM3RSRQ", "evil")
