-- Drill-down rows are the largest part of what the fold writes (four or five rows per task,
-- rewritten by snapshots for the tasks that changed). Two changes make each row cheaper to
-- write without changing what the API serves:
--
-- * `contributing_factors` leaves the table. It was the same list in each of a task's rows
--   (about 580 bytes of JSONB, parsed by the server for every row written) and is derived
--   from the task's projection (`metrics_task`: time per state, blocked episodes, attempts)
--   when a drill-down page is served.
-- * The secondary indexes on `ts` and `value` go. Every drill-down and breakdown request
--   aggregates (count, percentiles) over all rows of the project's metric, which the primary
--   key (project_id, metric_key, task_id) finds; ordering one metric's rows for a page is a
--   sort in memory. Each index cost an extra random B-tree insert per row written.
DROP INDEX metrics_drilldown_by_time;
DROP INDEX metrics_drilldown_by_value;
ALTER TABLE metrics_drilldown DROP COLUMN contributing_factors;
