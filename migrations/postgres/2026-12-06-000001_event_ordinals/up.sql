-- Each event's place in the order the projector recorded it (1, 2, … over
-- every job), for streams of many jobs' events that resume without gaps:
-- the projector numbers a batch's new rows after the highest one, inside its
-- transaction, and the unique index keeps two writers from taking the same.
-- Rows recorded before are numbered in the order they happened.
ALTER TABLE events ADD COLUMN ordinal BIGINT NOT NULL DEFAULT 0;

UPDATE events
SET ordinal = numbered.n
FROM (
    SELECT event_id, row_number() OVER (ORDER BY occurred_at, topic, "partition", "offset") AS n
    FROM events
) AS numbered
WHERE events.event_id = numbered.event_id;

CREATE UNIQUE INDEX events_by_ordinal ON events (ordinal);
