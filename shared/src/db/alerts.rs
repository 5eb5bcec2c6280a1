//! Alert storage: the worker's evaluation after each snapshot (in the snapshot's
//! transaction), the listing and acknowledgement the API serves, and the webhook outbox.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::alerts::{
    evaluate_anomaly, evaluate_threshold, AlertRules, AnomalyReading, Change, OpenAlert, Prior,
    Severity, ThresholdRule,
};
use crate::metrics::actions::AlertRef;
use crate::read_model::Grain;

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

/// What the snapshot offers the evaluation.
#[derive(Debug, Clone, Copy)]
pub struct SnapshotInputs<'a> {
    /// Project.
    pub project_id: Uuid,
    /// The summary's `metrics` object.
    pub summary: &'a Value,
    /// The snapshot's `captured_at`.
    pub now: DateTime<Utc>,
    /// Last folded seq.
    pub as_of_seq: i64,
    /// Tasks integrated in the 24 h before `now` (throughput's current daily value).
    pub throughput_24h: f64,
}

/// One lifecycle transition an evaluation stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    /// The alert.
    pub alert_id: Uuid,
    /// Its metric key.
    pub metric_key: String,
    /// threshold or anomaly.
    pub alert_type: &'static str,
    /// firing, escalated, deescalated or resolved.
    pub kind: &'static str,
    /// Severity after the transition.
    pub severity: Severity,
}

/// What an evaluation did.
#[derive(Debug, Clone, Default)]
pub struct Evaluation {
    /// Transitions, in the order they were stored.
    pub transitions: Vec<Transition>,
    /// Alerts firing after the evaluation (the actions' evidence).
    pub firing: Vec<AlertRef>,
}

struct Stored {
    id: Uuid,
    metric_key: String,
    severity: Severity,
}

