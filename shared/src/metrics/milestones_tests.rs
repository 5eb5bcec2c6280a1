//! Tests of milestone completion, task summaries and milestone health.

use super::*;
use crate::metrics::facts::TaskFacts;
use chrono::{NaiveDate, TimeDelta, TimeZone};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
}

fn day(month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, month, day).unwrap()
}

fn at(month: u32, day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, month, day, hour, 0, 0).unwrap()
}

fn milestone(id: &str, due_at: Option<DateTime<Utc>>) -> MilestoneFacts {
    MilestoneFacts {
        milestone_id: id.into(),
        name: Some(format!("Milestone {id}")),
        phase_id: None,
        sequence: None,
        planned_start_at: None,
        due_at,
        created_at: at(1, 1, 0),
    }
}

fn task(id: &str, milestone: &str, state: TaskState, at: DateTime<Utc>) -> TaskFacts {
    TaskFacts {
        milestone_id: Some(milestone.into()),
        state,
        integrated_at: (state == TaskState::Integrated).then_some(at),
        terminal_at: state.is_terminal().then_some(at),
        state_entered_at: at,
        ..TaskFacts::new(id, at - TimeDelta::days(2))
    }
}

#[test]
fn completion_needs_all_terminal_and_one_integrated() {
    let mut facts = ProjectFacts {
        tasks: vec![
            task("a", "m", TaskState::Integrated, at(3, 10, 0)),
            task("b", "m", TaskState::Cancelled, at(3, 12, 0)),
            task("c", "x", TaskState::Cancelled, at(3, 12, 0)),
        ],
        ..ProjectFacts::default()
    };
    // Latest terminal time is the cancellation at 03-12.
    assert_eq!(milestone_completion(&facts, "m"), Some(at(3, 12, 0)));
    assert_eq!(
        milestone_completion(&facts, "x"),
        None,
        "nothing integrated"
    );
    assert_eq!(milestone_completion(&facts, "none"), None, "no tasks");
    // A later task reopens the milestone.
    facts
        .tasks
        .push(task("d", "m", TaskState::Ready, at(3, 20, 0)));
    assert_eq!(milestone_completion(&facts, "m"), None);
}

#[test]
fn task_summary_counts_and_cycle_time() {
    // Cycle times 10 h and 20 h → mean 15 h; a cancelled task counts as completed.
    let mut fast = task("a", "m", TaskState::Integrated, at(3, 10, 10));
    fast.claimed_at = Some(at(3, 10, 0));
    let mut slow = task("b", "m", TaskState::Integrated, at(3, 11, 20));
    slow.claimed_at = Some(at(3, 11, 0));
    let facts = ProjectFacts {
        tasks: vec![
            fast,
            slow,
            task("c", "m", TaskState::Cancelled, at(3, 1, 0)),
            task("d", "m", TaskState::InProgress, at(3, 1, 0)),
        ],
        ..ProjectFacts::default()
    };
    let summary = task_summary(&facts, "m");
    assert_eq!(
        summary,
        TaskSummary {
            total: 4,
            completed: 3,
            remaining: 1,
            avg_cycle_time_hours: Some(15.0),
        }
    );
    let empty = task_summary(&facts, "other");
    assert_eq!(empty.total, 0);
    assert_eq!(empty.avg_cycle_time_hours, None);
}

#[test]
fn health_status_thresholds_are_inclusive() {
    assert_eq!(health_status(70.0), HealthStatus::Green);
    assert_eq!(health_status(69.99), HealthStatus::Yellow);
    assert_eq!(health_status(50.0), HealthStatus::Yellow);
    assert_eq!(health_status(49.99), HealthStatus::Red);
}

/// History: milestone "done" had one task integrated on each odd history index (03-02,
/// 03-04, …, 03-30: 15 days with 1, 15 with 0 — the half-and-half sample of the forecast
/// tests), due 03-25 and finished 03-30 (late). "open" has 10 tasks left, due 04-20.
/// "nodue" has one cancelled and one open task. "empty" has no tasks.
fn health_facts() -> ProjectFacts {
    let mut tasks: Vec<TaskFacts> = (0..15)
        .map(|k| {
            task(
                &format!("h{k}"),
                "done",
                TaskState::Integrated,
                at(3, 2 + 2 * k, 9),
            )
        })
        .collect();
    tasks.extend((0..10).map(|k| task(&format!("o{k}"), "open", TaskState::Ready, at(3, 1, 0))));
    tasks.push(task("n1", "nodue", TaskState::Cancelled, at(3, 5, 0)));
    tasks.push(task("n2", "nodue", TaskState::InProgress, at(3, 5, 0)));
    ProjectFacts {
        milestones: vec![
            milestone("nodue", None),
            milestone("open", Some(at(4, 20, 17))),
            milestone("empty", None),
            milestone("done", Some(at(3, 25, 0))),
        ],
        tasks,
        ..ProjectFacts::default()
    }
}

