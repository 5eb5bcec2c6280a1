//! Reading task projections (`metrics_task`): the worker reloads a project's fold state from
//! them, and the API derives drill-down contributing factors from them.

use anyhow::Context;
use chrono::{DateTime, Utc};
use tokio_postgres::Row;

use crate::metrics::{BlockedEpisode, PerState, TaskFacts};

/// The columns [`task_from_row`] reads, in its order.
const COLUMNS: [&str; 24] = [
    "task_id",
    "title",
    "phase_id",
    "milestone_id",
    "assignee",
    "task_class",
    "priority",
    "state",
    "inferred",
    "created_at",
    "claimed_at",
    "implemented_at",
    "integrated_at",
    "terminal_at",
    "state_entered_at",
    "blocked_since",
    "integration_attempts",
    "integration_failures",
    "time_in_state_seconds",
    "blocked_started_at",
    "blocked_ended_at",
    "facts",
    "from_state_mismatches",
    "inferred_start",
];

/// The select list of a task, each column qualified by `alias`.
pub fn columns(alias: &str) -> String {
    COLUMNS
        .iter()
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A task from the [`columns`] starting at index `at` of `r`: its typed columns, or the
/// JSONB `facts` of a row written before they existed.
pub fn task_from_row(r: &Row, at: usize) -> anyhow::Result<TaskFacts> {
    let Some(times) = r.get::<_, Option<Vec<f64>>>(at + 18) else {
        let facts: Option<serde_json::Value> = r.get(at + 21);
        let facts = facts.context("metrics_task row has neither state columns nor facts")?;
        let mut task: TaskFacts =
            serde_json::from_value(facts).context("decoding metrics_task.facts")?;
        task.from_state_mismatches = u32::try_from(r.get::<_, i32>(at + 22))?;
        task.inferred_start = r.get(at + 23);
        return Ok(task);
    };
    let times: [f64; 11] = times.try_into().map_err(|v: Vec<f64>| {
        anyhow::anyhow!("time_in_state_seconds has {} entries, not 11", v.len())
    })?;
    let started: Vec<DateTime<Utc>> = r.get::<_, Option<_>>(at + 19).unwrap_or_default();
    let ended: Vec<Option<DateTime<Utc>>> = r.get::<_, Option<_>>(at + 20).unwrap_or_default();
    anyhow::ensure!(
        started.len() == ended.len(),
        "blocked episode arrays differ in length"
    );
    let state: String = r.get(at + 7);
    Ok(TaskFacts {
        task_id: r.get(at),
        title: r.get(at + 1),
        phase_id: r.get(at + 2),
        milestone_id: r.get(at + 3),
        assignee: r.get(at + 4),
        task_class: r.get(at + 5),
        priority: r.get(at + 6),
        state: state.parse().map_err(|e| anyhow::anyhow!("{e}"))?,
        inferred: r.get(at + 8),
        created_at: r.get(at + 9),
        claimed_at: r.get(at + 10),
        implemented_at: r.get(at + 11),
        integrated_at: r.get(at + 12),
        terminal_at: r.get(at + 13),
        state_entered_at: r.get(at + 14),
        blocked_since: r.get(at + 15),
        time_in_state_seconds: PerState(times),
        blocked_episodes: started
            .into_iter()
            .zip(ended)
            .map(|(started_at, ended_at)| BlockedEpisode {
                started_at,
                ended_at,
            })
            .collect(),
        integration_attempts: u32::try_from(r.get::<_, i32>(at + 16))?,
        integration_failures: u32::try_from(r.get::<_, i32>(at + 17))?,
        from_state_mismatches: u32::try_from(r.get::<_, i32>(at + 22))?,
        inferred_start: r.get(at + 23),
    })
}
