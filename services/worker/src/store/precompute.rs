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

/// Per breakdown metric, range and period (0: the range ending at `$2`, 1: the one before),
/// the groups of every dimension and the total (dimension ''): row count and median, as the
/// API's group and total queries. `$3` metrics, `$4` range names, `$5` their hours, `$6` the
/// metrics whose medians the API serves (the durations; the others serve counts, so their
/// medians are left out of the sorts).
const BREAKDOWN_GROUPS_SQL: &str = "INSERT INTO metrics_breakdown_group
     (project_id, captured_at, metric_key, dimension, time_range, period, dimension_value,
      row_count, p50)
SELECT $1::uuid, $2::timestamptz, d.metric_key,
       CASE WHEN GROUPING(d.phase_id) = 0 THEN 'phase'
            WHEN GROUPING(d.milestone_id) = 0 THEN 'milestone'
            WHEN GROUPING(d.assignee) = 0 THEN 'assignee'
            WHEN GROUPING(d.task_class) = 0 THEN 'task_class'
            WHEN GROUPING(d.state) = 0 THEN 'state'
            ELSE '' END,
       r.time_range, p.period,
       CASE WHEN GROUPING(d.phase_id) = 0 THEN d.phase_id
            WHEN GROUPING(d.milestone_id) = 0 THEN d.milestone_id
            WHEN GROUPING(d.assignee) = 0 THEN d.assignee
            WHEN GROUPING(d.task_class) = 0 THEN d.task_class
            WHEN GROUPING(d.state) = 0 THEN d.state END,
       count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY d.value)
           FILTER (WHERE d.metric_key = ANY($6::text[]))
  FROM unnest($4::text[], $5::int8[]) r(time_range, hours)
 CROSS JOIN (VALUES (0::int2), (1::int2)) p(period)
  JOIN metrics_drilldown d
    ON d.project_id = $1 AND d.metric_key = ANY($3::text[])
   AND d.ts >= $2::timestamptz - make_interval(hours => (r.hours * (p.period + 1))::int)
   AND d.ts < $2::timestamptz - make_interval(hours => (r.hours * p.period)::int)
 GROUP BY GROUPING SETS (
       (d.metric_key, r.time_range, p.period, d.phase_id),
       (d.metric_key, r.time_range, p.period, d.milestone_id),
       (d.metric_key, r.time_range, p.period, d.assignee),
       (d.metric_key, r.time_range, p.period, d.task_class),
       (d.metric_key, r.time_range, p.period, d.state),
       (d.metric_key, r.time_range, p.period))";

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
