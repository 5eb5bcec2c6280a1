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
