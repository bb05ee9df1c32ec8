-- The transactional outbox: a job is written here in the same transaction as the change
-- that needs it, and the relay (platform/outbox.py; in AWS the OutboxRelayFunction on a
-- schedule plus a nudge after each commit, locally a thread of `pilot run`) sends it to
-- its SQS queue and stamps sent_at. So a committed change always has its job, and a job
-- never exists without its committed change. Rows are kept a week after they are sent
-- (the local runtime re-sends, after a crash, the sent ones no consumer finished).
CREATE TABLE outbox (
    id              bigserial PRIMARY KEY,
    priority        text NOT NULL CHECK (priority IN ('critical', 'default', 'low')),
    job_type        text NOT NULL,
    job_key         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    send_attempts   integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text
);
CREATE INDEX outbox_pending_idx ON outbox (next_attempt_at, id) WHERE sent_at IS NULL;
CREATE INDEX outbox_sent_idx ON outbox (sent_at) WHERE sent_at IS NOT NULL;
CREATE INDEX outbox_key_idx ON outbox (job_key);

-- Client-supplied Idempotency-Key on POSTs that create something: the first answer is
-- kept and replayed to a retry with the same key, user and body (docs/api.md).
CREATE TABLE idempotency_keys (
    user_id         uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    idempotency_key text NOT NULL,
    method          text NOT NULL,
    path            text NOT NULL,
    request_hash    text NOT NULL,
    status_code     integer,            -- NULL while the first request is in progress
    response_body   bytea,
    response_type   text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, idempotency_key)
);
CREATE INDEX idempotency_keys_created_idx ON idempotency_keys (created_at);
