//! Alertmanager delivery's storage (SPEC §17): the outbox of alert transitions per
//! Alertmanager, the per-Alertmanager resend clock and backoff, the silences created for
//! acknowledgements, and the alerts in the shape of Alertmanager's `POST /api/v2/alerts`.
//! The worker's `alertmanager` module does the HTTP.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{alert_from_row, notify::alert_name, Alert};

/// Where the links in an alert's annotations point.
#[derive(Debug, Clone)]
pub struct Links {
    /// The dashboard's base URL (`FLOWMETER_PUBLIC_URL`), without a trailing slash.
    pub public_url: String,
    /// The runbook's URL (`FLOWMETER_RUNBOOK_URL`), without an anchor.
    pub runbook_url: String,
}

impl Links {
    /// The dashboard's deep link to an alert: `/#/projects/{id}/alerts/{alert_id}`.
    pub fn dashboard(&self, alert: &Alert) -> String {
        format!(
            "{}/#/projects/{}/alerts/{}",
            self.public_url, alert.project_id, alert.id
        )
    }

    /// The runbook section for the rule's metric: the section of the matching delivery
    /// rule for the six short names, the general section of Flowmeter's alerts otherwise.
    pub fn runbook(&self, alert: &Alert) -> String {
        let section = match (alert.alert_type.as_str(), alert.metric_key.as_str()) {
            ("threshold", "DPI") => "flowmeterdeliverypredictabilitylow",
            ("threshold", "FES") => "flowmeterflowefficiencylow",
            ("threshold", "IRS") => "flowmeterintegrationreliabilitylow",
            ("threshold", "lead_time_p90") => "flowmeterleadtimehigh",
            ("threshold", "blocked_ratio") => "flowmeterblockedratiohigh",
            ("threshold", "ini_backlog") => "flowmeterintegrationbackloghigh",
            _ => "flowmeters-own-alerts-in-alertmanager",
        };
        format!("{}#{section}", self.runbook_url)
    }
}

/// One alert as `POST /api/v2/alerts` takes it. `severity` is the label (a severity change
/// ends the previous severity's alert, see [`Pending::ended_severity`]); `ends_at` is the
/// resolution time, or for a firing alert how long Alertmanager keeps it without a resend.
pub fn postable_alert(
    alert: &Alert,
    project_name: &str,
    severity: &str,
    ends_at: DateTime<Utc>,
    links: &Links,
) -> Value {
    let dashboard = links.dashboard(alert);
    let number = |v: Option<f64>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
    let what = if alert.alert_type == "anomaly" {
        format!("{} is anomalous", alert.metric_key)
    } else {
        format!("{} breached its {severity} level", alert.metric_key)
    };
    json!({
        "labels": {
            "alertname": alert_name(&alert.metric_key, &alert.alert_type),
            "project_id": alert.project_id,
            "project": project_name,
            "severity": severity,
            "metric_key": alert.metric_key,
            "alert_type": alert.alert_type,
            "source": "flowmeter",
        },
        "annotations": {
            "summary": format!("{what} in project {project_name}"),
            "description": format!(
                "{} of project {project_name} ({}) is {} against the {severity} threshold {} \
                 (Flowmeter alert {}).",
                alert.metric_key,
                alert.project_id,
                number(alert.value),
                number(alert.threshold),
                alert.id
            ),
            "value": number(alert.value),
            "threshold": number(alert.threshold),
            "runbook_url": links.runbook(alert),
            "dashboard_url": dashboard,
        },
        "startsAt": alert.created_at.to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "generatorURL": dashboard,
    })
}

/// An undelivered outbox row.
#[derive(Debug, Clone)]
pub struct Pending {
    /// Row id (delivery order).
    pub id: i64,
    /// Project.
    pub project_id: Uuid,
    /// The alert.
    pub alert_id: Uuid,
    /// firing, escalated, deescalated or resolved.
    pub kind: String,
    /// After a severity change, the severity whose Alertmanager alert ends at `at`.
    pub ended_severity: Option<String>,
    /// When the transition happened (the snapshot's `captured_at`).
    pub at: DateTime<Utc>,
}

/// An alert with its project's name.
#[derive(Debug, Clone)]
pub struct Named {
    /// The alert as stored now.
    pub alert: Alert,
    /// Its project's name (the id when the project has no row).
    pub project_name: String,
}

/// Registers the Alertmanagers (idempotent), so each has a row to lock.
pub async fn register_targets(
    client: &impl GenericClient,
    alertmanagers: &[String],
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO metrics_alertmanager_target (alertmanager)
             SELECT unnest($1::text[]) ON CONFLICT DO NOTHING",
            &[&alertmanagers],
        )
        .await?;
    Ok(())
}

