-- Read-only probes of a Hodei database, referred to by name from hodei/diagnose/probes.py.
-- Every query runs in a READ ONLY transaction with a statement_timeout and a lock_timeout;
-- none takes a lock stronger than ACCESS SHARE.
-- Ages are computed by the database (clock_timestamp()) so client clock skew does not matter.

-- name: server_clock
SELECT clock_timestamp() AS now, current_setting('server_version') AS server_version;

-- name: schema_version
SELECT CASE WHEN to_regclass('schema_migrations') IS NULL THEN NULL
            ELSE (SELECT coalesce(max(version), 0) FROM schema_migrations) END AS version;

-- name: jobs_by_state
SELECT state, count(*) AS n FROM jobs GROUP BY state ORDER BY state;

-- name: oldest_pending
SELECT count(*) AS n,
       extract(epoch FROM clock_timestamp() - min(created_at))::float8 AS oldest_age_s
FROM jobs WHERE state = 'PENDING';

-- name: pending_older_than
SELECT j.id::text AS job_id, j.attempts,
       extract(epoch FROM clock_timestamp() - coalesce(q.enqueued_at, j.updated_at))::float8 AS age_s,
       q.job_id IS NOT NULL AS queued
FROM jobs j LEFT JOIN job_queue q ON q.job_id = j.id
WHERE j.state = 'PENDING'
  AND coalesce(q.enqueued_at, j.updated_at) < clock_timestamp() - make_interval(secs => %(age_s)s)
ORDER BY coalesce(q.enqueued_at, j.updated_at)
LIMIT %(limit)s;

-- name: queue_summary
SELECT count(*) AS depth,
       extract(epoch FROM clock_timestamp() - min(enqueued_at))::float8 AS oldest_age_s
FROM job_queue;

-- name: queue_sample
SELECT q.job_id::text AS job_id, q.enqueued_at::text AS enqueued_at, j.state,
       extract(epoch FROM clock_timestamp() - q.enqueued_at)::float8 AS age_s
FROM job_queue q JOIN jobs j ON j.id = q.job_id
ORDER BY q.priority DESC, q.enqueued_at
LIMIT %(limit)s;

-- name: workers_by_state
SELECT state, count(*) AS n FROM workers GROUP BY state ORDER BY state;

-- name: workers_sample
-- Live workers first, then the most recently heard from.
SELECT w.id::text AS id, w.name, w.state, w.pid, w.server_id,
       w.current_job_id::text AS current_job_id, w.running_jobs,
       extract(epoch FROM clock_timestamp() - w.last_heartbeat)::float8 AS heartbeat_age_s
FROM workers w
ORDER BY (w.state IN ('READY', 'BUSY')) DESC, w.last_heartbeat DESC NULLS LAST
LIMIT %(limit)s;

-- name: events_by_type
SELECT event_type, count(*) AS n FROM domain_events GROUP BY event_type ORDER BY n DESC, event_type;

-- name: recent_events
SELECT event_type, aggregate_type, aggregate_id::text AS aggregate_id, actor,
       occurred_at::text AS occurred_at
FROM domain_events ORDER BY id DESC LIMIT %(limit)s;

-- name: outbox_summary
SELECT count(*) AS total,
       count(*) FILTER (WHERE published_at IS NULL) AS unpublished,
       extract(epoch FROM clock_timestamp() - min(created_at) FILTER (WHERE published_at IS NULL))::float8
         AS oldest_unpublished_age_s,
       max(published_at)::text AS last_published_at
FROM outbox_events;

-- name: job_logs_count
SELECT count(*) AS n FROM job_logs;

