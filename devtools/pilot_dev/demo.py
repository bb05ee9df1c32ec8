"""`pilot demo`: a demo seller with a category of tracked products and real history
from the sandbox catalog, so a newcomer sees charts and alerts at once."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from amazon_pilot.platform.db import transaction
from amazon_pilot.tracking.store import insert_tracked, upsert_product

DEMO_EMAIL = "demo@amazon-pilot.local"
DEMO_PASSWORD = "demo-pilot-2026"
DEMO_CATEGORY = "wireless earbuds"


def _demo_user_id() -> str:
    from amazon_pilot.accounts.service import create_user

    with transaction() as conn:
        found = conn.execute(text("SELECT id FROM users WHERE lower(email) = :e"),
                             {"e": DEMO_EMAIL}).first()
    if found is not None:
        return str(found.id)
    user = create_user(DEMO_EMAIL, DEMO_PASSWORD, role="seller", plan="pro")
    return str(user.id)


def create_demo(days: int = 90, products: int = 15, serving_url: str | None = None) -> str:
    """`serving_url`: the running stack the demo was loaded into (its URL is printed),
    else None (the URL `pilot run` serves by default)."""
    from pilot_dev.standins.apify_catalog import demo_asins
    from pilot_dev.timetravel import backfill

    user_id = _demo_user_id()
    asins = demo_asins(DEMO_CATEGORY, products)
    identity = _demo_identity(user_id, asins, days)
    product_ids = []
    with transaction() as conn:
        for index, asin in enumerate(asins):
            product_id, _ = upsert_product(conn, asin, "com")
            alias = "My earbuds" if index == 0 else None
            insert_tracked(conn, user_id, product_id, alias, {})  # type: ignore[arg-type]
            product_ids.append(product_id)
    alerts_before, known_until = _alerts_and_history(user_id, product_ids)
    stored = backfill(product_ids, days)
    stored += _observe_now(product_ids)
    alerts, _ = _alerts_and_history(user_id, product_ids)
    extras = _demo_extras(user_id, product_ids)
    open_hint = (f"  open:     {serving_url}/ (API docs at {serving_url}/v1/docs)" if serving_url
                 else "  then:     pilot run   and open http://127.0.0.1:3000/"
                      " (API docs at /v1/docs)")
    lines = [
        f"Demo ready ({datetime.now(UTC):%Y-%m-%d}): {len(product_ids)} {DEMO_CATEGORY} "
        f"tracked, {stored} snapshots over {days} days, {alerts} alerts (sandbox data).",
        *_why_no_new_alerts(alerts - alerts_before, alerts, stored, known_until),
        f"  sign in:  {DEMO_EMAIL} / {DEMO_PASSWORD}",
        open_hint,
        *([identity] if identity else []),
        *extras,
    ]
    return "\n".join(lines)


def _alerts_and_history(user_id: str, product_ids: list[int]) -> tuple[int, datetime | None]:
    """The demo seller's alerts, and the newest observation of the demo's products."""
    with transaction() as conn:
        alerts = conn.execute(text("SELECT count(*) FROM alerts WHERE user_id = :u"),
                              {"u": user_id}).scalar_one()
        latest = conn.execute(text("SELECT max(latest_captured_at) FROM products"
                                   " WHERE id = ANY(:ids)"), {"ids": product_ids}).scalar_one()
    return int(alerts), latest


def _why_no_new_alerts(new: int, total: int, stored: int,
                       known_until: datetime | None) -> list[str]:
    """The demo promises alerts. Alerts are raised when an observation is stored and
    differs from the one before it, so a database that already holds these products'
    history (an earlier demo, a refresh, a time-travel bench) yields none: say so."""
    if new > 0:
        return []
    if known_until is None:
        return ["  note:     the sandbox history raised no alert this time (nothing moved past"
                " the default thresholds)"]
    already = "nothing new was stored" if stored == 0 else f"only {stored} new snapshot(s)"
    return [f"  note:     no new alert: this database already held these products' history up"
            f" to {known_until:%Y-%m-%d %H:%M} UTC, so {already}; alerts are raised only when a"
            " new observation is stored" + (f" (the {total} alert(s) of an earlier demo remain)"
                                             if total else "")
            + ". For a fresh demo, use an empty data folder: pilot --data-dir DIR demo"]


def _demo_identity(user_id: str, asins: list[str], days: int) -> str | None:
    """The demo seller is the brand store holding the Buy Box of one of its products (in
    the stand-in's catalog; the one that loses it most often to resellers), so its Buy Box
    alerts say who took it and when it came back. Set before the history is observed:
    alerts are judged as they are raised."""
    from datetime import timedelta
    from uuid import UUID

    from amazon_pilot.accounts import store as accounts
    from pilot_dev.standins.apify_catalog import item_for

    today = datetime.now(UTC).date()
    best: tuple[int, str, str] | None = None  # (days another seller held it, store, id)
    for asin in asins:
        items = [item_for(asin, "com", today - timedelta(days=back)) or {}
                 for back in range(days, -1, -1)]
        stores = {(i["soldBy"], i["sellerId"]) for i in items
                  if str(i.get("soldBy")).endswith(" Official") and i.get("sellerId")}
        if len(stores) != 1:
            continue
        (name, seller_id), = stores
        others = sum(1 for i in items if i.get("soldBy") not in (None, name))
        if best is None or others > best[0]:
            best = (others, name, seller_id)
    if best is None:
        return None
    _, name, seller_id = best
    brand = name.removesuffix(" Official")
    accounts.update_profile(UUID(user_id), accounts.ProfileChanges(
        company_name_given=True, company_name=name, seller_ids=[seller_id], brands=[brand]))
    return (f"  Buy Box:  you are {name} (seller id {seller_id}), brand {brand}: see"
            " Settings, and the Buy Box alerts of your products")


def _observe_now(product_ids: list[int]) -> int:
    """Today's observation on top of the backfill, so the demo is not stale."""
    from pilot_dev.timetravel import observe

    now = datetime.now(UTC).replace(second=0, microsecond=0)
    result = observe(product_ids, now, now.date(), trigger="demo")
    return int(result.get("stored", 0))


def _demo_extras(user_id: str, product_ids: list[int]) -> list[str]:
    """Hooks for features that build on tracking (competitor groups, suggestions)."""
    lines: list[str] = []
    try:
        from pilot_dev.demo_extras import add_demo_extras
    except ImportError:
        return lines
    lines.extend(add_demo_extras(user_id, product_ids))
    return lines
