-- The per-task fold state in typed columns instead of a JSONB copy of the whole task: the
-- worker writes a task row per changed task in every batch, and parsing ~1 KB of JSON per
-- row was a large share of the fold's write cost. Together with the existing columns these
-- hold everything the fold needs to resume. Rows written before this migration keep their
-- `facts` and have NULL here; the worker reads either form and writes the new one.
ALTER TABLE metrics_task
    -- Seconds spent in each state over closed stays, in the state catalogue's order
    -- (backlog, ready, reserved, claimed, in_progress, implemented, integrated, conflict,
    -- blocked, abandoned, cancelled).
    ADD COLUMN time_in_state_seconds DOUBLE PRECISION[],
    -- Blocked episodes, oldest first: start times, and end times (NULL while open).
    ADD COLUMN blocked_started_at TIMESTAMPTZ[],
    ADD COLUMN blocked_ended_at TIMESTAMPTZ[],
    ALTER COLUMN facts DROP NOT NULL;
