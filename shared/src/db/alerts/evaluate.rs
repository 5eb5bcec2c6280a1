//! Evaluating the rules against a snapshot and storing what changed: alerts, their history,
//! pending state and the outbox rows of the configured webhook and Alertmanagers.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use deadpool_postgres::GenericClient;
use serde_json::{json, Value};
use uuid::Uuid;

use super::{alert_from_row, notify::alertmanager_payload, ALERT_COLUMNS};
use crate::alerts::{
    evaluate_anomaly, evaluate_threshold, AlertRules, AnomalyReading, Change, OpenAlert, Prior,
    Severity, ThresholdRule,
};
use crate::metrics::actions::AlertRef;
use crate::read_model::Grain;

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

/// Where the transitions of an evaluation are to be delivered (an outbox row each).
#[derive(Debug, Clone, Copy, Default)]
pub struct Outboxes<'a> {
    /// A webhook is configured (`metrics_alert_outbox`: firing and resolved).
    pub webhook: bool,
    /// The configured Alertmanagers' base URLs (`metrics_alertmanager_outbox`: every
    /// transition, one row per Alertmanager).
    pub alertmanagers: &'a [String],
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
/// resolved alerts, their history, the pending state, and the notifications of `outboxes`. Runs in the caller's transaction, after the snapshot's trend points are
/// written (anomaly baselines read them).
pub async fn evaluate_snapshot(
    client: &impl GenericClient,
    rules: &AlertRules,
    inputs: SnapshotInputs<'_>,
    outboxes: Outboxes<'_>,
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
        outboxes,
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
/// Score days without a point carry the latest value before them (scores are stored as
/// change points); throughput days without a point count 0 from the project's first day
/// with any daily count point on.
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
                AND dimensions = '{}' AND time_bucket >= $3 AND time_bucket < $4",
            &[&inputs.project_id, &keys, &from, &today],
        )
        .await?;
    let mut points: HashMap<String, HashMap<DateTime<Utc>, f64>> = HashMap::new();
    // Every stored day, null values included (a null point ends the value carried before it).
    let mut stored_days: HashMap<String, HashMap<DateTime<Utc>, Option<f64>>> = HashMap::new();
    for row in &rows {
        let value: Option<f64> = row.get(2);
        stored_days
            .entry(row.get(0))
            .or_default()
            .insert(row.get(1), value);
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
                        AND time_grain = 'day' AND dimensions = '{}'",
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
            // Scores are stored as change points: a day without a point has the value of the
            // latest point before it (from before the window too); days before the first
            // value and days whose value is null are left out.
            let before: Option<Option<f64>> = client
                .query_opt(
                    "SELECT value_numeric FROM metrics_trend_point
                      WHERE project_id = $1 AND metric_key = $2 AND time_grain = 'day'
                        AND dimensions = '{}' AND time_bucket < $3
                      ORDER BY time_bucket DESC LIMIT 1",
                    &[&inputs.project_id, &key, &from],
                )
                .await?
                .map(|row| row.get(0));
            let mut carried = before.flatten();
            let mut values = Vec::new();
            let mut day = from;
            while day < today {
                if let Some(value) = stored_days.get(key).and_then(|days| days.get(&day)) {
                    carried = *value;
                }
                if let Some(value) = carried {
                    values.push(value);
                }
                day += Duration::days(1);
            }
            values
        };
        baselines.insert(metric.clone(), values);
    }
    Ok(baselines)
}

struct Writer<'a, C> {
    client: &'a C,
    inputs: SnapshotInputs<'a>,
    outboxes: Outboxes<'a>,
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
        let mut ended_severity: Option<Severity> = None;
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
                ended_severity = Some(stored.severity);
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
        if !self.outboxes.alertmanagers.is_empty() {
            let ended = ended_severity.map(Severity::as_str);
            self.client
                .execute(
                    "INSERT INTO metrics_alertmanager_outbox
                        (alertmanager, project_id, alert_id, kind, ended_severity, at)
                     SELECT target, $2, $3, $4, $5, $6 FROM unnest($1::text[]) AS target",
                    &[
                        &self.outboxes.alertmanagers,
                        &project,
                        &id,
                        &kind,
                        &ended,
                        &now,
                    ],
                )
                .await?;
        }
        if self.outboxes.webhook && (kind == "firing" || kind == "resolved") {
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
