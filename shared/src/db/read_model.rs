//! Read queries the API serves from. They touch read-model rows only (by primary key or
//! index), so their cost does not grow with the event log.

use anyhow::Context;
use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

use crate::db::api_keys::ApiKey;
use crate::db::tasks;
use crate::metrics::factors;

/// A stored summary snapshot as the API serves it.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// Snapshot time.
    pub captured_at: DateTime<Utc>,
    /// Last folded seq behind it.
    pub as_of_seq: i64,
    /// The summary's `metrics` object.
    pub payload: Value,
    /// Milestone health.
    pub health: Value,
}

/// The snapshot query (public so a test can check its plan uses an index).
pub const SNAPSHOT_SQL: &str = "SELECT captured_at, as_of_seq, payload, health FROM metrics_summary
  WHERE project_id = $1 AND ($2::timestamptz IS NULL OR captured_at <= $2)
  ORDER BY captured_at DESC LIMIT 1";

/// The trend query for project totals (public so a test can check its plan uses an index).
pub const TREND_TOTALS_SQL: &str =
    "SELECT time_bucket, dimensions, value_numeric, sample_size, value_json
   FROM metrics_trend_point
  WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3
    AND time_bucket >= $4 AND time_bucket < $5 AND dimensions = '{}'
  ORDER BY time_bucket";

/// The trend query for dimensioned points.
pub const TREND_DIMENSIONED_SQL: &str =
    "SELECT time_bucket, dimensions, value_numeric, sample_size, value_json
   FROM metrics_trend_point
  WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3
    AND time_bucket >= $4 AND time_bucket < $5 AND dimensions <> '{}'
  ORDER BY time_bucket";

/// The latest total point before `$4`: the value a level metric carries into a range.
pub const TREND_BASELINE_SQL: &str =
    "SELECT time_bucket, dimensions, value_numeric, sample_size, value_json
   FROM metrics_trend_point
  WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3
    AND time_bucket < $4 AND dimensions = '{}'
  ORDER BY time_bucket DESC LIMIT 1";

/// The dimensioned points of one bucket.
const TREND_BUCKET_DIMENSIONED_SQL: &str =
    "SELECT time_bucket, dimensions, value_numeric, sample_size, value_json
   FROM metrics_trend_point
  WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3
    AND time_bucket = $4 AND dimensions <> '{}'";

