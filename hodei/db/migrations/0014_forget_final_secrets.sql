-- A job's secret env is read only to build its RunJob, and no transition leaves a
-- final state (hodei.domain.jobs), so once a job is SUCCEEDED, FAILED, CANCELLED or
-- TIMED_OUT its sealed values are dropped: a database dump, or a key that leaks
-- later, then exposes only the secrets of jobs still queued or running, not those of
-- every job the retention window keeps. The names (secret_names) stay, for GetJob's
-- `***`. A trigger rather than a clause in each statement that ends a job: every path
-- to a final state (a result, a cancel, a timeout, recovery, an undecryptable token)
-- is covered, including one added later.
CREATE FUNCTION hodei_forget_final_secrets() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.secret_env := NULL;
    RETURN NEW;
END
$$;

CREATE TRIGGER jobs_forget_final_secrets
    BEFORE UPDATE OF state ON jobs
    FOR EACH ROW
    WHEN (NEW.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
          AND NEW.secret_env IS NOT NULL)
    EXECUTE FUNCTION hodei_forget_final_secrets();

UPDATE jobs SET secret_env = NULL
WHERE state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT') AND secret_env IS NOT NULL;
