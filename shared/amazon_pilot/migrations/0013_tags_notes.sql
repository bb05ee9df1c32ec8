-- Organisation of tracked products: a seller's own tags (lower-case words, at most 20 per
-- product) and a free-text note. Both belong to the seller's tracking, not the shared
-- product. Filtering by tag uses the GIN index (tags @> ARRAY['x']).

ALTER TABLE tracked_products
    ADD COLUMN tags  text[] NOT NULL DEFAULT '{}',
    ADD COLUMN notes text;
CREATE INDEX tracked_products_tags_idx ON tracked_products USING gin (tags);