#[test]
fn milestone_health_worked_example() {
    let project = Uuid::from_u128(0x1234_5678_9abc_def0);
    let health = milestone_health(&health_facts(), now(), project, 42);
    let ids: Vec<_> = health.iter().map(|h| h.milestone_id.as_str()).collect();
    assert_eq!(ids, ["done", "open", "empty", "nodue"]);

    // Finished 03-30 09:00 after due 03-25 → breach 1 → score 0, red.
    let done = &health[0];
    assert_eq!(done.forecast.status, ForecastStatus::Completed);
    assert_eq!(done.forecast.p50, Some(day(3, 30)));
    assert_eq!(done.breach_probability, Some(1.0));
    assert_eq!(done.health_score, Some(0.0));
    assert_eq!(done.health_status, Some(HealthStatus::Red));
    assert_eq!(done.task_summary.completed, 15);

    // Same inputs and seed as the pinned forecast test (first day 04-01, due 04-20):
    // breach 0.4142 → score 58.58 → yellow.
    let open = &health[1];
    assert_eq!(open.forecast.status, ForecastStatus::Ok);
    assert_eq!(open.forecast.p50, Some(day(4, 20)));
    assert_eq!(open.forecast.p95, Some(day(4, 28)));
    assert_eq!(open.breach_probability, Some(0.4142));
    assert_eq!(open.health_score, Some(58.58));
    assert_eq!(open.health_status, Some(HealthStatus::Yellow));
    assert_eq!(open.task_summary.remaining, 10);

    let empty = &health[2];
    assert_eq!(
        empty.forecast,
        Forecast::without_dates(ForecastStatus::NoTasks)
    );
    assert_eq!(empty.health_score, None);
    assert_eq!(empty.health_status, None);

    // Forecast but no due date → score from completion: 1 of 2 → 50 → yellow.
    let nodue = &health[3];
    assert_eq!(nodue.forecast.status, ForecastStatus::Ok);
    assert_eq!(nodue.breach_probability, None);
    assert_eq!(nodue.health_score, Some(50.0));
    assert_eq!(nodue.health_status, Some(HealthStatus::Yellow));
}

#[test]
fn thin_history_gives_insufficient_data_and_completion_score() {
    // Only 1 day with an integration in 30 d → insufficient data; 1 of 4 done → 25 → red.
    let facts = ProjectFacts {
        milestones: vec![milestone("m", Some(at(4, 30, 0)))],
        tasks: vec![
            task("a", "m", TaskState::Integrated, at(3, 20, 0)),
            task("b", "m", TaskState::Ready, at(3, 20, 0)),
            task("c", "m", TaskState::Ready, at(3, 20, 0)),
            task("d", "m", TaskState::Blocked, at(3, 20, 0)),
        ],
        ..ProjectFacts::default()
    };
    let health = milestone_health(&facts, now(), Uuid::nil(), 1);
    let m = &health[0];
    assert_eq!(
        m.forecast,
        Forecast::without_dates(ForecastStatus::InsufficientData)
    );
    assert_eq!(m.breach_probability, None);
    assert_eq!(m.health_score, Some(25.0));
    assert_eq!(m.health_status, Some(HealthStatus::Red));
}

#[test]
fn health_serializes_like_the_api_item() {
    let health = milestone_health(&health_facts(), now(), Uuid::nil(), 1);
    let json = serde_json::to_value(&health[2]).unwrap();
    let mut keys: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "breach_probability",
            "due_at",
            "forecast",
            "health_score",
            "health_status",
            "milestone_id",
            "name",
            "task_summary"
        ]
    );
    assert_eq!(json["forecast"]["status"], "no_tasks");
    assert!(json["forecast"]["p50"].is_null());
    let open = serde_json::to_value(&health[1]).unwrap();
    assert!(open["forecast"]["p85"].is_string());
    assert_eq!(
        open["task_summary"],
        serde_json::json!({"total": 10, "completed": 0, "remaining": 10, "avg_cycle_time_hours": null})
    );
}
