-- Log lines are only written by the server while it holds the job's row lock, so
-- the per-row foreign-key trigger on job_logs bought nothing but cost about a fifth
-- of the insert time at 200,000 lines/s.
ALTER TABLE job_logs DROP CONSTRAINT IF EXISTS job_logs_job_id_fkey;
