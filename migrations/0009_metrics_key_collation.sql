-- Identifier columns in the keys of the tables the fold writes in bulk compare byte by byte
-- (COLLATE "C"). They hold opaque ids, metric keys and grains, for which a linguistic order
-- means nothing, and every B-tree insert compares them several times: under the database's
-- default collation each comparison goes through the C library's locale-aware comparison,
-- which made inserts up to a third slower. (For UTF-8 text, byte order is code point order.)
-- Columns shown to people (titles, names, assignees, phases) keep the database collation.
ALTER TABLE metrics_task ALTER COLUMN task_id TYPE text COLLATE "C";
ALTER TABLE metrics_gate ALTER COLUMN gate_id TYPE text COLLATE "C";
ALTER TABLE metrics_integration_attempt ALTER COLUMN attempt_id TYPE text COLLATE "C";
ALTER TABLE metrics_drilldown
    ALTER COLUMN metric_key TYPE text COLLATE "C",
    ALTER COLUMN task_id TYPE text COLLATE "C";
ALTER TABLE metrics_trend_point
    ALTER COLUMN metric_key TYPE text COLLATE "C",
    ALTER COLUMN time_grain TYPE text COLLATE "C",
    ALTER COLUMN dimensions TYPE text COLLATE "C";
ALTER TABLE metrics_breakdown_point
    ALTER COLUMN metric_key TYPE text COLLATE "C",
    ALTER COLUMN dimension TYPE text COLLATE "C",
    ALTER COLUMN dimension_value TYPE text COLLATE "C";
