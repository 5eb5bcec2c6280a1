-- What a filter-free breakdown or drill-down request needs, computed once per snapshot (SPEC §18).
--
-- Drill-down rows change only when a snapshot is written (and when retention removes expired
-- tasks, in the same transaction), so the aggregates over every row of a metric and the groups
-- of a breakdown are computed from them in the snapshot's transaction, with the same SQL
-- aggregates the API ran per request. The API serves a request without filters from these rows
-- when their `captured_at` is its snapshot's, and falls back to the drill-down rows otherwise
-- (filters, deep pages, a snapshot written before this migration).

-- One row per (project, drill-down metric): the aggregation over every row of the metric, and
-- the first task ids in each order a page can ask for.
CREATE TABLE metrics_drilldown_aggregate (
    project_id     UUID NOT NULL,
    metric_key     TEXT COLLATE "C" NOT NULL,
    captured_at    TIMESTAMPTZ NOT NULL,
    row_count      BIGINT NOT NULL,
    value_sum      DOUBLE PRECISION,
    value_avg      DOUBLE PRECISION,
    value_min      DOUBLE PRECISION,
    value_max      DOUBLE PRECISION,
    -- percentile_cont at 0.5, 0.9 and 0.95, NULL without rows.
    percentiles    DOUBLE PRECISION[],
    -- Task ids in page order (ties broken by task id in the same direction), at most the
    -- first 500 (the largest page) of each order.
    by_value_desc  TEXT[] COLLATE "C" NOT NULL,
    by_value_asc   TEXT[] COLLATE "C" NOT NULL,
    by_ts_desc     TEXT[] COLLATE "C" NOT NULL,
    by_ts_asc      TEXT[] COLLATE "C" NOT NULL,
    by_task_desc   TEXT[] COLLATE "C" NOT NULL,
    by_task_asc    TEXT[] COLLATE "C" NOT NULL,
    PRIMARY KEY (project_id, metric_key)
);

-- The groups of every breakdown without filters: per metric, dimension, range and period
-- (0: the range ending at the snapshot, 1: the equal range before it), each group's row count
-- and median; dimension '' holds the total over all rows of the period.
CREATE TABLE metrics_breakdown_group (
    project_id       UUID NOT NULL,
    captured_at      TIMESTAMPTZ NOT NULL,
    metric_key       TEXT COLLATE "C" NOT NULL,
    dimension        TEXT COLLATE "C" NOT NULL,
    time_range       TEXT COLLATE "C" NOT NULL,
    period           SMALLINT NOT NULL CHECK (period IN (0, 1)),
    -- The group's value (database collation, as the drill-down columns it comes from, so it
    -- sorts as they do); NULL groups tasks without one, and is NULL for the total.
    dimension_value  TEXT,
    row_count        BIGINT NOT NULL,
    p50              DOUBLE PRECISION
);

CREATE INDEX metrics_breakdown_group_lookup
    ON metrics_breakdown_group (project_id, metric_key, time_range, dimension);
