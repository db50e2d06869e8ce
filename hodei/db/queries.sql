-- Named queries used by hodei.server (loaded by hodei.db.connector.query).
-- Parameters are psycopg named placeholders.

-- fragment: outbox_rows
-- The outbox rows of the events a statement wrote in its `ev` CTE; each row also
-- wakes the outbox relay (NOTIFY is delivered at commit, once per transaction).
ob AS (
    INSERT INTO outbox_events (event_id, topic, aggregate_id, payload)
    SELECT id, aggregate_type || '.' || event_type, aggregate_id,
           jsonb_build_object('event_id', id, 'event_type', event_type,
                              'aggregate_type', aggregate_type, 'aggregate_id', aggregate_id,
                              'actor', actor, 'correlation_id', correlation_id,
                              'occurred_at', occurred_at, 'payload', payload)
    FROM ev ORDER BY id
    RETURNING pg_notify('hodei_outbox_wake', '') AS woke
)

-- fragment: assignment_events
-- The domain events of an assignment, as rows for `INSERT INTO domain_events`:
-- JobAssigned for each job of the `a` CTE (the jobs just assigned) and WorkerBusy for
-- each worker of the `wu` CTE that it filled, both by the dispatch_actor. Eager
-- dispatch (queue_job) and the dispatcher (dispatch_jobs) write the same events.
SELECT %(assigned_event)s, 'job', a.id, %(dispatch_actor)s, a.correlation_id,
           jsonb_build_object('state', a.state, 'attempt', a.attempts, 'worker_id', a.worker_id)
    FROM a
    UNION ALL
    SELECT %(busy_event)s, 'worker', wu.id, %(dispatch_actor)s, '',
           jsonb_build_object('running_jobs', wu.running_jobs, 'previous', 'READY')
    FROM wu WHERE wu.state = 'BUSY'

-- fragment: submission_key
-- The idempotency key of a submission (none when `key` is ''), written by the statement
-- that creates its jobs. `go` has one row when the jobs are to be created: no key, a
-- new key, or a key older than the window (replaced). A key another transaction is
-- writing makes ON CONFLICT wait for it; once it commits, the key is taken (unless it
-- was expired) and `go` is empty: the statement creates nothing and the caller reads
-- the winner (get_submission_key). No subquery on jobs here: this statement's
-- snapshot does not see the winner's jobs (a job since pruned is checked afterwards).
k AS (
    INSERT INTO submission_keys AS sk (key, request_hash, job_ids)
    SELECT %(key)s::text, %(request_hash)s::text, %(key_job_ids)b::uuid[]
    WHERE %(key)s::text <> ''
    ON CONFLICT (key) DO UPDATE
        SET request_hash = excluded.request_hash, job_ids = excluded.job_ids, created_at = now()
        WHERE sk.created_at < now() - make_interval(secs => %(key_window)s)
    RETURNING sk.key
), go AS (
    SELECT 1 AS one WHERE %(key)s::text = '' OR EXISTS (SELECT 1 FROM k)
)

-- fragment: worker_clock_shift
-- How far the worker's clock (its `worker_id`) is ahead of this database's, to take
-- from the times it reports: its measured skew when that is over a second, else none
-- (a smaller measure is mostly the network's delay in it).
shift AS (
    SELECT CASE WHEN abs(coalesce(clock_skew_s, 0)) > 1 THEN make_interval(secs => clock_skew_s)
                ELSE interval '0' END AS by
    FROM workers WHERE id = %(worker_id)s
)

-- fragment: reported_start
-- When a job's process started, as its worker reported it (`rep.started_at`, by its
-- clock; NULL from an older worker: now), less the worker's skew (the statement's
-- worker_clock_shift) and kept between the job's assignment and now: a late or wrong
-- clock never puts a start before the job was assigned or after it was recorded.
greatest(jobs.assigned_at, least(now(), coalesce(rep.started_at - (SELECT by FROM shift), now())))

-- name: insert_events
-- One statement writes the domain events and their outbox rows (hodei.server.events).
WITH ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT * FROM unnest(%(types)b::text[], %(aggregate_types)b::text[], %(aggregate_ids)b::uuid[],
                         %(actors)b::text[], %(correlation_ids)b::text[], %(payloads)b::jsonb[])
    RETURNING *
), {{outbox_rows}}
SELECT count(*) AS n FROM ob;

-- fragment: queue_job_body
-- QueueJob's statement after its `go` CTE (one row: create the job; none: do nothing).
w AS (
    SELECT id FROM workers
    WHERE cardinality(%(worker_ids)b::uuid[]) > 0
      AND state = 'READY' AND server_id = %(server_id)s AND id = ANY(%(worker_ids)b::uuid[])
      AND running_jobs < slots + prefetch AND labels @> %(selector)s::jsonb
      AND NOT EXISTS (SELECT 1 FROM job_queue) AND EXISTS (SELECT 1 FROM go)
    ORDER BY running_jobs, id
    LIMIT 1
    FOR UPDATE SKIP LOCKED
), j AS (
    INSERT INTO jobs (id, name, command, env, working_dir, timeout_seconds, labels,
                      max_attempts, correlation_id, secret_names, secret_env, state, attempts,
                      worker_id, assigned_at, ack_deadline, owner_token_id, trace_context,
                      selector)
    SELECT %(id)s, %(name)s, %(command)s, %(env)s, %(working_dir)s, %(timeout_seconds)s,
           %(labels)s, %(max_attempts)s, %(correlation_id)s, %(secret_names)s::text[],
           %(secret_env)s::bytea,
           CASE WHEN w.id IS NULL THEN 'PENDING' ELSE 'ASSIGNED' END,
           CASE WHEN w.id IS NULL THEN 0 ELSE 1 END,
           w.id,
           CASE WHEN w.id IS NULL THEN NULL ELSE now() END,
           CASE WHEN w.id IS NULL THEN NULL
                ELSE now() + make_interval(secs => %(ack_timeout)s) END,
           %(owner)s::uuid, %(trace_context)s::text, %(selector)s::jsonb
    FROM go LEFT JOIN w ON true
    RETURNING *
), q AS (
    INSERT INTO job_queue (job_id) SELECT id FROM j WHERE j.state = 'PENDING' RETURNING job_id
), wu AS (
    UPDATE workers x SET running_jobs = x.running_jobs + 1,
           state = CASE WHEN x.running_jobs + 1 >= x.slots + x.prefetch THEN 'BUSY' ELSE x.state END,
           current_job_id = coalesce(x.current_job_id, j.id), updated_at = now()
    FROM j WHERE x.id = j.worker_id
    RETURNING x.id, x.state, x.running_jobs
), a AS (
    SELECT * FROM j WHERE j.state = 'ASSIGNED'
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT %(event_type)s, 'job', j.id, %(actor)s, j.correlation_id, %(payload)s FROM j
    UNION ALL
    {{assignment_events}}
    RETURNING *
), {{outbox_rows}}
SELECT j.*, (SELECT count(*) FROM ob) AS events,
       (SELECT count(pg_notify('hodei_jobs', job_id::text)) FROM q) AS notified
FROM j

-- name: queue_job
-- The whole QueueJob in one statement (its own transaction): the job, its queue row,
-- the JobCreated event with its outbox row, and the NOTIFY that wakes the dispatchers.
-- Eager dispatch: when one of `worker_ids` (READY, connected to this server) has a
-- free slot and no job is waiting in the queue (a waiting job goes first), the job is
-- assigned to it here instead (PENDING -> ASSIGNED in the same transaction, with the
-- JobAssigned and WorkerBusy events the dispatcher would write) and never queued.
-- SKIP LOCKED: a worker row another transaction holds means "queue it as usual".
WITH go AS (SELECT 1 AS one), {{queue_job_body}};

-- name: queue_job_keyed
-- queue_job with an idempotency key: creates nothing and returns no row when the key
-- is taken (see submission_key).
WITH {{submission_key}}, {{queue_job_body}};