/// The latest snapshot of a project, or the latest at or before `at`.
pub async fn snapshot(
    client: &impl GenericClient,
    project_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<Snapshot>> {
    let stmt = client.prepare_cached(SNAPSHOT_SQL).await?;
    Ok(client
        .query_opt(&stmt, &[&project_id, &at])
        .await?
        .map(|r| Snapshot {
            captured_at: r.get(0),
            as_of_seq: r.get(1),
            payload: r.get(2),
            health: r.get(3),
        }))
}

/// One stored trend point.
#[derive(Debug, Clone)]
pub struct TrendRow {
    /// Bucket start.
    pub bucket: DateTime<Utc>,
    /// `{}` for the total, else the dimension tuple.
    pub dimensions: Value,
    /// The value.
    pub value: Option<f64>,
    /// Samples behind it.
    pub sample_size: i64,
    /// Extra detail (confidence interval).
    pub detail: Value,
}

/// Trend points of one metric and grain with buckets in `[from, to)`: totals, or (when
/// `dimensioned`) the points carrying dimensions.
pub async fn trend_points(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    grain: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    dimensioned: bool,
) -> anyhow::Result<Vec<TrendRow>> {
    let sql = if dimensioned {
        TREND_DIMENSIONED_SQL
    } else {
        TREND_TOTALS_SQL
    };
    let stmt = client.prepare_cached(sql).await?;
    let rows = client
        .query(&stmt, &[&project_id, &metric, &grain, &from, &to])
        .await?;
    rows.iter().map(trend_row).collect()
}

/// The points a level metric carries into a range starting at `before`: the latest total
/// point before it, and (when `dimensioned`) the dimensioned points of that bucket, which
/// are complete (a tuple without a point there is 0).
pub async fn trend_baseline(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    grain: &str,
    before: DateTime<Utc>,
    dimensioned: bool,
) -> anyhow::Result<(Option<TrendRow>, Vec<TrendRow>)> {
    let stmt = client.prepare_cached(TREND_BASELINE_SQL).await?;
    let total = client
        .query_opt(&stmt, &[&project_id, &metric, &grain, &before])
        .await?
        .map(|r| trend_row(&r))
        .transpose()?;
    let mut dims = Vec::new();
    if let (true, Some(total)) = (dimensioned, &total) {
        let stmt = client.prepare_cached(TREND_BUCKET_DIMENSIONED_SQL).await?;
        for r in client
            .query(&stmt, &[&project_id, &metric, &grain, &total.bucket])
            .await?
        {
            dims.push(trend_row(&r)?);
        }
    }
    Ok((total, dims))
}

fn trend_row(r: &tokio_postgres::Row) -> anyhow::Result<TrendRow> {
    let dimensions: String = r.get(1);
    Ok(TrendRow {
        bucket: r.get(0),
        dimensions: serde_json::from_str(&dimensions)
            .with_context(|| format!("trend point dimensions {dimensions:?}"))?,
        value: r.get(2),
        sample_size: r.get(3),
        detail: r.get(4),
    })
}

/// Conditions on drill-down rows: each present column must equal one of its values.
#[derive(Debug, Clone, Default)]
pub struct RowFilter {
    /// Phase ids.
    pub phase: Option<Vec<String>>,
    /// Milestone ids.
    pub milestone: Option<Vec<String>>,
    /// Assignees.
    pub assignee: Option<Vec<String>>,
    /// States.
    pub state: Option<Vec<String>>,
    /// Task classes.
    pub task_class: Option<Vec<String>>,
}

impl RowFilter {
    /// The filter for a parsed `filters` object (`{dimension: [values]}`).
    pub fn from_map(filters: &std::collections::BTreeMap<String, Vec<String>>) -> Self {
        Self {
            phase: filters.get("phase").cloned(),
            milestone: filters.get("milestone").cloned(),
            assignee: filters.get("assignee").cloned(),
            state: filters.get("state").cloned(),
            task_class: filters.get("task_class").cloned(),
        }
    }

    /// Whether no condition is set (every row matches).
    pub fn is_empty(&self) -> bool {
        self.phase.is_none()
            && self.milestone.is_none()
            && self.assignee.is_none()
            && self.state.is_none()
            && self.task_class.is_none()
    }
}

/// How drill-down items are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortBy {
    /// By value.
    Value,
    /// By the row's time.
    Timestamp,
    /// By task id.
    TaskId,
}

/// One drill-down item.
#[derive(Debug, Clone)]
pub struct DrilldownItem {
    /// Task id.
    pub task_id: String,
    /// Task title.
    pub title: Option<String>,
    /// The value (minutes, hours or 1).
    pub value: f64,
    /// The row's time.
    pub ts: DateTime<Utc>,
    /// Phase id.
    pub phase_id: Option<String>,
    /// Milestone id.
    pub milestone_id: Option<String>,
    /// Assignee.
    pub assignee: Option<String>,
    /// Task class.
    pub task_class: Option<String>,
    /// State.
    pub state: String,
    /// Contributing factors, derived from the task's projection.
    pub contributing_factors: Value,
}

/// Aggregates over every matching row (not just one page).
#[derive(Debug, Clone, Default)]
pub struct Aggregation {
    /// Matching rows.
    pub count: i64,
    /// Sum of values.
    pub sum: Option<f64>,
    /// Mean.
    pub avg: Option<f64>,
    /// Smallest.
    pub min: Option<f64>,
    /// Largest.
    pub max: Option<f64>,
    /// Percentiles with linear interpolation.
    pub p50: Option<f64>,
    /// 90th percentile.
    pub p90: Option<f64>,
    /// 95th percentile.
    pub p95: Option<f64>,
}

/// The sum of the drill-down rows' values, exact and independent of the order PostgreSQL
/// scans them in: [`crate::metrics::stats::exact_sum`] in SQL. An aggregation's average is
/// this sum over the row count, so the worker's precomputed aggregation and one computed
/// from the rows agree to the last bit.
pub const VALUE_SUM_SQL: &str = "(sum(round(value * 100)::int8)::float8 / 100::float8)";

