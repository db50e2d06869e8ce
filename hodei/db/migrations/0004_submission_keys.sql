-- Idempotency keys of job submissions (QueueJob / QueueJobs with idempotency_key).
-- One row per key: the hash of the request it was first used for and the jobs that
-- request created, in request order. The row is written by the statement that
-- creates the jobs, so a retry racing the first call finds either nothing (and waits
-- on the key's unique index) or the finished submission. A key older than the
-- idempotency window counts as unknown and is replaced; prune_submission_keys
-- deletes such rows.
CREATE TABLE submission_keys (
    key           text PRIMARY KEY CHECK (length(key) BETWEEN 1 AND 128),
    request_hash  text NOT NULL,
    job_ids       uuid[] NOT NULL CHECK (cardinality(job_ids) > 0),
    created_at    timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX submission_keys_created_at_idx ON submission_keys (created_at);
