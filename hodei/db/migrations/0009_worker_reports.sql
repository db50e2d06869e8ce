-- What the platform records for the doctor (hodei-diagnose), issue 14.
--
-- workers.stream_closed_at: when the worker's stream last ended (NULL while one is open;
--   server_id says which server holds it). A worker with no stream that still owns
--   ASSIGNED/RUNNING jobs is named at once, before its heartbeat deadline.
-- workers.clock_skew_s: the worker's clock minus the database's, measured on its last
--   Hello/heartbeat that carried `sent_at` (NULL: never measured), at clock_measured_at.
-- jobs.output_lines_read / output_bytes_read: what the worker read from the attempt's
--   stdout+stderr, reported with its result (NULL: not reported), beside
--   jobs.attempt_lines (what the server stored of it): lost output is seen without a
--   canary job.
ALTER TABLE workers
    ADD COLUMN stream_closed_at timestamptz,
    ADD COLUMN clock_skew_s double precision,
    ADD COLUMN clock_measured_at timestamptz;

ALTER TABLE jobs
    ADD COLUMN output_lines_read bigint,
    ADD COLUMN output_bytes_read bigint;
