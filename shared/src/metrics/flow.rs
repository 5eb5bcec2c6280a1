//! Delivery-rate figures of `operational`: throughput over the last 7 d and the cycle- and
//! lead-time percentiles over tasks integrated in the last 30 d. Both read only
//! `integrated_at`, `claimed_at` and `created_at`, so they are cheap to recompute at any `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, TimeDelta, Utc};

use super::facts::ProjectFacts;
use super::stats::{percentile_cont, round_duration};
use super::summary::{reasons, DurationPercentiles, MilestoneCount, Throughput};
use super::time::{FLOW_WINDOW, SECONDS_PER_MINUTE};

/// Throughput over the window of length `window` ending at `now`: tasks whose
/// `integrated_at` falls in `[now − window, now)`, in total and per milestone (largest count
/// first, then by milestone id; tasks without a milestone are grouped under `null`, last).
pub fn throughput(facts: &ProjectFacts, now: DateTime<Utc>, window: TimeDelta) -> Throughput {
    let mut per_milestone: BTreeMap<Option<&str>, u64> = BTreeMap::new();
    let mut total = 0;
    for task in facts.tasks_integrated_within(now, window) {
        total += 1;
        *per_milestone
            .entry(task.milestone_id.as_deref())
            .or_default() += 1;
    }
    let mut tasks_by_milestone: Vec<MilestoneCount> = per_milestone
        .into_iter()
        .map(|(milestone_id, count)| MilestoneCount {
            milestone_id: milestone_id.map(str::to_owned),
            count,
        })
        .collect();
    tasks_by_milestone.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then_with(|| a.milestone_id.is_none().cmp(&b.milestone_id.is_none()))
            .then_with(|| a.milestone_id.cmp(&b.milestone_id))
    });
    Throughput {
        tasks_integrated_week: total,
        tasks_by_milestone,
    }
}

