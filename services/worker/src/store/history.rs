//! Reads and deletes of the read model that runs do besides writing deltas: the stored DPI
//! a snapshot compares with, and retention (SPEC §3.5).

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::read_model::{keys, Grain};
use uuid::Uuid;

use crate::fold::ProjectState;

/// The latest stored DPI day point at or before `bucket`, with its bucket (points are
/// change points: the value holds until the next one).
pub async fn stored_dpi(
    client: &impl GenericClient,
    project: Uuid,
    bucket: DateTime<Utc>,
) -> anyhow::Result<Option<(DateTime<Utc>, Option<f64>)>> {
    let stmt = client
        .prepare_cached(
            "SELECT time_bucket, value_numeric FROM metrics_trend_point
              WHERE project_id = $1 AND metric_key = $2 AND time_grain = $3 AND time_bucket <= $4
                AND dimensions = '{}'
              ORDER BY time_bucket DESC LIMIT 1",
        )
        .await?;
    Ok(client
        .query_opt(
            &stmt,
            &[&project, &keys::DPI, &Grain::Day.as_str(), &bucket],
        )
        .await?
        .map(|row| (row.get(0), row.get::<_, Option<f64>>(1))))
}

/// Deletes history older than the retention window (SPEC §3.5): trend and breakdown points,
/// drill-down rows of tasks terminal for longer, and thins summaries to one a day after 30 days.
pub async fn apply_retention(
    client: &impl GenericClient,
    state: &ProjectState,
    now: DateTime<Utc>,
    retention_days: i64,
) -> anyhow::Result<()> {
    let project = state.project_id;
    let cutoff = now - chrono::Duration::days(retention_days);
    // The tasks come from memory, so the delete is an index lookup, not a join.
    let expired: Vec<&str> = state
        .facts
        .tasks
        .iter()
        .filter(|t| t.terminal_at.is_some_and(|at| at < cutoff))
        .map(|t| t.task_id.as_str())
        .collect();
    client
        .execute(
            // A level series keeps its latest point before the cut-off: readers carry it
            // forward into the retained range.
            "DELETE FROM metrics_trend_point t WHERE t.project_id = $1 AND t.time_bucket < $2
                AND (t.metric_key <> ALL($3) OR EXISTS (
                     SELECT 1 FROM metrics_trend_point u
                      WHERE u.project_id = t.project_id AND u.metric_key = t.metric_key
                        AND u.time_grain = t.time_grain AND u.dimensions = t.dimensions
                        AND u.time_bucket > t.time_bucket AND u.time_bucket < $2))",
            &[
                &project,
                &cutoff,
                &crate::fold::model::LEVEL_METRICS.to_vec(),
            ],
        )
        .await?;
    client
        .execute(
            "DELETE FROM metrics_breakdown_point WHERE project_id = $1 AND day < $2::timestamptz::date",
            &[&project, &cutoff],
        )
        .await?;
    if !expired.is_empty() {
        client
            .execute(
                "DELETE FROM metrics_drilldown
                  WHERE project_id = $1 AND metric_key = ANY($2) AND task_id = ANY($3)",
                &[
                    &project,
                    &flowmeter_shared::read_model::DRILLDOWN_METRICS.to_vec(),
                    &expired,
                ],
            )
            .await?;
        // The precomputed aggregates and groups must not count the rows just removed.
        super::precompute::refresh(client, project, now).await?;
    }
    client
        .execute(
            "DELETE FROM metrics_summary s WHERE s.project_id = $1
                AND s.captured_at < $2::timestamptz - interval '30 days'
                AND s.captured_at <> (SELECT max(x.captured_at) FROM metrics_summary x
                                       WHERE x.project_id = $1
                                         AND date_trunc('day', x.captured_at) = date_trunc('day', s.captured_at))",
            &[&project, &now],
        )
        .await?;
    client
        .execute(
            "DELETE FROM metrics_job_run WHERE project_id = $1 AND created_at < $2",
            &[&project, &cutoff],
        )
        .await?;
    Ok(())
}
