-- The product list's default order (oldest tracked first) read from an index rather than
-- sorting every row of the seller: GET /v1/products takes a page of (created_at, id) and
-- the next page starts after the last key (keyset pagination). product_id and is_paused
-- ride along so the count and the `paused` filter are answered from the index alone.
CREATE INDEX tracked_products_user_created_idx
    ON tracked_products (user_id, created_at, id) INCLUDE (product_id, is_paused);
