-- Competitor groups (a seller's main product and 3-5 competitors) and their positioning
-- reports. See docs/competitors.md.

CREATE TABLE competitor_groups (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    name            text NOT NULL,
    main_product_id bigint NOT NULL REFERENCES products (id),
    is_active       boolean NOT NULL DEFAULT true,   -- inactive: no daily fetch, no weekly report
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()  -- moves on every membership change
);
CREATE INDEX competitor_groups_user_idx ON competitor_groups (user_id, created_at DESC);
CREATE INDEX competitor_groups_main_idx ON competitor_groups (main_product_id) WHERE is_active;

-- The competitors only; the main product is competitor_groups.main_product_id and the
-- application refuses it as a member. The 3-5 bound is checked under a row lock on the
-- group (SELECT ... FOR UPDATE), so concurrent changes cannot break it.
CREATE TABLE competitor_group_members (
    group_id        uuid NOT NULL REFERENCES competitor_groups (id) ON DELETE CASCADE,
    product_id      bigint NOT NULL REFERENCES products (id),
    position        integer NOT NULL,
    added_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (group_id, product_id)
);
CREATE INDEX competitor_group_members_product_idx ON competitor_group_members (product_id);

CREATE TABLE competitor_reports (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    group_id        uuid NOT NULL REFERENCES competitor_groups (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    status          text NOT NULL DEFAULT 'queued'
                    CHECK (status IN ('queued', 'running', 'done', 'failed')),
    trigger         text NOT NULL DEFAULT 'user' CHECK (trigger IN ('user', 'weekly', 'demo')),
    period          text,            -- weekly reports: the ISO week; one report per group and week
    window_days     integer NOT NULL DEFAULT 30,
    attempts        integer NOT NULL DEFAULT 0,
    generated_by    text CHECK (generated_by IN ('llm', 'rules')),
    model           text,
    sandbox         boolean,
    fallback_reason text,
    cache           text CHECK (cache IN ('hit', 'miss')),
    prompt_tokens   integer NOT NULL DEFAULT 0,      -- spent by this report (0 on a cache hit)
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_usd        numeric(14, 8),
    llm_latency_ms  integer,
    data_source     text,            -- "sandbox" when the product data came from the stand-in
    report          jsonb,           -- the PositioningReport
    comparison      jsonb,           -- the numbers it was built from (comparison + features)
    error           text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    started_at      timestamptz,
    finished_at     timestamptz,
    UNIQUE (group_id, period)        -- NULL periods (on-demand reports) never collide
);
CREATE INDEX competitor_reports_group_idx ON competitor_reports (group_id, created_at DESC);
