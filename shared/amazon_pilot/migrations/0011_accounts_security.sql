-- Accounts security (issue 14 items 9, 10, 11, 13): sessions that end at once, login
-- throttling per (account, address), and multi-factor authentication.

-- Access tokens name their session (claim "sid" = the refresh-token family). The API's
-- per-request lookup asks whether that family was revoked: a probe of this partial
-- index, in the same round trip as the rate-limit counter (see docs/security-accounts.md).
CREATE INDEX refresh_tokens_family_revoked_idx ON refresh_tokens (family_id)
    WHERE revoked_at IS NOT NULL;

-- A session started with a second factor keeps that through its refreshes: its access
-- tokens carry "mfa": true, which administrator routes require.
ALTER TABLE refresh_tokens ADD COLUMN mfa boolean NOT NULL DEFAULT false;

-- Failed logins per (e-mail, caller address). After a few failures the pair waits a
-- growing delay; other addresses (the owner's) are not affected. Rows are disposable.
CREATE UNLOGGED TABLE login_failures (
    email             text NOT NULL,
    ip                text NOT NULL,
    failures          integer NOT NULL DEFAULT 0,
    first_failure_at  timestamptz NOT NULL DEFAULT now(),
    last_failure_at   timestamptz NOT NULL DEFAULT now(),
    blocked_until     timestamptz,
    notified_at       timestamptz,        -- the owner was told about this address
    PRIMARY KEY (email, ip)
);
CREATE INDEX login_failures_recent_idx ON login_failures (email, last_failure_at);

-- TOTP (RFC 6238). confirmed_at NULL: enrolment started, not proven with a code yet.
-- last_step: the time step of the last accepted code, so a code works once.
CREATE TABLE user_mfa (
    user_id       uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret        text NOT NULL,
    confirmed_at  timestamptz,
    last_step     bigint,
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Recovery codes: 80 random bits each, stored as sha256 hex (never in clear), one use.
CREATE TABLE mfa_recovery_codes (
    id          bigserial PRIMARY KEY,
    user_id     uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   text NOT NULL,
    used_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX mfa_recovery_codes_user_idx ON mfa_recovery_codes (user_id)
    WHERE used_at IS NULL;
