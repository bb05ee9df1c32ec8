-- Listing optimization: suggestion runs (rules + model copy), their suggestions, and
-- before/after experiments on a tracked product. See docs/optimization.md.

CREATE TABLE suggestion_runs (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tracked_product_id uuid NOT NULL REFERENCES tracked_products (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    group_id        uuid,            -- the competitor group used (no FK: groups come and go)
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
    trigger         text NOT NULL DEFAULT 'user' CHECK (trigger IN ('user', 'demo')),
    attempts        integer NOT NULL DEFAULT 0,
    generated_by    text CHECK (generated_by IN ('llm', 'rules')),
    model           text,
    sandbox         boolean,         -- the copy came from the offline OpenAI stand-in
    fallback_reason text,
    cache           text CHECK (cache IN ('hit', 'miss')),
    input_hash      text,            -- sha256 of listing + group content (cache key suffix)
    prompt_tokens   integer NOT NULL DEFAULT 0,      -- spent by this run (0 on a cache hit)
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_usd        numeric(14, 8),
    llm_latency_ms  integer,
    data_source     text,            -- "sandbox" when the product data came from the stand-in
    score           jsonb,           -- the listing score the suggestions were built from
    inputs          jsonb,           -- competitors used, feature gaps, notes
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz
);
CREATE INDEX suggestion_runs_tracked_idx ON suggestion_runs (tracked_product_id, created_at DESC);
CREATE INDEX suggestion_runs_user_idx ON suggestion_runs (user_id, created_at DESC);

CREATE TABLE suggestions (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    run_id          uuid NOT NULL REFERENCES suggestion_runs (id) ON DELETE CASCADE,
    priority        integer NOT NULL,   -- 1 = do first
    type            text NOT NULL CHECK (type IN ('title', 'pricing', 'description', 'images')),
    change          text NOT NULL,
    reason          text NOT NULL,
    impact          text NOT NULL,
    impact_score    double precision NOT NULL,
    effort          text NOT NULL,
    effort_score    double precision NOT NULL,
    source          text NOT NULL CHECK (source IN ('rules', 'llm')),
    evidence        jsonb NOT NULL DEFAULT '{}'::jsonb,
    UNIQUE (run_id, priority)           -- a replayed job writes each suggestion once
);

CREATE TABLE experiments (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tracked_product_id uuid NOT NULL REFERENCES tracked_products (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    suggestion_id   uuid REFERENCES suggestions (id) ON DELETE SET NULL,
    change          text NOT NULL,
    changed_at      timestamptz NOT NULL,
    status          text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'stopped')),
    verdict         text,            -- of the latest analysis (fresh on every read while running)
    analyzed_at     timestamptz,
    final_analysis  jsonb,           -- frozen by POST /v1/experiments/{id}/stop
    created_at      timestamptz NOT NULL DEFAULT now(),
    stopped_at      timestamptz
);
CREATE INDEX experiments_user_idx ON experiments (user_id, created_at DESC);
CREATE INDEX experiments_tracked_idx ON experiments (tracked_product_id, created_at DESC);
