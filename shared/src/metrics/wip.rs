//! Level figures of `operational` that describe the project right now: work in progress and
//! its age, blocked tasks, the implemented-not-integrated backlog and the state distribution.
//! Ages grow with `now`, which is why the worker refreshes snapshots even without new events.

use chrono::{DateTime, Utc};

use super::facts::ProjectFacts;
use super::state::{PerState, TaskState};
use super::stats::{mean, round_duration, round_ratio};
use super::summary::{reasons, AgingBuckets, Backlog, Blocked, StateDistribution, Wip};
use super::time::hours_between;

/// Lower bound (hours, inclusive) of the `24h_to_72h` bucket.
const BUCKET_24H: f64 = 24.0;
/// Lower bound (hours, inclusive) of the `72h_to_7d` bucket.
const BUCKET_72H: f64 = 72.0;
/// Lower bound (hours, inclusive) of the `gt_7d` bucket.
const BUCKET_7D: f64 = 168.0;

/// Ages in hours (`now − claimed_at`, or `created_at` if never claimed) of WIP tasks.
pub fn wip_ages_hours(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<f64> {
    facts
        .tasks
        .iter()
        .filter(|task| task.state.is_wip())
        .map(|task| hours_between(task.wip_since(), now))
        .collect()
}

/// Sorts ages (hours) into the aging buckets; each bucket includes its lower bound.
pub fn aging_buckets(ages_hours: &[f64]) -> AgingBuckets {
    let mut buckets = AgingBuckets::default();
    for &age in ages_hours {
        if age >= BUCKET_7D {
            buckets.gt_7d += 1;
        } else if age >= BUCKET_72H {
            buckets.from_72h_to_7d += 1;
        } else if age >= BUCKET_24H {
            buckets.from_24h_to_72h += 1;
        } else {
            buckets.lt_24h += 1;
        }
    }
    buckets
}

/// `operational.wip`.
pub fn wip(facts: &ProjectFacts, now: DateTime<Utc>) -> Wip {
    let ages = wip_ages_hours(facts, now);
    Wip {
        total_count: ages.len() as u64,
        avg_age_hours: mean(&ages).map(round_duration),
        aging_buckets: aging_buckets(&ages),
        reason: ages.is_empty().then(|| reasons::NO_WIP_TASKS.to_owned()),
    }
}

/// `operational.blocked`: tasks currently blocked, their share of WIP (0 when WIP is 0) and
/// the mean hours since they became blocked.
pub fn blocked(facts: &ProjectFacts, now: DateTime<Utc>) -> Blocked {
    let wip_count = facts.tasks.iter().filter(|t| t.state.is_wip()).count();
    let blocked_hours: Vec<f64> = facts
        .tasks
        .iter()
        .filter(|task| task.state == TaskState::Blocked)
        .map(|task| hours_between(task.blocked_start(), now))
        .collect();
    let ratio = if wip_count == 0 {
        0.0
    } else {
        blocked_hours.len() as f64 / wip_count as f64
    };
    Blocked {
        ratio: round_ratio(ratio),
        avg_blocked_hours: mean(&blocked_hours).map(round_duration),
        count: blocked_hours.len() as u64,
        reason: blocked_hours
            .is_empty()
            .then(|| reasons::NO_BLOCKED_TASKS.to_owned()),
    }
}

/// `operational.backlog`: tasks currently `implemented` and the mean hours since
/// `implemented_at` (falling back to when the state was entered).
pub fn backlog(facts: &ProjectFacts, now: DateTime<Utc>) -> Backlog {
    let ages: Vec<f64> = facts
        .tasks
        .iter()
        .filter(|task| task.state == TaskState::Implemented)
        .map(|task| hours_between(task.implemented_at.unwrap_or(task.state_entered_at), now))
        .collect();
    Backlog {
        implemented_not_integrated: ages.len() as u64,
        avg_age_hours: mean(&ages).map(round_duration),
        reason: ages
            .is_empty()
            .then(|| reasons::NO_BACKLOG_TASKS.to_owned()),
    }
}

/// `operational.state_distribution`: tasks per current state (every state present) and
/// the WIP count.
pub fn state_distribution(facts: &ProjectFacts) -> StateDistribution {
    let mut by_state = PerState::<u64>::default();
    for task in &facts.tasks {
        by_state.add(task.state, 1);
    }
    let wip_count = by_state
        .iter()
        .filter(|(state, _)| state.is_wip())
        .map(|(_, count)| count)
        .sum();
    StateDistribution {
        by_state,
        wip_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::facts::TaskFacts;
    use chrono::{TimeDelta, TimeZone};

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
    }

    fn hours_ago(h: i64) -> DateTime<Utc> {
        now() - TimeDelta::hours(h)
    }

    /// A task in `state`, created `created_h` hours ago, claimed `claimed_h` hours ago, in its
    /// current state for `entered_h` hours.
    fn task(
        id: &str,
        state: TaskState,
        created_h: i64,
        claimed_h: Option<i64>,
        entered_h: i64,
    ) -> TaskFacts {
        TaskFacts {
            state,
            claimed_at: claimed_h.map(hours_ago),
            state_entered_at: hours_ago(entered_h),
            blocked_since: (state == TaskState::Blocked).then(|| hours_ago(entered_h)),
            implemented_at: (state == TaskState::Implemented).then(|| hours_ago(entered_h)),
            ..TaskFacts::new(id, hours_ago(created_h))
        }
    }

    #[test]
    fn bucket_lower_bounds_are_inclusive() {
        let ages = [0.0, 23.99, 24.0, 71.99, 72.0, 167.99, 168.0, 500.0];
        let buckets = aging_buckets(&ages);
        assert_eq!(
            buckets,
            AgingBuckets {
                lt_24h: 2,
                from_24h_to_72h: 2,
                from_72h_to_7d: 2,
                gt_7d: 2,
            }
        );
    }

    #[test]
    fn wip_ages_use_claimed_at_or_created_at() {
        // claimed 10 h ago → 10; never claimed, created 30 h ago → 30; claimed 168 h ago → 168.
        // Backlog and integrated tasks are not WIP. Mean (10 + 30 + 168) / 3 = 69.33.
        let facts = ProjectFacts {
            tasks: vec![
                task("a", TaskState::InProgress, 50, Some(10), 2),
                task("b", TaskState::Blocked, 30, None, 5),
                task("c", TaskState::Implemented, 300, Some(168), 1),
                task("d", TaskState::Backlog, 400, None, 400),
                task("e", TaskState::Integrated, 400, Some(300), 100),
            ],
            ..ProjectFacts::default()
        };
        let result = wip(&facts, now());
        assert_eq!(result.total_count, 3);
        assert_eq!(result.avg_age_hours, Some(69.33));
        assert_eq!(
            result.aging_buckets,
            AgingBuckets {
                lt_24h: 1,
                from_24h_to_72h: 1,
                from_72h_to_7d: 0,
                gt_7d: 1,
            }
        );
        assert_eq!(result.reason, None);
    }

    #[test]
    fn empty_wip_has_null_age() {
        let result = wip(&ProjectFacts::default(), now());
        assert_eq!(result.total_count, 0);
        assert_eq!(result.avg_age_hours, None);
        assert_eq!(result.reason.as_deref(), Some(reasons::NO_WIP_TASKS));
    }

    #[test]
    fn blocked_ratio_and_age() {
        // WIP: 2 blocked (6 h and 12 h), 1 claimed, 1 conflict → ratio 2/4 = 0.5, avg 9 h.
        let facts = ProjectFacts {
            tasks: vec![
                task("a", TaskState::Blocked, 50, Some(40), 6),
                task("b", TaskState::Blocked, 50, Some(40), 12),
                task("c", TaskState::Claimed, 50, Some(1), 1),
                task("d", TaskState::Conflict, 50, Some(40), 2),
                task("e", TaskState::Ready, 50, None, 2),
            ],
            ..ProjectFacts::default()
        };
        let result = blocked(&facts, now());
        assert_eq!(result.count, 2);
        assert_eq!(result.ratio, 0.5);
        assert_eq!(result.avg_blocked_hours, Some(9.0));
    }

    #[test]
    fn blocked_ratio_is_zero_without_wip() {
        let facts = ProjectFacts {
            tasks: vec![task("a", TaskState::Ready, 5, None, 5)],
            ..ProjectFacts::default()
        };
        let result = blocked(&facts, now());
        assert_eq!(result.ratio, 0.0);
        assert_eq!(result.count, 0);
        assert_eq!(result.avg_blocked_hours, None);
        assert_eq!(result.reason.as_deref(), Some(reasons::NO_BLOCKED_TASKS));
    }

    #[test]
    fn backlog_counts_implemented_tasks() {
        // Implemented 4 h and 8 h ago → 2 tasks, mean 6 h.
        let facts = ProjectFacts {
            tasks: vec![
                task("a", TaskState::Implemented, 50, Some(40), 4),
                task("b", TaskState::Implemented, 50, Some(40), 8),
                task("c", TaskState::InProgress, 50, Some(40), 8),
            ],
            ..ProjectFacts::default()
        };
        let result = backlog(&facts, now());
        assert_eq!(result.implemented_not_integrated, 2);
        assert_eq!(result.avg_age_hours, Some(6.0));
        let empty = backlog(&ProjectFacts::default(), now());
        assert_eq!(empty.implemented_not_integrated, 0);
        assert_eq!(empty.avg_age_hours, None);
        assert_eq!(empty.reason.as_deref(), Some(reasons::NO_BACKLOG_TASKS));
    }

    #[test]
    fn state_distribution_lists_every_state() {
        let facts = ProjectFacts {
            tasks: vec![
                task("a", TaskState::Blocked, 5, None, 1),
                task("b", TaskState::Blocked, 5, None, 1),
                task("c", TaskState::Integrated, 5, None, 1),
                task("d", TaskState::InProgress, 5, Some(3), 1),
            ],
            ..ProjectFacts::default()
        };
        let result = state_distribution(&facts);
        assert_eq!(result.by_state.get(TaskState::Blocked), 2);
        assert_eq!(result.by_state.get(TaskState::Integrated), 1);
        assert_eq!(result.by_state.get(TaskState::Backlog), 0);
        assert_eq!(result.wip_count, 3);
        let json = serde_json::to_value(&result).unwrap();
        assert_eq!(json["by_state"].as_object().unwrap().len(), 11);
        assert_eq!(json["by_state"]["cancelled"], 0);
    }
}
