//! Alert storage: the worker's evaluation after each snapshot ([`evaluate`], in the
//! snapshot's transaction), the listing and acknowledgement the API serves (here), and the
//! webhook notifications ([`notify`]).

pub mod alertmanager;
mod evaluate;
mod notify;

pub use evaluate::{evaluate_snapshot, Evaluation, Outboxes, SnapshotInputs, Transition};
pub use notify::{alert_name, alertmanager_payload};

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::alerts::Severity;
use crate::metrics::actions::AlertRef;

/// One alert as stored and served (`GET /v1/metrics/alerts` items).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Alert {
    /// Alert id.
    pub id: Uuid,
    /// Project.
    pub project_id: Uuid,
    /// The rule's metric key (a short name such as `DPI`, or a summary path).
    pub metric_key: String,
    /// `threshold` or `anomaly`.
    pub alert_type: String,
    /// warning, critical or emergency.
    pub severity: String,
    /// firing or resolved.
    pub state: String,
    /// The latest value evaluated while open (the resolving value once resolved).
    #[schema(required = true)]
    pub value: Option<f64>,
    /// The level breached (the z threshold for anomalies).
    #[schema(required = true)]
    pub threshold: Option<f64>,
    /// Rule levels, snapshot details, anomaly statistics.
    #[schema(value_type = Object)]
    pub context: Value,
    /// When it fired (the snapshot's `captured_at`).
    pub created_at: DateTime<Utc>,
    /// Last change.
    pub updated_at: DateTime<Utc>,
    /// When it resolved.
    #[schema(required = true)]
    pub resolved_at: Option<DateTime<Utc>>,
    /// When it was acknowledged.
    #[schema(required = true)]
    pub acknowledged_at: Option<DateTime<Utc>>,
    /// Who acknowledged it (the API key's name).
    #[schema(required = true)]
    pub acknowledged_by: Option<String>,
    /// Why.
    #[schema(required = true)]
    pub ack_reason: Option<String>,
    /// When the acknowledgement lapses.
    #[schema(required = true)]
    pub ack_expires_at: Option<DateTime<Utc>>,
}

const ALERT_COLUMNS: &str = "id, project_id, metric_key, alert_type, severity, state, value, \
     threshold, context, created_at, updated_at, resolved_at, acknowledged_at, acknowledged_by, \
     ack_reason, ack_expires_at";

fn alert_from_row(row: &tokio_postgres::Row) -> Alert {
    Alert {
        id: row.get(0),
        project_id: row.get(1),
        metric_key: row.get(2),
        alert_type: row.get(3),
        severity: row.get(4),
        state: row.get(5),
        value: row.get(6),
        threshold: row.get(7),
        context: row.get(8),
        created_at: row.get(9),
        updated_at: row.get(10),
        resolved_at: row.get(11),
        acknowledged_at: row.get(12),
        acknowledged_by: row.get(13),
        ack_reason: row.get(14),
        ack_expires_at: row.get(15),
    }
}

/// Filters of `GET /v1/metrics/alerts`.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter {
    /// Only this severity.
    pub severity: Option<Severity>,
    /// Only `firing` or `resolved`.
    pub state: Option<String>,
    /// Only acknowledged (an unexpired acknowledgement) or only unacknowledged.
    pub acknowledged: Option<bool>,
    /// Only this metric key.
    pub metric_key: Option<String>,
}

/// Position after the last item of a page: `(created_at, id)` of that item.
pub type Cursor = (DateTime<Utc>, Uuid);