/// The Alertmanager's delivery state, locked for this transaction; `None` when another
/// worker holds it.
#[derive(Debug, Clone)]
pub struct TargetState {
    /// Whether a post may be tried now (not backing off).
    pub due: bool,
    /// Whether the firing alerts are due to be sent again.
    pub resend_due: bool,
    /// Consecutive failed posts.
    pub failures: i32,
}

/// Locks the Alertmanager's row (`SKIP LOCKED`): one worker delivers to it at a time.
pub async fn lock_target(
    client: &impl GenericClient,
    alertmanager: &str,
    resend_seconds: f64,
) -> anyhow::Result<Option<TargetState>> {
    Ok(client
        .query_opt(
            "SELECT next_attempt_at <= now(),
                    last_resend_at IS NULL
                        OR last_resend_at <= now() - make_interval(secs => $2),
                    failures
               FROM metrics_alertmanager_target WHERE alertmanager = $1
                FOR UPDATE SKIP LOCKED",
            &[&alertmanager, &resend_seconds],
        )
        .await?
        .map(|row| TargetState {
            due: row.get(0),
            resend_due: row.get(1),
            failures: row.get(2),
        }))
}

/// The oldest undelivered rows for an Alertmanager, at most `limit`.
pub async fn pending(
    client: &impl GenericClient,
    alertmanager: &str,
    limit: i64,
) -> anyhow::Result<Vec<Pending>> {
    Ok(client
        .query(
            "SELECT id, project_id, alert_id, kind, ended_severity, at
               FROM metrics_alertmanager_outbox
              WHERE alertmanager = $1 AND delivered_at IS NULL
              ORDER BY id LIMIT $2",
            &[&alertmanager, &limit],
        )
        .await?
        .iter()
        .map(|r| Pending {
            id: r.get(0),
            project_id: r.get(1),
            alert_id: r.get(2),
            kind: r.get(3),
            ended_severity: r.get(4),
            at: r.get(5),
        })
        .collect())
}

const NAMED_COLUMNS: &str = "a.id, a.project_id, a.metric_key, a.alert_type, a.severity, \
     a.state, a.value, a.threshold, a.context, a.created_at, a.updated_at, a.resolved_at, \
     a.acknowledged_at, a.acknowledged_by, a.ack_reason, a.ack_expires_at, \
     COALESCE(p.name, a.project_id::text)";

fn named_from_row(row: &tokio_postgres::Row) -> Named {
    Named {
        alert: alert_from_row(row),
        project_name: row.get(16),
    }
}

/// The alerts with these ids as stored now.
pub async fn alerts_by_id(client: &impl GenericClient, ids: &[Uuid]) -> anyhow::Result<Vec<Named>> {
    Ok(client
        .query(
            &format!(
                "SELECT {NAMED_COLUMNS} FROM metrics_alert a
                   LEFT JOIN project p ON p.id = a.project_id
                  WHERE a.id = ANY($1)"
            ),
            &[&ids],
        )
        .await?
        .iter()
        .map(named_from_row)
        .collect())
}

/// Every firing alert (the periodic resend), oldest first.
pub async fn firing(client: &impl GenericClient) -> anyhow::Result<Vec<Named>> {
    Ok(client
        .query(
            &format!(
                "SELECT {NAMED_COLUMNS} FROM metrics_alert a
                   LEFT JOIN project p ON p.id = a.project_id
                  WHERE a.state = 'firing' ORDER BY a.created_at, a.id"
            ),
            &[],
        )
        .await?
        .iter()
        .map(named_from_row)
        .collect())
}

/// Records a post Alertmanager accepted: its rows are delivered, the backoff is reset, and
/// when it carried every firing alert the resend clock restarts.
pub async fn record_success(
    client: &impl GenericClient,
    alertmanager: &str,
    rows: &[i64],
    resent: bool,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE metrics_alertmanager_outbox
                SET delivered_at = now(), attempts = attempts + 1, last_error = NULL
              WHERE id = ANY($1) AND delivered_at IS NULL",
            &[&rows],
        )
        .await?;
    client
        .execute(
            "UPDATE metrics_alertmanager_target
                SET failures = 0, next_attempt_at = now(), last_error = NULL,
                    last_resend_at = CASE WHEN $2 THEN now() ELSE last_resend_at END
              WHERE alertmanager = $1",
            &[&alertmanager, &resent],
        )
        .await?;
    Ok(())
}

