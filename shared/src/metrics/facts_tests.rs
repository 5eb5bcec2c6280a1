//! Tests of the fact helpers.

use super::*;
use chrono::TimeZone;

fn hours(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 1, 0, 0, 0).unwrap() + TimeDelta::hours(h)
}

#[test]
fn time_in_state_as_of_adds_the_open_stay() {
    // Closed: 2 h in ready. Open: in_progress since h10; at h13 that is 3 h = 10 800 s.
    let mut task = TaskFacts::new("t1", hours(0));
    task.time_in_state_seconds.set(TaskState::Ready, 7200.0);
    task.state = TaskState::InProgress;
    task.state_entered_at = hours(10);
    let times = task.time_in_state_as_of(hours(13));
    assert_eq!(times.get(TaskState::Ready), 7200.0);
    assert_eq!(times.get(TaskState::InProgress), 10_800.0);
    // The stored closed stays are untouched.
    assert_eq!(task.time_in_state_seconds.get(TaskState::InProgress), 0.0);
}

#[test]
fn lead_and_cycle_times() {
    // Created h0, claimed h4, integrated h10: lead 10 h, cycle 6 h.
    let task = TaskFacts {
        claimed_at: Some(hours(4)),
        integrated_at: Some(hours(10)),
        ..TaskFacts::new("t1", hours(0))
    };
    assert_eq!(task.lead_time_seconds(), Some(36_000.0));
    assert_eq!(task.cycle_time_seconds(), Some(21_600.0));
    let never_claimed = TaskFacts {
        integrated_at: Some(hours(10)),
        ..TaskFacts::new("t2", hours(0))
    };
    assert_eq!(never_claimed.cycle_time_seconds(), None);
    assert_eq!(TaskFacts::new("t3", hours(0)).lead_time_seconds(), None);
}

#[test]
fn terminal_time_only_for_terminal_tasks() {
    let mut task = TaskFacts::new("t1", hours(0));
    assert_eq!(task.terminal_time(), None);
    task.state = TaskState::Cancelled;
    task.state_entered_at = hours(5);
    assert_eq!(task.terminal_time(), Some(hours(5)));
    task.terminal_at = Some(hours(4));
    assert_eq!(task.terminal_time(), Some(hours(4)));
}

#[test]
fn attempt_in_window_needs_a_result_and_a_finish() {
    let now = hours(100);
    let attempt = AttemptFacts {
        attempt_id: "a1".into(),
        task_id: "t1".into(),
        attempt_number: None,
        started_at: None,
        finished_at: Some(hours(99)),
        result: Some(AttemptResult::Conflict),
    };
    assert_eq!(
        attempt.finished_within(now, TimeDelta::hours(1)),
        Some((hours(99), AttemptResult::Conflict))
    );
    assert_eq!(attempt.finished_within(now, TimeDelta::minutes(59)), None);
    let running = AttemptFacts {
        result: None,
        ..attempt
    };
    assert_eq!(running.finished_within(now, TimeDelta::hours(1)), None);
}

#[test]
fn facts_round_trip_through_json() {
    let facts = ProjectFacts {
        tasks: vec![TaskFacts::new("t1", hours(0))],
        ..ProjectFacts::default()
    };
    let json = serde_json::to_string(&facts).unwrap();
    let back: ProjectFacts = serde_json::from_str(&json).unwrap();
    assert_eq!(back, facts);
}

#[test]
fn outcome_and_result_names_round_trip() {
    for outcome in GateOutcome::ALL {
        assert_eq!(outcome.as_str().parse::<GateOutcome>().unwrap(), outcome);
        assert_eq!(
            serde_json::to_value(outcome).unwrap(),
            serde_json::json!(outcome.as_str())
        );
    }
    for result in AttemptResult::ALL {
        assert_eq!(result.as_str().parse::<AttemptResult>().unwrap(), result);
        assert_eq!(
            serde_json::to_value(result).unwrap(),
            serde_json::json!(result.as_str())
        );
    }
    assert!("merged".parse::<AttemptResult>().is_err());
    assert!("lgtm".parse::<GateOutcome>().is_err());
    assert!(AttemptResult::Aborted.is_failure());
    assert!(!AttemptResult::Success.is_failure());
}

/// The fold stores each task's facts as JSON and reloads them when a worker did not keep the
/// project in memory; `verify` recomputes without reloading. Any drift in the last digit of
/// an accumulated duration would be a verify mismatch, so every f64 must read back exactly.
#[test]
fn accumulated_durations_survive_a_json_round_trip_exactly() {
    let mut task = TaskFacts::new("t", chrono::DateTime::UNIX_EPOCH);
    let mut total = 0.0_f64;
    for i in 0..20_000u64 {
        // Microsecond-precision stays, summed as the fold sums them.
        total += ((i * 7_919 + 13) % 2_000_003) as f64 / 1e6;
        task.time_in_state_seconds
            .add(TaskState::Implemented, total.fract() + 0.000_001);
        let json = serde_json::to_string(&task).unwrap();
        let back: TaskFacts = serde_json::from_str(&json).unwrap();
        assert_eq!(back, task, "value {total}");
    }
}
