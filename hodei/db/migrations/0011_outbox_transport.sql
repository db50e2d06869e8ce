-- The outbox on a broker (issue 17): NATS JetStream as the outbox relay's transport.
--
-- outbox_events.dead_at: when the relay gave up on the row after broker.max_attempts
--   refusals (publish_attempts, last_error say why) and published it to the dead-letter
--   subject instead; published_at is stamped with it, so the row leaves the backlog and
--   retention treats it like any published row. NULL for every row NOTIFY published.
ALTER TABLE outbox_events ADD COLUMN dead_at timestamptz;

CREATE INDEX outbox_events_dead_idx ON outbox_events (dead_at) WHERE dead_at IS NOT NULL;
