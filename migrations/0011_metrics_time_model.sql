-- The fold's time model: every read-model value is a function of the set of events, folded
-- in canonical order (occurred_at, then seq), whatever order they arrived in.
--
-- Data-quality findings are kept per task (so a task re-folded after a late event replaces
-- its findings instead of adding to them), and level metrics are stored as change points
-- (a point only in buckets where the value can change), which the API carries forward.
-- The stored read model of the earlier model is not in that form, so it is cleared and
-- every project is folded again from its immutable log: the worker does this by itself
-- after the upgrade (readers keep the last summary snapshot until the first new one).
ALTER TABLE metrics_task
    ADD COLUMN from_state_mismatches INT NOT NULL DEFAULT 0,
    ADD COLUMN inferred_start BOOLEAN NOT NULL DEFAULT false;

DELETE FROM metrics_task;
DELETE FROM metrics_gate;
DELETE FROM metrics_integration_attempt;
DELETE FROM metrics_milestone;
DELETE FROM metrics_phase;
DELETE FROM metrics_state_transition_counter;
DELETE FROM metrics_data_quality_counter;
DELETE FROM metrics_trend_point;
DELETE FROM metrics_breakdown_point;
DELETE FROM metrics_drilldown;
DELETE FROM metrics_event_quarantine;
UPDATE metrics_job_checkpoint SET last_seq = 0, fold_state = '{}'::jsonb, generation = generation + 1;
