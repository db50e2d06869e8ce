-- Workers on demand (issue 17): the scaler's bookkeeping, the single-use tokens it
-- gives provisioned workers, and the job selectors that choose workers by label.
--
-- provisioned_workers: one row per worker the scaler asked a provider for. Written
--   (PROVISIONING) in the same transaction as the decision, before the provider is
--   called: a second server replica counts it and does not provision for the same
--   shortage. RUNNING once the provider started it; REMOVED when scaled down (or
--   found gone); FAILED when the provider refused (last_error says why).
--   worker_id is set when a worker registers under worker_name.
CREATE TABLE provisioned_workers (
    id             uuid PRIMARY KEY,
    provider       text NOT NULL,
    provider_type  text NOT NULL,
    worker_name    text NOT NULL UNIQUE,
    handle         text,
    state          text NOT NULL DEFAULT 'PROVISIONING' CHECK (state IN
                     ('PROVISIONING', 'RUNNING', 'REMOVED', 'FAILED')),
    labels         jsonb NOT NULL DEFAULT '{}'::jsonb,
    slots          integer NOT NULL DEFAULT 1 CHECK (slots >= 1),
    job_id         uuid,
    token_id       uuid,
    worker_id      uuid,
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    started_at     timestamptz,
    registered_at  timestamptz,
    removed_at     timestamptz
);

CREATE INDEX provisioned_workers_live_idx ON provisioned_workers (provider, state)
    WHERE state IN ('PROVISIONING', 'RUNNING');
CREATE INDEX provisioned_workers_worker_idx ON provisioned_workers (worker_id)
    WHERE worker_id IS NOT NULL;

-- A token that may register at most max_registrations workers (NULL: any number);
-- registrations counts them, used_at is the first. A provisioned worker's token has
-- max_registrations = 1 and a short expires_at.
ALTER TABLE api_tokens ADD COLUMN max_registrations integer
    CHECK (max_registrations IS NULL OR max_registrations >= 1);
ALTER TABLE api_tokens ADD COLUMN registrations integer NOT NULL DEFAULT 0;
ALTER TABLE api_tokens ADD COLUMN used_at timestamptz;

-- Which provider started a worker (NULL: started by hand).
ALTER TABLE workers ADD COLUMN provider text;

-- A job runs only on a worker whose labels contain its selector ('{}': any worker).
ALTER TABLE jobs ADD COLUMN selector jsonb NOT NULL DEFAULT '{}'::jsonb;
-- The dispatcher's and the scaler's way to the (few) waiting jobs that have one.
CREATE INDEX jobs_pending_selector_idx ON jobs (created_at)
    WHERE state = 'PENDING' AND selector <> '{}'::jsonb;

-- What each server's scaler last saw of each provider (upserted every round): its
-- health, its circuit, its last provisioning error. hodei-diagnose and
-- `hodei providers` read it.
CREATE TABLE provider_status (
    provider              text NOT NULL,
    server_id             text NOT NULL,
    provider_type         text NOT NULL,
    healthy               boolean NOT NULL,
    detail                text NOT NULL DEFAULT '',
    circuit_open          boolean NOT NULL DEFAULT false,
    consecutive_failures  integer NOT NULL DEFAULT 0,
    last_error            text,
    last_error_at         timestamptz,
    checked_at            timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, server_id)
);