-- fragment: queue_job_batch_body
-- QueueJobs' statement after its `go` CTE (one row: create the jobs; none: do nothing).
spec AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(names)b::text[], %(commands)b::jsonb[],
                         %(envs)b::jsonb[], %(working_dirs)b::text[], %(timeouts)b::float8[],
                         %(labels)b::jsonb[], %(max_attempts)b::int[],
                         %(correlation_ids)b::text[], %(payloads)b::jsonb[],
                         %(secret_names)b::jsonb[], %(secret_envs)b::bytea[],
                         %(selectors)b::jsonb[])
        WITH ORDINALITY AS s(id, name, command, env, working_dir, timeout_seconds, labels,
                             max_attempts, correlation_id, payload, secret_names, secret_env,
                             selector, ord)
    WHERE EXISTS (SELECT 1 FROM go)
), j AS (
    INSERT INTO jobs (id, name, command, env, working_dir, timeout_seconds, labels,
                      max_attempts, correlation_id, secret_names, secret_env, owner_token_id,
                      trace_context, selector)
    SELECT id, name, ARRAY(SELECT jsonb_array_elements_text(command)), env, working_dir,
           timeout_seconds, labels, max_attempts, correlation_id,
           ARRAY(SELECT jsonb_array_elements_text(secret_names)), secret_env, %(owner)s::uuid,
           %(trace_context)s::text, selector
    FROM spec ORDER BY ord
    RETURNING *
), q AS (
    INSERT INTO job_queue (job_id) SELECT id FROM spec ORDER BY ord RETURNING job_id
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT %(event_type)s, 'job', id, %(actor)s, correlation_id, payload FROM spec ORDER BY ord
    RETURNING *
), {{outbox_rows}}
SELECT j.*, (SELECT count(*) FROM ob) AS events, (SELECT count(*) FROM q) AS queued,
       (SELECT pg_notify('hodei_jobs', '')) AS notified
FROM j JOIN spec s ON s.id = j.id
ORDER BY s.ord

-- name: queue_job_batch
-- QueueJobs: many jobs, their queue rows (enqueued in request order), their JobCreated
-- events and outbox rows, and one NOTIFY for the dispatchers, in one statement.
WITH go AS (SELECT 1 AS one), {{queue_job_batch_body}};

-- name: queue_job_batch_keyed
-- queue_job_batch with an idempotency key: creates nothing and returns no row when the
-- key is taken (see submission_key).
WITH {{submission_key}}, {{queue_job_batch_body}};

-- name: get_job
SELECT * FROM jobs WHERE id = %(id)s;

-- name: job_owner
SELECT owner_token_id FROM jobs WHERE id = %(id)s;

-- name: get_jobs
SELECT * FROM jobs WHERE id = ANY(%(ids)b::uuid[]);

-- name: get_submission_key
SELECT request_hash, job_ids, created_at FROM submission_keys WHERE key = %(key)s;

-- name: forget_submission_key
-- A key whose jobs were pruned: forgotten, unless a new submission took it meanwhile.
DELETE FROM submission_keys WHERE key = %(key)s AND job_ids = %(job_ids)b::uuid[];

-- fragment: prunable_submission_keys
-- Keys older than the idempotency window (the `age`): a submission would replace them.
SELECT k.key, k.created_at FROM submission_keys k
WHERE k.created_at < now() - make_interval(secs => %(age)s)