-- name: server_status
SELECT server_id, version, started_at::text AS started_at, dispatcher_enabled, outbox_relay_enabled,
       dispatcher_cycles, dispatched_total, stopped_at::text AS stopped_at,
       extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS heartbeat_age_s,
       extract(epoch FROM clock_timestamp() - dispatcher_last_cycle_at)::float8 AS last_cycle_age_s,
       extract(epoch FROM clock_timestamp() - dispatcher_last_dispatch_at)::float8 AS last_dispatch_age_s,
       extract(epoch FROM clock_timestamp() - outbox_last_publish_at)::float8 AS last_publish_age_s,
       listen_address, dispatcher_last_error,
       extract(epoch FROM clock_timestamp() - dispatcher_last_error_at)::float8 AS last_error_age_s
FROM server_status
ORDER BY stopped_at IS NULL DESC, heartbeat_at DESC
LIMIT %(limit)s;

-- name: stale_live_workers
-- READY/BUSY rows whose heartbeat is older than the threshold: the worker is silent
-- and the server has not (yet) marked it LOST. stopped_*: the server whose stop closed
-- its stream (stopped within 10 s of it), when it has not reconnected since: the
-- worker may well be alive, retrying a server that is gone.
SELECT w.id::text AS id, w.name, w.state, w.pid, w.server_id,
       w.current_job_id::text AS current_job_id,
       extract(epoch FROM clock_timestamp() - w.last_heartbeat)::float8 AS heartbeat_age_s,
       st.stopped_server, st.stopped_address, st.stopped_age_s
FROM workers w
LEFT JOIN LATERAL (
  SELECT s.server_id AS stopped_server, s.listen_address AS stopped_address,
         extract(epoch FROM clock_timestamp() - s.stopped_at)::float8 AS stopped_age_s
  FROM server_status s
  WHERE w.server_id IS NULL AND s.stopped_at IS NOT NULL
    AND s.stopped_at BETWEEN w.stream_closed_at - interval '10 seconds'
                         AND w.stream_closed_at + interval '10 seconds'
  ORDER BY abs(extract(epoch FROM s.stopped_at - w.stream_closed_at))
  LIMIT 1
) st ON true
WHERE w.state IN ('READY', 'BUSY')
  AND (w.last_heartbeat IS NULL
       OR w.last_heartbeat < clock_timestamp() - make_interval(secs => %(age_s)s))
ORDER BY w.last_heartbeat NULLS FIRST
LIMIT %(limit)s;

