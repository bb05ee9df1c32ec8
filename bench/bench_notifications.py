"""The notification path under an alert storm (issue 18 "Alert storms"; a script, not a
test).

One seller, `--products` tracked products, `--alerts` alerts raised in one day (a storm:
a 50k refresh recorded 36,239 alerts in a day). Measured in one run:

- reference: the same alert rows inserted bare (one INSERT … SELECT);
- immediate seller (digest off, default cap of 5 messages per product a day, a webhook
  and a Slack channel): ``fan_out`` over the alerts in batches of `--batch` (as ingest
  batches hand them over): alerts/s, and the messages queued (grouped per product and
  type, within the cap) next to the alerts;
- digest seller: the same storm left for the digest, then ``send_digest`` delivering it
  to a local HTTP sink: one message, its size and time.

The outbox rows are written as in production; sending them to SQS is the relay's work
(benched with the refresh), so the post-commit nudge is switched off here.

    .venv/bin/python bench/bench_notifications.py [--alerts 50000] [--products 500]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from typing import Any

from common import bench_database, goal

from pilot_dev.standins.webhook_receiver import WebhookReceiver

TYPES = ("price_change", "bsr_change", "subcategory_bsr_change", "rating_change")


def seed(conn: Any, products: int, prefs: dict[str, Any]) -> tuple[str, list[int]]:
    from sqlalchemy import text

    user = conn.execute(text(
        "INSERT INTO users (email, password_hash, notification_prefs)"
        " VALUES (:e, 'x', CAST(:p AS jsonb)) RETURNING id"),
        {"e": f"storm-{uuid.uuid4().hex[:8]}@example.com", "p": json.dumps(prefs)}).scalar_one()
    tag = uuid.uuid4().hex[:5].upper()
    ids = list(conn.execute(text(
        "INSERT INTO products (asin, marketplace, title, data_source)"
        " SELECT 'B' || :tag || lpad(g::text, 4, '0'), 'com', 'Product ' || g, 'sandbox'"
        " FROM generate_series(1, :n) g RETURNING id"), {"tag": tag, "n": products}).scalars())
    conn.execute(text(
        "INSERT INTO tracked_products (user_id, product_id)"
        " SELECT :u, unnest(CAST(:ids AS bigint[]))"), {"u": user, "ids": ids})
    return str(user), ids


INSERT_ALERTS = """
INSERT INTO alerts (user_id, tracked_product_id, product_id, type, severity, metric,
                    old_value, new_value, change_pct, threshold, message, snapshot_captured_at)
SELECT :u, (CAST(:tids AS uuid[]))[1 + g % :products], (CAST(:pids AS bigint[]))[1 + g % :products],
       (CAST(:types AS text[]))[1 + (g / :products + g) % 4],
       CASE WHEN g % 97 = 0 THEN 'critical' ELSE 'warning' END, 'price', '19.99', '15.99',
       -20.0, 10, 'Price dropped 20.0% (19.99 -> 15.99) #' || g,
       now() - make_interval(secs => g)