-- name: prune_submission_keys
-- One retention batch, oldest first; SKIP LOCKED: a key being replaced by a
-- submission right now is left to it.
WITH k AS (
    {{prunable_submission_keys}}
    ORDER BY k.created_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM submission_keys WHERE key = ANY(ARRAY(SELECT key FROM k)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM k) AS considered;

-- name: count_submission_keys
SELECT count(*) AS deleted FROM ({{prunable_submission_keys}}) k;

-- name: lock_job
SELECT * FROM jobs WHERE id = %(id)s FOR UPDATE;

-- name: list_jobs
-- A page, newest first; `after_created`/`after_id` (both null for the first page)
-- are the last job of the previous page (hodei.server.job_reads.page_token).
-- `owner`: only the jobs that token submitted (a client's view); NULL: every job.
SELECT * FROM jobs
WHERE (cardinality(%(states)b::text[]) = 0 OR state = ANY(%(states)b::text[]))
  AND labels @> %(labels)s::jsonb
  AND (%(owner)s::uuid IS NULL OR owner_token_id = %(owner)s::uuid)
  AND (%(after_created)s::timestamptz IS NULL
       OR created_at < %(after_created)s::timestamptz
       OR (created_at = %(after_created)s::timestamptz AND id > %(after_id)s::uuid))
ORDER BY created_at DESC, id
LIMIT %(limit)s;

-- name: dequeue_job
DELETE FROM job_queue WHERE job_id = %(id)s;

-- name: enqueue_job
INSERT INTO job_queue (job_id) VALUES (%(id)s)
ON CONFLICT (job_id) DO NOTHING;

-- name: notify_jobs
SELECT pg_notify('hodei_jobs', %(id)s::text);

-- name: dispatch_jobs
-- One dispatcher cycle in one statement (one round trip, its own transaction):
-- lock this server's READY workers that have free slots, take up to `limit` queued
-- jobs (SKIP LOCKED: another dispatcher's jobs are left to it), deal them
-- round-robin over the free slots (one job per worker before doubling up), assign
-- them (PENDING -> ASSIGNED, attempts + 1), update each worker's occupancy (BUSY
-- once its slots are full) and write the JobAssigned and WorkerBusy events with
-- their outbox rows. Waits for worker rows a finishing job holds (a slot is being
-- freed) rather than skipping them. With nothing queued it locks no worker row: a
-- cycle woken by a freed slot must not make a QueueJob arriving meanwhile skip that
-- worker (eager dispatch takes only unlocked rows) or make a result wait.
WITH w AS (
    -- A worker's capacity is its slots plus the jobs it prefetches (migration 0013).
    SELECT id, slots + prefetch AS slots, running_jobs FROM workers
    WHERE state = 'READY' AND server_id = %(server_id)s AND id = ANY(%(ids)b::uuid[])
      AND running_jobs < slots + prefetch AND EXISTS (SELECT 1 FROM job_queue)
    FOR UPDATE
), slot AS (
    SELECT w.id AS worker_id, row_number() OVER (ORDER BY k, w.running_jobs, w.id) AS rank
    FROM w CROSS JOIN LATERAL generate_series(1, w.slots - w.running_jobs) AS k
), picked AS (
    -- Only rows of PENDING jobs: a stray row (its job finished or running) is left to
    -- the recovery loop, which removes it with a trace (repair_stray_queue_rows)
    -- instead of this statement deleting it silently.
    -- Jobs with a selector are dealt by dispatch_selected_jobs (each needs a worker
    -- whose labels match); this statement deals the others over any free slot.
    -- A subquery per queue row rather than EXISTS, which the planner may turn into a
    -- join: right after a bulk QueueJobs its statistics were stale (21 PENDING jobs
    -- estimated), so it joined every PENDING job and sorted the whole queue, 270 ms a
    -- cycle at 100,000 queued (33 jobs/s). Per row, in the queue's index order, the
    -- scan stops at the LIMIT whatever the statistics say.
    SELECT q.job_id FROM job_queue q
    WHERE (SELECT p.state = 'PENDING' AND p.selector = '{}'::jsonb
           FROM jobs p WHERE p.id = q.job_id)
    ORDER BY q.priority DESC, q.enqueued_at
    LIMIT least((SELECT count(*) FROM slot), %(limit)s)
    FOR UPDATE OF q SKIP LOCKED
), gone AS (
    -- By primary key (= ANY of an array): a join here hashed the whole queue.
    DELETE FROM job_queue q WHERE q.job_id = ANY(ARRAY(SELECT job_id FROM picked))
    RETURNING q.job_id, q.priority, q.enqueued_at
), dealt AS (
    SELECT g.job_id, g.rank, g.enqueued_at, s.worker_id
    FROM (SELECT job_id, enqueued_at,
                 row_number() OVER (ORDER BY priority DESC, enqueued_at) AS rank
          FROM gone) g
    JOIN slot s USING (rank)
), a AS (
    UPDATE jobs j SET state = 'ASSIGNED', attempts = j.attempts + 1, worker_id = d.worker_id,
           assigned_at = now(), started_at = NULL,
           ack_deadline = now() + make_interval(secs => %(ack_timeout)s),
           attempt_lines = 0, exit_code = NULL, error = NULL, updated_at = now()
    FROM dealt d
    -- The = ANY keeps this on the primary key; with only the join, the planner read
    -- every PENDING job through the state index.
    WHERE j.id = ANY(ARRAY(SELECT job_id FROM dealt)) AND j.id = d.job_id
      AND j.state = 'PENDING'
    -- enqueued_at: the queue wait metric (hodei_job_queue_wait_seconds)
    RETURNING j.*, d.rank, d.enqueued_at
), per_worker AS (
    SELECT worker_id, count(*)::int AS n, (array_agg(id ORDER BY rank))[1] AS first_job
    FROM a GROUP BY worker_id
), wu AS (
    UPDATE workers x SET running_jobs = x.running_jobs + p.n,
           state = CASE WHEN x.running_jobs + p.n >= x.slots + x.prefetch THEN 'BUSY' ELSE x.state END,
           current_job_id = coalesce(x.current_job_id, p.first_job), updated_at = now()
    FROM per_worker p WHERE x.id = p.worker_id
    RETURNING x.id, x.state, x.running_jobs
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    {{assignment_events}}
    RETURNING *
), {{outbox_rows}}
SELECT a.*, (SELECT count(*) FROM ob) AS events FROM a ORDER BY a.rank;

-- name: dispatch_selected_jobs
-- The dispatcher's second statement, for queued jobs with a selector: one job per
-- statement (the caller repeats it up to the batch size), the oldest whose selector
-- some READY worker of this server with a free slot matches (labels @> selector), on
-- the least loaded such worker. The rest (assign, occupancy, events) is dispatch_jobs'.
WITH picked AS (
    SELECT q.job_id, m.worker_id FROM jobs p
    JOIN job_queue q ON q.job_id = p.id
    CROSS JOIN LATERAL (
        SELECT x.id AS worker_id FROM workers x
        WHERE x.state = 'READY' AND x.server_id = %(server_id)s AND x.id = ANY(%(ids)b::uuid[])
          AND x.running_jobs < x.slots + x.prefetch AND x.labels @> p.selector
        ORDER BY x.running_jobs, x.id LIMIT 1
    ) m
    WHERE p.state = 'PENDING' AND p.selector <> '{}'::jsonb
    ORDER BY q.priority DESC, q.enqueued_at
    LIMIT 1
    FOR UPDATE OF q SKIP LOCKED
), w AS (
    -- Checked again once locked: a result or another dispatcher may have filled it.
    SELECT id FROM workers
    WHERE id = (SELECT worker_id FROM picked) AND state = 'READY' AND running_jobs < slots + prefetch
    FOR UPDATE
), gone AS (
    DELETE FROM job_queue q
    WHERE q.job_id = ANY(ARRAY(SELECT job_id FROM picked)) AND EXISTS (SELECT 1 FROM w)
    RETURNING q.job_id, q.priority, q.enqueued_at
), dealt AS (
    SELECT g.job_id, 1::bigint AS rank, g.enqueued_at, p.worker_id
    FROM gone g JOIN picked p USING (job_id) JOIN w ON w.id = p.worker_id
), a AS (
    UPDATE jobs j SET state = 'ASSIGNED', attempts = j.attempts + 1, worker_id = d.worker_id,
           assigned_at = now(), started_at = NULL,
           ack_deadline = now() + make_interval(secs => %(ack_timeout)s),
           attempt_lines = 0, exit_code = NULL, error = NULL, updated_at = now()
    FROM dealt d
    -- The = ANY keeps this on the primary key; with only the join, the planner read
    -- every PENDING job through the state index.
    WHERE j.id = ANY(ARRAY(SELECT job_id FROM dealt)) AND j.id = d.job_id
      AND j.state = 'PENDING'
    -- enqueued_at: the queue wait metric (hodei_job_queue_wait_seconds)
    RETURNING j.*, d.rank, d.enqueued_at
), per_worker AS (
    SELECT worker_id, count(*)::int AS n, (array_agg(id ORDER BY rank))[1] AS first_job
    FROM a GROUP BY worker_id
), wu AS (
    UPDATE workers x SET running_jobs = x.running_jobs + p.n,
           state = CASE WHEN x.running_jobs + p.n >= x.slots + x.prefetch THEN 'BUSY' ELSE x.state END,
           current_job_id = coalesce(x.current_job_id, p.first_job), updated_at = now()
    FROM per_worker p WHERE x.id = p.worker_id
    RETURNING x.id, x.state, x.running_jobs
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    {{assignment_events}}
    RETURNING *
), {{outbox_rows}}
SELECT a.*, (SELECT count(*) FROM ob) AS events FROM a ORDER BY a.rank;

-- name: ack_current_job
UPDATE jobs SET ack_deadline = NULL, updated_at = now()
WHERE id = %(id)s AND attempts = %(attempt)s AND worker_id = %(worker_id)s AND state = 'ASSIGNED'
RETURNING *;

-- name: ack_jobs_fenced
-- Accepted JobAcks of one worker stream, together: the ack deadline cleared for each
-- ASSIGNED attempt this worker holds. A ref that matches no row (a repeat, a
-- superseded attempt) is left out; the caller applies it the checked way.
UPDATE jobs SET ack_deadline = NULL, updated_at = now()
FROM unnest(%(ids)b::uuid[], %(attempts)b::int[]) AS a(id, attempt)
WHERE jobs.id = ANY(%(ids)b::uuid[]) AND jobs.id = a.id AND jobs.attempts = a.attempt
  AND jobs.worker_id = %(worker_id)s AND jobs.state = 'ASSIGNED'
RETURNING jobs.*;

-- name: start_job
-- `started_at`: when the worker started the process (reported_start).
WITH {{worker_clock_shift}}
UPDATE jobs SET state = 'RUNNING', ack_deadline = NULL, updated_at = now(),
       started_at = {{reported_start}}
FROM (SELECT %(started_at)s::timestamptz AS started_at) rep
WHERE jobs.id = %(id)s RETURNING jobs.*;

-- name: start_jobs_fenced
-- ASSIGNED -> RUNNING for the attempts this worker holds, with their events, in one
-- statement: the JobStarted messages one worker stream carried together (often one).
-- A ref that matches no row is left out; the caller finds out why
-- (hodei.server.results).
-- started_at: when the worker started each process (JobStarted.started_at,
-- reported_start).
WITH rep AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(attempts)b::int[], %(payloads)b::jsonb[],
                         %(started_ats)b::timestamptz[])
        AS rep(id, attempt, payload, started_at)
), {{worker_clock_shift}}, j AS (
    UPDATE jobs SET state = 'RUNNING', ack_deadline = NULL, updated_at = now(),
           started_at = {{reported_start}}
    FROM rep
    -- The = ANY keeps this on the primary key (see dispatch_jobs). The literal state
    -- list (what jobs_active_worker_idx holds; from_states is a subset) lets the plan
    -- PostgreSQL caches use that index: without it every execution was planned anew
    -- (pg_prepared_statements: 0 generic plans, 126 custom).
    WHERE jobs.id = ANY(%(ids)b::uuid[]) AND jobs.id = rep.id AND jobs.attempts = rep.attempt
      AND jobs.worker_id = %(worker_id)s AND jobs.state IN ('ASSIGNED', 'RUNNING')
      AND jobs.state = ANY(%(from_states)b::text[])
    RETURNING jobs.*, rep.payload AS event_payload
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT %(event_type)s, 'job', j.id, %(actor)s, j.correlation_id, j.event_payload FROM j
    RETURNING *
), {{outbox_rows}}
SELECT j.*, (SELECT count(*) FROM ob) AS events FROM j;

