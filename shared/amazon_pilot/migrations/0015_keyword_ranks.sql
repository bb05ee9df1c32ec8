-- Keyword rank tracking (docs/keywords.md): the search terms a seller follows per tracked
-- product, and one stored first page per (term, marketplace, day), shared by every seller
-- who follows that term: positions of any product (its competitors' too) are read from it.

CREATE TABLE keyword_terms (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tracked_product_id  uuid NOT NULL REFERENCES tracked_products (id) ON DELETE CASCADE,
    term                text NOT NULL CHECK (length(term) BETWEEN 2 AND 80),
    created_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tracked_product_id, term)
);
CREATE INDEX keyword_terms_term_idx ON keyword_terms (term);

-- One search-results fetch per term, marketplace and UTC day. `cards` is the first page
-- in position order: [{"asin", "position", "sponsored"}].
CREATE TABLE search_pages (
    term                text NOT NULL,
    marketplace         text NOT NULL,
    day                 date NOT NULL,
    captured_at         timestamptz NOT NULL,
    cards               jsonb NOT NULL DEFAULT '[]'::jsonb,
    actor_id            text,
    apify_run_id        text,
    data_source         text NOT NULL DEFAULT 'apify',
    PRIMARY KEY (term, marketplace, day)
);
