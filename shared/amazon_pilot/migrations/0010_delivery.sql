-- Delivery guarantees (issue 14, items 3, 5 and 7); see docs/slos.md and
-- docs/architecture.md ("Jobs and queues").

-- A job's idempotency record is claimed before its side effect, not only written after
-- success: 'running' with a lease while one delivery works on it (a second copy that
-- arrives meanwhile waits and later finds it 'done'), 'retry' after a failure that will
-- be retried, 'failed' once the message went to the DLQ, 'done' after success. A lease
-- that runs out (its holder crashed) lets the next delivery claim the key again.
ALTER TABLE processed_messages
    ADD COLUMN status      text NOT NULL DEFAULT 'done'
                           CHECK (status IN ('running', 'retry', 'failed', 'done')),
    ADD COLUMN lease_until timestamptz,
    ADD COLUMN claim_token text,          -- which delivery holds the lease
    ADD COLUMN attempts    integer NOT NULL DEFAULT 1,
    ADD COLUMN last_error  text;          -- the last failure's reason (also on the DLQ message)

-- A fetch that ends without usable data for a product (a robot check, a malformed item,
-- no item, or the whole job's retries spent) is a failed fetch for that product, never
-- "not found": the reason is kept on the product until a fetch succeeds.
ALTER TABLE products
    ADD COLUMN last_fetch_error     text,
    ADD COLUMN last_fetch_failed_at timestamptz;

-- Which attempt of a product's fetch a run was, and when the product's next attempt is
-- due (NULL: none, the outcome is final).
ALTER TABLE scrape_run_products
    ADD COLUMN attempt  integer NOT NULL DEFAULT 1,
    ADD COLUMN retry_at timestamptz;
