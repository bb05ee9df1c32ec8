-- Issue 18, cost levers: a refresh cadence per tracked product and a monthly fetch budget
-- per seller (docs/benchmarks.md, "Cost levers"; rules in domain/cadence.py).
--
-- refresh_every: how often this seller wants the shared product observed; `auto` is daily
-- until the tracking has had no price/Buy Box/BSR alert for 7 days, then every 3 days.
-- moved_at: the capture time of this tracking's latest such alert (kept by ingestion), so
-- the daily plan reads `auto` from the row instead of scanning alerts.
-- budget_stretched: set by the daily plan when the seller's month would exceed their
-- budget: the product is then fetched weekly until a plan finds the budget fits again.
ALTER TABLE tracked_products
    ADD COLUMN refresh_every text NOT NULL DEFAULT '1d'
        CHECK (refresh_every IN ('12h', '1d', '3d', '7d', 'auto')),
    ADD COLUMN moved_at timestamptz,
    ADD COLUMN budget_stretched boolean NOT NULL DEFAULT false;

-- monthly_fetch_budget_usd: null is no budget. fetch_budget: the last daily plan's answer
-- for this seller (spend so far, projection, products stretched and why).
ALTER TABLE users
    ADD COLUMN monthly_fetch_budget_usd numeric(12, 2)
        CHECK (monthly_fetch_budget_usd IS NULL OR monthly_fetch_budget_usd >= 0),
    ADD COLUMN fetch_budget jsonb;

-- The alerts raised before this migration count: the types are domain/cadence.py MOVERS.
UPDATE tracked_products t SET moved_at = a.at
  FROM (SELECT tracked_product_id, max(snapshot_captured_at) AS at FROM alerts
         WHERE type IN ('price_change', 'target_price_reached', 'buy_box_lost',
                        'buy_box_seller_change', 'buy_box_price_change', 'buy_box_regained',
                        'buy_box_suppressed', 'bsr_change', 'subcategory_bsr_change')
         GROUP BY tracked_product_id) a
 WHERE a.tracked_product_id = t.id;
