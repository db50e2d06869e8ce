-- Hodei schema, version 1.
-- The seed report's debug queries run unchanged against these tables.

CREATE TABLE jobs (
    id               uuid PRIMARY KEY,
    name             text NOT NULL DEFAULT '',
    command          text[] NOT NULL CHECK (cardinality(command) > 0),
    env              jsonb NOT NULL DEFAULT '{}'::jsonb,
    working_dir      text NOT NULL DEFAULT '',
    timeout_seconds  double precision CHECK (timeout_seconds IS NULL OR timeout_seconds > 0),
    labels           jsonb NOT NULL DEFAULT '{}'::jsonb,
    state            text NOT NULL DEFAULT 'PENDING' CHECK (state IN
                       ('PENDING', 'ASSIGNED', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT')),
    -- Number of attempts started (incremented at each assignment); the fencing token.
    attempts         integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    max_attempts     integer NOT NULL DEFAULT 3 CHECK (max_attempts >= 1),
    worker_id        uuid,
    exit_code        integer,
    error            text,
    correlation_id   text NOT NULL DEFAULT '',
    cancel_requested_at timestamptz,
    -- Log bookkeeping for the current attempt: the last per-job sequence used,
    -- and how many of the attempt's lines the server has persisted.
    log_seq          bigint NOT NULL DEFAULT 0,
    attempt_lines    bigint NOT NULL DEFAULT 0,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    assigned_at      timestamptz,
    started_at       timestamptz,
    finished_at      timestamptz,
    -- When an ASSIGNED job must have been acknowledged by its worker.
    ack_deadline     timestamptz
);

CREATE INDEX jobs_state_idx ON jobs (state) WHERE state IN ('PENDING', 'ASSIGNED', 'RUNNING');
CREATE INDEX jobs_created_at_idx ON jobs (created_at DESC);
CREATE INDEX jobs_worker_idx ON jobs (worker_id) WHERE worker_id IS NOT NULL;
CREATE INDEX jobs_finished_at_idx ON jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE INDEX jobs_labels_idx ON jobs USING gin (labels);

CREATE TABLE job_queue (
    job_id       uuid PRIMARY KEY REFERENCES jobs (id) ON DELETE CASCADE,
    priority     integer NOT NULL DEFAULT 0,
    enqueued_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX job_queue_order_idx ON job_queue (priority DESC, enqueued_at);

CREATE TABLE workers (
    id              uuid PRIMARY KEY,
    name            text NOT NULL DEFAULT '',
    hostname        text NOT NULL DEFAULT '',
    pid             integer,
    version         text NOT NULL DEFAULT '',
    labels          jsonb NOT NULL DEFAULT '{}'::jsonb,
    slots           integer NOT NULL DEFAULT 1 CHECK (slots >= 1),
    state           text NOT NULL DEFAULT 'CREATING' CHECK (state IN
                      ('CREATING', 'READY', 'BUSY', 'DRAINING', 'TERMINATED', 'LOST')),
    -- One of the jobs the worker runs (the seed's query reads it); all of them
    -- are in jobs.worker_id.
    current_job_id  uuid,
    running_jobs    integer NOT NULL DEFAULT 0 CHECK (running_jobs >= 0),
    -- Which server process holds the worker's stream; NULL while disconnected.
    -- Only a worker with an open stream is assignable.
    server_id       text,
    last_heartbeat  timestamptz,
    registered_at   timestamptz NOT NULL DEFAULT now(),
    connected_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX workers_state_idx ON workers (state);

CREATE TABLE domain_events (
    id              bigserial PRIMARY KEY,
    event_type      text NOT NULL,
    aggregate_type  text NOT NULL,
    aggregate_id    uuid NOT NULL,
    actor           text NOT NULL DEFAULT '',
    correlation_id  text NOT NULL DEFAULT '',
    payload         jsonb NOT NULL DEFAULT '{}'::jsonb,
    occurred_at     timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX domain_events_aggregate_idx ON domain_events (aggregate_id, id);
CREATE INDEX domain_events_occurred_at_idx ON domain_events (occurred_at DESC);

CREATE TABLE outbox_events (
    id            bigserial PRIMARY KEY,
    event_id      bigint NOT NULL REFERENCES domain_events (id) ON DELETE CASCADE,
    topic         text NOT NULL,
    aggregate_id  uuid NOT NULL,
    payload       jsonb NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    published_at  timestamptz,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error    text
);

CREATE INDEX outbox_unpublished_idx ON outbox_events (id) WHERE published_at IS NULL;

CREATE TABLE job_logs (
    job_id     uuid NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
    sequence   bigint NOT NULL CHECK (sequence >= 1),
    attempt    integer NOT NULL,
    is_stderr  boolean NOT NULL DEFAULT false,
    line       text NOT NULL,
    ts         timestamptz NOT NULL,
    PRIMARY KEY (job_id, sequence)
);

-- One row per server process: what its background loops last did, so that a diagnostic
-- reading only the database can tell a stopped dispatcher from an idle one.
CREATE TABLE server_status (
    server_id              text PRIMARY KEY,
    version                text NOT NULL,
    started_at             timestamptz NOT NULL,
    heartbeat_at           timestamptz NOT NULL,
    dispatcher_enabled     boolean NOT NULL,
    outbox_relay_enabled   boolean NOT NULL,
    dispatcher_last_cycle_at  timestamptz,
    dispatcher_last_dispatch_at timestamptz,
    dispatcher_cycles      bigint NOT NULL DEFAULT 0,
    dispatched_total       bigint NOT NULL DEFAULT 0,
    outbox_last_publish_at timestamptz,
    stopped_at             timestamptz
);
