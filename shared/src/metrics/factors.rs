//! Contributing factors of a task (SPEC §4.1): what explains its number in a drill-down —
//! time share per stage, blocked episodes and integration retries. They are derived from
//! the task's projection when a drill-down page is served, so the fold does not store the
//! same list in each of a task's drill-down rows.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::efficiency::Stage;
use super::stats::{round_duration, round_ratio};
use super::{TaskFacts, TaskState};
use crate::read_model::keys;

/// Drill-down metrics whose rows are ages as of the snapshot (their factors count the open
/// stay up to the snapshot); the other metrics' factors are as of [`settled_at`].
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

/// The closed-stay reference time of a task: its terminal time, else the start of its
/// current stay (so rows written between snapshots do not depend on the wall clock).
pub fn settled_at(task: &TaskFacts) -> DateTime<Utc> {
    task.terminal_time().unwrap_or(task.state_entered_at)
}

/// The factors of `task` for a row of `metric`: as of the snapshot (`snapshot_at`) for the
/// age metrics, else as of the task's settled time.
pub fn factors_for_row(
    task: &TaskFacts,
    metric: &str,
    snapshot_at: Option<DateTime<Utc>>,
) -> Value {
    let as_of = match snapshot_at {
        Some(at) if SNAPSHOT_METRICS.contains(&metric) => at,
        _ => settled_at(task),
    };
    contributing_factors(task, as_of)
}

#[cfg(test)]
mod tests {
    use chrono::{Duration, TimeZone};

    use super::*;

    #[test]
    fn age_rows_count_the_open_stay_up_to_the_snapshot_and_other_rows_up_to_its_start() {
        let created = Utc.with_ymd_and_hms(2026, 3, 1, 0, 0, 0).unwrap();
        let mut task = TaskFacts::new("t", created);
        // 10 h in backlog, then in progress since; one failed attempt out of two.
        task.time_in_state_seconds.add(TaskState::Backlog, 36_000.0);
        task.state = TaskState::InProgress;
        task.state_entered_at = created + Duration::hours(10);
        task.integration_attempts = 2;
        task.integration_failures = 1;
        let snapshot = task.state_entered_at + Duration::hours(30);

        // As of the snapshot: 10 h backlog, 30 h implementation (25 % / 75 %).
        let wip = factors_for_row(&task, keys::WIP, Some(snapshot));
        assert_eq!(
            wip,
            json!([
                {"factor": "stage:implementation", "impact": 0.75,
                 "description": "75% of the task's time (30 h) in implementation"},
                {"factor": "integration_retries", "impact": 0.5,
                 "description": "1 of 2 integration attempt(s) failed"},
                {"factor": "stage:backlog", "impact": 0.25,
                 "description": "25% of the task's time (10 h) in backlog"},
            ])
        );
        // An arrival row settles at the start of the current stay: backlog only.
        let arrival = factors_for_row(&task, keys::ARRIVALS, Some(snapshot));
        assert_eq!(arrival[0]["factor"], "stage:backlog");
        assert_eq!(arrival[0]["impact"], 1.0);
        assert_eq!(arrival, factors_for_row(&task, keys::ARRIVALS, None));
    }
}