/// Conditions shared by the drill-down and breakdown queries.
pub const ROW_CONDITIONS: &str = "project_id = $1 AND metric_key = $2
    AND ($3::text[] IS NULL OR phase_id = ANY($3))
    AND ($4::text[] IS NULL OR milestone_id = ANY($4))
    AND ($5::text[] IS NULL OR assignee = ANY($5))
    AND ($6::text[] IS NULL OR state = ANY($6))
    AND ($7::text[] IS NULL OR task_class = ANY($7))";

/// One page of drill-down rows and the aggregation over all that match. Each row's
/// contributing factors are derived from its task's projection, as of `snapshot_at` (the
/// latest snapshot, which wrote the rows) for the age metrics.
#[allow(clippy::too_many_arguments)]
pub async fn drilldown(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    filter: &RowFilter,
    sort_by: SortBy,
    descending: bool,
    limit: i64,
    offset: i64,
    snapshot_at: Option<DateTime<Utc>>,
) -> anyhow::Result<(Vec<DrilldownItem>, Aggregation)> {
    let column = match sort_by {
        SortBy::Value => "value",
        SortBy::Timestamp => "ts",
        SortBy::TaskId => "task_id",
    };
    let direction = if descending { "DESC" } else { "ASC" };
    // The ORDER BY comes from a closed enum; every value is a parameter.
    let page_sql = format!(
        "SELECT p.task_id, p.title, p.value, p.ts, p.phase_id, p.milestone_id, p.assignee,
                p.task_class, p.state, t.task_id IS NOT NULL, {task_columns}
           FROM (SELECT task_id, title, value, ts, phase_id, milestone_id, assignee, task_class,
                        state
                   FROM metrics_drilldown WHERE {ROW_CONDITIONS}
                  ORDER BY {column} {direction}, task_id {direction} LIMIT $8 OFFSET $9) p
           LEFT JOIN metrics_task t ON t.project_id = $1 AND t.task_id = p.task_id
          ORDER BY p.{column} {direction}, p.task_id {direction}",
        task_columns = tasks::columns("t"),
    );
    let aggregate_sql = format!(
        "SELECT count(*), {VALUE_SUM_SQL}, {VALUE_SUM_SQL} / count(*)::float8, min(value),
                max(value),
                percentile_cont(ARRAY[0.5, 0.9, 0.95]::float8[]) WITHIN GROUP (ORDER BY value)
           FROM metrics_drilldown WHERE {ROW_CONDITIONS}"
    );
    let page_stmt = client.prepare_cached(&page_sql).await?;
    let aggregate_stmt = client.prepare_cached(&aggregate_sql).await?;
    let conditions: [&(dyn tokio_postgres::types::ToSql + Sync); 7] = [
        &project_id,
        &metric,
        &filter.phase,
        &filter.milestone,
        &filter.assignee,
        &filter.state,
        &filter.task_class,
    ];
    let mut page_params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = conditions.to_vec();
    page_params.push(&limit);
    page_params.push(&offset);
    let rows = client.query(&page_stmt, &page_params).await?;
    let items = rows
        .iter()
        .map(|r| drilldown_item(r, 0, metric, snapshot_at))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let row = client.query_one(&aggregate_stmt, &conditions).await?;
    Ok((items, aggregation_from_row(&row, 0)))
}

/// A drill-down item from the columns at `at`: task_id, title, value, ts, phase_id,
/// milestone_id, assignee, task_class, state, whether the task's projection exists, then the
/// projection's columns ([`tasks::columns`]).
pub fn drilldown_item(
    r: &tokio_postgres::Row,
    at: usize,
    metric: &str,
    snapshot_at: Option<DateTime<Utc>>,
) -> anyhow::Result<DrilldownItem> {
    let contributing_factors = if r.get::<_, bool>(at + 9) {
        let task = tasks::task_from_row(r, at + 10)?;
        factors::factors_for_row(&task, metric, snapshot_at)
    } else {
        Value::Array(Vec::new())
    };
    Ok(DrilldownItem {
        task_id: r.get(at),
        title: r.get(at + 1),
        value: r.get(at + 2),
        ts: r.get(at + 3),
        phase_id: r.get(at + 4),
        milestone_id: r.get(at + 5),
        assignee: r.get(at + 6),
        task_class: r.get(at + 7),
        state: r.get(at + 8),
        contributing_factors,
    })
}

