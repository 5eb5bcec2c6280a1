//! Worked examples for the integration outcome and IRS formulas.

use super::*;
use crate::metrics::facts::TaskFacts;
use crate::metrics::state::TaskState;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    now() - TimeDelta::hours(h)
}

fn attempt(id: &str, task: &str, finished_h_ago: i64, result: AttemptResult) -> AttemptFacts {
    AttemptFacts {
        attempt_id: id.into(),
        task_id: task.into(),
        attempt_number: None,
        started_at: Some(hours_ago(finished_h_ago + 1)),
        finished_at: Some(hours_ago(finished_h_ago)),
        result: Some(result),
    }
}

fn task(id: &str, state: TaskState) -> TaskFacts {
    TaskFacts {
        state,
        ..TaskFacts::new(id, hours_ago(1000))
    }
}

/// A: conflict −10 h, failed_checks −8 h, success −7 h. B: success −5 h.
/// C (open): aborted −3 h. D: conflict −8 d, success −6 d. E (abandoned): conflict −2 h.
/// Plus one running attempt without a result.
fn sample() -> ProjectFacts {
    use AttemptResult::*;
    let mut running = attempt("r1", "B", 1, Success);
    running.finished_at = None;
    running.result = None;
    ProjectFacts {
        tasks: vec![
            task("A", TaskState::Integrated),
            task("B", TaskState::Integrated),
            task("C", TaskState::InProgress),
            task("D", TaskState::Integrated),
            task("E", TaskState::Abandoned),
        ],
        attempts: vec![
            attempt("a3", "A", 7, Success),
            attempt("a1", "A", 10, Conflict),
            attempt("a2", "A", 8, FailedChecks),
            attempt("b1", "B", 5, Success),
            attempt("c1", "C", 3, Aborted),
            attempt("d1", "D", 8 * 24, Conflict),
            attempt("d2", "D", 6 * 24, Success),
            attempt("e1", "E", 2, Conflict),
            running,
        ],
        ..ProjectFacts::default()
    }
}

#[test]
fn outcomes_count_the_last_week_and_average_retries() {
    // In 7 d: successes a3, b1, d2 = 3; conflicts a1, e1 = 2 (d1 is 8 d old); failed_checks
    // a2 = 1; aborted c1 = 1. Retry to success: only A, first failure −10 h to success −7 h
    // = 180 min (D's failure is outside the window, E never succeeded).
    let outcomes = integration_outcomes(&sample(), now());
    assert_eq!(outcomes.success, 3);
    assert_eq!(outcomes.conflict, 2);
    assert_eq!(outcomes.failed_checks, 1);
    assert_eq!(outcomes.aborted, 1);
    assert_eq!(outcomes.avg_retry_to_success_minutes, Some(180.0));
    assert_eq!(outcomes.reason, None);
}

#[test]
fn outcomes_without_retries_have_null_average() {
    let outcomes = integration_outcomes(&ProjectFacts::default(), now());
    assert_eq!(outcomes.success + outcomes.conflict, 0);
    assert_eq!(outcomes.avg_retry_to_success_minutes, None);
    assert_eq!(
        outcomes.reason.as_deref(),
        Some(reasons::NO_RETRIED_SUCCESSES)
    );
}

#[test]
fn recovery_samples_follow_each_failure() {
    // A: conflict→success 180, failed_checks→success 60; C (open) aborted −3 h → 180 so far;
    // D: conflict→success 2 d = 2880; E abandoned without success → no sample.
    let mut samples = recovery_minutes(&sample(), now());
    samples.sort_by(f64::total_cmp);
    assert_eq!(samples, [60.0, 180.0, 180.0, 2880.0]);
}

#[test]
fn irs_worked_example() {
    // 8 finished attempts in 30 d, 3 successes → success_rate 0.375.
    // Mean recovery (60 + 180 + 180 + 2880) / 4 = 825 min → speed 1 − 825/1440 = 0.4270833.
    // IRS = 0.6·0.375 + 0.4·0.4270833 = 0.225 + 0.1708333 = 0.3958333 → 39.58.
    let irs = integration_reliability_score(&sample(), now());
    assert_eq!(irs.value, Some(39.58));
    assert_eq!(irs.success_rate, Some(0.375));
    assert_eq!(irs.avg_recovery_minutes, Some(825.0));
    assert_eq!(irs.reason, None);
}

#[test]
fn irs_reference_combiner() {
    // SPEC §4: success 0.85, recovery 0.833333 → 0.843333.
    assert!((irs_combine(0.85, 0.833333) - 0.843333).abs() < 1e-6);
}

#[test]
fn recovery_speed_bounds() {
    assert_eq!(recovery_speed(None), 1.0);
    // 4 h of 24 h → 1 − 1/6 = 0.833333.
    assert!((recovery_speed(Some(240.0)) - 0.8333333).abs() < 1e-6);
    assert_eq!(recovery_speed(Some(1440.0)), 0.0);
    assert_eq!(recovery_speed(Some(5000.0)), 0.0);
}

#[test]
fn irs_is_null_without_finished_attempts() {
    let irs = integration_reliability_score(&ProjectFacts::default(), now());
    assert_eq!(irs.value, None);
    assert_eq!(irs.success_rate, None);
    assert_eq!(irs.avg_recovery_minutes, None);
    assert_eq!(irs.reason.as_deref(), Some(reasons::NO_FINISHED_ATTEMPTS));
}

#[test]
fn irs_without_failures_is_full_score() {
    let facts = ProjectFacts {
        attempts: vec![attempt("b1", "B", 5, AttemptResult::Success)],
        ..ProjectFacts::default()
    };
    let irs = integration_reliability_score(&facts, now());
    assert_eq!(irs.value, Some(100.0));
    assert_eq!(irs.success_rate, Some(1.0));
    assert_eq!(irs.avg_recovery_minutes, None);
    assert_eq!(irs.reason.as_deref(), Some(reasons::NO_FAILED_ATTEMPTS));
}

#[test]
fn irs_with_only_abandoned_failures_keeps_full_recovery_speed() {
    // success_rate 0, no recovery sample → speed 1 → IRS = 0.4 → 40.
    let facts = ProjectFacts {
        tasks: vec![task("E", TaskState::Abandoned)],
        attempts: vec![attempt("e1", "E", 2, AttemptResult::Conflict)],
        ..ProjectFacts::default()
    };
    let irs = integration_reliability_score(&facts, now());
    assert_eq!(irs.value, Some(40.0));
    assert_eq!(irs.success_rate, Some(0.0));
    assert_eq!(irs.reason.as_deref(), Some(reasons::NO_RECOVERIES));
}

#[test]
fn irs_window_starts_exactly_30_days_ago() {
    // A success exactly 30 d ago is in; one a minute older is out.
    let mut old = attempt("x", "X", 30 * 24, AttemptResult::Conflict);
    old.finished_at = Some(now() - TimeDelta::days(30) - TimeDelta::minutes(1));
    let facts = ProjectFacts {
        attempts: vec![attempt("s", "S", 30 * 24, AttemptResult::Success), old],
        ..ProjectFacts::default()
    };
    let irs = integration_reliability_score(&facts, now());
    assert_eq!(irs.success_rate, Some(1.0));
}