/// Evaluates every rule against a snapshot and stores the outcome: new, changed and
/// resolved alerts, their history, the pending state, and (with `outbox`) the webhook
/// notifications. Runs in the caller's transaction, after the snapshot's trend points are
/// written (anomaly baselines read them).
pub async fn evaluate_snapshot(
    client: &impl GenericClient,
    rules: &AlertRules,
    inputs: SnapshotInputs<'_>,
    outbox: bool,
) -> anyhow::Result<Evaluation> {
    let project = inputs.project_id;
    let now = inputs.now;
    let mut pending: HashMap<String, Option<DateTime<Utc>>> = client
        .query(
            "SELECT rule_key, pending_since FROM metrics_alert_rule_state WHERE project_id = $1",
            &[&project],
        )
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let mut open: HashMap<String, Stored> = HashMap::new();
    for row in client
        .query(
            "SELECT rule_key, id, metric_key, severity FROM metrics_alert
              WHERE project_id = $1 AND state = 'firing'",
            &[&project],
        )
        .await?
    {
        let severity: String = row.get(3);
        open.insert(
            row.get(0),
            Stored {
                id: row.get(1),
                metric_key: row.get(2),
                severity: Severity::parse(&severity).unwrap_or(Severity::Warning),
            },
        );
    }
    let mut writer = Writer {
        client,
        inputs,
        outbox,
        evaluation: Evaluation::default(),
    };

    for rule in &rules.thresholds {
        let key = rule.metric_key.clone();
        let value = rule.source.value_in(inputs.summary);
        let stored = open.remove(&key);
        let prior = Prior {
            pending_since: pending.remove(&key).flatten(),
            open: stored.as_ref().map(|s| OpenAlert {
                id: s.id,
                severity: s.severity,
            }),
        };
        let verdict = evaluate_threshold(rule, value, now, prior);
        let context = threshold_context(rule, &inputs);
        let still_open = writer
            .apply(
                &key,
                &rule.metric_key,
                "threshold",
                stored,
                verdict.change,
                value,
                context,
            )
            .await?;
        if let Some(alert) = still_open {
            writer.evaluation.firing.push(alert);
        }
        client
            .execute(
                "INSERT INTO metrics_alert_rule_state
                        (project_id, rule_key, pending_since, last_value, last_evaluated_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (project_id, rule_key) DO UPDATE
                    SET pending_since = EXCLUDED.pending_since,
                        last_value = COALESCE(EXCLUDED.last_value, metrics_alert_rule_state.last_value),
                        last_evaluated_at = EXCLUDED.last_evaluated_at",
                &[&project, &key, &verdict.pending_since, &value, &now],
            )
            .await?;
    }

    if !rules.anomaly.metrics.is_empty() {
        let baselines = anomaly_baselines(client, rules, &inputs).await?;
        for metric in &rules.anomaly.metrics {
            let key = format!("anomaly:{metric}");
            let current = if metric == "throughput" {
                Some(inputs.throughput_24h)
            } else {
                crate::alerts::MetricSource::resolve(metric).value_in(inputs.summary)
            };
            let baseline = baselines.get(metric).cloned().unwrap_or_default();
            let stored = open.remove(&key);
            let open_alert = stored.as_ref().map(|s| OpenAlert {
                id: s.id,
                severity: s.severity,
            });
            let (change, reading) =
                evaluate_anomaly(&rules.anomaly, current, &baseline, open_alert);
            let context = anomaly_context(reading, rules, &inputs);
            if let Some(alert) = writer
                .apply(&key, metric, "anomaly", stored, change, current, context)
                .await?
            {
                writer.evaluation.firing.push(alert);
            }
        }
    }

    // Alerts of rules no longer configured resolve: nothing will ever evaluate them again.
    for (key, stored) in open {
        let alert_type = if key.starts_with("anomaly:") {
            "anomaly"
        } else {
            "threshold"
        };
        writer
            .apply(
                &key,
                &stored.metric_key.clone(),
                alert_type,
                Some(stored),
                Change::Resolve,
                None,
                json!({"resolved_because": "rule_removed"}),
            )
            .await?;
    }
    Ok(writer.evaluation)
}

fn threshold_context(rule: &ThresholdRule, inputs: &SnapshotInputs<'_>) -> Value {
    let levels: serde_json::Map<String, Value> = rule
        .levels
        .iter()
        .map(|(s, l)| (s.as_str().to_owned(), json!(l)))
        .collect();
    json!({
        "direction": rule.direction,
        "levels": levels,
        "clear": rule.clear,
        "for_seconds": rule.pending_for.num_seconds(),
        "captured_at": inputs.now,
        "as_of_seq": inputs.as_of_seq,
    })
}

fn anomaly_context(
    reading: Option<AnomalyReading>,
    rules: &AlertRules,
    inputs: &SnapshotInputs<'_>,
) -> Value {
    json!({
        "z": reading.map(|r| r.z),
        "mean": reading.map(|r| r.mean),
        "sigma": reading.map(|r| r.sigma),
        "points": reading.map(|r| r.points),
        "window_days": rules.anomaly.window_days,
        "z_threshold": rules.anomaly.z_threshold,
        "captured_at": inputs.now,
        "as_of_seq": inputs.as_of_seq,
    })
}

/// The trend metric key behind each anomaly metric.
fn trend_key(metric: &str) -> &'static str {
    match metric {
        "DPI" => "delivery_predictability_index",
        "FES" => "flow_efficiency_score",
        "IRS" => "integration_reliability_score",
        _ => "throughput",
    }
}

