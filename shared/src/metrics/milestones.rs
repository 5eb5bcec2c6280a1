//! Milestone completion (used by schedule reliability) and the per-milestone health of
//! `/v1/metrics/health`: task counts, average cycle time and the stored Monte Carlo
//! forecast with its breach probability, health score and status.

use chrono::{DateTime, Days, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::facts::{MilestoneFacts, ProjectFacts};
use super::forecast::{
    daily_integrated_counts, forecast_seed, monte_carlo_forecast, Forecast, ForecastOutcome,
    ForecastStatus,
};
use super::state::TaskState;
use super::stats::{mean, round_duration, round_ratio, round_score};
use super::time::SECONDS_PER_HOUR;

/// Lowest health score (inclusive) that is `green`.
pub const HEALTH_GREEN_MIN: f64 = 70.0;
/// Lowest health score (inclusive) that is `yellow`.
pub const HEALTH_YELLOW_MIN: f64 = 50.0;

/// When the milestone was completed: all its tasks terminal and at least one integrated;
/// the completion time is the latest terminal time. A milestone without tasks is not
/// complete, and adding a task reopens it (facts are always current).
pub fn milestone_completion(facts: &ProjectFacts, milestone_id: &str) -> Option<DateTime<Utc>> {
    let mut latest: Option<DateTime<Utc>> = None;
    let mut any_integrated = false;
    for task in facts.milestone_tasks(milestone_id) {
        let terminal_at = task.terminal_time()?;
        any_integrated |= task.state == TaskState::Integrated;
        latest = latest.max(Some(terminal_at));
    }
    latest.filter(|_| any_integrated)
}

/// `task_summary` of a `/v1/metrics/health` milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct TaskSummary {
    /// Tasks of the milestone.
    pub total: u64,
    /// Terminal tasks (integrated, abandoned, cancelled).
    pub completed: u64,
    /// Non-terminal tasks.
    pub remaining: u64,
    /// Mean cycle time in hours of the milestone's integrated, claimed tasks (all time).
    #[schema(required = true)]
    pub avg_cycle_time_hours: Option<f64>,
}

/// Task counts and mean cycle time of one milestone.
pub fn task_summary(facts: &ProjectFacts, milestone_id: &str) -> TaskSummary {
    let mut summary = TaskSummary {
        total: 0,
        completed: 0,
        remaining: 0,
        avg_cycle_time_hours: None,
    };
    let mut cycle_hours = Vec::new();
    for task in facts.milestone_tasks(milestone_id) {
        summary.total += 1;
        if task.state.is_terminal() {
            summary.completed += 1;
        } else {
            summary.remaining += 1;
        }
        if let Some(seconds) = task.cycle_time_seconds() {
            cycle_hours.push(seconds / SECONDS_PER_HOUR);
        }
    }
    summary.avg_cycle_time_hours = mean(&cycle_hours).map(round_duration);
    summary
}

/// `health_status` of a milestone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum HealthStatus {
    /// Score ≥ 70.
    Green,
    /// 50 ≤ score < 70.
    Yellow,
    /// Score < 50.
    Red,
}

/// Status of a 0–100 health score: green ≥ 70, yellow ≥ 50, else red.
pub fn health_status(score: f64) -> HealthStatus {
    if score >= HEALTH_GREEN_MIN {
        HealthStatus::Green
    } else if score >= HEALTH_YELLOW_MIN {
        HealthStatus::Yellow
    } else {
        HealthStatus::Red
    }
}