/// Records a failed post: its rows count an attempt, the Alertmanager backs off for
/// `retry_in_seconds`.
pub async fn record_failure(
    client: &impl GenericClient,
    alertmanager: &str,
    rows: &[i64],
    error: &str,
    retry_in_seconds: f64,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE metrics_alertmanager_outbox
                SET attempts = attempts + 1, last_error = $2
              WHERE id = ANY($1)",
            &[&rows, &error],
        )
        .await?;
    client
        .execute(
            "UPDATE metrics_alertmanager_target
                SET failures = failures + 1, last_error = $2,
                    next_attempt_at = now() + make_interval(secs => $3)
              WHERE alertmanager = $1",
            &[&alertmanager, &error, &retry_in_seconds],
        )
        .await?;
    Ok(())
}

/// Undelivered rows over the configured Alertmanagers
/// (`flowmeter_alertmanager_queue_depth`); rows of an Alertmanager no longer configured
/// are never sent and do not count.
pub async fn queue_depth(
    client: &impl GenericClient,
    alertmanagers: &[String],
) -> anyhow::Result<i64> {
    Ok(client
        .query_one(
            "SELECT count(*) FROM metrics_alertmanager_outbox
              WHERE delivered_at IS NULL AND alertmanager = ANY($1)",
            &[&alertmanagers],
        )
        .await?
        .get(0))
}

/// Acknowledgements with an expiry still ahead that this Alertmanager has no silence for.
pub async fn silences_due(
    client: &impl GenericClient,
    alertmanager: &str,
    limit: i64,
) -> anyhow::Result<Vec<Named>> {
    Ok(client
        .query(
            &format!(
                "SELECT {NAMED_COLUMNS} FROM metrics_alert a
                   LEFT JOIN project p ON p.id = a.project_id
                  WHERE a.ack_expires_at > now() AND a.acknowledged_at IS NOT NULL
                    AND NOT EXISTS (
                        SELECT 1 FROM metrics_alertmanager_silence s
                         WHERE s.alertmanager = $1 AND s.project_id = a.project_id
                           AND s.alert_id = a.id AND s.acknowledged_at = a.acknowledged_at)
                  ORDER BY a.acknowledged_at, a.id LIMIT $2"
            ),
            &[&alertmanager, &limit],
        )
        .await?
        .iter()
        .map(named_from_row)
        .collect())
}

/// A silence as `POST /api/v2/silences` takes it: the alert's rule (`alertname`) in its
/// project, until the acknowledgement's expiry.
pub fn postable_silence(alert: &Alert) -> Option<Value> {
    let ends_at = alert.ack_expires_at?;
    let matcher = |name: &str, value: String| json!({"name": name, "value": value, "isRegex": false, "isEqual": true});
    Some(json!({
        "matchers": [
            matcher("alertname", alert_name(&alert.metric_key, &alert.alert_type)),
            matcher("project_id", alert.project_id.to_string()),
        ],
        "startsAt": alert.acknowledged_at.unwrap_or_else(Utc::now).to_rfc3339(),
        "endsAt": ends_at.to_rfc3339(),
        "createdBy": alert.acknowledged_by.clone().unwrap_or_else(|| "flowmeter".to_owned()),
        "comment": alert.ack_reason.clone().filter(|r| !r.trim().is_empty()).unwrap_or_else(
            || format!("Acknowledged in Flowmeter (alert {}).", alert.id)
        ),
    }))
}

/// Stores the id of the silence an Alertmanager created for an acknowledgement.
pub async fn store_silence(
    client: &impl GenericClient,
    alertmanager: &str,
    alert: &Alert,
    silence_id: &str,
) -> anyhow::Result<()> {
    client
        .execute(
            "INSERT INTO metrics_alertmanager_silence
                (alertmanager, project_id, alert_id, acknowledged_at, silence_id, ends_at)
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            &[
                &alertmanager,
                &alert.project_id,
                &alert.id,
                &alert.acknowledged_at,
                &silence_id,
                &alert.ack_expires_at,
            ],
        )
        .await?;
    Ok(())
}

/// The silence ids stored for an alert, per Alertmanager.
pub async fn silences_of(
    client: &impl GenericClient,
    project_id: Uuid,
    alert_id: Uuid,
) -> anyhow::Result<Vec<(String, String)>> {
    Ok(client
        .query(
            "SELECT alertmanager, silence_id FROM metrics_alertmanager_silence
              WHERE project_id = $1 AND alert_id = $2 ORDER BY created_at, alertmanager",
            &[&project_id, &alert_id],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

#[cfg(test)]
#[path = "alertmanager_tests.rs"]
mod tests;
