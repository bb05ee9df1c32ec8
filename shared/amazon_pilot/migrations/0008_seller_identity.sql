-- Who a seller is on Amazon: their seller (merchant) ids and brand names, beside the
-- company name. Change detection judges the Buy Box by them (lost / regained, new sellers
-- on the seller's brand); without seller ids, ownership is reported as unknown.
-- The API trims, upper-cases (ids) and deduplicates; see docs/api.md.
ALTER TABLE users
    ADD COLUMN seller_ids text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(seller_ids) <= 20),
    ADD COLUMN brands text[] NOT NULL DEFAULT '{}'
        CHECK (cardinality(brands) <= 20);
