-- The fold's time model (canonical order = occurred_at, then seq) reads the log by event
-- time: a late event makes the worker re-read the events at or after its time (the first
-- index) and the earlier events of the entities those touch (the second), and `verify` /
-- `rebuild` stream a project in canonical order. Without them each of these reads scans
-- the project's whole log.
CREATE INDEX event_log_by_time ON event_log (project_id, occurred_at, seq);
CREATE INDEX event_log_by_entity ON event_log (project_id, entity_id, occurred_at);
