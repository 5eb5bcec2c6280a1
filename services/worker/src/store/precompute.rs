//! What filter-free breakdown and drill-down requests read, computed from the drill-down rows in
//! the snapshot's transaction (migration 0013, SPEC §18). The aggregates are the SQL the API ran
//! per request, so a precomputed answer equals the one computed from the rows.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::db::read_path::PRECOMPUTED_PAGE_ROWS;
use flowmeter_shared::read_model::{keys, BREAKDOWN_METRICS, BREAKDOWN_RANGES, DRILLDOWN_METRICS};
use uuid::Uuid;

/// Per drill-down metric: the aggregation over all its rows (as the API's aggregate query) and
/// the first task ids in each page order (each a top-N sort, not a sort of every row). `$1`
/// project, `$2` snapshot time, `$3` metrics, `$4` how many ids per order.
const DRILLDOWN_AGGREGATE_SQL: &str = "INSERT INTO metrics_drilldown_aggregate
     (project_id, metric_key, captured_at, row_count, value_sum, value_avg, value_min, value_max,
      percentiles, by_value_desc, by_value_asc, by_ts_desc, by_ts_asc, by_task_desc, by_task_asc)
SELECT $1::uuid, m.metric_key, $2::timestamptz, a.*,
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY value DESC, task_id DESC LIMIT $4),
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY value ASC, task_id ASC LIMIT $4),
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY ts DESC, task_id DESC LIMIT $4),
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY ts ASC, task_id ASC LIMIT $4),
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY task_id DESC LIMIT $4),
       ARRAY(SELECT task_id FROM metrics_drilldown WHERE project_id = $1 AND metric_key = m.metric_key
              ORDER BY task_id ASC LIMIT $4)
  FROM unnest($3::text[]) m(metric_key)
 CROSS JOIN LATERAL (
     SELECT count(*), sum(value), avg(value), min(value), max(value),
            percentile_cont(ARRAY[0.5, 0.9, 0.95]::float8[]) WITHIN GROUP (ORDER BY value)
       FROM metrics_drilldown
      WHERE project_id = $1 AND metric_key = m.metric_key) a";

/// One half of [`BREAKDOWN_GROUPS_SQL`]: the groups of the rows that pass `$filter`, with `$p50`
/// as their median.
macro_rules! breakdown_groups {
    ($filter:literal, $p50:literal) => {
        concat!(
            "SELECT metric_key, GROUPING(phase_id) AS g_phase, GROUPING(milestone_id) AS g_milestone,
                    GROUPING(assignee) AS g_assignee, GROUPING(task_class) AS g_class,
                    GROUPING(state) AS g_state, time_range, period, phase_id, milestone_id,
                    assignee, task_class, state, count(*) AS row_count, ",
            $p50,
            " AS p50
               FROM rows WHERE ",
            $filter,
            "
              GROUP BY GROUPING SETS (
                    (metric_key, time_range, period, phase_id),
                    (metric_key, time_range, period, milestone_id),
                    (metric_key, time_range, period, assignee),
                    (metric_key, time_range, period, task_class),
                    (metric_key, time_range, period, state),
                    (metric_key, time_range, period))"
        )
    };
}

/// Per breakdown metric, range and period (0: the range ending at `$2`, 1: the one before),
/// the groups of every dimension and the total (dimension ''): row count and median, as the
/// API's group and total queries. `$3` metrics, `$4` range names, `$5` their hours, `$6` the
/// metrics whose medians the API serves (the durations; the others serve counts, so they get no
/// median).
///
/// The windows' bounds are computed once, not per row, and the two kinds of metric are grouped
/// apart: counts alone hash, while a median needs its groups sorted, so only the rows of the
/// duration metrics go through the sorts.
const BREAKDOWN_GROUPS_SQL: &str = concat!(
    "WITH w AS (
     SELECT r.time_range, p.period,
            $2::timestamptz - make_interval(hours => (r.hours * (p.period + 1))::int) AS lo,
            $2::timestamptz - make_interval(hours => (r.hours * p.period)::int) AS hi
       FROM unnest($4::text[], $5::int8[]) r(time_range, hours)
      CROSS JOIN (VALUES (0::int2), (1::int2)) p(period)),
rows AS NOT MATERIALIZED (
     SELECT d.metric_key, w.time_range, w.period, d.phase_id, d.milestone_id, d.assignee,
            d.task_class, d.state, d.value, d.metric_key = ANY($6::text[]) AS with_median
       FROM w
       JOIN metrics_drilldown d
         ON d.project_id = $1 AND d.metric_key = ANY($3::text[]) AND d.ts >= w.lo AND d.ts < w.hi)
INSERT INTO metrics_breakdown_group
     (project_id, captured_at, metric_key, dimension, time_range, period, dimension_value,
      row_count, p50)
SELECT $1::uuid, $2::timestamptz, metric_key, dimension, time_range, period, dimension_value,
       row_count, p50
  FROM (",
    breakdown_groups!("NOT with_median", "NULL::float8"),
    "
        UNION ALL
        ",
    breakdown_groups!(
        "with_median",
        "percentile_cont(0.5) WITHIN GROUP (ORDER BY value)"
    ),
    ") g
 CROSS JOIN LATERAL (
       SELECT CASE WHEN g_phase = 0 THEN 'phase' WHEN g_milestone = 0 THEN 'milestone'
                   WHEN g_assignee = 0 THEN 'assignee' WHEN g_class = 0 THEN 'task_class'
                   WHEN g_state = 0 THEN 'state' ELSE '' END AS dimension,
              CASE WHEN g_phase = 0 THEN phase_id WHEN g_milestone = 0 THEN milestone_id
                   WHEN g_assignee = 0 THEN assignee WHEN g_class = 0 THEN task_class
                   WHEN g_state = 0 THEN state END AS dimension_value) v"
);

/// Replaces the project's precomputed rows with those of the drill-down rows as of the
/// snapshot at `captured_at`. Runs in the snapshot's transaction, after the drill-down rows are
/// written (and again after retention removed some).
pub async fn refresh(
    client: &impl GenericClient,
    project: Uuid,
    captured_at: DateTime<Utc>,
) -> anyhow::Result<()> {
    for table in ["metrics_drilldown_aggregate", "metrics_breakdown_group"] {
        let stmt = client
            .prepare_cached(&format!("DELETE FROM {table} WHERE project_id = $1"))
            .await?;
        client.execute(&stmt, &[&project]).await?;
    }
    let stmt = client.prepare_cached(DRILLDOWN_AGGREGATE_SQL).await?;
    client
        .execute(
            &stmt,
            &[
                &project,
                &captured_at,
                &DRILLDOWN_METRICS.to_vec(),
                &PRECOMPUTED_PAGE_ROWS,
            ],
        )
        .await?;
    let names: Vec<&str> = BREAKDOWN_RANGES.iter().map(|(name, _)| *name).collect();
    let hours: Vec<i64> = BREAKDOWN_RANGES.iter().map(|(_, hours)| *hours).collect();
    let stmt = client.prepare_cached(BREAKDOWN_GROUPS_SQL).await?;
    client
        .execute(
            &stmt,
            &[
                &project,
                &captured_at,
                &BREAKDOWN_METRICS.to_vec(),
                &names,
                &hours,
                &vec![keys::CYCLE_TIME, keys::LEAD_TIME],
            ],
        )
        .await?;
    Ok(())
}