/// The aggregation from the columns at `at`: count, sum, avg, min, max and the percentiles
/// at 0.5, 0.9 and 0.95 as one array.
pub fn aggregation_from_row(row: &tokio_postgres::Row, at: usize) -> Aggregation {
    let percentiles: Option<Vec<f64>> = row.get(at + 5);
    let percentile = |i: usize| percentiles.as_ref().and_then(|p| p.get(i).copied());
    Aggregation {
        count: row.get(at),
        sum: row.get(at + 1),
        avg: row.get(at + 2),
        min: row.get(at + 3),
        max: row.get(at + 4),
        p50: percentile(0),
        p90: percentile(1),
        p95: percentile(2),
    }
}

/// One group of a breakdown: its dimension value (None when tasks have none), task count
/// and median value.
#[derive(Debug, Clone)]
pub struct BreakdownGroup {
    /// The dimension's value.
    pub value: Option<String>,
    /// Rows (tasks) in the group.
    pub count: i64,
    /// Median of the rows' values.
    pub p50: Option<f64>,
}

/// The drill-down column of a breakdown dimension.
pub fn dimension_column(dimension: &str) -> Option<&'static str> {
    Some(match dimension {
        "phase" => "phase_id",
        "milestone" => "milestone_id",
        "assignee" => "assignee",
        "task_class" => "task_class",
        "state" => "state",
        _ => return None,
    })
}

/// Groups the drill-down rows of `metric` with `ts` in `[from, to)` by `dimension`; also
/// returns the overall count and median.
#[allow(clippy::too_many_arguments)]
pub async fn breakdown_groups(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    dimension: &str,
    filter: &RowFilter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> anyhow::Result<(Vec<BreakdownGroup>, i64, Option<f64>)> {
    let column = dimension_column(dimension)
        .ok_or_else(|| anyhow::anyhow!("unknown dimension {dimension}"))?;
    // The column comes from a closed list; every value is a parameter.
    let groups_sql = format!(
        "SELECT {column}, count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY value)
           FROM metrics_drilldown WHERE {ROW_CONDITIONS} AND ts >= $8 AND ts < $9
          GROUP BY {column} ORDER BY {column}"
    );
    let total_sql = format!(
        "SELECT count(*), percentile_cont(0.5) WITHIN GROUP (ORDER BY value)
           FROM metrics_drilldown WHERE {ROW_CONDITIONS} AND ts >= $8 AND ts < $9"
    );
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 9] = [
        &project_id,
        &metric,
        &filter.phase,
        &filter.milestone,
        &filter.assignee,
        &filter.state,
        &filter.task_class,
        &from,
        &to,
    ];
    let groups_stmt = client.prepare_cached(&groups_sql).await?;
    let total_stmt = client.prepare_cached(&total_sql).await?;
    let groups = client
        .query(&groups_stmt, &params)
        .await?
        .iter()
        .map(|r| BreakdownGroup {
            value: r.get(0),
            count: r.get(1),
            p50: r.get(2),
        })
        .collect();
    let total = client.query_one(&total_stmt, &params).await?;
    Ok((groups, total.get(0), total.get(1)))
}

