-- Prefetch (issue 16): a worker may hold jobs beyond its slots, acknowledged and
-- waiting on the worker until a slot frees, so that the next job starts without a
-- round trip to the server. Its capacity for dispatch is slots + prefetch; its
-- Hello says how many (0, the default, for a worker that predates it).
ALTER TABLE workers
    ADD COLUMN prefetch integer NOT NULL DEFAULT 0 CHECK (prefetch >= 0);
