DROP INDEX events_by_ordinal;
ALTER TABLE events DROP COLUMN ordinal;
