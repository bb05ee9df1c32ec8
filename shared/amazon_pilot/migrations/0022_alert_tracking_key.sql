-- An alert belongs to one tracking (a seller's tracked product): one foreign key to that
-- tracking instead of three (to users, tracked_products and products). Each key is an
-- AFTER INSERT trigger running a lookup and a row lock per alert; ingestion inserts
-- thousands of alerts a run, and the three checks took more than the insert itself
-- (EXPLAIN ANALYZE, 1,390 alerts of one batch: 27.9 ms in the three triggers, 14.5 in the
-- one that replaces them; ingestion's alert step 7 → 5 µs of server CPU a snapshot).
--
-- Integrity kept, and tightened: the key covers (tracked_product_id, user_id, product_id),
-- so an alert's seller and product are its tracking's (before, nothing said they
-- matched), and the tracking's own keys hold the user and the product. Deleting a user
-- deletes their trackings (ON DELETE CASCADE) and so their alerts, as before; deleting a
-- tracking deletes its alerts, as before; a product still cannot be deleted while it is
-- tracked (tracked_products' key), and an alert cannot outlive its tracking, so no alert
-- is left pointing at a missing user or product.
ALTER TABLE tracked_products
    ADD CONSTRAINT tracked_products_id_user_product_key UNIQUE (id, user_id, product_id);
ALTER TABLE alerts
    DROP CONSTRAINT alerts_user_id_fkey,
    DROP CONSTRAINT alerts_product_id_fkey,
    DROP CONSTRAINT alerts_tracked_product_id_fkey,
    ADD CONSTRAINT alerts_tracking_fkey FOREIGN KEY (tracked_product_id, user_id, product_id)
        REFERENCES tracked_products (id, user_id, product_id) ON DELETE CASCADE;

-- Ingestion sets `moved_at` on every tracking that had a price/Buy Box/BSR alert (about
-- one in five a run). moved_at is not indexed, so with room on the page the update is HOT
-- (no entry in the four indexes); at fillfactor 100 the first update of a row never had
-- room (mark_moved 2.2 → 1.6 µs of server CPU a snapshot, bench_ingest). New and moved
-- rows follow it; pages written before keep their rows until they move.
ALTER TABLE tracked_products SET (fillfactor = 80);
