-- Alert control and more channels (issue 17 "Alert control and channels", issue 18
-- "Alert storms"); see docs/notifications.md.

-- Slack incoming webhooks beside webhooks and e-mail; a channel has a name, the events it
-- takes (alert messages, digests, weekly competitor reports), and e-mail channels are
-- verified by a link before they receive anything. Channels made before this migration
-- count as verified (their owners set them up when no verification existed).
ALTER TABLE notification_channels DROP CONSTRAINT IF EXISTS notification_channels_kind_check;
ALTER TABLE notification_channels
    ADD CONSTRAINT notification_channels_kind_check CHECK (kind IN ('webhook', 'email', 'slack')),
    ADD COLUMN name              text,
    ADD COLUMN events            text[] NOT NULL DEFAULT '{alert,digest,report}',
    ADD COLUMN verified_at       timestamptz,
    ADD COLUMN verify_token_hash text,          -- sha256 of the link's token, never the token
    ADD COLUMN verify_sent_at    timestamptz;
UPDATE notification_channels SET verified_at = created_at;
CREATE UNIQUE INDEX notification_channels_verify_idx
    ON notification_channels (verify_token_hash) WHERE verify_token_hash IS NOT NULL;

-- A delivery knows its product, so the per-product cap counts messages with an index
-- instead of joining every alert of the day (a storm day has tens of thousands).
ALTER TABLE notification_deliveries ADD COLUMN product_id bigint;
CREATE INDEX notification_deliveries_cap_idx
    ON notification_deliveries (user_id, product_id, created_at)
    WHERE status <> 'suppressed' AND product_id IS NOT NULL;

-- Alerts raised in a seller's quiet hours (non-critical) wait for the next digest.
ALTER TABLE alerts ADD COLUMN held_at timestamptz;
CREATE INDEX alerts_held_idx ON alerts (user_id) WHERE held_at IS NOT NULL AND notified_at IS NULL;

-- Snoozes: a tracked product, an alert type, or one alert type of one product, until a time.
CREATE TABLE alert_snoozes (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    tracked_product_id uuid REFERENCES tracked_products (id) ON DELETE CASCADE,
    alert_type         text,
    starts_at          timestamptz NOT NULL DEFAULT now(),
    until              timestamptz NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    CHECK (tracked_product_id IS NOT NULL OR alert_type IS NOT NULL),
    CHECK (until > starts_at)
);
CREATE INDEX alert_snoozes_user_idx ON alert_snoozes (user_id, until);
