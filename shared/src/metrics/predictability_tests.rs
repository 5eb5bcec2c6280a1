//! Worked examples for DPI and its components.

use super::*;
use crate::metrics::facts::{BlockedEpisode, TaskFacts};
use crate::metrics::state::TaskState;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
}

fn ymd_h(month: u32, day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, month, day, hour, minute, 0)
        .unwrap()
}

fn milestone(id: &str, start: Option<DateTime<Utc>>, due: Option<DateTime<Utc>>) -> MilestoneFacts {
    MilestoneFacts {
        milestone_id: id.into(),
        name: Some(id.to_uppercase()),
        phase_id: None,
        sequence: None,
        planned_start_at: start,
        due_at: due,
        created_at: ymd_h(2, 1, 0, 0),
    }
}

fn terminal(id: &str, milestone: &str, state: TaskState, at: DateTime<Utc>) -> TaskFacts {
    TaskFacts {
        milestone_id: Some(milestone.into()),
        state,
        integrated_at: (state == TaskState::Integrated).then_some(at),
        terminal_at: Some(at),
        state_entered_at: at,
        ..TaskFacts::new(id, ymd_h(1, 1, 0, 0))
    }
}

fn open(id: &str, milestone: &str) -> TaskFacts {
    TaskFacts {
        milestone_id: Some(milestone.into()),
        state: TaskState::InProgress,
        ..TaskFacts::new(id, ymd_h(1, 1, 0, 0))
    }
}

/// m1: planned 03-01 → due 03-11 (grace 1 d → 03-12 00:00); done 03-11 20:00 → on time.
/// m2: no planned start, created 02-01, due 03-03 (span 30 d, grace 3 d → 03-06 00:00);
///     done exactly 03-06 00:00 → on time (boundary inclusive).
/// m3: same dates as m2, done 03-06 00:01 → late.
/// m4: complete but no due_at → left out. m5: all cancelled → not complete.
/// m6: one task open → not complete. m7: completed 91 d ago → outside 90 d. m8: no tasks.
/// SR = 2 on time / 3 = 0.666667.
fn schedule_facts() -> ProjectFacts {
    let due_m2 = Some(ymd_h(3, 3, 0, 0));
    let old = now() - TimeDelta::days(91);
    ProjectFacts {
        milestones: vec![
            milestone("m1", Some(ymd_h(3, 1, 0, 0)), Some(ymd_h(3, 11, 0, 0))),
            milestone("m2", None, due_m2),
            milestone("m3", None, due_m2),
            milestone("m4", None, None),
            milestone("m5", None, due_m2),
            milestone("m6", None, due_m2),
            milestone("m7", Some(old - TimeDelta::days(10)), Some(old)),
            milestone("m8", None, due_m2),
        ],
        tasks: vec![
            terminal("t1", "m1", TaskState::Integrated, ymd_h(3, 11, 20, 0)),
            terminal("t2", "m1", TaskState::Cancelled, ymd_h(3, 10, 0, 0)),
            terminal("t3", "m2", TaskState::Integrated, ymd_h(3, 6, 0, 0)),
            terminal("t4", "m3", TaskState::Integrated, ymd_h(3, 6, 0, 1)),
            terminal("t5", "m4", TaskState::Integrated, ymd_h(3, 20, 0, 0)),
            terminal("t6", "m5", TaskState::Cancelled, ymd_h(3, 1, 0, 0)),
            terminal("t7", "m6", TaskState::Integrated, ymd_h(3, 1, 0, 0)),
            open("t8", "m6"),
            terminal("t9", "m7", TaskState::Integrated, old),
        ],
        ..ProjectFacts::default()
    }
}

#[test]
fn schedule_reliability_worked_example() {
    let sr = schedule_reliability(&schedule_facts(), now()).unwrap();
    assert!((sr - 2.0 / 3.0).abs() < 1e-12);
}

#[test]
fn schedule_reliability_without_due_completions_is_none() {
    assert_eq!(schedule_reliability(&ProjectFacts::default(), now()), None);
}

#[test]
fn grace_is_zero_when_start_is_after_due() {
    let m = milestone("m", Some(ymd_h(3, 10, 0, 0)), Some(ymd_h(3, 5, 0, 0)));
    assert_eq!(completed_on_time(&m, ymd_h(3, 5, 0, 0)), Some(true));
    assert_eq!(completed_on_time(&m, ymd_h(3, 5, 0, 1)), Some(false));
    assert_eq!(completed_on_time(&milestone("x", None, None), now()), None);
}

#[test]
fn cycle_time_stability_worked_example() {
    // [60, 120, 180, 240]: μ 150, σ = √((90² + 30² + 30² + 90²)/4) = √4500 = 67.0820;
    // 1 − 67.0820/150 = 0.552786.
    let cts = cycle_time_stability(&[60.0, 120.0, 180.0, 240.0]).unwrap();
    assert!((cts - 0.552786).abs() < 1e-6);
    // σ > μ clamps to 0: [0, 0, 0, 100] μ 25, σ 43.30 → 1 − 1.732 < 0.
    assert_eq!(cycle_time_stability(&[0.0, 0.0, 0.0, 100.0]), Some(0.0));
    // Identical samples → σ 0 → 1.
    assert_eq!(cycle_time_stability(&[30.0, 30.0]), Some(1.0));
}