/// Alerts newest first (`created_at`, then id), after `cursor`, at most `limit`; returns
/// the page and whether more follow.
pub async fn list(
    client: &impl GenericClient,
    project_id: Uuid,
    filter: &AlertFilter,
    cursor: Option<Cursor>,
    limit: i64,
) -> anyhow::Result<(Vec<Alert>, bool)> {
    let (after_at, after_id) = cursor.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let severity = filter.severity.map(Severity::as_str);
    // Prepared once per connection: a page is one round trip.
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {ALERT_COLUMNS} FROM metrics_alert
              WHERE project_id = $1
                AND ($2::text IS NULL OR severity = $2)
                AND ($3::text IS NULL OR state = $3)
                AND ($4::bool IS NULL OR $4 = (acknowledged_at IS NOT NULL
                     AND (ack_expires_at IS NULL OR ack_expires_at > now())))
                AND ($5::text IS NULL OR metric_key = $5)
                AND ($6::timestamptz IS NULL OR (created_at, id) < ($6, $7::uuid))
              ORDER BY created_at DESC, id DESC
              LIMIT $8"
        ))
        .await?;
    let rows = client
        .query(
            &stmt,
            &[
                &project_id,
                &severity,
                &filter.state,
                &filter.acknowledged,
                &filter.metric_key,
                &after_at,
                &after_id,
                &(limit + 1),
            ],
        )
        .await?;
    let more = rows.len() as i64 > limit;
    Ok((
        rows.iter()
            .take(limit as usize)
            .map(alert_from_row)
            .collect(),
        more,
    ))
}

/// Acknowledges an alert of `project_id`. Idempotent: an alert already acknowledged (and
/// not lapsed) is returned unchanged. `None` when no such alert exists in the project.
pub async fn acknowledge(
    client: &impl GenericClient,
    project_id: Uuid,
    alert_id: Uuid,
    actor: &str,
    reason: Option<&str>,
    expires_in_minutes: Option<i64>,
) -> anyhow::Result<Option<Alert>> {
    let updated = client
        .query_opt(
            &format!(
                "UPDATE metrics_alert
                    SET acknowledged_at = date_trunc('milliseconds', now()),
                        acknowledged_by = $3, ack_reason = $4,
                        ack_expires_at = date_trunc('milliseconds', now())
                                         + make_interval(mins => $5::int)
                  WHERE project_id = $1 AND id = $2
                    AND (acknowledged_at IS NULL OR ack_expires_at <= now())
              RETURNING {ALERT_COLUMNS}"
            ),
            &[
                &project_id,
                &alert_id,
                &actor,
                &reason,
                &expires_in_minutes.map(|m| m as i32),
            ],
        )
        .await?;
    if let Some(row) = updated {
        let alert = alert_from_row(&row);
        client
            .execute(
                "INSERT INTO metrics_alert_event
                    (project_id, alert_id, event_no, kind, severity, value, threshold, at, actor)
                 SELECT $1, $2, COALESCE(max(event_no), 0) + 1, 'acknowledged', $3, $4, $5, $6, $7
                   FROM metrics_alert_event WHERE project_id = $1 AND alert_id = $2",
                &[
                    &project_id,
                    &alert_id,
                    &alert.severity,
                    &alert.value,
                    &alert.threshold,
                    &alert.acknowledged_at,
                    &actor,
                ],
            )
            .await?;
        return Ok(Some(alert));
    }
    Ok(client
        .query_opt(
            &format!("SELECT {ALERT_COLUMNS} FROM metrics_alert WHERE project_id = $1 AND id = $2"),
            &[&project_id, &alert_id],
        )
        .await?
        .as_ref()
        .map(alert_from_row))
}

/// Firing alerts per severity over every project (the `flowmeter_alerts_firing` gauge).
pub async fn firing_by_severity(client: &impl GenericClient) -> anyhow::Result<Vec<(String, i64)>> {
    Ok(client
        .query(
            "SELECT severity, count(*) FROM metrics_alert WHERE state = 'firing' GROUP BY severity",
            &[],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// The firing alerts of a project as evidence references (for `verify`'s recomputation of
/// the suggested actions).
pub async fn firing_refs(
    client: &impl GenericClient,
    project_id: Uuid,
) -> anyhow::Result<Vec<AlertRef>> {
    Ok(client
        .query(
            "SELECT metric_key, id FROM metrics_alert
              WHERE project_id = $1 AND state = 'firing' ORDER BY created_at, id",
            &[&project_id],
        )
        .await?
        .iter()
        .map(|r| AlertRef {
            metric_key: r.get(0),
            id: r.get(1),
        })
        .collect())
}
