-- The read model the API serves (SPEC §4.1). Rows are written by the worker only.

-- The latest snapshot per project plus history (one per hour, thinned to one per day after
-- 30 days). `payload` is the summary's `metrics` object in the exact response shape;
-- `health` the milestone health list with its stored forecast.
CREATE TABLE metrics_summary (
    project_id   UUID NOT NULL,
    captured_at  TIMESTAMPTZ NOT NULL,
    version      TEXT NOT NULL DEFAULT '1.0',
    as_of_seq    BIGINT NOT NULL,
    payload      JSONB NOT NULL,
    health       JSONB NOT NULL DEFAULT '[]'::jsonb,
    -- False for a snapshot taken while catching up, which skipped the buckets between
    -- event time and captured_at (verify and rebuild replay it the same way).
    gap_filled   BOOLEAN NOT NULL DEFAULT true,
    PRIMARY KEY (project_id, captured_at)
);

-- Trend points in event time. Count metrics add up events in the bucket; level and score
-- metrics hold the value as of the bucket's end. `dimensions` is '{}' for the project
-- total, or {phase, milestone, assignee, task_class} for additive metrics.
CREATE TABLE metrics_trend_point (
    project_id     UUID NOT NULL,
    metric_key     TEXT NOT NULL,
    time_grain     TEXT NOT NULL CHECK (time_grain IN ('hour', 'day', 'week', 'month')),
    time_bucket    TIMESTAMPTZ NOT NULL,
    dimensions     JSONB NOT NULL DEFAULT '{}'::jsonb,
    value_numeric  DOUBLE PRECISION,
    sample_size    BIGINT NOT NULL DEFAULT 0,
    value_json     JSONB NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (project_id, metric_key, time_grain, time_bucket, dimensions)
);

-- Project totals are read far more often than dimensioned points, of which there can be
-- hundreds per bucket.
CREATE INDEX metrics_trend_point_totals
    ON metrics_trend_point (project_id, metric_key, time_grain, time_bucket)
    WHERE dimensions = '{}'::jsonb;

-- Daily aggregates per single dimension (phase, milestone, assignee, task_class, state),
-- used for each breakdown group's trend.
CREATE TABLE metrics_breakdown_point (
    project_id       UUID NOT NULL,
    metric_key       TEXT NOT NULL,
    dimension        TEXT NOT NULL,
    dimension_value  TEXT NOT NULL,
    day              DATE NOT NULL,
    value_numeric    DOUBLE PRECISION NOT NULL,
    sample_size      BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, metric_key, dimension, dimension_value, day)
);

-- One row per (metric, task): durations of integrated tasks, ages of WIP/blocked/backlog
-- tasks as of the snapshot, and throughput/arrival marks.
CREATE TABLE metrics_drilldown (
    project_id            UUID NOT NULL,
    metric_key            TEXT NOT NULL,
    task_id               TEXT NOT NULL,
    value                 DOUBLE PRECISION NOT NULL,
    ts                    TIMESTAMPTZ NOT NULL,
    title                 TEXT,
    phase_id              TEXT,
    milestone_id          TEXT,
    assignee              TEXT,
    task_class            TEXT,
    state                 TEXT NOT NULL,
    contributing_factors  JSONB NOT NULL DEFAULT '[]'::jsonb,
    PRIMARY KEY (project_id, metric_key, task_id)
);

CREATE INDEX metrics_drilldown_by_time ON metrics_drilldown (project_id, metric_key, ts);
CREATE INDEX metrics_drilldown_by_value ON metrics_drilldown (project_id, metric_key, value);