#[test]
fn cycle_time_stability_edge_cases() {
    assert_eq!(cycle_time_stability(&[]), None);
    assert_eq!(cycle_time_stability(&[42.0]), None, "fewer than 2 samples");
    assert_eq!(cycle_time_stability(&[0.0, 0.0]), Some(1.0), "μ = 0 → 1");
}

fn episode(start: DateTime<Utc>, length: Option<TimeDelta>) -> BlockedEpisode {
    BlockedEpisode {
        started_at: start,
        ended_at: length.map(|l| start + l),
    }
}

#[test]
fn blocker_resolution_rate_worked_example() {
    // Resolved in 30 d: 24 h (quick), exactly 48 h (quick, inclusive), 48 h + 1 s (slow).
    // Excluded: still open; resolved 31 d ago. BRR = 2/3.
    let mut task = TaskFacts::new("t", ymd_h(1, 1, 0, 0));
    task.blocked_episodes = vec![
        episode(ymd_h(3, 20, 0, 0), Some(TimeDelta::hours(24))),
        episode(ymd_h(3, 23, 0, 0), Some(TimeDelta::hours(48))),
        episode(
            ymd_h(3, 25, 0, 0),
            Some(TimeDelta::hours(48) + TimeDelta::seconds(1)),
        ),
        episode(ymd_h(3, 30, 0, 0), None),
        episode(now() - TimeDelta::days(32), Some(TimeDelta::hours(1))),
    ];
    let facts = ProjectFacts {
        tasks: vec![task],
        ..ProjectFacts::default()
    };
    let brr = blocker_resolution_rate(&facts, now()).unwrap();
    assert!((brr - 2.0 / 3.0).abs() < 1e-12);
    assert_eq!(
        blocker_resolution_rate(&ProjectFacts::default(), now()),
        None
    );
}

#[test]
fn dpi_reference_value() {
    // SPEC §4: 0.40·0.5 + 0.35·0.61 + 0.25·0.75 = 0.2 + 0.2135 + 0.1875 = 0.601.
    let dpi = dpi_combine(Some(0.5), Some(0.61), Some(0.75)).unwrap();
    assert!((dpi - 0.601).abs() < 1e-12);
}

#[test]
fn dpi_renormalizes_missing_components() {
    // No SR: (0.35·0.6 + 0.25·0.8) / 0.60 = 0.41 / 0.6 = 0.683333.
    let dpi = dpi_combine(None, Some(0.6), Some(0.8)).unwrap();
    assert!((dpi - 0.683333).abs() < 1e-6);
    // Only BRR: the value itself.
    assert_eq!(dpi_combine(None, None, Some(0.3)), Some(0.3));
    assert_eq!(dpi_combine(None, None, None), None);
}

#[test]
fn dpi_trend_bands() {
    // 60 → 63 is +5.00 %: inside the inclusive ±5 % band.
    assert_eq!(
        dpi_trend(Some(63.0), Some(60.0)),
        (Some(Trend::Stable), Some(5.0))
    );
    // 60 → 57 is −5 %: stable too.
    assert_eq!(
        dpi_trend(Some(57.0), Some(60.0)),
        (Some(Trend::Stable), Some(-5.0))
    );
    // 60 → 63.01 is +5.0167 → 5.02 %: up.
    assert_eq!(
        dpi_trend(Some(63.01), Some(60.0)),
        (Some(Trend::Up), Some(5.02))
    );
    // 60 → 50 is −16.666 → −16.67 %: down.
    assert_eq!(
        dpi_trend(Some(50.0), Some(60.0)),
        (Some(Trend::Down), Some(-16.67))
    );
    assert_eq!(dpi_trend(Some(50.0), None), (None, None));
    assert_eq!(dpi_trend(None, Some(50.0)), (None, None));
    assert_eq!(
        dpi_trend(Some(0.0), Some(0.0)),
        (Some(Trend::Stable), Some(0.0))
    );
    assert_eq!(dpi_trend(Some(10.0), Some(0.0)), (Some(Trend::Up), None));
}

#[test]
fn dpi_from_facts() {
    // Schedule facts give SR 2/3; no integrated task of the last 30 d was claimed (CTS null);
    // no blocked episode (BRR null) → DPI = SR = 66.67; vs 60 a week ago: +11.12 % → up.
    let dpi = delivery_predictability_index(&schedule_facts(), now(), Some(60.0));
    assert_eq!(dpi.components.schedule_reliability, Some(0.6667));
    assert_eq!(dpi.components.cycle_time_stability, None);
    assert_eq!(dpi.components.blocker_resolution_rate, None);
    assert_eq!(dpi.value, Some(66.67));
    assert_eq!(dpi.trend, Some(Trend::Up));
    assert_eq!(dpi.change_pct, Some(11.12));
    assert_eq!(dpi.reason, None);
}

#[test]
fn dpi_without_any_component_is_null() {
    let dpi = delivery_predictability_index(&ProjectFacts::default(), now(), Some(70.0));
    assert_eq!(dpi.value, None);
    assert_eq!(dpi.trend, None);
    assert_eq!(dpi.change_pct, None);
    assert_eq!(dpi.reason.as_deref(), Some(reasons::NO_DPI_COMPONENTS));
}
