//! Drill-down rows (SPEC §4.1): one per (metric, task), carrying the task's context and the
//! factors that explain its number. Durations and marks of the tasks that changed since the
//! previous snapshot are written with the next snapshot (they are a read model of it, so a
//! task folded in many batches is written once); ages of WIP, blocked and backlog tasks are
//! rewritten at every snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flowmeter_shared::metrics::efficiency::Stage;
use flowmeter_shared::metrics::stats::{round_duration, round_ratio};
use flowmeter_shared::metrics::{TaskFacts, TaskState};
use serde_json::{json, Value};

use super::model::{keys, DrilldownRow};
use super::state::ProjectState;

/// Metrics whose rows are ages as of the snapshot.
pub const SNAPSHOT_METRICS: [&str; 3] = [keys::WIP, keys::BLOCKED, keys::BACKLOG];

fn stage_name(stage: Stage) -> &'static str {
    match stage {
        Stage::Backlog => "backlog",
        Stage::Queue => "queue",
        Stage::Implementation => "implementation",
        Stage::Review => "review",
        Stage::Rework => "rework",
        Stage::Blocked => "blocked",
    }
}

/// `[{factor, impact, description}]`: time share per stage, blocked episodes and
/// integration retries, largest impact first. `as_of` bounds the open stay.
pub fn contributing_factors(task: &TaskFacts, as_of: DateTime<Utc>) -> Value {
    let times = task.time_in_state_as_of(as_of);
    let mut per_stage: BTreeMap<Stage, f64> = BTreeMap::new();
    for state in TaskState::ALL {
        if let Some(stage) = Stage::of(state) {
            *per_stage.entry(stage).or_default() += times.get(state);
        }
    }
    let total: f64 = per_stage.values().sum();
    let mut factors: Vec<(f64, Value)> = Vec::new();
    if total > 0.0 {
        for (stage, seconds) in &per_stage {
            if *seconds > 0.0 {
                let share = seconds / total;
                factors.push((
                    share,
                    json!({
                        "factor": format!("stage:{}", stage_name(*stage)),
                        "impact": round_ratio(share),
                        "description": format!(
                            "{:.0}% of the task's time ({} h) in {}",
                            share * 100.0,
                            round_duration(seconds / 3600.0),
                            stage_name(*stage)
                        ),
                    }),
                ));
            }
        }
    }
    let episodes = task.blocked_episodes.len();
    if episodes > 0 {
        let blocked_share = if total > 0.0 {
            times.get(TaskState::Blocked) / total
        } else {
            0.0
        };
        factors.push((
            blocked_share,
            json!({
                "factor": "blocked_episodes",
                "impact": round_ratio(blocked_share),
                "description": format!("{episodes} blocked episode(s)"),
            }),
        ));
    }
    if task.integration_failures > 0 {
        let attempts = task.integration_attempts.max(task.integration_failures);
        let share = f64::from(task.integration_failures) / f64::from(attempts);
        factors.push((
            share,
            json!({
                "factor": "integration_retries",
                "impact": round_ratio(share),
                "description": format!(
                    "{} of {} integration attempt(s) failed",
                    task.integration_failures, attempts
                ),
            }),
        ));
    }
    factors.sort_by(|a, b| b.0.total_cmp(&a.0));
    Value::Array(factors.into_iter().map(|(_, f)| f).collect())
}

fn row(task: &TaskFacts, value: f64, ts: DateTime<Utc>, factors: Value) -> DrilldownRow {
    DrilldownRow {
        value,
        ts,
        title: task.title.clone(),
        phase_id: task.phase_id.clone(),
        milestone_id: task.milestone_id.clone(),
        assignee: task.assignee.clone(),
        task_class: task.task_class.clone(),
        state: task.state.as_str().to_owned(),
        contributing_factors: factors,
    }
}

/// The closed-stay reference time of a task: its terminal time, else the start of its
/// current stay (so rows written between snapshots do not depend on the wall clock).
fn settled_at(task: &TaskFacts) -> DateTime<Utc> {
    task.terminal_time().unwrap_or(task.state_entered_at)
}

impl ProjectState {
    /// The event-driven rows of one task: arrivals always; throughput, cycle and lead time
    /// once it is integrated (cycle time only when it was claimed). `integrated_at` and
    /// `claimed_at` are never cleared once set, so a task never loses a row it had: the set
    /// of rows only grows and rewriting a task's rows needs no delete.
    pub fn task_rows(&self, id: &str) -> Vec<(&'static str, DrilldownRow)> {
        let Some(task) = self.task(id) else {
            return Vec::new();
        };
        let factors = contributing_factors(task, settled_at(task));
        let mut rows = Vec::with_capacity(4);
        if let Some(integrated_at) = task.integrated_at {
            let marks = [
                (keys::THROUGHPUT, Some(1.0)),
                (
                    keys::CYCLE_TIME,
                    task.cycle_time_seconds().map(|s| round_duration(s / 60.0)),
                ),
                (
                    keys::LEAD_TIME,
                    task.lead_time_seconds().map(|s| round_duration(s / 60.0)),
                ),
            ];
            for (metric, value) in marks {
                if let Some(value) = value {
                    rows.push((metric, row(task, value, integrated_at, factors.clone())));
                }
            }
        }
        rows.push((keys::ARRIVALS, row(task, 1.0, task.created_at, factors)));
        rows
    }

    /// The snapshot-time rows: ages in hours of WIP, blocked and backlog tasks as of `now`.
    pub fn snapshot_rows(&self, now: DateTime<Utc>) -> BTreeMap<(String, String), DrilldownRow> {
        let hours = |since: DateTime<Utc>| {
            round_duration(((now - since).num_seconds().max(0) as f64) / 3600.0)
        };
        let mut rows = BTreeMap::new();
        for task in &self.facts.tasks {
            let mut add = |metric: &str, since: DateTime<Utc>| {
                rows.insert(
                    (metric.to_owned(), task.task_id.clone()),
                    row(task, hours(since), since, contributing_factors(task, now)),
                );
            };
            if task.state.is_wip() {
                add(keys::WIP, task.wip_since());
            }
            if task.state == TaskState::Blocked {
                add(keys::BLOCKED, task.blocked_start());
            }
            if task.state == TaskState::Implemented {
                add(
                    keys::BACKLOG,
                    task.implemented_at.unwrap_or(task.state_entered_at),
                );
            }
        }
        rows
    }
}
