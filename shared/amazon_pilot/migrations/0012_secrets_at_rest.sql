-- Secrets at rest: webhook signing secrets are stored sealed (AES-256-GCM, see
-- shared/amazon_pilot/adapters/crypto.py and docs/security.md). The key that sealed each
-- one is recorded, so a key rotation can find what is still under an older key.
-- Rows written before this migration keep their plaintext (secret_key_id NULL) until the
-- data step seals them: `pilot secrets reencrypt` (run by `pilot run` at every start).

ALTER TABLE notification_channels ADD COLUMN secret_key_id text;
CREATE INDEX notification_channels_secret_key_idx
    ON notification_channels (secret_key_id) WHERE secret IS NOT NULL;

-- The admin audit reader filters by time, actor and action.
CREATE INDEX audit_log_at_idx ON audit_log (at DESC, id DESC);
CREATE INDEX audit_log_actor_idx ON audit_log (actor_id, at DESC);