FROM generate_series(0, :n - 1) g
ORDER BY g
RETURNING id
"""


def insert_alerts(user: str, n: int, products: int) -> tuple[list[str], float]:
    from sqlalchemy import text

    from amazon_pilot.platform.db import transaction

    with transaction() as conn:
        tracked = conn.execute(text(
            "SELECT id, product_id FROM tracked_products WHERE user_id = :u ORDER BY id"),
            {"u": user}).all()
    started = time.perf_counter()
    with transaction() as conn:
        ids = [str(i) for i in conn.execute(text(INSERT_ALERTS), {
            "u": user, "n": n, "products": products, "types": list(TYPES),
            "tids": [str(t.id) for t in tracked], "pids": [t.product_id for t in tracked],
        }).scalars()]
    return ids, time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--alerts", type=int, default=50_000)
    parser.add_argument("--products", type=int, default=500)
    parser.add_argument("--batch", type=int, default=1000)
    args = parser.parse_args()
    sink = WebhookReceiver()

    with bench_database() as url:
        os.environ["DATABASE_URL"] = url
        os.environ["WEBHOOK_ALLOW_HOSTS"] = sink.host
        os.environ.setdefault("STAGE", "local")
        from sqlalchemy import text

        from amazon_pilot.notifications import service, store
        from amazon_pilot.notifications.schemas import DigestPayload
        from amazon_pilot.platform import outbox
        from amazon_pilot.platform.db import transaction
        from amazon_pilot.platform.settings import reset_settings

        reset_settings()
        outbox.nudge = lambda ids: None  # the relay's work, benched with the refresh

        hook = sink.url("/hook")
        slack = sink.url("/services/T1/B1/X")
        with transaction() as conn:
            immediate, _ = seed(conn, args.products, {"digest": "off"})
            digest, _ = seed(conn, args.products, {"digest": "daily"})
            reference, _ = seed(conn, args.products, {"digest": "off"})
            for user in (immediate, digest):
                store.insert_channel(conn, user, "webhook", hook, None, "info")
                store.insert_channel(conn, user, "slack", slack, None, "info")

        # reference: the same rows, inserted bare
        _, bare_s = insert_alerts(reference, args.alerts, args.products)
        print(f"alerts: {args.alerts:,} on {args.products} products, {len(TYPES)} types,"
              " 1% critical")
        print(f"{'reference: the alert rows inserted bare':<48} {bare_s:7.2f} s "
              f"{args.alerts / bare_s:10,.0f} alerts/s")

        ids, _ = insert_alerts(immediate, args.alerts, args.products)
        started = time.perf_counter()
        jobs = 0
        for i in range(0, len(ids), args.batch):
            jobs += service.fan_out(ids[i:i + args.batch])
        fan_s = time.perf_counter() - started
        with transaction() as conn:
            rows = dict(conn.execute(text(
                "SELECT status, count(*) FROM notification_deliveries WHERE user_id = :u"
                " GROUP BY status"), {"u": immediate}).all())
            pending = conn.execute(text(
                "SELECT count(*) FROM alerts WHERE user_id = :u AND notified_at IS NULL"),
                {"u": immediate}).scalar_one()
        print(f"{'fan-out, batches of ' + str(args.batch):<48} {fan_s:7.2f} s "
              f"{args.alerts / fan_s:10,.0f} alerts/s  ({fan_s / bare_s:.1f}x the bare insert)")
        print(f"  messages queued: {jobs:,} for {args.alerts:,} alerts on 2 channels "
              f"({jobs / 2:,.0f} per channel; cap 5 per product a day = "
              f"{5 * args.products:,} at most); suppressed rows: {rows.get('suppressed', 0):,};"
              f" alerts left pending: {pending}")
        cap = 5 * args.products * 2
        goal("alert storm: messages for the day's alerts", jobs, "messages",
             f"<= cap {cap:,}", jobs <= cap and pending == 0,
             reference=f"{args.alerts:,} alerts",
             ratio=f"fan-out {fan_s / bare_s:.1f}x the bare insert")

        _, _ = insert_alerts(digest, args.alerts, args.products)
        started = time.perf_counter()
        out = service.send_digest(DigestPayload(user_id=uuid.UUID(digest),
                                                date=time.strftime("%Y-%m-%d")), 3)
        digest_s = time.perf_counter() - started
        sizes = [len(r["body"]) for r in sink.hits()]
        print(f"{'digest of the storm, sent to 2 channels':<48} {digest_s:7.2f} s "
              f"{args.alerts / digest_s:10,.0f} alerts/s")
        print(f"  messages: {out['messages']} (one per channel) covering {out['alerts']:,} "
              f"alerts; bodies {', '.join(f'{s / 1024:.0f} KiB' for s in sizes)}")
        goal("alert storm: digest messages per channel", out["messages"] / 2, "messages",
             "1", out["messages"] == 2 and out["alerts"] == args.alerts,
             reference=f"covers {out['alerts']:,} alerts")
    sink.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