-- name: finish_jobs_fenced
-- Results of one worker in one statement: each job's final state (fenced by attempt
-- and worker, only once all of the attempt's lines are persisted, only from the
-- states the domain allows, passed per row as `sources`), the worker's freed slots
-- (BUSY -> READY when it was full) and the events with their outbox rows. Job rows
-- are locked before the worker row (lock order: queue, job, worker). A result that
-- matches no row is left out; the caller finds out why (hodei.server.results).
-- A result with a `started_at` also reports its attempt's start (JobResult.started_at:
-- the process ended before the worker wrote a JobStarted): a job still ASSIGNED gets
-- its start time (reported_start, as start_jobs_fenced sets it) and a JobStarted
-- event, with its `start_payload`, before the event of its end.
WITH r AS (
    SELECT * FROM unnest(%(ids)b::uuid[], %(attempts)b::int[], %(states)b::text[],
                         %(exit_codes)b::int[], %(errors)b::text[], %(total_lines)b::bigint[],
                         %(sources)b::text[], %(event_types)b::text[], %(payloads)b::jsonb[],
                         %(lines_read)b::bigint[], %(bytes_read)b::bigint[],
                         %(started_ats)b::timestamptz[], %(start_payloads)b::jsonb[])
        AS r(id, attempt, state, exit_code, error, total_lines, sources, event_type, payload,
             lines_read, bytes_read, started_at, start_payload)
), rep AS (
    -- Each result with its job's state before this statement, and whether it records
    -- the start too (`starts`).
    SELECT r.*, old.state AS previous,
           old.state = 'ASSIGNED' AND r.started_at IS NOT NULL AS starts
    FROM r JOIN (SELECT id, state FROM jobs WHERE id = ANY(%(ids)b::uuid[])) old USING (id)
), {{worker_clock_shift}}, j AS (
    UPDATE jobs SET state = rep.state, exit_code = rep.exit_code, error = rep.error,
           finished_at = now(), ack_deadline = NULL, updated_at = now(),
           output_lines_read = rep.lines_read, output_bytes_read = rep.bytes_read,
           started_at = CASE WHEN rep.starts THEN {{reported_start}} ELSE jobs.started_at END
    FROM rep
    WHERE jobs.id = ANY(%(ids)b::uuid[]) AND jobs.id = rep.id
      AND jobs.attempts = rep.attempt AND jobs.worker_id = %(worker_id)s
      AND jobs.state = ANY(string_to_array(rep.sources, ','))
      AND jobs.attempt_lines >= rep.total_lines
    RETURNING jobs.*, rep.event_type, rep.payload AS event_payload,
              CASE WHEN rep.starts THEN rep.start_payload END AS start_payload,
              CASE WHEN rep.starts THEN 'RUNNING' ELSE rep.previous END AS previous
), lw AS (
    SELECT w.id, w.state FROM workers w
    WHERE w.id = %(worker_id)s AND EXISTS (SELECT 1 FROM j)
    FOR UPDATE
), wu AS (
    UPDATE workers w SET running_jobs = greatest(w.running_jobs - (SELECT count(*) FROM j), 0),
           state = CASE WHEN w.state IN ('READY', 'BUSY') THEN
                       CASE WHEN w.running_jobs - (SELECT count(*) FROM j) >= w.slots + w.prefetch
                            THEN 'BUSY' ELSE 'READY' END
                   ELSE w.state END,
           -- This statement still sees the finished jobs as active: leave them out.
           current_job_id = CASE WHEN w.current_job_id = ANY(ARRAY(SELECT id FROM j)) THEN
                   (SELECT x.id FROM jobs x
                     WHERE x.worker_id = w.id AND x.state IN ('ASSIGNED', 'RUNNING')
                       AND x.id <> ALL(ARRAY(SELECT id FROM j))
                     ORDER BY x.assigned_at LIMIT 1)
               ELSE w.current_job_id END,
           updated_at = now()
    FROM lw WHERE w.id = lw.id
    RETURNING w.id, w.state, w.running_jobs, lw.state AS previous
), ev AS (
    -- In order: a job's start (a result that reported it) before its end.
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT event_type, aggregate_type, aggregate_id, actor, correlation_id, payload FROM (
        SELECT 0 AS step, %(started_event)s AS event_type, 'job' AS aggregate_type,
               j.id AS aggregate_id, %(actor)s AS actor, j.correlation_id, j.start_payload AS payload
        FROM j WHERE j.start_payload IS NOT NULL
        UNION ALL
        SELECT 1, j.event_type, 'job', j.id, %(actor)s, j.correlation_id,
               j.event_payload || jsonb_build_object('previous', j.previous)
        FROM j
        UNION ALL
        SELECT 2, CASE wu.state WHEN 'BUSY' THEN %(busy_event)s ELSE %(ready_event)s END,
               'worker', wu.id, %(actor)s, '',
               jsonb_build_object('running_jobs', wu.running_jobs, 'previous', wu.previous)
        FROM wu WHERE wu.state <> wu.previous
    ) e ORDER BY e.step, e.aggregate_id
    RETURNING *
), {{outbox_rows}}
SELECT j.*, (SELECT count(*) FROM ob) AS events FROM j;

-- name: finish_job
UPDATE jobs SET state = %(state)s, exit_code = %(exit_code)s, error = %(error)s,
       finished_at = now(), ack_deadline = NULL, updated_at = now()
WHERE id = %(id)s RETURNING *;

-- name: requeue_job
-- Back to PENDING for another attempt: the worker is cleared so that its late
-- logs and results no longer match (fencing).
UPDATE jobs SET state = 'PENDING', worker_id = NULL, ack_deadline = NULL, error = %(error)s,
       updated_at = now()
WHERE id = %(id)s RETURNING *;

-- name: request_cancel
UPDATE jobs SET cancel_requested_at = coalesce(cancel_requested_at, now()), updated_at = now()
WHERE id = %(id)s RETURNING *;

-- name: record_output_read
-- What the worker read of the attempt's output, with its result (beside attempt_lines).
UPDATE jobs SET output_lines_read = %(lines)s, output_bytes_read = %(bytes)s WHERE id = %(id)s;

-- name: advance_log_cursor
-- `rows` stored, for `lines` of the worker's: more rows than lines when the server
-- split a long line (hodei.server.logs).
UPDATE jobs SET log_seq = log_seq + %(rows)s, attempt_lines = attempt_lines + %(lines)s
WHERE id = %(id)s
RETURNING log_seq, attempt_lines;

-- name: copy_logs
-- Binary COPY of one batch (hodei.server.logs, encoded by hodei.db.copy_format in
-- this column order); the primary key still refuses a duplicate sequence.
COPY job_logs (job_id, sequence, attempt, is_stderr, ts, line) FROM STDIN (FORMAT BINARY);

-- name: get_logs
-- A page: at most `limit` lines and `max_bytes` bytes (each line costing its bytes
-- plus `overhead`), at least one line. octet_length reads a TOASTed line's size
-- without decompressing it; the lines past the budget are never sent.
SELECT job_id, sequence, attempt, is_stderr, line, ts_us
FROM (
    SELECT job_id, sequence, attempt, is_stderr, line,
           (extract(epoch FROM ts) * 1000000)::int8 AS ts_us,
           row_number() OVER w AS n,
           sum(octet_length(line) + %(overhead)s) OVER w AS upto
    FROM job_logs
    WHERE job_id = %(id)s AND sequence > %(after)s
    WINDOW w AS (ORDER BY sequence)
    ORDER BY sequence
    LIMIT %(limit)s
) page
WHERE n = 1 OR upto <= %(max_bytes)s
ORDER BY sequence;

-- name: job_log_state
SELECT state, log_seq FROM jobs WHERE id = %(id)s;

-- name: worker_jobs
SELECT * FROM jobs WHERE worker_id = %(worker_id)s AND state IN ('ASSIGNED', 'RUNNING')
ORDER BY assigned_at;

