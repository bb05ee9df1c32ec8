-- Notification delivery log details: when the last attempt ran, plus the indexes the
-- per-product daily cap and the per-channel delivery log read.

ALTER TABLE notification_deliveries ADD COLUMN last_attempt_at timestamptz;
CREATE INDEX notification_deliveries_user_key_idx
    ON notification_deliveries (user_id, dedupe_key);
CREATE INDEX notification_deliveries_channel_created_idx
    ON notification_deliveries (channel_id, created_at DESC);
-- The cap counts a user's alerts of one product notified since midnight UTC.
CREATE INDEX alerts_user_product_notified_idx
    ON alerts (user_id, product_id, notified_at) WHERE notified_at IS NOT NULL;
