-- OpenTelemetry traces (issue 15): jobs.trace_context holds the W3C traceparent of the
-- job's `enqueue` span ("00-<trace id>-<span id>-<flags>"), written by the statement
-- that creates the job, so that its dispatch (minutes later, on any server replica)
-- continues the same trace. '' when the submitting server did not trace: a constant
-- default, so adding the column rewrites no row.
ALTER TABLE jobs ADD COLUMN trace_context text NOT NULL DEFAULT '';
