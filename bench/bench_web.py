"""Issue 7 figures: the dashboard in headless Chromium.

    .venv/bin/python bench/bench_web.py

- time to first meaningful paint of the products page with 500 tracked products (the
  first frame painted after the table holds its rows), cold cache, signed in (the
  session resumes through /v1/auth/refresh as on any reload), at 100 rows per page
  (the default) and with all 500 rows on one page;
- time to the first paint of a product chart of 365 daily points (range 1 y);
- bytes of the page's assets: over the wire (gzip) and decoded.

A stack runs in this process (embedded Postgres in .pilot/bench-web, the Apify stand-in
for history). Figures only; nothing is asserted.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
PRODUCTS = int(os.environ.get("BENCH_PRODUCTS", "500"))
HISTORY_DAYS = int(os.environ.get("BENCH_HISTORY_DAYS", "3"))
CHART_DAYS = 365
PASSWORD = "Bench-web-2026"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

# Runs before the page's own scripts (injected by the driver, so the page's CSP does not
# apply): notes when the watched selector first has enough elements, then the next frame.
PAINT_PROBE = """
(() => {
  const want = window.__want || { selector: null, count: 0 };
  const check = () => {
    if (window.__ready !== undefined || !want.selector) return;
    if (document.querySelectorAll(want.selector).length >= want.count) {
      window.__ready = performance.now();
      requestAnimationFrame(() => setTimeout(() => { window.__painted = performance.now(); }, 0));
    }
  };
  new MutationObserver(check)
    .observe(document, { subtree: true, childList: true, attributes: true });
})();
"""


def seed(stack_url: str) -> tuple[str, str, str]:
    """A seller with PRODUCTS tracked products (a few days of history) and one with a year."""
    from sqlalchemy import text

    from amazon_pilot.accounts.service import create_user
    from amazon_pilot.platform.db import transaction
    from amazon_pilot.tracking.store import insert_tracked, upsert_product
    from pilot_dev.standins.apify_catalog import CATEGORIES, demo_asins
    from pilot_dev.timetravel import backfill

    email = f"bench-{uuid.uuid4().hex[:8]}@example.com"
    user = create_user(email, PASSWORD, role="seller", plan="enterprise")
    per = -(-PRODUCTS // len(CATEGORIES))
    asins: list[str] = []
    for category in CATEGORIES:
        asins.extend(demo_asins(category, per))
    asins = asins[:PRODUCTS]
    ids = []
    with transaction() as conn:
        for asin in asins:
            product_id, _ = upsert_product(conn, asin, "com")
            insert_tracked(conn, user.id, product_id, None, {})
            ids.append(product_id)
    started = time.perf_counter()
    backfill(ids, HISTORY_DAYS)
    backfill(ids[:1], CHART_DAYS)
    print(f"seeded {len(ids)} products ({HISTORY_DAYS} days each, {CHART_DAYS} for one)"
          f" in {time.perf_counter() - started:.1f} s")
    with transaction() as conn:
        chart_id = conn.execute(text(
            "SELECT id FROM tracked_products WHERE user_id = :u AND product_id = :p"),
            {"u": user.id, "p": ids[0]}).scalar_one()
    return email, str(chart_id), stack_url


def sign_in(browser: Any, url: str, email: str) -> Any:
    context = browser.new_context(base_url=url, viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto("/login")
    page.fill("#login-email", email)
    page.fill("#login-password", PASSWORD)
    page.click("#login-submit")
    page.wait_for_selector(".products-table tbody tr", timeout=60_000)
    # The session lives in the HttpOnly refresh cookie: carry the browser state over.
    state = context.storage_state()
    context.close()
    return state


def measure(browser: Any, url: str, state: Any, path: str, selector: str,
            count: int) -> tuple[float, float, list[dict[str, Any]], Any]:
    """Cold-cache load of `path` in a fresh context holding the session cookie only;
    (ms to ready, ms to painted, resources, the browser state with the rotated cookie)."""
    context = browser.new_context(base_url=url, viewport={"width": 1440, "height": 900},
                                  storage_state=state)
    context.add_init_script(
        f"window.__want = {{selector: {selector!r}, count: {count}}};" + PAINT_PROBE)
    page = context.new_page()
    page.goto(path)
    page.wait_for_function("() => window.__painted !== undefined", timeout=120_000)
    ready, painted = page.evaluate("[window.__ready, window.__painted]")
    resources = page.evaluate("""() => [performance.getEntriesByType('navigation')[0],
        ...performance.getEntriesByType('resource')].map(e => ({name: e.name,
        transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize}))""")
    state = context.storage_state()  # the refresh rotated the cookie: keep the new one
    context.close()
    return float(ready), float(painted), resources, state


def report(label: str, samples: list[float]) -> None:
    print(f"  {label:<44} median {statistics.median(samples):7.0f} ms   "
          f"min {min(samples):7.0f} ms   max {max(samples):7.0f} ms   (n={len(samples)})")


def main() -> None:
    from playwright.sync_api import sync_playwright

    from pilot_dev.runtime.stack import Stack, StackConfig

    config = StackConfig.from_env(
        port=0, data_dir=ROOT / ".pilot" / "bench-web", stack_name="amazon-pilot-bench-web",
        schedules=False, pollers=False,
        extra_env={"RATE_LIMIT_IP": "1000000", "RATE_LIMIT_ENTERPRISE": "1000000"})
    stack = Stack(config).start()
    try:
        stack.warm()
        email, chart_id, url = seed(stack.url)
        executable = os.environ.get("CHROMIUM", "/usr/bin/chromium")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=executable, args=ARGS)
            state = sign_in(browser, url, email)
            runs: dict[str, list[float]] = {}
            assets: list[dict[str, Any]] = []
            first = min(100, PRODUCTS)  # the page's default size
            cases = [
                (f"products page, {first} of {PRODUCTS} rows", "/products",
                 ".products-table tbody tr", first),
                (f"products page, all {PRODUCTS} rows", f"/products?limit={PRODUCTS}",
                 ".products-table tbody tr", PRODUCTS),
                (f"product chart, {CHART_DAYS} points", f"/products/{chart_id}?range=1y",
                 "#chart[data-state=ready]", 1),
            ]
            for round_no in range(ROUNDS + 1):  # the first round warms the server's caches
                for label, path, selector, count in cases:
                    _, painted, resources, state = measure(browser, url, state, path,
                                                           selector, count)
                    if round_no:
                        runs.setdefault(label, []).append(painted)
                    if label.startswith("product chart") and round_no == 1:
                        assets = resources
            browser.close()
        print(f"\nfirst meaningful paint, cold browser cache ({ROUNDS} rounds, headless Chromium):")
        for label, samples in runs.items():
            report(label, samples)
        page_assets = [r for r in assets if r["name"].startswith(url) and "/v1/" not in r["name"]]
        wire = sum(int(r["transfer"]) for r in page_assets)
        decoded = sum(int(r["decoded"]) for r in page_assets)
        print(f"\npage assets of the chart page (HTML, CSS, JS incl. uPlot): {len(page_assets)}"
              " files,"
              f" {wire / 1024:.1f} KiB over the wire (gzip, with headers),"
              f" {decoded / 1024:.1f} KiB decoded")
        for r in sorted(page_assets, key=lambda r: -int(r["decoded"])):
            name = r["name"].removeprefix(url)
            print(f"    {name:<60} {int(r['transfer']) / 1024:7.1f} KiB wire"
                  f" {int(r['decoded']) / 1024:7.1f} KiB decoded")
    finally:
        stack.stop()


if __name__ == "__main__":
    main()