/// Cycle-time samples (`integrated_at − claimed_at`) in minutes of tasks integrated in the
/// last 30 d; tasks never claimed have no cycle time and are skipped.
pub fn cycle_time_minutes(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<f64> {
    facts
        .tasks_integrated_within(now, FLOW_WINDOW)
        .filter_map(|task| task.cycle_time_seconds())
        .map(|seconds| seconds / SECONDS_PER_MINUTE)
        .collect()
}

/// Lead-time samples (`integrated_at − created_at`) in minutes of tasks integrated in the
/// last 30 d.
pub fn lead_time_minutes(facts: &ProjectFacts, now: DateTime<Utc>) -> Vec<f64> {
    facts
        .tasks_integrated_within(now, FLOW_WINDOW)
        .filter_map(|task| task.lead_time_seconds())
        .map(|seconds| seconds / SECONDS_PER_MINUTE)
        .collect()
}

/// p50/p90/p95 of `samples` (minutes), rounded; all `null` with `empty_reason` when empty.
pub fn duration_percentiles(samples: &[f64], empty_reason: &str) -> DurationPercentiles {
    let at = |p| percentile_cont(samples, p).map(round_duration);
    DurationPercentiles {
        p50_minutes: at(0.5),
        p90_minutes: at(0.9),
        p95_minutes: at(0.95),
        reason: samples.is_empty().then(|| empty_reason.to_owned()),
    }
}

/// `operational.cycle_time`: percentiles of [`cycle_time_minutes`].
pub fn cycle_time(facts: &ProjectFacts, now: DateTime<Utc>) -> DurationPercentiles {
    let samples = cycle_time_minutes(facts, now);
    let reason = if facts
        .tasks_integrated_within(now, FLOW_WINDOW)
        .next()
        .is_some()
    {
        reasons::NO_CLAIMED_TASKS
    } else {
        reasons::NO_INTEGRATED_TASKS
    };
    duration_percentiles(&samples, reason)
}

/// `operational.lead_time`: percentiles of [`lead_time_minutes`].
pub fn lead_time(facts: &ProjectFacts, now: DateTime<Utc>) -> DurationPercentiles {
    duration_percentiles(&lead_time_minutes(facts, now), reasons::NO_INTEGRATED_TASKS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::facts::TaskFacts;
    use crate::metrics::state::TaskState;
    use crate::metrics::time::THROUGHPUT_WINDOW;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
    }

    fn integrated(
        id: &str,
        milestone: Option<&str>,
        created_h_ago: i64,
        claimed_h_ago: Option<i64>,
        integrated_h_ago: i64,
    ) -> TaskFacts {
        let at = |h: i64| now() - TimeDelta::hours(h);
        TaskFacts {
            milestone_id: milestone.map(str::to_owned),
            state: TaskState::Integrated,
            claimed_at: claimed_h_ago.map(at),
            integrated_at: Some(at(integrated_h_ago)),
            terminal_at: Some(at(integrated_h_ago)),
            state_entered_at: at(integrated_h_ago),
            ..TaskFacts::new(id, at(created_h_ago))
        }
    }

    #[test]
    fn throughput_counts_the_half_open_week() {
        let week = 7 * 24;
        let facts = ProjectFacts {
            tasks: vec![
                integrated("in-at-start", Some("m1"), 400, None, week), // exactly now − 7 d: in
                integrated("too-old", Some("m1"), 400, None, week + 1),
                integrated("m2-a", Some("m2"), 10, None, 1),
                integrated("m2-b", Some("m2"), 10, None, 2),
                integrated("no-ms", None, 10, None, 3),
                integrated("future", Some("m1"), 10, None, 0), // at now: excluded
            ],
            ..ProjectFacts::default()
        };
        let result = throughput(&facts, now(), THROUGHPUT_WINDOW);
        // In the window: in-at-start (m1), m2-a, m2-b, no-ms → 4; m2 first (2), then m1, null.
        assert_eq!(result.tasks_integrated_week, 4);
        let groups: Vec<_> = result
            .tasks_by_milestone
            .iter()
            .map(|g| (g.milestone_id.as_deref(), g.count))
            .collect();
        assert_eq!(groups, [(Some("m2"), 2), (Some("m1"), 1), (None, 1)]);
    }

    #[test]
    fn throughput_of_empty_project_is_zero() {
        let result = throughput(&ProjectFacts::default(), now(), THROUGHPUT_WINDOW);
        assert_eq!(result.tasks_integrated_week, 0);
        assert!(result.tasks_by_milestone.is_empty());
    }

    #[test]
    fn cycle_and_lead_time_percentiles() {
        // Cycle times 1 h, 2 h, 3 h, 4 h = 60, 120, 180, 240 min:
        //   p50 at position 2.5 → 150; p90 at 3.7 → 180 + 0.7·60 = 222; p95 at 3.85 → 231.
        // Lead times 10, 20, 30, 40 h = 600..2400 min: p50 1500, p90 2220, p95 2310.
        // A task never claimed adds a lead time only; one integrated 31 d ago counts nowhere.
        let facts = ProjectFacts {
            tasks: vec![
                integrated("a", None, 11, Some(2), 1),
                integrated("b", None, 21, Some(3), 1),
                integrated("c", None, 31, Some(4), 1),
                integrated("d", None, 41, Some(5), 1),
                integrated("old", None, 800, Some(760), 31 * 24),
            ],
            ..ProjectFacts::default()
        };
        let cycle = cycle_time(&facts, now());
        assert_eq!(cycle.p50_minutes, Some(150.0));
        assert_eq!(cycle.p90_minutes, Some(222.0));
        assert_eq!(cycle.p95_minutes, Some(231.0));
        assert_eq!(cycle.reason, None);
        let lead = lead_time(&facts, now());
        assert_eq!(lead.p50_minutes, Some(1500.0));
        assert_eq!(lead.p90_minutes, Some(2220.0));
        assert_eq!(lead.p95_minutes, Some(2310.0));
    }

    #[test]
    fn cycle_time_is_null_without_samples() {
        let empty = cycle_time(&ProjectFacts::default(), now());
        assert_eq!(empty.p50_minutes, None);
        assert_eq!(empty.reason.as_deref(), Some(reasons::NO_INTEGRATED_TASKS));
        let lead = lead_time(&ProjectFacts::default(), now());
        assert_eq!(lead.p95_minutes, None);
        assert_eq!(lead.reason.as_deref(), Some(reasons::NO_INTEGRATED_TASKS));

        let unclaimed = ProjectFacts {
            tasks: vec![integrated("a", None, 5, None, 1)],
            ..ProjectFacts::default()
        };
        let cycle = cycle_time(&unclaimed, now());
        assert_eq!(cycle.p90_minutes, None);
        assert_eq!(cycle.reason.as_deref(), Some(reasons::NO_CLAIMED_TASKS));
        // Lead time 4 h = 240 min still exists.
        assert_eq!(lead_time(&unclaimed, now()).p50_minutes, Some(240.0));
    }
}
