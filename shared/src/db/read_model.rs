//! Read queries the API serves from. They touch read-model rows only (by primary key or
//! index), so their cost does not grow with the event log.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::Value;
use uuid::Uuid;

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

/// The latest snapshot of a project, or the latest at or before `at`.
pub async fn snapshot(
    client: &impl GenericClient,
    project_id: Uuid,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<Snapshot>> {
    let stmt = client
        .prepare_cached(
            "SELECT captured_at, as_of_seq, payload, health FROM metrics_summary
              WHERE project_id = $1 AND ($2::timestamptz IS NULL OR captured_at <= $2)
              ORDER BY captured_at DESC LIMIT 1",
        )
        .await?;
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
    let stmt = client
        .prepare_cached(
            "SELECT time_bucket, dimensions, value_numeric, sample_size, value_json
               FROM metrics_trend_point
              WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3
                AND time_bucket >= $4 AND time_bucket < $5
                AND (dimensions = '{}'::jsonb) <> $6
              ORDER BY time_bucket",
        )
        .await?;
    let rows = client
        .query(
            &stmt,
            &[&project_id, &metric, &grain, &from, &to, &dimensioned],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| TrendRow {
            bucket: r.get(0),
            dimensions: r.get(1),
            value: r.get(2),
            sample_size: r.get(3),
            detail: r.get(4),
        })
        .collect())
}