-- name: expired_acks
SELECT id, worker_id, attempts FROM jobs
WHERE state = 'ASSIGNED' AND ack_deadline < now() LIMIT 100;

-- name: overdue_running
-- Jobs past their timeout plus a grace period: the worker did not report in time.
SELECT id FROM jobs
WHERE state = 'RUNNING' AND timeout_seconds IS NOT NULL
  AND started_at + make_interval(secs => timeout_seconds + %(grace)s) < now()
LIMIT 100;

-- name: overdue_cancels
SELECT id FROM jobs
WHERE state IN ('ASSIGNED', 'RUNNING') AND cancel_requested_at IS NOT NULL
  AND cancel_requested_at + make_interval(secs => %(grace)s) < now()
LIMIT 100;

-- name: insert_worker
INSERT INTO workers (id, name, hostname, pid, version, labels, slots, token_id, secret_hash)
VALUES (%(id)s, %(name)s, %(hostname)s, %(pid)s, %(version)s, %(labels)s, %(slots)s,
        %(token_id)s, %(secret_hash)s)
RETURNING *;

-- name: worker_binding
-- What a Hello is checked against (hodei.server.api.workers_api).
SELECT id, state, token_id, secret_hash FROM workers WHERE id = %(id)s;

-- name: lock_worker
SELECT * FROM workers WHERE id = %(id)s FOR UPDATE;

-- name: lock_worker_with_jobs
-- The worker row (locked) and the jobs it holds now.
SELECT w.state, w.slots, w.prefetch, w.running_jobs, w.current_job_id,
       (SELECT count(*) FROM jobs j
         WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING')) AS active,
       (SELECT j.id FROM jobs j
         WHERE j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING')
         ORDER BY j.assigned_at LIMIT 1) AS first_job
FROM workers w WHERE w.id = %(id)s FOR UPDATE OF w;

-- name: get_worker
SELECT * FROM workers WHERE id = %(id)s;

-- name: list_workers
-- `owner`: only that token's jobs among each worker's running ones (a client sees the
-- fleet, not which jobs of others it runs); NULL: all of them.
SELECT w.*, coalesce(array_agg(j.id::text ORDER BY j.assigned_at)
                         FILTER (WHERE j.id IS NOT NULL AND (%(owner)s::uuid IS NULL
                                                             OR j.owner_token_id = %(owner)s::uuid)),
                     '{}') AS running_job_ids
FROM workers w
LEFT JOIN jobs j ON j.worker_id = w.id AND j.state IN ('ASSIGNED', 'RUNNING')
WHERE %(include_gone)s OR w.state NOT IN ('TERMINATED', 'LOST')
GROUP BY w.id
ORDER BY w.registered_at;

-- name: update_worker
UPDATE workers SET state = %(state)s, running_jobs = %(running_jobs)s,
       current_job_id = %(current_job_id)s, updated_at = now()
WHERE id = %(id)s RETURNING *;

-- name: ping
-- The database watch (hodei.server.db_watch): is the database there at all.
SELECT 1;

-- name: set_worker_state
UPDATE workers SET state = %(state)s, updated_at = now() WHERE id = %(id)s RETURNING *;

-- name: connect_worker
UPDATE workers SET state = %(state)s, running_jobs = %(running_jobs)s,
       current_job_id = %(current_job_id)s, slots = %(slots)s, prefetch = %(prefetch)s,
       server_id = %(server_id)s,
       connected_at = now(), last_heartbeat = now(), updated_at = now(),
       stream_closed_at = NULL,
       -- Hello.sent_at: the worker's clock (see heartbeat_worker).
       clock_skew_s = CASE WHEN %(sent_at)s::timestamptz IS NULL THEN clock_skew_s
           ELSE extract(epoch FROM %(sent_at)s::timestamptz - clock_timestamp())::float8 END,
       clock_measured_at = CASE WHEN %(sent_at)s::timestamptz IS NULL THEN clock_measured_at
           ELSE clock_timestamp() END
WHERE id = %(id)s RETURNING *;

-- name: disconnect_worker
-- The stream ended: no server holds it, and since when (hodei-diagnose names a worker
-- that still owns jobs without a stream).
UPDATE workers SET server_id = NULL, stream_closed_at = clock_timestamp(), updated_at = now()
WHERE id = %(id)s AND server_id = %(server_id)s;

-- name: disconnect_server_workers
UPDATE workers SET server_id = NULL, stream_closed_at = clock_timestamp(), updated_at = now()
WHERE server_id = %(server_id)s;

-- name: heartbeat_worker
-- `sent_at`: the worker's clock when it sent the heartbeat (NULL: an older worker);
-- the skew is measured against this database's clock, so the network's one-way delay
-- (milliseconds) is in it too.
UPDATE workers SET last_heartbeat = now(),
       clock_skew_s = CASE WHEN %(sent_at)s::timestamptz IS NULL THEN clock_skew_s
           ELSE extract(epoch FROM %(sent_at)s::timestamptz - clock_timestamp())::float8 END,
       clock_measured_at = CASE WHEN %(sent_at)s::timestamptz IS NULL THEN clock_measured_at
           ELSE clock_timestamp() END
WHERE id = %(id)s AND server_id = %(server_id)s;

-- name: set_worker_prefetch
UPDATE workers SET prefetch = %(prefetch)s, updated_at = now()
WHERE id = %(id)s AND server_id = %(server_id)s RETURNING id;

-- name: repair_stray_queue_rows
-- Queue rows whose job is not PENDING (a job_queue row put back for a finished job, a
-- bug, a hand edit): the dispatcher skips them; this removes them, each with a
-- `Repaired` event (and its outbox row) in the same statement, so the repair is
-- counted durably and hodei-diagnose can report it. Locked rows are left to the next
-- sweep (a transaction is dequeuing them itself).
WITH stray AS (
    SELECT q.job_id, j.state, j.correlation_id FROM job_queue q JOIN jobs j ON j.id = q.job_id
    WHERE j.state <> 'PENDING'
    LIMIT %(limit)s
    FOR UPDATE OF q SKIP LOCKED
), gone AS (
    DELETE FROM job_queue q WHERE q.job_id = ANY(ARRAY(SELECT job_id FROM stray))
    RETURNING q.job_id, q.enqueued_at
), ev AS (
    INSERT INTO domain_events (event_type, aggregate_type, aggregate_id, actor, correlation_id, payload)
    SELECT %(event_type)s, 'job', g.job_id, %(actor)s, s.correlation_id,
           jsonb_build_object('repair', 'stray_queue_row', 'state', s.state,
                              'enqueued_at', g.enqueued_at)
    FROM gone g JOIN stray s USING (job_id)
    RETURNING *
), {{outbox_rows}}
SELECT ev.aggregate_id AS job_id, ev.payload->>'state' AS state, ev.correlation_id,
       (SELECT count(*) FROM ob) AS events
FROM ev ORDER BY ev.id;

-- name: silent_workers
SELECT id FROM workers
WHERE state IN ('CREATING', 'READY', 'BUSY', 'DRAINING')
  AND coalesce(last_heartbeat, registered_at) < now() - make_interval(secs => %(silence)s)
LIMIT 100;

-- name: queue_summary
SELECT count(*) AS depth,
       coalesce(extract(epoch FROM now() - min(enqueued_at)), 0)::float8 AS oldest_age_seconds
FROM job_queue;

-- name: queue_jobs
-- `owner`: only that token's queued jobs (the depth and the counts stay the whole
-- queue's); NULL: every one.
SELECT q.job_id, q.enqueued_at, j.attempts, j.name FROM job_queue q JOIN jobs j ON j.id = q.job_id
WHERE %(owner)s::uuid IS NULL OR j.owner_token_id = %(owner)s::uuid
ORDER BY q.priority DESC, q.enqueued_at LIMIT %(limit)s;

-- name: job_state_counts
SELECT state, count(*) AS count FROM jobs GROUP BY state ORDER BY state;

-- name: upsert_server_status
INSERT INTO server_status (server_id, version, started_at, heartbeat_at, dispatcher_enabled,
                           outbox_relay_enabled)
VALUES (%(server_id)s, %(version)s, now(), now(), %(dispatcher_enabled)s, %(outbox_relay_enabled)s)
ON CONFLICT (server_id) DO UPDATE SET version = EXCLUDED.version, started_at = now(),
    heartbeat_at = now(), dispatcher_enabled = EXCLUDED.dispatcher_enabled,
    outbox_relay_enabled = EXCLUDED.outbox_relay_enabled, stopped_at = NULL;

-- name: server_heartbeat
-- host_now: this server's own clock, so that a doctor can compare it with the database's.
UPDATE server_status SET heartbeat_at = now(),
       clock_skew_s = extract(epoch FROM %(host_now)s::timestamptz - clock_timestamp())
WHERE server_id = %(server_id)s;

-- name: record_dispatch_cycle
UPDATE server_status SET dispatcher_last_cycle_at = now(),
       dispatcher_cycles = dispatcher_cycles + %(cycles)s,
       dispatched_total = dispatched_total + %(dispatched)s,
       dispatcher_last_dispatch_at = CASE WHEN %(dispatched)s > 0 THEN now()
                                          ELSE dispatcher_last_dispatch_at END
WHERE server_id = %(server_id)s;

-- name: server_listening
UPDATE server_status SET listen_address = %(address)s WHERE server_id = %(server_id)s;

-- name: dispatcher_failed
UPDATE server_status SET dispatcher_last_error = left(%(error)s, 500),
       dispatcher_last_error_at = now()
WHERE server_id = %(server_id)s;

-- name: server_stopped
UPDATE server_status SET stopped_at = now(), heartbeat_at = now() WHERE server_id = %(server_id)s;

-- name: get_server_status
SELECT * FROM server_status WHERE server_id = %(server_id)s;

-- name: connected_worker_count
SELECT count(*) AS n FROM workers WHERE server_id = %(server_id)s;

-- name: schema_version
SELECT coalesce(max(version), 0) AS version FROM schema_migrations;

-- name: async_commit
-- This transaction's commit does not wait for its WAL flush (see the callers for why
-- losing it in a crash is harmless).
SELECT set_config('synchronous_commit', 'off', true) AS synchronous_commit;

