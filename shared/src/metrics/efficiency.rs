//! Where the time of delivered work went: the flow efficiency score (FES) and the
//! bottleneck contribution per stage. Both sum time-in-state over tasks integrated in the
//! last 30 d, using their closed stays (an integrated task's open stay is `integrated`, which
//! neither formula counts).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::facts::ProjectFacts;
use super::state::{PerState, TaskState};
use super::stats::{ratio, round_score, round_shares_to_100};
use super::summary::{reasons, FlowEfficiencyScore, StageContribution};
use super::time::FLOW_WINDOW;

/// Stages of `bottleneck_contribution` (SPEC §4), in reporting order for ties.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// `backlog`.
    Backlog,
    /// `ready`, `reserved`.
    Queue,
    /// `claimed`, `in_progress`.
    Implementation,
    /// `implemented`.
    Review,
    /// `conflict`.
    Rework,
    /// `blocked`.
    Blocked,
}

impl Stage {
    /// Every stage in reporting order.
    pub const ALL: [Stage; 6] = [
        Stage::Backlog,
        Stage::Queue,
        Stage::Implementation,
        Stage::Review,
        Stage::Rework,
        Stage::Blocked,
    ];

    /// The stage a state's time counts towards; terminal states belong to none.
    pub fn of(state: TaskState) -> Option<Stage> {
        match state {
            TaskState::Backlog => Some(Stage::Backlog),
            TaskState::Ready | TaskState::Reserved => Some(Stage::Queue),
            TaskState::Claimed | TaskState::InProgress => Some(Stage::Implementation),
            TaskState::Implemented => Some(Stage::Review),
            TaskState::Conflict => Some(Stage::Rework),
            TaskState::Blocked => Some(Stage::Blocked),
            TaskState::Integrated | TaskState::Abandoned | TaskState::Cancelled => None,
        }
    }
}

/// Seconds per state summed over the closed stays of tasks integrated in the last 30 d.
pub fn integrated_time_in_state(facts: &ProjectFacts, now: DateTime<Utc>) -> PerState<f64> {
    let mut total = PerState::<f64>::default();
    for task in facts.tasks_integrated_within(now, FLOW_WINDOW) {
        for (state, seconds) in task.time_in_state_seconds.iter() {
            total.add(state, seconds);
        }
    }
    total
}

/// Active / waiting / blocked time of FES, in any one unit.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FlowTimes {
    /// claimed + in_progress.
    pub active: f64,
    /// ready + reserved + implemented + conflict.
    pub waiting: f64,
    /// blocked.
    pub blocked: f64,
}

impl FlowTimes {
    /// Groups per-state times into active / waiting / blocked (backlog and terminal states
    /// count in none of them).
    pub fn from_states(times: &PerState<f64>) -> Self {
        use TaskState::*;
        let sum = |states: &[TaskState]| states.iter().map(|s| times.get(*s)).sum::<f64>();
        FlowTimes {
            active: sum(&[Claimed, InProgress]),
            waiting: sum(&[Ready, Reserved, Implemented, Conflict]),
            blocked: sum(&[Blocked]),
        }
    }

    /// FES on the 0–1 scale: `active / (active + waiting + blocked)`; `None` when the
    /// denominator is 0.
    pub fn efficiency(&self) -> Option<f64> {
        ratio(self.active, self.active + self.waiting + self.blocked)
    }
}

/// `north_star.flow_efficiency_score`: shares of active, waiting and blocked time of tasks
/// integrated in the last 30 d, in percent; `value` is the active share.
pub fn flow_efficiency_score(facts: &ProjectFacts, now: DateTime<Utc>) -> FlowEfficiencyScore {
    let times = FlowTimes::from_states(&integrated_time_in_state(facts, now));
    let total = times.active + times.waiting + times.blocked;
    let pct = |part: f64| ratio(part, total).map(|share| round_score(100.0 * share));
    let reason = if total > 0.0 {
        None
    } else if facts
        .tasks_integrated_within(now, FLOW_WINDOW)
        .next()
        .is_none()
    {
        Some(reasons::NO_INTEGRATED_TASKS)
    } else {
        Some(reasons::NO_FLOW_TIME)
    };
    FlowEfficiencyScore {
        value: times.efficiency().map(|e| round_score(100.0 * e)),
        active_time_pct: pct(times.active),
        waiting_time_pct: pct(times.waiting),
        blocked_time_pct: pct(times.blocked),
        reason: reason.map(str::to_owned),
    }
}

