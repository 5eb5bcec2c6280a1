-- The fold's time model (canonical order = occurred_at, then seq) reads the log by event
-- time: a late event makes the worker re-read the events at or after its time (the first
-- index) and the earlier events of the entities those touch (the second), and `verify` /
-- `rebuild` stream a project in canonical order. Without them each of these reads scans
-- the project's whole log.
--
-- Both are partial on `seq > 0`, which every row satisfies (a CHECK says so), so they hold
-- every event; but only a query that states `seq > 0` can use them. The ingest trigger's
-- duplicate check (`project_id = … AND event_id = …`) therefore keeps to the unique index:
-- on a table without statistics yet, the planner would otherwise take the smaller of these
-- indexes for it, filter on event_id, and scan the whole project for every inserted row.
CREATE INDEX event_log_by_time ON event_log (project_id, occurred_at, seq) WHERE seq > 0;
CREATE INDEX event_log_by_entity ON event_log (project_id, entity_id, occurred_at) WHERE seq > 0;
