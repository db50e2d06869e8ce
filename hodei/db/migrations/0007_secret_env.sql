-- Secret env values (JobSpec.secret_env): the names in clear, so that GetJob and
-- ListJobs can show them (with "***" for the values) without the key; the values as
-- one Fernet token (hodei.server.secret_box: the JSON object {name: value} encrypted
-- with HODEI_SECRET_KEY), decrypted only to build the job's RunJob. NULL: none.
ALTER TABLE jobs
    ADD COLUMN secret_names text[] NOT NULL DEFAULT '{}',
    ADD COLUMN secret_env   bytea;
