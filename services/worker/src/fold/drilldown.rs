//! Drill-down rows (SPEC §4.1): one per (metric, task), carrying the task's context (the
//! factors that explain its number are derived from the task's projection when a page is
//! served, see `flowmeter_shared::metrics::factors`). Durations and marks of the tasks that changed since the
//! previous snapshot are written with the next snapshot (they are a read model of it, so a
//! task folded in many batches is written once); ages of WIP, blocked and backlog tasks are
//! rewritten at every snapshot.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use flowmeter_shared::metrics::stats::round_duration;
use flowmeter_shared::metrics::{TaskFacts, TaskState};

use super::model::{keys, DrilldownRow};
use super::state::ProjectState;

pub use flowmeter_shared::metrics::factors::SNAPSHOT_METRICS;

fn row(task: &TaskFacts, value: f64, ts: DateTime<Utc>) -> DrilldownRow {
    DrilldownRow {
        value,
        ts,
        title: task.title.clone(),
        phase_id: task.phase_id.clone(),
        milestone_id: task.milestone_id.clone(),
        assignee: task.assignee.clone(),
        task_class: task.task_class.clone(),
        state: task.state.as_str().to_owned(),
    }
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
                    rows.push((metric, row(task, value, integrated_at)));
                }
            }
        }
        rows.push((keys::ARRIVALS, row(task, 1.0, task.created_at)));
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
                    row(task, hours(since), since),
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