/// Daily values of the `window_days` days before the current day, per anomaly metric.
/// Score days without a point are left out; throughput days without a point count 0 from
/// the project's first day with any daily count point on.
async fn anomaly_baselines(
    client: &impl GenericClient,
    rules: &AlertRules,
    inputs: &SnapshotInputs<'_>,
) -> anyhow::Result<HashMap<String, Vec<f64>>> {
    let today = Grain::Day.bucket(inputs.now);
    let from = today - Duration::days(rules.anomaly.window_days);
    let keys: Vec<&str> = rules.anomaly.metrics.iter().map(|m| trend_key(m)).collect();
    let rows = client
        .query(
            "SELECT metric_key, time_bucket, value_numeric FROM metrics_trend_point
              WHERE project_id = $1 AND metric_key = ANY($2) AND time_grain = 'day'
                AND dimensions = '{}'::jsonb AND time_bucket >= $3 AND time_bucket < $4",
            &[&inputs.project_id, &keys, &from, &today],
        )
        .await?;
    let mut points: HashMap<String, HashMap<DateTime<Utc>, f64>> = HashMap::new();
    for row in &rows {
        let value: Option<f64> = row.get(2);
        if let Some(value) = value {
            points
                .entry(row.get(0))
                .or_default()
                .insert(row.get(1), value);
        }
    }
    let mut baselines = HashMap::new();
    for metric in &rules.anomaly.metrics {
        let key = trend_key(metric);
        let series = points.remove(key).unwrap_or_default();
        let values = if key == "throughput" {
            let first: Option<DateTime<Utc>> = client
                .query_one(
                    "SELECT min(time_bucket) FROM metrics_trend_point
                      WHERE project_id = $1 AND metric_key IN ('arrivals', 'throughput')
                        AND time_grain = 'day' AND dimensions = '{}'::jsonb",
                    &[&inputs.project_id],
                )
                .await?
                .get(0);
            let start = first.map_or(today, |f| f.max(from));
            let mut values = Vec::new();
            let mut day = start;
            while day < today {
                values.push(series.get(&day).copied().unwrap_or(0.0));
                day += Duration::days(1);
            }
            values
        } else {
            let mut days: Vec<(DateTime<Utc>, f64)> = series.into_iter().collect();
            days.sort_by_key(|(d, _)| *d);
            days.into_iter().map(|(_, v)| v).collect()
        };
        baselines.insert(metric.clone(), values);
    }
    Ok(baselines)
}

struct Writer<'a, C> {
    client: &'a C,
    inputs: SnapshotInputs<'a>,
    outbox: bool,
    evaluation: Evaluation,
}

impl<C: GenericClient> Writer<'_, C> {
    /// Stores one rule's change; returns the alert when it is firing afterwards.
    #[allow(clippy::too_many_arguments)]
    async fn apply(
        &mut self,
        rule_key: &str,
        metric_key: &str,
        alert_type: &'static str,
        stored: Option<Stored>,
        change: Change,
        value: Option<f64>,
        context: Value,
    ) -> anyhow::Result<Option<AlertRef>> {
        let project = self.inputs.project_id;
        let now = self.inputs.now;
        let (id, severity, kind) = match (change, stored) {
            (
                Change::Open {
                    severity,
                    threshold,
                },
                _,
            ) => {
                let id = Uuid::new_v4();
                self.client
                    .execute(
                        "INSERT INTO metrics_alert
                            (project_id, id, rule_key, metric_key, alert_type, severity, state,
                             value, threshold, context, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, 'firing', $7, $8, $9, $10, $10)",
                        &[
                            &project,
                            &id,
                            &rule_key,
                            &metric_key,
                            &alert_type,
                            &severity.as_str(),
                            &value,
                            &threshold,
                            &context,
                            &now,
                        ],
                    )
                    .await?;
                (id, severity, "firing")
            }
            (
                Change::Severity {
                    severity,
                    threshold,
                },
                Some(stored),
            ) => {
                self.client
                    .execute(
                        "UPDATE metrics_alert
                            SET severity = $3, threshold = $4, value = $5, context = $6,
                                updated_at = $7
                          WHERE project_id = $1 AND id = $2",
                        &[
                            &project,
                            &stored.id,
                            &severity.as_str(),
                            &threshold,
                            &value,
                            &context,
                            &now,
                        ],
                    )
                    .await?;
                let kind = if severity > stored.severity {
                    "escalated"
                } else {
                    "deescalated"
                };
                (stored.id, severity, kind)
            }
            (Change::Resolve, Some(stored)) => {
                self.client
                    .execute(
                        "UPDATE metrics_alert
                            SET state = 'resolved', resolved_at = $3, updated_at = $3,
                                value = COALESCE($4, value)
                          WHERE project_id = $1 AND id = $2",
                        &[&project, &stored.id, &now, &value],
                    )
                    .await?;
                (stored.id, stored.severity, "resolved")
            }
            (Change::Nothing, Some(stored)) => {
                if value.is_some() {
                    self.client
                        .execute(
                            "UPDATE metrics_alert SET value = $3, updated_at = $4
                              WHERE project_id = $1 AND id = $2 AND value IS DISTINCT FROM $3",
                            &[&project, &stored.id, &value, &now],
                        )
                        .await?;
                }
                return Ok(Some(AlertRef {
                    metric_key: metric_key.to_owned(),
                    id: stored.id,
                }));
            }
            // Nothing open and nothing to open (a severity change or resolution needs an
            // open alert, which `evaluate_*` only returns when there is one).
            (_, None) => return Ok(None),
        };
        self.client
            .execute(
                "INSERT INTO metrics_alert_event
                    (project_id, alert_id, event_no, kind, severity, value, threshold, at,
                     as_of_seq)
                 VALUES ($1, $2,
                         (SELECT COALESCE(max(event_no), 0) + 1 FROM metrics_alert_event
                           WHERE project_id = $1 AND alert_id = $2),
                         $3, $4, $5,
                         (SELECT threshold FROM metrics_alert WHERE project_id = $1 AND id = $2),
                         $6, $7)",
                &[
                    &project,
                    &id,
                    &kind,
                    &severity.as_str(),
                    &value,
                    &now,
                    &self.inputs.as_of_seq,
                ],
            )
            .await?;
        if self.outbox && (kind == "firing" || kind == "resolved") {
            let status = if kind == "resolved" {
                "resolved"
            } else {
                "firing"
            };
            let alert = self
                .client
                .query_one(
                    &format!(
                        "SELECT {ALERT_COLUMNS} FROM metrics_alert WHERE project_id = $1 AND id = $2"
                    ),
                    &[&project, &id],
                )
                .await?;
            let payload = alertmanager_payload(&alert_from_row(&alert), status);
            self.client
                .execute(
                    "INSERT INTO metrics_alert_outbox (project_id, alert_id, status, payload)
                     VALUES ($1, $2, $3, $4)",
                    &[&project, &id, &status, &payload],
                )
                .await?;
        }
        self.evaluation.transitions.push(Transition {
            alert_id: id,
            metric_key: metric_key.to_owned(),
            alert_type,
            kind,
            severity,
        });
        Ok((kind != "resolved").then(|| AlertRef {
            metric_key: metric_key.to_owned(),
            id,
        }))
    }
}

