-- Retention (hodei.db.retention) deletes old rows in small batches; these indexes let
-- each batch find its rows without reading the table.
--
-- Deleting a domain event deletes its outbox rows (ON DELETE CASCADE): without an index
-- on outbox_events.event_id each deleted event made PostgreSQL scan the whole outbox.
-- The same index answers "does this job still have an unpublished outbox row?".
CREATE INDEX outbox_events_event_idx ON outbox_events (event_id);
-- Published rows, oldest publication first (the relay's unpublished rows are not in it).
CREATE INDEX outbox_events_published_idx ON outbox_events (published_at)
    WHERE published_at IS NOT NULL;
