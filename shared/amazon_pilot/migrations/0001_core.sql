-- Core schema: accounts, shared products, per-user tracking, snapshot history,
-- alerts, scrape runs, caching, idempotency and audit. See docs/data-model.md.

CREATE TABLE users (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    email           text NOT NULL,
    password_hash   text NOT NULL,
    company_name    text,
    role            text NOT NULL DEFAULT 'seller' CHECK (role IN ('seller', 'admin')),
    plan            text NOT NULL DEFAULT 'free' CHECK (plan IN ('free', 'pro', 'enterprise')),
    is_active       boolean NOT NULL DEFAULT true,
    notification_prefs jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
-- Emails are compared case-insensitively; the application stores them lower-cased.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

-- One row per ASIN and marketplace, shared by every user who tracks it: one scrape serves all.
CREATE TABLE products (
    id              bigserial PRIMARY KEY,
    asin            text NOT NULL CHECK (asin ~ '^[A-Z0-9]{10}$'),
    marketplace     text NOT NULL DEFAULT 'com',
    title           text,
    brand           text,
    main_image_url  text,
    data_source     text,
    latest          jsonb,          -- the latest snapshot's values, for cheap list pages
    latest_captured_at timestamptz,
    last_fetch_status text,         -- ok | not_found | failed
    not_found_since timestamptz,
    last_refresh_requested_at timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (asin, marketplace)
);

CREATE TABLE tracked_products (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    alias           text,
    thresholds      jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_paused       boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, product_id)
);
CREATE INDEX tracked_products_product_idx ON tracked_products (product_id) WHERE NOT is_paused;

-- Time series, range-partitioned by month on captured_at. Partitions are created by
-- ensure_snapshot_partitions() (called by migrations, the monthly job and every writer).
CREATE TABLE snapshots (
    product_id      bigint NOT NULL,
    captured_at     timestamptz NOT NULL,
    scrape_run_id   uuid,
    found           boolean NOT NULL DEFAULT true,
    price           numeric(12, 2),
    list_price      numeric(12, 2),
    currency        text,
    buy_box_price   numeric(12, 2),
    buy_box_seller  text,
    availability    text NOT NULL DEFAULT 'unknown',
    stock_count     integer,
    rating          numeric(3, 2),
    review_count    integer,
    bsr_rank        integer,
    bsr_category    text,
    subcategory_bsr integer,
    subcategory_ranks jsonb NOT NULL DEFAULT '[]'::jsonb,
    title           text,
    content_hash    text,           -- hash of bullets + images: a cheap "listing changed" signal
    image_count     smallint,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb,  -- everything else the normalizer kept
    data_source     text NOT NULL DEFAULT 'apify',
    PRIMARY KEY (product_id, captured_at)
) PARTITION BY RANGE (captured_at);

CREATE FUNCTION ensure_snapshot_partitions(from_month date, to_month date) RETURNS integer
LANGUAGE plpgsql AS $$
DECLARE
    m date := date_trunc('month', from_month)::date;
    created integer := 0;
    part text;
BEGIN
    -- Serialize creators: two writers racing on the same month must not fail.
    PERFORM pg_advisory_xact_lock(7210002);
    WHILE m <= to_month LOOP
        part := format('snapshots_%s', to_char(m, 'YYYY_MM'));
        IF to_regclass(part) IS NULL THEN
            EXECUTE format(
                'CREATE TABLE %I PARTITION OF snapshots FOR VALUES FROM (%L) TO (%L)',
                part, m, (m + interval '1 month')::date);
            created := created + 1;
        END IF;
        m := (m + interval '1 month')::date;
    END LOOP;
    RETURN created;
END $$;

-- A year back (for backfills) and three months ahead.
SELECT ensure_snapshot_partitions((now() - interval '13 months')::date,
                                  (now() + interval '3 months')::date);

CREATE TABLE scrape_runs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    idempotency_key text NOT NULL UNIQUE,   -- the queue message's job key: a replay finds it
    trigger         text NOT NULL,          -- schedule | refresh | add | backfill | import
    actor_id        text,
    apify_run_id    text,
    status          text NOT NULL,          -- running | succeeded | failed | timed_out
    attempts        integer NOT NULL DEFAULT 1,
    product_count   integer NOT NULL DEFAULT 0,
    item_count      integer,
    not_found_count integer,
    malformed_count integer,
    cost_usd        numeric(12, 6),
    data_source     text,
    error           text,
    captured_at     timestamptz NOT NULL,
    started_at      timestamptz NOT NULL DEFAULT now(),
    finished_at     timestamptz,
    duration_ms     integer
);
CREATE INDEX scrape_runs_started_idx ON scrape_runs (started_at DESC);

CREATE TABLE alerts (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tracked_product_id uuid NOT NULL REFERENCES tracked_products (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    type            text NOT NULL,
    severity        text NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
    metric          text,
    old_value       text,
    new_value       text,
    change_pct      double precision,
    threshold       double precision,
    message         text NOT NULL,
    snapshot_captured_at timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    acknowledged_at timestamptz,
    -- replaying change detection for the same snapshot raises nothing twice
    UNIQUE (tracked_product_id, type, snapshot_captured_at)
);
CREATE INDEX alerts_user_created_idx ON alerts (user_id, created_at DESC);

-- Generic short-lived values: read caches, LLM results keyed by an input hash.
CREATE TABLE cache_entries (
    key             text PRIMARY KEY,
    value           jsonb NOT NULL,
    tags            text[] NOT NULL DEFAULT '{}',
    expires_at      timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX cache_entries_expires_idx ON cache_entries (expires_at);
CREATE INDEX cache_entries_tags_idx ON cache_entries USING gin (tags);

-- Queue consumers record the jobs they finished: SQS delivers at least once.
CREATE TABLE processed_messages (
    idempotency_key text PRIMARY KEY,
    job_type        text NOT NULL,
    result          jsonb,
    processed_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE rate_limit_counters (
    bucket          text NOT NULL,
    window_start    timestamptz NOT NULL,
    count           integer NOT NULL DEFAULT 0,
    PRIMARY KEY (bucket, window_start)
);

CREATE TABLE audit_log (
    id              bigserial PRIMARY KEY,
    at              timestamptz NOT NULL DEFAULT now(),
    user_id         uuid,
    actor_id        uuid,
    action          text NOT NULL,
    target          text,
    ip              text,
    request_id      text,
    details         jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_log_user_idx ON audit_log (user_id, at DESC);
