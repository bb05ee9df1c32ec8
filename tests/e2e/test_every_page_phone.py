"""Every page of the seller's dashboard on a phone (390 px): nothing scrolls sideways and
every control can be reached by keyboard and read by a screen reader (a native,
focusable control with a name). The pages are walked as the demo seller sees them."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import sign_in

pytestmark = pytest.mark.slow

# A control without a name cannot be told apart by a screen reader; one that is not
# focusable cannot be reached by Tab. Both are computed in the page.
UNREACHABLE = """() => {
  const out = [];
  for (const el of document.querySelectorAll(
      'main button, main a[href], main input, main select, main textarea, main summary')) {
    const box = el.getBoundingClientRect();
    if (!box.width || !box.height || el.type === 'hidden') continue;   // not shown
    const labelled = (el.labels && el.labels.length) || el.getAttribute('aria-label')
      || el.getAttribute('aria-labelledby') || el.getAttribute('title')
      || el.getAttribute('placeholder') || (el.innerText || '').trim() || el.value;
    if (!labelled) out.push(el.outerHTML.slice(0, 120));
    if (el.tabIndex < 0 && !el.disabled) out.push('not focusable: ' + el.outerHTML.slice(0, 120));
  }
  return out;
}"""


def _first_href(page: Any, selector: str) -> str:
    return str(page.eval_on_selector(selector, "a => a.getAttribute('href')"))


def test_every_seller_page_fits_a_phone_and_names_its_controls(page: Any) -> None:
    page.set_viewport_size({"width": 390, "height": 844})
    sign_in(page)
    product_id = page.eval_on_selector(".products-table tbody tr", "r => r.dataset.productId")
    page.goto("/competitors")
    page.wait_for_selector("main a[href^='/competitors/']")
    group = _first_href(page, "main a[href^='/competitors/']")
    pages = ["/products", f"/products/{product_id}", "/alerts", "/channels", "/competitors",
             group, "/optimization", f"/optimization/{product_id}", "/runs", "/settings"]
    problems: dict[str, Any] = {}
    for path in pages:
        page.goto(path)
        page.wait_for_selector("main h1")
        page.wait_for_timeout(1200)  # the page's reads land and it settles
        width = page.evaluate("document.documentElement.scrollWidth")
        unreachable = page.evaluate(UNREACHABLE)
        if width > 400 or unreachable:
            problems[path] = {"scroll_width": width, "controls": unreachable[:5]}
    assert problems == {}
    assert page.watch.errors == []