/// One notification in the shape of Alertmanager's webhook (`version` 4), so receivers
/// built for Alertmanager accept it unchanged.
pub fn alertmanager_payload(alert: &Alert, status: &str) -> Value {
    let labels = json!({
        "alertname": format!("Flowmeter{}", alert_name(&alert.metric_key, &alert.alert_type)),
        "project_id": alert.project_id,
        "metric_key": alert.metric_key,
        "alert_type": alert.alert_type,
        "severity": alert.severity,
    });
    let summary = format!(
        "{} {} {} for project {}",
        alert.metric_key,
        if alert.alert_type == "anomaly" {
            "is anomalous"
        } else {
            "breached its"
        },
        if alert.alert_type == "anomaly" {
            String::new()
        } else {
            format!("{} level", alert.severity)
        },
        alert.project_id
    );
    let annotations = json!({
        "summary": summary.replace("  ", " "),
        "description": format!(
            "value {} against threshold {}",
            alert.value.map_or("null".to_owned(), |v| v.to_string()),
            alert.threshold.map_or("null".to_owned(), |v| v.to_string())
        ),
        "alert_id": alert.id,
    });
    let ends_at = alert
        .resolved_at
        .map_or("0001-01-01T00:00:00Z".to_owned(), |t| t.to_rfc3339());
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{project_id=\"{}\"}}", alert.project_id),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "flowmeter",
        "groupLabels": {"project_id": alert.project_id},
        "commonLabels": labels,
        "commonAnnotations": annotations,
        "externalURL": "",
        "alerts": [{
            "status": status,
            "labels": labels,
            "annotations": annotations,
            "startsAt": alert.created_at.to_rfc3339(),
            "endsAt": ends_at,
            "generatorURL": "",
            "fingerprint": alert.id.simple().to_string(),
        }],
    })
}

fn alert_name(metric_key: &str, alert_type: &str) -> String {
    let base: String = metric_key
        .split(['.', '_'])
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or(String::new(), |c| {
                c.to_uppercase().collect::<String>() + chars.as_str()
            })
        })
        .collect();
    if alert_type == "anomaly" {
        format!("{base}Anomaly")
    } else {
        base
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
    let rows = client
        .query(
            &format!(
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
            ),
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
