-- A product's history (GET /v1/products/{id}/history) read from the primary key alone.
-- A product's daily rows sit one per heap page (every product is written each day), so
-- a year of one metric meant ~365 random page reads, and with 50M rows the p50 grew
-- 7x over 1M. The key now carries the charted columns (INCLUDE: not part of uniqueness,
-- ON CONFLICT (product_id, captured_at) unchanged), so the query is an index-only scan
-- over a few leaf pages per month, whatever the table holds. Still one index per row
-- written: ingestion pays for a wider leaf, not a second index.
ALTER TABLE snapshots DROP CONSTRAINT snapshots_pkey;
ALTER TABLE snapshots ADD CONSTRAINT snapshots_pkey PRIMARY KEY (product_id, captured_at)
    INCLUDE (found, price, list_price, buy_box_price, bsr_rank, subcategory_bsr, rating,
             review_count);