-- name: recently_lost_workers
-- replaced_by: a live worker of the same name (a supervisor such as `hodei up` or
-- systemd restarted it); jobs_held: jobs still ASSIGNED/RUNNING on the lost one.
-- stopped_*: as in stale_live_workers.
SELECT w.id::text AS id, w.name, w.pid,
       extract(epoch FROM clock_timestamp() - coalesce(w.last_heartbeat, w.updated_at))::float8
         AS heartbeat_age_s,
       (SELECT l.id::text FROM workers l
         WHERE l.name = w.name AND l.id <> w.id AND l.state IN ('READY', 'BUSY')
           AND l.server_id IS NOT NULL
         LIMIT 1) AS replaced_by,
       (SELECT count(*) FROM jobs j
         WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING')) AS jobs_held,
       st.stopped_server, st.stopped_address, st.stopped_age_s
FROM workers w
LEFT JOIN LATERAL (
  SELECT s.server_id AS stopped_server, s.listen_address AS stopped_address,
         extract(epoch FROM clock_timestamp() - s.stopped_at)::float8 AS stopped_age_s
  FROM server_status s
  WHERE w.server_id IS NULL AND s.stopped_at IS NOT NULL
    AND s.stopped_at BETWEEN w.stream_closed_at - interval '10 seconds'
                         AND w.stream_closed_at + interval '10 seconds'
  ORDER BY abs(extract(epoch FROM s.stopped_at - w.stream_closed_at))
  LIMIT 1
) st ON true
WHERE w.state = 'LOST'
  AND w.updated_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
ORDER BY w.updated_at DESC
LIMIT %(limit)s;

-- name: busy_without_job
-- A BUSY worker holding no job: no jobs row is ASSIGNED/RUNNING on it.
SELECT w.id::text AS id, w.name, w.running_jobs, w.current_job_id::text AS current_job_id,
       extract(epoch FROM clock_timestamp() - w.updated_at)::float8 AS busy_for_s
FROM workers w
WHERE w.state = 'BUSY'
  AND w.updated_at < clock_timestamp() - make_interval(secs => %(age_s)s)
  AND NOT EXISTS (SELECT 1 FROM jobs j
                  WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING'))
LIMIT %(limit)s;

-- name: assigned_past_deadline
SELECT j.id::text AS job_id, j.worker_id::text AS worker_id, j.attempts,
       extract(epoch FROM clock_timestamp() - j.ack_deadline)::float8 AS overdue_s
FROM jobs j
WHERE j.state = 'ASSIGNED'
  AND coalesce(j.ack_deadline, j.assigned_at + make_interval(secs => %(ack_s)s))
      < clock_timestamp() - make_interval(secs => %(grace_s)s)
ORDER BY j.assigned_at
LIMIT %(limit)s;

-- name: running_stuck
-- RUNNING past its own timeout (plus grace), or on a worker that is gone or silent.
SELECT j.id::text AS job_id, j.worker_id::text AS worker_id, j.timeout_seconds,
       extract(epoch FROM clock_timestamp() - j.started_at)::float8 AS running_for_s,
       w.state AS worker_state,
       extract(epoch FROM clock_timestamp() - w.last_heartbeat)::float8 AS worker_heartbeat_age_s,
       CASE
         WHEN j.timeout_seconds IS NOT NULL AND j.started_at
              < clock_timestamp() - make_interval(secs => j.timeout_seconds + %(grace_s)s)
           THEN 'timeout'
         ELSE 'worker'
       END AS reason
FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
WHERE j.state = 'RUNNING'
  AND ((j.timeout_seconds IS NOT NULL AND j.started_at
          < clock_timestamp() - make_interval(secs => j.timeout_seconds + %(grace_s)s))
       OR w.id IS NULL
       OR w.state IN ('LOST', 'TERMINATED')
       OR w.last_heartbeat < clock_timestamp() - make_interval(secs => %(stale_s)s))
LIMIT %(limit)s;

-- name: pending_not_queued
-- A PENDING job no dispatcher will ever see. The grace covers nothing transactional
-- (enqueue and state change commit together) but tolerates clock jitter.
SELECT j.id::text AS job_id, j.attempts,
       extract(epoch FROM clock_timestamp() - j.updated_at)::float8 AS age_s
FROM jobs j
WHERE j.state = 'PENDING'
  AND NOT EXISTS (SELECT 1 FROM job_queue q WHERE q.job_id = j.id)
  AND j.updated_at < clock_timestamp() - make_interval(secs => %(grace_s)s)
ORDER BY j.updated_at
LIMIT %(limit)s;

-- name: queued_not_pending
SELECT q.job_id::text AS job_id, j.state,
       extract(epoch FROM clock_timestamp() - q.enqueued_at)::float8 AS age_s
FROM job_queue q JOIN jobs j ON j.id = q.job_id
WHERE j.state <> 'PENDING'
  AND q.enqueued_at < clock_timestamp() - make_interval(secs => %(grace_s)s)
LIMIT %(limit)s;

-- name: activity_window
-- Job activity vs domain events vs outbox rows over the same recent window.
SELECT
  (SELECT count(*) FROM jobs
    WHERE updated_at >= clock_timestamp() - make_interval(secs => %(window_s)s)) AS jobs_touched,
  (SELECT count(*) FROM domain_events
    WHERE occurred_at >= clock_timestamp() - make_interval(secs => %(window_s)s)) AS events,
  (SELECT count(*) FROM domain_events
    WHERE aggregate_type = 'job'
      AND occurred_at >= clock_timestamp() - make_interval(secs => %(window_s)s)) AS job_events,
  (SELECT count(*) FROM outbox_events
    WHERE created_at >= clock_timestamp() - make_interval(secs => %(window_s)s)) AS outbox_rows,
  (SELECT count(*) FROM domain_events e
    WHERE e.occurred_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
      AND e.occurred_at < clock_timestamp() - make_interval(secs => %(grace_s)s)
      AND NOT EXISTS (SELECT 1 FROM outbox_events o WHERE o.event_id = e.id))
    AS events_without_outbox,
  extract(epoch FROM clock_timestamp() - (SELECT max(occurred_at) FROM domain_events))::float8
    AS last_event_age_s;

-- name: finished_per_minute
-- Jobs that reached a final state, per minute, over the last N minutes (oldest first).
SELECT m.minute_ago, count(j.id) AS finished
FROM generate_series(0, %(minutes)s - 1) AS m(minute_ago)
LEFT JOIN jobs j
  ON j.finished_at >= clock_timestamp() - make_interval(mins => m.minute_ago + 1)
 AND j.finished_at <  clock_timestamp() - make_interval(mins => m.minute_ago)
GROUP BY m.minute_ago
ORDER BY m.minute_ago DESC;

-- name: recent_job_times
-- When the jobs that finished in the last N minutes were created and finished (unix
-- seconds), newest first: the report's latency chart.
SELECT extract(epoch FROM created_at)::float8 AS created_at,
       extract(epoch FROM started_at)::float8 AS started_at,
       extract(epoch FROM finished_at)::float8 AS finished_at
FROM jobs
WHERE finished_at >= clock_timestamp() - make_interval(mins => %(minutes)s)
ORDER BY finished_at DESC
LIMIT %(limit)s;

-- name: job_events
-- The lifecycle of the given aggregates, for the report's timeline, with the scaler's
-- decisions taken for those jobs (a worker provisioned for one, and its removal).
SELECT event_type, aggregate_type, aggregate_id::text AS aggregate_id, actor,
       occurred_at::text AS occurred_at
FROM domain_events
WHERE aggregate_id = ANY(%(ids)s::uuid[])
   OR (aggregate_type = 'provisioning' AND payload ->> 'job_id' = ANY(%(ids)s::text[]))
ORDER BY id
LIMIT %(limit)s;

-- name: latest_job_ids
SELECT id::text AS id FROM jobs ORDER BY created_at DESC LIMIT %(limit)s;

-- name: job_row
SELECT id::text AS id, state, attempts, worker_id::text AS worker_id, exit_code,
       created_at::text AS created_at, assigned_at::text AS assigned_at,
       started_at::text AS started_at, finished_at::text AS finished_at
FROM jobs WHERE id = %(id)s::uuid;

-- name: job_log_lines
SELECT sequence, is_stderr, line FROM job_logs WHERE job_id = %(id)s::uuid ORDER BY sequence;

-- name: long_transactions
-- Other sessions' transactions open longer than the threshold: they hold row locks that
-- FOR UPDATE SKIP LOCKED claims (dispatcher, outbox relay) silently skip.
SELECT pid, usename, application_name, state,
       extract(epoch FROM clock_timestamp() - xact_start)::float8 AS xact_age_s,
       left(regexp_replace(query, '\s+', ' ', 'g'), 120) AS query
FROM pg_stat_activity
WHERE xact_start < clock_timestamp() - make_interval(secs => %(age_s)s)
  AND pid <> pg_backend_pid()
  AND datname = current_database()
  AND backend_type = 'client backend'
ORDER BY xact_start
LIMIT %(limit)s;

-- name: workers_without_stream
-- Workers that own ASSIGNED/RUNNING jobs but whose stream no live server holds: closed
-- (server_id NULL, for longer than the grace: a reconnect takes a moment), or held by
-- a server whose server_status is stopped, stale or missing. Their jobs wait for the
-- heartbeat deadline; named before it. Jobs listed per worker.
SELECT w.id::text AS id, w.name, w.pid, w.state, w.server_id,
       extract(epoch FROM clock_timestamp() - w.stream_closed_at)::float8 AS closed_for_s,
       extract(epoch FROM clock_timestamp() - w.last_heartbeat)::float8 AS heartbeat_age_s,
       CASE WHEN w.server_id IS NULL THEN 'closed'
            WHEN s.server_id IS NULL THEN 'unknown server'
            WHEN s.stopped_at IS NOT NULL THEN 'server stopped'
            ELSE 'server silent' END AS why,
       (SELECT array_agg(j.id::text || ' ' || j.state ORDER BY j.assigned_at)
          FROM jobs j WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING')) AS jobs
FROM workers w LEFT JOIN server_status s ON s.server_id = w.server_id
WHERE EXISTS (SELECT 1 FROM jobs j WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING'))
  AND ((w.server_id IS NULL
        AND coalesce(w.stream_closed_at, w.updated_at)
            < clock_timestamp() - make_interval(secs => %(grace_s)s))
       OR (w.server_id IS NOT NULL
           AND (s.server_id IS NULL OR s.stopped_at IS NOT NULL
                OR s.heartbeat_at < clock_timestamp() - make_interval(secs => %(server_stale_s)s))))
ORDER BY w.stream_closed_at NULLS LAST
LIMIT %(limit)s;

-- name: server_clock_skew
-- Live servers whose host clock, as written with their last heartbeat, is off from this
-- database's by more than the threshold (positive: the server is ahead).
SELECT server_id AS id, listen_address, clock_skew_s,
       extract(epoch FROM clock_timestamp() - heartbeat_at)::float8 AS measured_age_s
FROM server_status
WHERE stopped_at IS NULL
  AND heartbeat_at >= clock_timestamp() - make_interval(secs => %(stale_s)s)
  AND abs(clock_skew_s) > %(skew_s)s
ORDER BY abs(clock_skew_s) DESC
LIMIT %(limit)s;

-- name: worker_clock_skew
-- Live workers whose clock, as sent with their last Hello/heartbeat, is off from this
-- database's by more than the threshold (positive: the worker is ahead).
SELECT id::text AS id, name, pid, state, clock_skew_s,
       extract(epoch FROM clock_timestamp() - clock_measured_at)::float8 AS measured_age_s
FROM workers
WHERE state IN ('READY', 'BUSY', 'DRAINING') AND abs(clock_skew_s) > %(skew_s)s
ORDER BY abs(clock_skew_s) DESC
LIMIT %(limit)s;

-- name: attempts_output_lost
-- Recently finished attempts whose worker read more (or fewer) output lines than the
-- server stored (jobs.attempt_lines). Only finished jobs: a running one is still
-- sending. Both count the worker's lines (a line split at the worker's limit is one
-- line per piece on both sides; the server's own 1 MiB row split is not counted).
SELECT j.id::text AS job_id, j.worker_id::text AS worker_id, w.name AS worker_name, j.attempts,
       j.state, j.output_lines_read AS lines_read, j.output_bytes_read AS bytes_read,
       j.attempt_lines AS lines_stored,
       extract(epoch FROM clock_timestamp() - j.finished_at)::float8 AS finished_age_s
FROM jobs j LEFT JOIN workers w ON w.id = j.worker_id
WHERE j.finished_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
  AND j.output_lines_read IS NOT NULL
  AND j.output_lines_read <> j.attempt_lines
ORDER BY j.finished_at DESC
LIMIT %(limit)s;

-- name: attempts_output_summary
SELECT count(*) FILTER (WHERE output_lines_read IS NOT NULL) AS measured,
       count(*) FILTER (WHERE output_lines_read <> attempt_lines) AS differing
FROM jobs
WHERE finished_at >= clock_timestamp() - make_interval(secs => %(window_s)s);

-- name: recent_repairs
-- What the platform repaired recently (domain events `Repaired`), newest first.
SELECT aggregate_id::text AS job_id, payload->>'repair' AS repair,
       payload->>'state' AS state, actor, count(*) OVER () AS total,
       extract(epoch FROM clock_timestamp() - occurred_at)::float8 AS age_s
FROM domain_events
WHERE event_type = 'Repaired'
  AND occurred_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
ORDER BY id DESC
LIMIT %(limit)s;

-- name: worker_capacity
-- The live workers (fresh heartbeat, an open stream) and their slots, in one statement so
-- that the counts and the breakdown by state come from the same moment.
SELECT count(*) FILTER (WHERE live AND state = 'READY') AS ready,
       count(*) FILTER (WHERE live AND state = 'BUSY') AS busy,
       coalesce(sum(slots) FILTER (WHERE live), 0) AS slots,
       coalesce(sum(running_jobs) FILTER (WHERE live), 0) AS running,
       -- Every slot taken (a prefetching worker is still READY then: it takes jobs to
       -- hold), and the jobs held beyond the slots (prefetched: docs/worker.md).
       count(*) FILTER (WHERE live AND running_jobs >= slots) AS full,
       coalesce(sum(greatest(running_jobs - slots, 0)) FILTER (WHERE live), 0) AS prefetched,
       coalesce(sum(greatest(slots - running_jobs, 0)) FILTER (WHERE live AND state = 'READY'), 0)
         AS free_slots,
       coalesce(jsonb_object_agg(state, n) FILTER (WHERE n IS NOT NULL), '{}'::jsonb) AS by_state
FROM (
  SELECT w.state, w.slots, w.running_jobs,
         (w.state IN ('READY', 'BUSY') AND w.server_id IS NOT NULL
          AND w.last_heartbeat >= clock_timestamp() - make_interval(secs => %(age_s)s)) AS live,
         NULL::bigint AS n
  FROM workers w
  UNION ALL
  SELECT state, 0, 0, false, count(*) FROM workers GROUP BY state
) rows;

-- name: queue_flow
-- The queue now, and its traffic over the last window: jobs that entered it (created or
-- requeued) and jobs that left it (assigned), from the domain events (occurred_at index).
SELECT (SELECT count(*) FROM job_queue) AS depth,
       extract(epoch FROM clock_timestamp() - (SELECT min(enqueued_at) FROM job_queue))::float8
         AS oldest_age_s,
       count(*) FILTER (WHERE e.event_type IN ('JobCreated', 'JobRequeued')) AS arrived,
       count(*) FILTER (WHERE e.event_type = 'JobAssigned') AS departed
FROM domain_events e
WHERE e.occurred_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
  AND e.event_type IN ('JobCreated', 'JobRequeued', 'JobAssigned');

-- name: schema_migrations_applied
SELECT version, name FROM schema_migrations ORDER BY version;

-- name: schema_columns
-- Every column of the Hodei schema's tables (what schema_manifest.json records).
SELECT c.relname AS table_name, a.attname AS column_name,
       format_type(a.atttypid, a.atttypmod) AS data_type
FROM pg_class c
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
ORDER BY c.relname, a.attnum;

-- name: schema_indexes
SELECT t.relname AS table_name, i.relname AS index_name
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema()
ORDER BY t.relname, i.relname;

-- name: future_heartbeats
-- Heartbeats ahead of the database clock by more than the tolerance: every Hodei writer
-- stamps them with the database's now(), so they mean the clock stepped back or a row
-- was written by another clock; an age computed from them is negative (never "stale").
SELECT 'worker' AS kind, id::text AS id,
       extract(epoch FROM last_heartbeat - clock_timestamp())::float8 AS ahead_s
FROM workers
WHERE last_heartbeat > clock_timestamp() + make_interval(secs => %(tolerance_s)s)
UNION ALL
SELECT 'server', server_id,
       extract(epoch FROM heartbeat_at - clock_timestamp())::float8
FROM server_status
WHERE heartbeat_at > clock_timestamp() + make_interval(secs => %(tolerance_s)s)
ORDER BY ahead_s DESC
LIMIT %(limit)s;

-- name: impossible_job_timestamps
-- Recent jobs (created within the window, or in the future) whose transitions are out
-- of order by more than the tolerance; `gap_s` is by how much.
SELECT id::text AS job_id, state, problem, gap_s FROM (
  SELECT j.id, j.state, p.problem, p.gap_s
  FROM jobs j
  CROSS JOIN LATERAL (VALUES
    ('created_at in the future', extract(epoch FROM j.created_at - clock_timestamp())::float8),
    ('assigned_at before created_at', extract(epoch FROM j.created_at - j.assigned_at)::float8),
    ('started_at before created_at', extract(epoch FROM j.created_at - j.started_at)::float8),
    ('finished_at before started_at', extract(epoch FROM j.started_at - j.finished_at)::float8)
  ) AS p(problem, gap_s)
  WHERE j.created_at >= clock_timestamp() - make_interval(secs => %(window_s)s)
    AND p.gap_s > %(tolerance_s)s
) bad
ORDER BY gap_s DESC
LIMIT %(limit)s;

-- name: relation_lock_holders
-- Sessions holding an ACCESS EXCLUSIVE lock on a relation of this database (the only
-- mode that blocks a reader): who a probe that timed out on a lock waited for.
SELECT c.relname AS relation, l.mode, a.pid, a.usename, a.application_name, a.state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_age_s,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 160) AS query
FROM pg_locks l
JOIN pg_class c ON c.oid = l.relation
JOIN pg_stat_activity a ON a.pid = l.pid
WHERE l.locktype = 'relation' AND l.granted AND l.mode = 'AccessExclusiveLock'
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
  AND l.pid <> pg_backend_pid()
ORDER BY a.xact_start
LIMIT %(limit)s;

-- name: lock_waits
-- Sessions of this database waiting on a lock for longer than age_s, one row per
-- session blocking them (pg_blocking_pids), with what each is doing.
SELECT w.pid, w.application_name, w.usename,
       extract(epoch FROM clock_timestamp() - w.query_start)::float8 AS waiting_s,
       left(regexp_replace(w.query, '\s+', ' ', 'g'), 160) AS query,
       (SELECT coalesce(c.relname, l.locktype) FROM pg_locks l
          LEFT JOIN pg_class c ON c.oid = l.relation
         WHERE l.pid = w.pid AND NOT l.granted LIMIT 1) AS relation,
       b.pid AS blocker_pid, b.application_name AS blocker_application, b.usename AS blocker_user,
       b.state AS blocker_state,
       extract(epoch FROM clock_timestamp() - b.xact_start)::float8 AS blocker_xact_age_s,
       left(regexp_replace(b.query, '\s+', ' ', 'g'), 160) AS blocker_query
FROM pg_stat_activity w
CROSS JOIN LATERAL unnest(pg_blocking_pids(w.pid)) AS bp(pid)
JOIN pg_stat_activity b ON b.pid = bp.pid
WHERE w.datname = current_database()
  AND w.wait_event_type = 'Lock'
  AND w.pid <> pg_backend_pid()
  AND w.query_start < clock_timestamp() - make_interval(secs => %(age_s)s)
ORDER BY w.query_start
LIMIT %(limit)s;

-- name: lingering_transactions
-- Other sessions holding locks on this database's tables in a transaction open longer
-- than long_s, or idle in it for longer than idle_s (they hold row locks the dispatcher
-- and the relay skip, and table locks DDL waits on). The doctor's own are left out.
SELECT a.pid, a.application_name, a.usename, a.state,
       extract(epoch FROM clock_timestamp() - a.xact_start)::float8 AS xact_age_s,
       extract(epoch FROM clock_timestamp() - a.state_change)::float8 AS state_age_s,
       left(regexp_replace(a.query, '\s+', ' ', 'g'), 160) AS query,
       array_agg(DISTINCT c.relname ORDER BY c.relname) AS tables
FROM pg_stat_activity a
JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'relation'
JOIN pg_class c ON c.oid = l.relation AND c.relkind IN ('r', 'p')
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE a.datname = current_database()
  AND a.pid <> pg_backend_pid()
  AND a.application_name <> 'hodei-diagnose'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
  AND (a.xact_start < clock_timestamp() - make_interval(secs => %(long_s)s)
       OR (a.state IN ('idle in transaction', 'idle in transaction (aborted)')
           AND a.state_change < clock_timestamp() - make_interval(secs => %(idle_s)s)))
GROUP BY a.pid, a.application_name, a.usename, a.state, a.xact_start, a.state_change, a.query
ORDER BY a.xact_start
LIMIT %(limit)s;

-- name: outbox_dead_letters
-- The newest outbox rows the relay dead-lettered (migration 0011).
SELECT id, event_id, topic, publish_attempts, last_error,
       extract(epoch FROM clock_timestamp() - dead_at)::float8 AS dead_age_s
FROM outbox_events WHERE dead_at IS NOT NULL ORDER BY dead_at DESC, id DESC LIMIT %(limit)s;

-- name: outbox_dead_letter_count
SELECT count(*) AS n FROM outbox_events WHERE dead_at IS NOT NULL;

-- name: providers_known
-- Whether this database has the scaler's tables (migration 0012) and anything in them.
SELECT to_regclass('provisioned_workers') IS NOT NULL AS has_tables;

-- name: provider_statuses
-- What each server's scaler last saw of each provider (migration 0012).
SELECT provider, server_id, provider_type, healthy, detail, circuit_open,
       consecutive_failures, last_error,
       extract(epoch FROM clock_timestamp() - checked_at)::float8 AS checked_age_s,
       extract(epoch FROM clock_timestamp() - last_error_at)::float8 AS error_age_s
FROM provider_status ORDER BY provider, checked_at DESC;

-- name: provisioning_outcomes
-- Per provider, the scaler's provisioning events within the window: how many failed,
-- how many worked, and the newest failure (its error) and success.
SELECT e.payload ->> 'provider' AS provider,
       count(*) FILTER (WHERE e.event_type = 'ProvisioningFailed'
                        AND e.payload ->> 'stage' = 'provision') AS failed,
       count(*) FILTER (WHERE e.event_type = 'WorkerProvisioned') AS provisioned,
       max(e.id) FILTER (WHERE e.event_type = 'ProvisioningFailed'
                         AND e.payload ->> 'stage' = 'provision') AS last_failed_id,
       max(e.id) FILTER (WHERE e.event_type = 'WorkerProvisioned') AS last_provisioned_id,
       (array_agg(e.payload ->> 'error' ORDER BY e.id DESC)
            FILTER (WHERE e.event_type = 'ProvisioningFailed'
                    AND e.payload ->> 'stage' = 'provision'))[1] AS last_error,
       extract(epoch FROM clock_timestamp() - max(e.occurred_at))::float8 AS last_age_s
FROM domain_events e
WHERE e.aggregate_type = 'provisioning'
  AND e.event_type IN ('ProvisioningFailed', 'WorkerProvisioned')
  AND e.occurred_at > clock_timestamp() - make_interval(secs => %(window_s)s)
GROUP BY 1 ORDER BY 1;

-- name: provisioned_unregistered
-- Workers a provider started that have not registered after the grace, and those the
-- scaler gave up on for that reason within the window.
SELECT p.id::text AS id, p.provider, p.worker_name, p.handle, p.state, p.last_error,
       extract(epoch FROM clock_timestamp() - p.created_at)::float8 AS age_s
FROM provisioned_workers p
WHERE p.worker_id IS NULL
  AND ((p.state = 'RUNNING'
        AND p.created_at < clock_timestamp() - make_interval(secs => %(grace_s)s))
       OR (p.state = 'FAILED' AND p.handle IS NOT NULL
           AND p.removed_at > clock_timestamp() - make_interval(secs => %(window_s)s)))
ORDER BY p.created_at DESC
LIMIT %(limit)s;
