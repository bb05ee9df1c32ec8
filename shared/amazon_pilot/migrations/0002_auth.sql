-- Sessions: refresh tokens (stored as sha256 hex, never in clear), rotated on every use.
-- A family is one login; reusing a rotated token revokes the whole family.

-- Bumped when every session of a user must end at once (password change): access
-- tokens carry it in their "ver" claim and stop working as soon as it moves.
ALTER TABLE users ADD COLUMN auth_epoch integer NOT NULL DEFAULT 0;

CREATE TABLE refresh_tokens (
    id              uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    family_id       uuid NOT NULL,
    token_hash      text NOT NULL UNIQUE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    expires_at      timestamptz NOT NULL,
    used_at         timestamptz,            -- rotated: a later presentation is a reuse
    revoked_at      timestamptz,
    revoked_reason  text,
    ip              text,
    user_agent      text
);
CREATE INDEX refresh_tokens_family_idx ON refresh_tokens (family_id);
CREATE INDEX refresh_tokens_user_live_idx ON refresh_tokens (user_id)
    WHERE revoked_at IS NULL AND used_at IS NULL;

CREATE INDEX audit_log_action_idx ON audit_log (action, at DESC);

-- Counters are hot (one increment per API request) and disposable: without WAL their
-- commits do not wait for a disk flush. A crash empties them, which only resets limits.
ALTER TABLE rate_limit_counters SET UNLOGGED;
