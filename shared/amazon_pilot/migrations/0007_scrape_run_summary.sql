-- A scrape run's summary and problems, and what became of each product it requested.
-- See docs/architecture.md ("Product fetching") and docs/data-model.md.

-- Every returned item is counted once: attributed + duplicate + malformed (attributed but
-- unusable) + unattributed = item_count. Every requested product is stored, not found
-- (a real 404 page) or without data (no_data_count: nothing stored about it changed).
ALTER TABLE scrape_runs
    ADD COLUMN requested_count    integer,
    ADD COLUMN attributed_count   integer,
    ADD COLUMN no_data_count      integer,
    ADD COLUMN unattributed_count integer,
    ADD COLUMN duplicate_count    integer,
    ADD COLUMN problem_count      integer,
    -- at most 100 entries {kind, reason, index?, url?, asin?, marketplace?, item_asin?};
    -- problem_count says how many there were
    ADD COLUMN problems           jsonb NOT NULL DEFAULT '[]'::jsonb;

-- One row per product a run requested: a seller sees the runs that fetched their
-- products, with counts of their products only.
CREATE TABLE scrape_run_products (
    scrape_run_id   uuid NOT NULL REFERENCES scrape_runs (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    -- requested (the run has not finished, or failed) | stored | not_found | unusable
    -- (an item came back without product data) | no_item | skipped (no URL can be built)
    outcome         text NOT NULL DEFAULT 'requested' CHECK (outcome IN
                    ('requested', 'stored', 'not_found', 'unusable', 'no_item', 'skipped')),
    served_asin     text,           -- the page showed this ASIN instead of the product's
    duplicates      integer NOT NULL DEFAULT 0,
    reason          text,
    PRIMARY KEY (scrape_run_id, product_id)
);
CREATE INDEX scrape_run_products_product_idx ON scrape_run_products (product_id, scrape_run_id);

-- A listing redirect is reported once per tracked product, however many runs see it.
CREATE UNIQUE INDEX alerts_listing_redirected_once
    ON alerts (tracked_product_id) WHERE type = 'listing_redirected';
