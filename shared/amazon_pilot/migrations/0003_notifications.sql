-- Where a seller's alerts go, and what happened to each delivery.

CREATE TABLE notification_channels (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    kind            text NOT NULL CHECK (kind IN ('webhook', 'email')),
    target          text NOT NULL,          -- the https URL or the e-mail address
    secret          text,                   -- HMAC key for webhooks, shown once at creation
    min_severity    text NOT NULL DEFAULT 'info' CHECK (min_severity IN ('info', 'warning', 'critical')),
    is_active       boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, kind, target)
);

CREATE TABLE notification_deliveries (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    channel_id      uuid NOT NULL REFERENCES notification_channels (id) ON DELETE CASCADE,
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- one delivery per channel and alert, or per channel and digest day
    dedupe_key      text NOT NULL,
    alert_ids       uuid[] NOT NULL DEFAULT '{}',
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed', 'suppressed')),
    attempts        integer NOT NULL DEFAULT 0,
    response_code   integer,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    UNIQUE (channel_id, dedupe_key)
);
CREATE INDEX notification_deliveries_user_idx ON notification_deliveries (user_id, created_at DESC);

-- Alerts waiting for a user's daily digest.
ALTER TABLE alerts ADD COLUMN notified_at timestamptz;
CREATE INDEX alerts_pending_digest_idx ON alerts (user_id) WHERE notified_at IS NULL;