/// One item of `/v1/metrics/health` `milestones`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct MilestoneHealth {
    /// Milestone id.
    pub milestone_id: String,
    /// Milestone name.
    #[schema(required = true)]
    pub name: Option<String>,
    /// Due date-time.
    #[schema(required = true)]
    pub due_at: Option<DateTime<Utc>>,
    /// 0–100: `100 × (1 − breach_probability)` when there is one, else
    /// `100 × completed / total`; `null` for a milestone without tasks.
    #[schema(required = true)]
    pub health_score: Option<f64>,
    /// Status of `health_score`.
    #[schema(required = true)]
    pub health_status: Option<HealthStatus>,
    /// 0–1 probability of finishing after `due_at`.
    #[schema(required = true)]
    pub breach_probability: Option<f64>,
    /// Completion forecast.
    pub forecast: Forecast,
    /// Task counts.
    pub task_summary: TaskSummary,
}

/// Forecast of a milestone with nothing left to do: its dates are the day the last task
/// became terminal, and it breached iff that moment is after `due_at`.
fn finished_outcome(facts: &ProjectFacts, milestone: &MilestoneFacts) -> ForecastOutcome {
    let finished_at = facts
        .milestone_tasks(&milestone.milestone_id)
        .filter_map(|task| task.terminal_time())
        .max();
    let date = finished_at.map(|t| t.date_naive());
    ForecastOutcome {
        forecast: Forecast {
            status: ForecastStatus::Completed,
            p50: date,
            p85: date,
            p95: date,
        },
        breach_probability: milestone.due_at.zip(finished_at).map(|(due, done)| {
            if done > due {
                1.0
            } else {
                0.0
            }
        }),
    }
}

/// Health of every milestone as of `now`, forecasts seeded by (`project_id`, `as_of_seq`).
/// Ordered by `due_at` (milestones without one last), then id. Simulated days start the UTC
/// day after `now`; the due date is compared at UTC-day granularity.
pub fn milestone_health(
    facts: &ProjectFacts,
    now: DateTime<Utc>,
    project_id: Uuid,
    as_of_seq: i64,
) -> Vec<MilestoneHealth> {
    let daily_counts = daily_integrated_counts(facts, now);
    let seed = forecast_seed(project_id, as_of_seq);
    let first_day = now.date_naive().checked_add_days(Days::new(1));
    let mut milestones: Vec<&MilestoneFacts> = facts.milestones.iter().collect();
    milestones.sort_by(|a, b| {
        (a.due_at.is_none(), a.due_at, &a.milestone_id).cmp(&(
            b.due_at.is_none(),
            b.due_at,
            &b.milestone_id,
        ))
    });
    milestones
        .into_iter()
        .map(|milestone| {
            let summary = task_summary(facts, &milestone.milestone_id);
            let outcome = match (summary.total, u32::try_from(summary.remaining), first_day) {
                (0, _, _) => ForecastOutcome {
                    forecast: Forecast::without_dates(ForecastStatus::NoTasks),
                    breach_probability: None,
                },
                (_, Ok(0), _) => finished_outcome(facts, milestone),
                (_, Ok(remaining), Some(first_day)) => monte_carlo_forecast(
                    &daily_counts,
                    remaining,
                    first_day,
                    milestone.due_at.map(|due| due.date_naive()),
                    seed,
                ),
                // More than u32::MAX tasks, or `now` at the end of the calendar.
                _ => ForecastOutcome {
                    forecast: Forecast::without_dates(ForecastStatus::InsufficientData),
                    breach_probability: None,
                },
            };
            let health_score = match outcome.breach_probability {
                Some(breach) => Some(round_score(100.0 * (1.0 - breach))),
                None if summary.total > 0 => Some(round_score(
                    100.0 * summary.completed as f64 / summary.total as f64,
                )),
                None => None,
            };
            MilestoneHealth {
                milestone_id: milestone.milestone_id.clone(),
                name: milestone.name.clone(),
                due_at: milestone.due_at,
                health_score,
                health_status: health_score.map(health_status),
                breach_probability: outcome.breach_probability.map(round_ratio),
                forecast: outcome.forecast,
                task_summary: summary,
            }
        })
        .collect()
}

#[cfg(test)]
#[path = "milestones_tests.rs"]
mod tests;
