DROP TABLE offsets;
DROP TABLE events;
DROP TABLE jobs;