/// Daily breakdown points of one metric and dimension for days in `[from, to)`:
/// (dimension value, day, value, samples).
pub async fn breakdown_points(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    dimension: &str,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> anyhow::Result<Vec<(String, chrono::NaiveDate, f64, i64)>> {
    let stmt = client
        .prepare_cached(
            "SELECT dimension_value, day, value_numeric, sample_size FROM metrics_breakdown_point
              WHERE project_id = $1 AND metric_key = $2 AND dimension = $3 AND day >= $4 AND day < $5",
        )
        .await?;
    Ok(client
        .query(&stmt, &[&project_id, &metric, &dimension, &from, &to])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect())
}

/// The latest day at or before `day` with a point of a level metric (its project total):
/// the day whose breakdown levels describe `day`'s end.
pub async fn latest_level_day(
    client: &impl GenericClient,
    project_id: Uuid,
    metric: &str,
    day: chrono::NaiveDate,
) -> anyhow::Result<Option<chrono::NaiveDate>> {
    let stmt = client
        .prepare_cached(
            "SELECT (max(time_bucket) AT TIME ZONE 'UTC')::date FROM metrics_trend_point
              WHERE project_id = $1 AND metric_key = $2 AND time_grain = 'day'
                AND dimensions = '{}' AND time_bucket < ($3::date + 1)::timestamp AT TIME ZONE 'UTC'",
        )
        .await?;
    Ok(client
        .query_one(&stmt, &[&project_id, &metric, &day])
        .await?
        .get(0))
}

/// Names of milestones or phases by id, for labels.
pub async fn labels(
    client: &impl GenericClient,
    project_id: Uuid,
    dimension: &str,
) -> anyhow::Result<std::collections::HashMap<String, String>> {
    let sql = match dimension {
        "milestone" => "SELECT milestone_id, name FROM metrics_milestone WHERE project_id = $1 AND name IS NOT NULL",
        "phase" => "SELECT phase_id, name FROM metrics_phase WHERE project_id = $1 AND name IS NOT NULL",
        _ => return Ok(Default::default()),
    };
    Ok(client
        .query(sql, &[&project_id])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// A snapshot with its payload kept as JSON text (served without re-parsing).
#[derive(Debug, Clone)]
pub struct RawSnapshot {
    /// Snapshot time.
    pub captured_at: DateTime<Utc>,
    /// Last folded seq.
    pub as_of_seq: i64,
    /// The row version (`xmin`): a rewritten snapshot row gets a new one, so
    /// (`captured_at`, `row_version`) identifies the payload's content.
    pub row_version: String,
    /// The summary's `metrics` object as JSON text; `None` when the caller said it already
    /// holds this row version's payload.
    pub payload: Option<String>,
}

/// What one summary read finds.
#[derive(Debug, Clone)]
pub struct SummaryRead {
    /// The key with the presented hash, when a hash was given and a key has it.
    pub key: Option<ApiKey>,
    /// Whether the project exists.
    pub project_exists: bool,
    /// The latest snapshot (at or before the asked time), if any.
    pub snapshot: Option<RawSnapshot>,
    /// The project's log head.
    pub head: i64,
}

/// The key (by hash), project existence, the latest snapshot (at or before `$2`) with its
/// payload as raw JSON unless it is the row version the caller holds (`$4`, `$5`), and the
/// log head: everything the summary needs in one round trip.
pub const SUMMARY_LOOKUP_SQL: &str =
    "SELECT p.id IS NOT NULL, s.captured_at, s.as_of_seq, s.xmin::text,
        CASE WHEN s.captured_at = $4 AND s.xmin::text = $5 THEN NULL ELSE s.payload::text END,
        COALESCE(h.last_seq, 0),
        k.id, k.name, k.key_prefix, k.project_id, k.roles, k.status, k.created_at,
        k.expires_at, k.last_used_at
   FROM (SELECT $1::uuid AS id) q
   LEFT JOIN project p ON p.id = q.id
   LEFT JOIN event_stream_head h ON h.project_id = q.id
   LEFT JOIN api_key k ON k.key_hash = $3::text
   LEFT JOIN LATERAL (
        SELECT captured_at, as_of_seq, payload, xmin FROM metrics_summary
         WHERE project_id = q.id AND ($2::timestamptz IS NULL OR captured_at <= $2)
         ORDER BY captured_at DESC LIMIT 1) s ON true";

/// Runs [`SUMMARY_LOOKUP_SQL`]. `key_hash` is the SHA-256 of the presented key (`None`
/// when authentication is off); `held` is the (`captured_at`, `row_version`) whose payload
/// the caller already has, so it is not sent again.
pub async fn summary_lookup(
    client: &impl GenericClient,
    project_id: Uuid,
    at: Option<DateTime<Utc>>,
    key_hash: Option<&str>,
    held: Option<(DateTime<Utc>, &str)>,
) -> anyhow::Result<SummaryRead> {
    let stmt = client.prepare_cached(SUMMARY_LOOKUP_SQL).await?;
    let (held_at, held_version) = held.unzip();
    let row = client
        .query_one(
            &stmt,
            &[&project_id, &at, &key_hash, &held_at, &held_version],
        )
        .await?;
    let snapshot = row
        .get::<_, Option<DateTime<Utc>>>(1)
        .map(|captured_at| RawSnapshot {
            captured_at,
            as_of_seq: row.get(2),
            row_version: row.get(3),
            payload: row.get(4),
        });
    let key = match row.get::<_, Option<Uuid>>(6) {
        Some(_) => Some(ApiKey::from_columns(&row, 6)?),
        None => None,
    };
    Ok(SummaryRead {
        key,
        project_exists: row.get(0),
        snapshot,
        head: row.get(5),
    })
}
