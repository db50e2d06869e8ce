-- Authentication (hodei.server.tokens): bearer tokens, the owner of each job, and the
-- credential each worker registration is bound to.
--
-- A token is `hodei_<id hex>_<secret>`: it is looked up by id and checked by comparing
-- SHA-256(secret) with secret_hash. Secrets are 256 random bits, so a fast hash is
-- enough (no dictionary to guess from); the database never holds a usable token.
CREATE TABLE api_tokens (
    id            uuid PRIMARY KEY,
    name          text NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 100),
    role          text NOT NULL CHECK (role IN ('worker', 'client', 'admin')),
    secret_hash   bytea NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz,
    revoked_at    timestamptz,
    -- Updated at most once a minute per token (not on every call).
    last_used_at  timestamptz
);

-- The token that submitted the job; NULL for jobs submitted before this migration or
-- while authentication was off (only an admin sees those).
ALTER TABLE jobs ADD COLUMN owner_token_id uuid;
CREATE INDEX jobs_owner_idx ON jobs (owner_token_id, created_at DESC)
    WHERE owner_token_id IS NOT NULL;

-- A worker's stream is bound to the token that registered it (NULL when authentication
-- was off) and to a per-registration secret only that worker was told (its SHA-256).
ALTER TABLE workers ADD COLUMN token_id uuid;
ALTER TABLE workers ADD COLUMN secret_hash bytea;
