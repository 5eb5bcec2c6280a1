//! The step after every summary snapshot: evaluate the alert rules against it and store
//! the suggested actions with it, in the snapshot's transaction.

use chrono::{DateTime, TimeDelta, Utc};
use flowmeter_shared::config::Feature;
use flowmeter_shared::db::alerts::{self, Evaluation, Outboxes, SnapshotInputs};
use flowmeter_shared::db::GenericClient;
use flowmeter_shared::metrics::actions::{suggest_actions, AlertRef};
use flowmeter_shared::metrics::{ProjectFacts, SummaryMetrics};
use serde_json::Value;
use uuid::Uuid;

use crate::fold::model::SummaryRow;
use crate::settings::WorkerSettings;

/// Whether the snapshot is a new one (evaluate the rules) or a stored one being
/// reproduced (rebuild: keep the alerts as they are).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotKind {
    /// A snapshot taken now: rules are evaluated against it.
    New,
    /// A stored snapshot recomputed: only its suggested actions are written again.
    Reproduced,
}

/// Evaluates the rules against the snapshot just written and writes its suggested
/// actions.
pub async fn after_snapshot(
    client: &impl GenericClient,
    settings: &WorkerSettings,
    facts: &ProjectFacts,
    project_id: Uuid,
    snapshot: &SummaryRow,
    kind: SnapshotKind,
) -> anyhow::Result<Evaluation> {
    let (payload, captured_at, as_of_seq) =
        (&snapshot.payload, snapshot.captured_at, snapshot.as_of_seq);
    let mut evaluation = Evaluation::default();
    if settings.enabled(Feature::Alerts) {
        if kind == SnapshotKind::New {
            let inputs = SnapshotInputs {
                project_id,
                summary: payload,
                now: captured_at,
                as_of_seq,
                throughput_24h: facts
                    .tasks_integrated_within(captured_at, TimeDelta::hours(24))
                    .count() as f64,
            };
            evaluation = alerts::evaluate_snapshot(
                client,
                &settings.alert_rules,
                inputs,
                Outboxes {
                    webhook: settings.alert_webhook_url.is_some(),
                    alertmanagers: &settings.alertmanager_urls,
                },
            )
            .await?;
        } else {
            evaluation.firing = alerts::firing_refs(client, project_id).await?;
        }
    }
    if let Some(actions) = actions_for(settings, facts, payload, captured_at, &evaluation.firing)? {
        client
            .execute(
                "UPDATE metrics_summary
                    SET payload = jsonb_set(payload, '{actionability,suggested_actions}', $3)
                  WHERE project_id = $1 AND captured_at = $2",
                &[&project_id, &captured_at, &actions],
            )
            .await?;
    }
    Ok(evaluation)
}

/// The suggested actions of a snapshot as JSON; `None` when there are none or the
/// feature is off (the stored list stays empty).
pub fn actions_for(
    settings: &WorkerSettings,
    facts: &ProjectFacts,
    payload: &Value,
    captured_at: DateTime<Utc>,
    firing: &[AlertRef],
) -> anyhow::Result<Option<Value>> {
    if !settings.enabled(Feature::Actions) {
        return Ok(None);
    }
    let summary: SummaryMetrics = serde_json::from_value(payload.clone())?;
    let actions = suggest_actions(facts, &summary, captured_at, firing);
    if actions.is_empty() {
        return Ok(None);
    }
    Ok(Some(serde_json::to_value(actions)?))
}

/// Sets the suggested actions inside a summary payload (`verify`'s recomputation).
pub fn set_actions(payload: &mut Value, actions: Value) {
    if let Some(slot) = payload.pointer_mut("/actionability/suggested_actions") {
        *slot = actions;
    }
}

/// Business gauges and where each reads from in the summary, with how the projects beyond
/// the top N combine under `project="other"`.
const BUSINESS_GAUGES: [(&str, &str, Combine); 11] = [
    ("dpi", "DPI", Combine::Mean),
    ("fes", "FES", Combine::Mean),
    ("irs", "IRS", Combine::Mean),
    ("lead_time_p90_hours", "lead_time_p90", Combine::Mean),
    ("blocked_ratio", "blocked_ratio", Combine::Mean),
    ("ini_backlog", "ini_backlog", Combine::Sum),
    (
        "throughput_week",
        "operational.throughput.tasks_integrated_week",
        Combine::Sum,
    ),
    ("wip", "operational.wip.total_count", Combine::Sum),
    (
        "deployments_per_day",
        "dora.deployment_frequency.per_day",
        Combine::Mean,
    ),
    ("change_failure_rate", "change_failure_rate", Combine::Mean),
    (
        "time_to_restore_hours",
        "time_to_restore_hours",
        Combine::Mean,
    ),
];

#[derive(Debug, Clone, Copy)]
enum Combine {
    Mean,
    Sum,
}

/// `(project label, metric, value)` for `flowmeter_project_metric`: the latest summary of
/// the `max_projects` projects with the most events folded in the last 7 days (ties by
/// project id), the others combined under `other` (counts summed, scores and ratios
/// averaged). A metric without data has no sample.
pub async fn business_gauges(
    client: &impl GenericClient,
    max_projects: usize,
) -> anyhow::Result<Vec<(String, &'static str, f64)>> {
    let rows = client
        .query(
            "SELECT c.project_id, s.payload,
                    COALESCE((SELECT sum(r.processed_events) FROM metrics_job_run r
                               WHERE r.project_id = c.project_id
                                 AND r.created_at > now() - interval '7 days'), 0)::bigint
               FROM metrics_job_checkpoint c
               CROSS JOIN LATERAL (
                    SELECT payload FROM metrics_summary
                     WHERE project_id = c.project_id
                     ORDER BY captured_at DESC LIMIT 1) s",
            &[],
        )
        .await?;
    let mut projects: Vec<(i64, Uuid, Value)> = rows
        .iter()
        .map(|r| (r.get(2), r.get(0), r.get(1)))
        .collect();
    projects.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut samples = Vec::new();
    let mut other: Vec<Vec<f64>> = vec![Vec::new(); BUSINESS_GAUGES.len()];
    for (rank, (_, project, payload)) in projects.iter().enumerate() {
        for (i, (metric, key, _)) in BUSINESS_GAUGES.iter().enumerate() {
            let Some(value) =
                flowmeter_shared::alerts::MetricSource::resolve(key).value_in(payload)
            else {
                continue;
            };
            if rank < max_projects {
                samples.push((project.to_string(), *metric, value));
            } else {
                other[i].push(value);
            }
        }
    }
    for (i, (metric, _, combine)) in BUSINESS_GAUGES.iter().enumerate() {
        let values = &other[i];
        if values.is_empty() {
            continue;
        }
        let sum: f64 = values.iter().sum();
        let value = match combine {
            Combine::Sum => sum,
            Combine::Mean => sum / values.len() as f64,
        };
        samples.push(("other".to_owned(), *metric, value));
    }
    Ok(samples)
}