/// `actionability.bottleneck_contribution`: each stage's share (percent) of the time tasks
/// integrated in the last 30 d spent in all stages, largest first (ties in stage order).
/// Stages with no time are omitted; the shares are rounded to add up to exactly 100. Empty
/// when no integrated task spent time in any stage.
pub fn bottleneck_contribution(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<StageContribution> {
    let times = integrated_time_in_state(facts, now);
    let mut per_stage = [0.0_f64; Stage::ALL.len()];
    for (state, seconds) in times.iter() {
        if let Some(stage) = Stage::of(state) {
            per_stage[stage as usize] += seconds;
        }
    }
    let present: Vec<(Stage, f64)> = Stage::ALL
        .into_iter()
        .zip(per_stage)
        .filter(|(_, seconds)| *seconds > 0.0)
        .collect();
    let shares = round_shares_to_100(&present.iter().map(|(_, s)| *s).collect::<Vec<_>>());
    let mut contributions: Vec<StageContribution> = present
        .iter()
        .zip(shares)
        .map(|((stage, _), pct)| StageContribution {
            stage: *stage,
            delay_contribution_pct: pct,
        })
        .collect();
    contributions.sort_by(|a, b| {
        b.delay_contribution_pct
            .total_cmp(&a.delay_contribution_pct)
            .then_with(|| a.stage.cmp(&b.stage))
    });
    contributions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::facts::TaskFacts;
    use chrono::{TimeDelta, TimeZone};

    const HOUR: f64 = 3600.0;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
    }

    /// An integrated task with the given closed stays (hours per state).
    fn integrated(id: &str, days_ago: i64, stays: &[(TaskState, f64)]) -> TaskFacts {
        let at = now() - TimeDelta::days(days_ago);
        let mut task = TaskFacts {
            state: TaskState::Integrated,
            integrated_at: Some(at),
            terminal_at: Some(at),
            state_entered_at: at,
            ..TaskFacts::new(id, at - TimeDelta::days(3))
        };
        for (state, hours) in stays {
            task.time_in_state_seconds.add(*state, hours * HOUR);
        }
        task
    }

    #[test]
    fn fes_reference_value() {
        // SPEC §4: active 16 h, waiting 14 h, blocked 0 → 16 / 30 = 0.533333.
        let times = FlowTimes {
            active: 16.0,
            waiting: 14.0,
            blocked: 0.0,
        };
        assert!((times.efficiency().unwrap() - 0.533333).abs() < 1e-6);
        assert_eq!(FlowTimes::default().efficiency(), None);
    }

    #[test]
    fn fes_over_integrated_tasks() {
        // Task a: claimed 2 + in_progress 10 = 12 active; ready 4 + implemented 6 = 10 waiting.
        // Task b: in_progress 4 active; conflict 4 waiting; backlog 100 (not counted).
        // Task c (integrated 31 d ago) is out of the window.
        // Active 16, waiting 14, blocked 0 → 53.33 / 46.67 / 0.
        use TaskState::*;
        let facts = ProjectFacts {
            tasks: vec![
                integrated(
                    "a",
                    1,
                    &[
                        (Claimed, 2.0),
                        (InProgress, 10.0),
                        (Ready, 4.0),
                        (Implemented, 6.0),
                    ],
                ),
                integrated(
                    "b",
                    2,
                    &[(InProgress, 4.0), (Conflict, 4.0), (Backlog, 100.0)],
                ),
                integrated("c", 31, &[(Blocked, 50.0)]),
            ],
            ..ProjectFacts::default()
        };
        let fes = flow_efficiency_score(&facts, now());
        assert_eq!(fes.value, Some(53.33));
        assert_eq!(fes.active_time_pct, Some(53.33));
        assert_eq!(fes.waiting_time_pct, Some(46.67));
        assert_eq!(fes.blocked_time_pct, Some(0.0));
        assert_eq!(fes.reason, None);
    }

    #[test]
    fn fes_is_null_without_flow_time() {
        let empty = flow_efficiency_score(&ProjectFacts::default(), now());
        assert_eq!(empty.value, None);
        assert_eq!(empty.blocked_time_pct, None);
        assert_eq!(empty.reason.as_deref(), Some(reasons::NO_INTEGRATED_TASKS));

        let only_backlog = ProjectFacts {
            tasks: vec![integrated("a", 1, &[(TaskState::Backlog, 5.0)])],
            ..ProjectFacts::default()
        };
        let fes = flow_efficiency_score(&only_backlog, now());
        assert_eq!(fes.value, None);
        assert_eq!(fes.reason.as_deref(), Some(reasons::NO_FLOW_TIME));
    }

    #[test]
    fn bottleneck_shares_sorted_and_summing_to_100() {
        // backlog 2, queue 1 + 1, implementation 1 + 3, review 1, rework 0, blocked 1 = 10 h
        // → implementation 40, backlog 20, queue 20 (tie: stage order), review 10, blocked 10.
        use TaskState::*;
        let facts = ProjectFacts {
            tasks: vec![
                integrated("a", 1, &[(Backlog, 2.0), (Ready, 1.0), (Claimed, 1.0)]),
                integrated(
                    "b",
                    3,
                    &[
                        (Reserved, 1.0),
                        (InProgress, 3.0),
                        (Implemented, 1.0),
                        (Blocked, 1.0),
                    ],
                ),
            ],
            ..ProjectFacts::default()
        };
        let stages: Vec<_> = bottleneck_contribution(&facts, now())
            .into_iter()
            .map(|c| (c.stage, c.delay_contribution_pct))
            .collect();
        assert_eq!(
            stages,
            [
                (Stage::Implementation, 40.0),
                (Stage::Backlog, 20.0),
                (Stage::Queue, 20.0),
                (Stage::Review, 10.0),
                (Stage::Blocked, 10.0),
            ]
        );
    }

    #[test]
    fn bottleneck_of_thirds_still_sums_to_100() {
        use TaskState::*;
        let facts = ProjectFacts {
            tasks: vec![integrated(
                "a",
                1,
                &[(Ready, 1.0), (Claimed, 1.0), (Conflict, 1.0)],
            )],
            ..ProjectFacts::default()
        };
        let result = bottleneck_contribution(&facts, now());
        let total: f64 = result.iter().map(|c| c.delay_contribution_pct).sum();
        assert!((total - 100.0).abs() < 1e-9);
        assert_eq!(result[0].stage, Stage::Queue);
        assert_eq!(result[0].delay_contribution_pct, 33.34);
    }

    #[test]
    fn bottleneck_is_empty_without_integrated_tasks() {
        assert!(bottleneck_contribution(&ProjectFacts::default(), now()).is_empty());
    }

    #[test]
    fn every_non_terminal_state_has_a_stage() {
        for state in TaskState::ALL {
            assert_eq!(Stage::of(state).is_none(), state.is_terminal(), "{state}");
        }
    }
}