-- name: publish_outbox
-- One round of the outbox relay in one statement (its own transaction): claim the
-- oldest unpublished rows (SKIP LOCKED: another relay's rows are left to it), send
-- each as a NOTIFY on `channel` in id order (delivered at commit, in that order),
-- as {"outbox_id", "topic", "event"} or, at 8000 bytes and more (PostgreSQL's NOTIFY
-- limit), {"outbox_id", "topic", "truncated": true}, and mark them published.
-- The commit does not wait for its WAL flush: lost in a crash, the rows are only
-- published again (delivery is at-least-once; consumers dedupe on outbox_id).
WITH batch AS (
    SELECT id, topic, payload FROM outbox_events
    WHERE published_at IS NULL ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), message AS (
    SELECT id, CASE WHEN octet_length(full_text) < %(max_payload)s THEN full_text
                    ELSE json_build_object('outbox_id', id, 'topic', topic,
                                           'truncated', true)::text END AS body
    FROM (SELECT id, topic,
                 json_build_object('outbox_id', id, 'topic', topic, 'event', payload)::text
                     AS full_text
          FROM batch) b
), sent AS (
    SELECT count(pg_notify(%(channel)s, body)) AS n
    FROM (SELECT body FROM message ORDER BY id) ordered
), marked AS (
    UPDATE outbox_events o SET published_at = clock_timestamp(),
           publish_attempts = o.publish_attempts + 1
    FROM batch WHERE o.id = batch.id
    RETURNING o.id
), status AS (
    -- A diagnostic, written at most once a second (the caller decides), in this
    -- transaction: a reader that saw the NOTIFYs also sees it.
    UPDATE server_status SET outbox_last_publish_at = now()
    WHERE server_id = %(server_id)s AND %(record_status)s AND EXISTS (SELECT 1 FROM batch)
)
SELECT (SELECT count(*) FROM marked) AS published, (SELECT n FROM sent) AS notified,
       set_config('synchronous_commit', 'off', true) AS synchronous_commit;

-- name: claim_outbox
-- The nats transport's round (hodei.server.outbox_nats), in one transaction: claim the
-- oldest unpublished rows (SKIP LOCKED: another relay's rows are left to it) and hold
-- them while JetStream acknowledges each; only the acknowledged are then marked
-- (mark_outbox_published), in the same transaction. A relay killed between the ack and
-- the commit leaves them unpublished: published again, the stream drops the copies
-- (the message id is the event id). The body is the NOTIFY path's, never truncated.
SELECT id, event_id, topic, aggregate_id, publish_attempts,
       payload ->> 'event_type' AS event_type,
       json_build_object('outbox_id', id, 'topic', topic, 'event', payload)::text AS body
FROM outbox_events
WHERE published_at IS NULL ORDER BY id LIMIT %(limit)s
FOR UPDATE SKIP LOCKED;

-- name: mark_outbox_published
UPDATE outbox_events SET published_at = clock_timestamp(),
       publish_attempts = publish_attempts + 1, last_error = NULL
WHERE id = ANY(%(ids)s::bigint[]);

-- name: mark_outbox_refused
-- Rows JetStream refused (too large, rejected): counted, with the reason; each is
-- tried again until broker.max_attempts, then dead-lettered (mark_outbox_dead).
UPDATE outbox_events o SET publish_attempts = o.publish_attempts + 1, last_error = r.error
FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS r(id, error)
WHERE o.id = r.id;

-- name: mark_outbox_dead
-- Rows published to the dead-letter subject instead: out of the backlog (published_at)
-- and marked (dead_at) for hodei-diagnose.
UPDATE outbox_events o SET published_at = clock_timestamp(), dead_at = clock_timestamp(),
       publish_attempts = o.publish_attempts + 1, last_error = r.error
FROM unnest(%(ids)s::bigint[], %(errors)s::text[]) AS r(id, error)
WHERE o.id = r.id;

-- name: record_outbox_publish
-- The nats transport's outbox_last_publish_at (the NOTIFY path writes it in publish_outbox).
UPDATE server_status SET outbox_last_publish_at = now() WHERE server_id = %(server_id)s;

-- fragment: unpublished_events_of_x
-- Retention (hodei.db.retention): deleting an event deletes its outbox rows (ON DELETE
-- CASCADE), so a job or worker with an unpublished outbox row is kept until it is published.
EXISTS (SELECT 1 FROM domain_events e JOIN outbox_events o ON o.event_id = e.id
        WHERE e.aggregate_id = x.id AND o.published_at IS NULL)

-- fragment: prunable_jobs
-- Finished jobs that ended more than `age` seconds ago (jobs_finished_at_idx).
SELECT x.id, x.finished_at, x.log_seq FROM jobs x
WHERE x.finished_at < now() - make_interval(secs => %(age)s)
  AND x.state IN ('SUCCEEDED', 'FAILED', 'CANCELLED', 'TIMED_OUT')
  AND NOT {{unpublished_events_of_x}}

-- name: prune_jobs
-- Whole jobs, oldest first, with their log lines and events; the batch stops before
-- the job whose lines would take it past the `lines` budget (a job with more goes
-- alone), and the caller runs another. SKIP LOCKED: never waits for the hot path or for
-- another pruner (it deletes those rows itself).
WITH candidate AS (
    {{prunable_jobs}}
    ORDER BY x.finished_at
    LIMIT %(limit)s
    FOR UPDATE OF x SKIP LOCKED
), j AS (
    SELECT id FROM (
        SELECT id, sum(log_seq) OVER (ORDER BY finished_at, id) AS lines,
               row_number() OVER (ORDER BY finished_at, id) AS n
        FROM candidate
    ) c
    WHERE c.lines <= %(lines)s OR c.n = 1
), logs AS (
    DELETE FROM job_logs WHERE job_id = ANY(ARRAY(SELECT id FROM j)) RETURNING 1
), events AS (
    DELETE FROM domain_events WHERE aggregate_id = ANY(ARRAY(SELECT id FROM j)) RETURNING 1
), gone AS (
    DELETE FROM jobs WHERE id = ANY(ARRAY(SELECT id FROM j)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM candidate) AS considered,
       (SELECT count(*) FROM logs) AS log_lines, (SELECT count(*) FROM events) AS events;

-- name: count_jobs
WITH j AS ({{prunable_jobs}})
SELECT (SELECT count(*) FROM j) AS deleted,
       (SELECT count(*) FROM job_logs WHERE job_id = ANY(ARRAY(SELECT id FROM j))) AS log_lines,
       (SELECT count(*) FROM domain_events
         WHERE aggregate_id = ANY(ARRAY(SELECT id FROM j))) AS events;

-- fragment: prunable_outbox
-- Outbox rows published more than `age` seconds ago (outbox_events_published_idx);
-- an unpublished row is never deleted here.
SELECT id FROM outbox_events
WHERE published_at < now() - make_interval(secs => %(age)s)

-- name: prune_outbox
WITH o AS (
    {{prunable_outbox}}
    ORDER BY published_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), gone AS (
    DELETE FROM outbox_events WHERE id = ANY(ARRAY(SELECT id FROM o)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM o) AS considered;

-- name: count_outbox
SELECT count(*) AS deleted FROM ({{prunable_outbox}}) o;

-- fragment: prunable_workers
-- TERMINATED and LOST workers gone for more than `age` seconds that hold no job.
SELECT x.id FROM workers x
WHERE x.state IN ('TERMINATED', 'LOST')
  AND x.updated_at < now() - make_interval(secs => %(age)s)
  AND NOT EXISTS (SELECT 1 FROM jobs j
                  WHERE j.worker_id = x.id AND j.state IN ('ASSIGNED', 'RUNNING'))
  AND NOT {{unpublished_events_of_x}}

-- fragment: prunable_registrations
-- Registrations that never opened a stream (CREATING, or LOST by the recovery loop
-- since), more than `age` seconds old.
SELECT x.id FROM workers x
WHERE x.state IN ('CREATING', 'LOST') AND x.connected_at IS NULL
  AND x.registered_at < now() - make_interval(secs => %(age)s)
  AND NOT {{unpublished_events_of_x}}

-- fragment: delete_workers_w
-- The workers of the `w` CTE (locked) and their events.
events AS (
    DELETE FROM domain_events WHERE aggregate_id = ANY(ARRAY(SELECT id FROM w)) RETURNING 1
), gone AS (
    DELETE FROM workers WHERE id = ANY(ARRAY(SELECT id FROM w)) RETURNING 1
)
SELECT (SELECT count(*) FROM gone) AS deleted, (SELECT count(*) FROM w) AS considered,
       (SELECT count(*) FROM events) AS events

-- name: prune_workers
WITH w AS (
    {{prunable_workers}}
    LIMIT %(limit)s
    FOR UPDATE OF x SKIP LOCKED
), {{delete_workers_w}};

-- name: count_workers
WITH w AS ({{prunable_workers}})
SELECT (SELECT count(*) FROM w) AS deleted,
       (SELECT count(*) FROM domain_events
         WHERE aggregate_id = ANY(ARRAY(SELECT id FROM w))) AS events;

-- name: prune_registrations
WITH w AS (
    {{prunable_registrations}}
    LIMIT %(limit)s
    FOR UPDATE OF x SKIP LOCKED
), {{delete_workers_w}};

-- name: count_registrations
WITH w AS ({{prunable_registrations}})
SELECT (SELECT count(*) FROM w) AS deleted,
       (SELECT count(*) FROM domain_events
         WHERE aggregate_id = ANY(ARRAY(SELECT id FROM w))) AS events;

-- ---- api tokens (hodei.server.tokens) -----------------------------------------

-- name: insert_token
-- max_registrations and register_within are optional (the scaler's tokens).
INSERT INTO api_tokens (id, name, role, secret_hash, expires_at, max_registrations,
                        register_by)
VALUES (%(id)s, %(name)s, %(role)s, %(secret_hash)s,
        CASE WHEN %(expires_in)s::float8 IS NULL THEN NULL
             ELSE now() + make_interval(secs => %(expires_in)s::float8) END,
        %(max_registrations)s::int,
        CASE WHEN %(register_within)s::float8 IS NULL THEN NULL
             ELSE now() + make_interval(secs => %(register_within)s::float8) END)
RETURNING *;

-- name: use_token_for_registration
-- A worker registers with this token: counted; refused (registered false) when the
-- token may register no more workers, or no more after register_by (a provisioned
-- worker's token registers one, within minutes). One row whenever the token exists.
WITH u AS (
    UPDATE api_tokens SET registrations = registrations + 1,
           used_at = coalesce(used_at, now())
    WHERE id = %(id)s AND (max_registrations IS NULL OR registrations < max_registrations)
      AND (register_by IS NULL OR register_by > now())
    RETURNING id
)
SELECT t.name, EXISTS (SELECT 1 FROM u) AS registered,
       t.max_registrations IS NOT NULL AND t.registrations >= t.max_registrations AS used_up
FROM api_tokens t WHERE t.id = %(id)s;

-- name: revoke_provisioned_token
-- The provisioned worker is gone: its token dies with it.
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE id = %(id)s AND max_registrations IS NOT NULL;

-- name: link_provisioned_worker
-- A worker registered under the name the scaler gave a provisioned worker: the two
-- are linked, and the worker row says which provider started it.
WITH p AS (
    UPDATE provisioned_workers SET worker_id = %(worker_id)s, registered_at = now()
    WHERE worker_name = %(name)s AND worker_id IS NULL AND state IN ('PROVISIONING', 'RUNNING')
    RETURNING id, provider
)
UPDATE workers w SET provider = p.provider FROM p WHERE w.id = %(worker_id)s
RETURNING p.id, p.provider;

-- name: get_token
-- A token as the server checks it; `now` is the database's clock, which expiry uses.
SELECT *, now() AS now FROM api_tokens WHERE id = %(id)s;

-- name: list_tokens
SELECT *, now() AS now FROM api_tokens ORDER BY created_at, name;

-- name: revoke_token
-- By name or by id (text); an already revoked token keeps its first revocation time.
UPDATE api_tokens SET revoked_at = coalesce(revoked_at, now())
WHERE name = %(ref)s OR id::text = %(ref)s
RETURNING *;

-- name: tokens_refused
-- Of these tokens (those of the worker streams open on a server), the ones a call
-- would now be refused with: revoked, or expired by the database's clock.
SELECT id, name, revoked_at IS NOT NULL AS revoked FROM api_tokens
WHERE id = ANY(%(ids)s::uuid[]) AND (revoked_at IS NOT NULL OR expires_at <= now());

-- name: touch_token
UPDATE api_tokens SET last_used_at = now() WHERE id = %(id)s;

-- name: metrics_snapshot
-- The database-wide gauges (hodei.server.metrics_refresh), read by every server every
-- few seconds: the same figures on every replica. One read-only round trip; the queue
-- and the unpublished outbox rows are counted through their indexes, and the oldest
-- unpublished row is the first by id (ids are handed out in commit-ish order).
SELECT
    (SELECT count(*) FROM job_queue) AS queue_depth,
    coalesce(extract(epoch FROM now() - (SELECT min(enqueued_at) FROM job_queue)), 0)::float8
        AS queue_oldest_wait_seconds,
    (SELECT count(*) FROM outbox_events WHERE published_at IS NULL) AS outbox_unpublished,
    coalesce(extract(epoch FROM now() - (
        SELECT created_at FROM outbox_events WHERE published_at IS NULL ORDER BY id LIMIT 1
    )), 0)::float8 AS outbox_publish_lag_seconds,
    (SELECT coalesce(jsonb_object_agg(state, n), '{}'::jsonb)
     FROM (SELECT state, count(*) AS n FROM workers GROUP BY state) s) AS workers_by_state,
    (SELECT coalesce(sum(slots), 0) FROM workers
     WHERE state NOT IN ('TERMINATED', 'LOST')) AS worker_slots,
    -- Prefetched jobs (held beyond the slots, not started) take no slot.
    (SELECT coalesce(sum(least(running_jobs, slots)), 0) FROM workers
     WHERE state NOT IN ('TERMINATED', 'LOST')) AS worker_slots_busy;

-- name: scaler_lock
-- One scaler decides at a time across the server replicas (released at commit): the
-- other skips its round, and then sees the rows the first wrote.
SELECT pg_try_advisory_xact_lock(7273626561) AS locked;

-- name: scaler_facts
-- The queued jobs in dispatch order, with their selectors (kind 'waiting'), and the
-- free slots that will take them (kind 'capacity'): READY workers with an open stream,
-- and provisioned workers not yet READY (started, registering, connecting). One
-- statement, so one snapshot: read by two statements, a job could be seen waiting and
-- then, after the dispatcher assigned it, its worker seen full, and the scaler started
-- a worker for a job already running (CI saw it under load).
WITH waiting AS (
    SELECT j.id, j.selector, row_number() OVER (ORDER BY q.priority DESC, q.enqueued_at) AS ord
    FROM job_queue q JOIN jobs j ON j.id = q.job_id
    WHERE j.state = 'PENDING'
    ORDER BY q.priority DESC, q.enqueued_at
    LIMIT %(limit)s
), capacity AS (
    SELECT labels, slots - running_jobs AS free_slots FROM workers
    WHERE state = 'READY' AND server_id IS NOT NULL AND running_jobs < slots
    UNION ALL
    SELECT p.labels, p.slots FROM provisioned_workers p
    WHERE p.state IN ('PROVISIONING', 'RUNNING')
      AND NOT EXISTS (SELECT 1 FROM workers w WHERE w.id = p.worker_id
                      AND (w.state <> 'CREATING' AND w.server_id IS NOT NULL
                           OR w.state IN ('DRAINING', 'TERMINATED', 'LOST')))
)
SELECT 'waiting' AS kind, id, selector, NULL::jsonb AS labels, NULL::int AS free_slots, ord
FROM waiting
UNION ALL
SELECT 'capacity', NULL, NULL, labels, free_slots, NULL FROM capacity
ORDER BY kind DESC, ord;

-- name: scaler_live_counts
SELECT provider, count(*) AS n FROM provisioned_workers
WHERE state IN ('PROVISIONING', 'RUNNING') GROUP BY provider;

-- name: insert_provisioned_worker
INSERT INTO provisioned_workers (id, provider, provider_type, worker_name, labels, slots,
                                 job_id, token_id)
VALUES (%(id)s, %(provider)s, %(provider_type)s, %(worker_name)s, %(labels)s, %(slots)s,
        %(job_id)s, %(token_id)s)
RETURNING *;

-- name: provisioned_started
UPDATE provisioned_workers SET state = 'RUNNING', handle = %(handle)s, started_at = now()
WHERE id = %(id)s AND state = 'PROVISIONING'
RETURNING *, extract(epoch FROM now() - created_at)::float8 AS seconds;

-- name: provisioned_failed
UPDATE provisioned_workers SET state = 'FAILED', last_error = %(error)s, removed_at = now()
WHERE id = %(id)s AND state IN ('PROVISIONING', 'RUNNING')
RETURNING *;

-- name: scaler_idle_workers
-- Provisioned workers that run no job, and since when (their row's last change).
SELECT p.id, p.provider, p.handle, p.worker_id, p.job_id,
       extract(epoch FROM now() - greatest(w.updated_at, w.connected_at))::float8 AS idle_seconds
FROM provisioned_workers p JOIN workers w ON w.id = p.worker_id
WHERE p.state = 'RUNNING' AND w.state = 'READY' AND w.running_jobs = 0;

-- name: lock_idle_worker
-- The worker of a scale-down, still idle once locked (a job may have just come).
SELECT id, state, running_jobs FROM workers
WHERE id = %(id)s AND state = 'READY' AND running_jobs = 0 FOR UPDATE;

-- name: provisioned_removed
UPDATE provisioned_workers SET state = 'REMOVED', removed_at = now()
WHERE id = %(id)s AND state = 'RUNNING'
RETURNING *;

-- name: scaler_ended_workers
-- Provisioned workers whose worker ended by itself (stopped, lost): nothing to scale
-- down, only the provider's leftovers (a container, a pod) to remove.
UPDATE provisioned_workers p SET state = 'REMOVED', removed_at = now()
FROM workers w
WHERE w.id = p.worker_id AND p.state = 'RUNNING' AND w.state IN ('TERMINATED', 'LOST')
RETURNING p.*, w.state AS worker_state;

-- name: scaler_unregistered
-- Provisioned workers that never registered (or whose provisioning a crash cut off)
-- within the timeout.
SELECT * FROM provisioned_workers
WHERE state IN ('PROVISIONING', 'RUNNING') AND worker_id IS NULL
  AND created_at < now() - make_interval(secs => %(timeout)s);

-- name: upsert_provider_status
INSERT INTO provider_status AS s (provider, server_id, provider_type, healthy, detail,
                                  circuit_open, consecutive_failures, last_error, last_error_at,
                                  checked_at)
VALUES (%(provider)s, %(server_id)s, %(provider_type)s, %(healthy)s, %(detail)s,
        %(circuit_open)s, %(failures)s, %(last_error)s,
        CASE WHEN %(last_error)s::text IS NULL THEN NULL ELSE now() END, now())
ON CONFLICT (provider, server_id) DO UPDATE SET
    provider_type = EXCLUDED.provider_type, healthy = EXCLUDED.healthy,
    detail = EXCLUDED.detail, circuit_open = EXCLUDED.circuit_open,
    consecutive_failures = EXCLUDED.consecutive_failures,
    last_error = coalesce(EXCLUDED.last_error, s.last_error),
    last_error_at = coalesce(EXCLUDED.last_error_at, s.last_error_at),
    checked_at = now();

-- name: provider_overview
-- `hodei providers`: each provider's latest status (any server) and its live workers.
SELECT s.provider, s.provider_type, s.healthy, s.detail, s.circuit_open, s.last_error,
       s.last_error_at, s.checked_at,
       (SELECT count(*) FROM provisioned_workers p
         WHERE p.provider = s.provider AND p.state IN ('PROVISIONING', 'RUNNING')) AS workers
FROM (SELECT DISTINCT ON (provider) * FROM provider_status ORDER BY provider, checked_at DESC) s
ORDER BY s.provider;

-- name: scaler_prune
-- Old bookkeeping: statuses no scaler refreshed for a day (servers that are gone), and
-- provisioned workers removed or failed longer ago than the jobs are kept (age 0: kept).
WITH s AS (
    DELETE FROM provider_status WHERE checked_at < now() - interval '1 day' RETURNING 1
), p AS (
    DELETE FROM provisioned_workers
    WHERE %(age)s::float8 > 0 AND state IN ('REMOVED', 'FAILED')
      AND removed_at < now() - make_interval(secs => %(age)s::float8)
    RETURNING 1
)
SELECT (SELECT count(*) FROM s) AS statuses, (SELECT count(*) FROM p) AS provisioned;

-- name: sealed_secret_envs
-- `hodei db reseal-secrets`: the next batch of jobs holding a sealed secret env, by id
-- after `after` (keyset: each job is read once however long the command runs).
SELECT id, secret_env FROM jobs
WHERE secret_env IS NOT NULL AND id > %(after)s
ORDER BY id
LIMIT %(limit)s;

-- name: reseal_secret_envs
-- The batch's new tokens, each written only over the token it was made from: a row
-- changed or deleted meanwhile (pruned) is left alone and not counted.
UPDATE jobs j SET secret_env = r.new
FROM unnest(%(ids)b::uuid[], %(old)b::bytea[], %(new)b::bytea[]) AS r(id, old, new)
WHERE j.id = r.id AND j.secret_env = r.old;
