//! The delivery predictability index (DPI) and its three 0–1 components: schedule
//! reliability (SR), cycle-time stability (CTS) and blocker resolution rate (BRR), plus the
//! week-over-week trend. Each component is its own function so alerts, drilldowns and tests
//! can reason about one at a time; a component without data is `None` and left out of the
//! weighted mean rather than counted as 0.

use chrono::{DateTime, TimeDelta, Utc};

use super::facts::{MilestoneFacts, ProjectFacts};
use super::flow::cycle_time_minutes;
use super::milestones::milestone_completion;
use super::stats::{clamp_unit, mean, population_std_dev, round_ratio, round_score};
use super::summary::{reasons, DeliveryPredictabilityIndex, DpiComponents, Trend};
use super::time::{in_window, opt_in_window, seconds_between, FLOW_WINDOW, SCHEDULE_WINDOW};

/// Weight of SR in DPI.
pub const DPI_SR_WEIGHT: f64 = 0.40;
/// Weight of CTS in DPI.
pub const DPI_CTS_WEIGHT: f64 = 0.35;
/// Weight of BRR in DPI.
pub const DPI_BRR_WEIGHT: f64 = 0.25;
/// Grace after `due_at`, as a share of the milestone's planned span.
pub const SCHEDULE_GRACE_SHARE: f64 = 0.10;
/// Longest blocked episode (inclusive) that counts as quickly resolved for BRR.
pub const BRR_MAX_EPISODE: TimeDelta = TimeDelta::hours(48);
/// Relative change (percent, inclusive) within which DPI's trend is `stable`.
pub const DPI_STABLE_BAND_PCT: f64 = 5.0;

/// True when a milestone completed at `completed_at` met its schedule: completion ≤ due_at +
/// 10 % of (due_at − planned_start_at, or − created_at when there is no planned start). A
/// span that is negative (start after due) gives no grace. `None` without `due_at`.
pub fn completed_on_time(milestone: &MilestoneFacts, completed_at: DateTime<Utc>) -> Option<bool> {
    let due_at = milestone.due_at?;
    let start = milestone.planned_start_at.unwrap_or(milestone.created_at);
    let grace_seconds = SCHEDULE_GRACE_SHARE * seconds_between(start, due_at);
    Some(seconds_between(due_at, completed_at) <= grace_seconds)
}

/// SR: among milestones with a `due_at` that completed (SPEC §4 completion rule) in the last
/// 90 d, the share completed on time ([`completed_on_time`]). `None` when there are none.
pub fn schedule_reliability(facts: &ProjectFacts, now: DateTime<Utc>) -> Option<f64> {
    let verdicts: Vec<bool> = facts
        .milestones
        .iter()
        .filter_map(|milestone| {
            let completed_at = milestone_completion(facts, &milestone.milestone_id)?;
            if !in_window(completed_at, now, SCHEDULE_WINDOW) {
                return None;
            }
            completed_on_time(milestone, completed_at)
        })
        .collect();
    let on_time = verdicts.iter().filter(|on_time| **on_time).count();
    (!verdicts.is_empty()).then(|| on_time as f64 / verdicts.len() as f64)
}

/// CTS: `clamp(1 − σ/μ)` of cycle times (any one unit; population σ). Fewer than 2 samples
/// → `None`; μ = 0 → 1. The sums run over the times in ascending order, so the result is a
/// function of the set of times, not of the order they are given in.
pub fn cycle_time_stability(cycle_times: &[f64]) -> Option<f64> {
    if cycle_times.len() < 2 {
        return None;
    }
    if !cycle_times.is_sorted_by(|a, b| a.total_cmp(b).is_le()) {
        let mut sorted = cycle_times.to_vec();
        sorted.sort_unstable_by(f64::total_cmp);
        return cycle_time_stability(&sorted);
    }
    let mu = mean(cycle_times)?;
    if mu == 0.0 {
        return Some(1.0);
    }
    let sigma = population_std_dev(cycle_times)?;
    Some(clamp_unit(1.0 - sigma / mu))
}

/// BRR: among blocked episodes resolved (left blocked) in the last 30 d, the share that
/// lasted at most 48 h (exactly 48 h counts). `None` when none was resolved.
pub fn blocker_resolution_rate(facts: &ProjectFacts, now: DateTime<Utc>) -> Option<f64> {
    let max_seconds = BRR_MAX_EPISODE.num_seconds() as f64;
    let durations: Vec<f64> = facts
        .tasks
        .iter()
        .flat_map(|task| &task.blocked_episodes)
        .filter(|episode| opt_in_window(episode.ended_at, now, FLOW_WINDOW))
        .filter_map(|episode| episode.resolved_duration_seconds())
        .collect();
    let quick = durations.iter().filter(|d| **d <= max_seconds).count();
    (!durations.is_empty()).then(|| quick as f64 / durations.len() as f64)
}

/// DPI on the 0–1 scale: `0.40·SR + 0.35·CTS + 0.25·BRR`, leaving out `None` components and
/// renormalizing the remaining weights; `None` when all are `None`.
pub fn dpi_combine(sr: Option<f64>, cts: Option<f64>, brr: Option<f64>) -> Option<f64> {
    let weighted = [
        (sr, DPI_SR_WEIGHT),
        (cts, DPI_CTS_WEIGHT),
        (brr, DPI_BRR_WEIGHT),
    ];
    let (sum, weights) = weighted
        .iter()
        .filter_map(|(value, weight)| value.map(|v| (v * weight, *weight)))
        .fold((0.0, 0.0), |(sum, weights), (part, weight)| {
            (sum + part, weights + weight)
        });
    (weights > 0.0).then(|| sum / weights)
}

/// Trend and `change_pct` of a 0–100 value against its value 7 d earlier. `change_pct` =
/// 100 × (current − previous) / previous, rounded like a score; within ±5 (inclusive, on the
/// rounded figure) is `stable`. A previous value of 0 gives `stable`/0 when the current is 0
/// too, else `up` with a `null` change (undefined ratio). Either value `None` → both `None`.
pub fn dpi_trend(current: Option<f64>, previous: Option<f64>) -> (Option<Trend>, Option<f64>) {
    let (Some(current), Some(previous)) = (current, previous) else {
        return (None, None);
    };
    if previous == 0.0 {
        return if current == 0.0 {
            (Some(Trend::Stable), Some(0.0))
        } else {
            (
                Some(if current > 0.0 {
                    Trend::Up
                } else {
                    Trend::Down
                }),
                None,
            )
        };
    }
    let change_pct = round_score(100.0 * (current - previous) / previous.abs());
    let trend = if change_pct.abs() <= DPI_STABLE_BAND_PCT {
        Trend::Stable
    } else if change_pct > 0.0 {
        Trend::Up
    } else {
        Trend::Down
    };
    (Some(trend), Some(change_pct))
}

/// `north_star.delivery_predictability_index` as of `now`; `dpi_7d_ago` is the stored DPI
/// value (0–100) of the snapshot 7 d earlier, if any.
pub fn delivery_predictability_index(
    facts: &ProjectFacts,
    now: DateTime<Utc>,
    dpi_7d_ago: Option<f64>,
) -> DeliveryPredictabilityIndex {
    let sr = schedule_reliability(facts, now);
    let cts = cycle_time_stability(&cycle_time_minutes(facts, now));
    let brr = blocker_resolution_rate(facts, now);
    let value = dpi_combine(sr, cts, brr).map(|dpi| round_score(100.0 * dpi));
    let (trend, change_pct) = dpi_trend(value, dpi_7d_ago);
    DeliveryPredictabilityIndex {
        value,
        trend,
        change_pct,
        components: DpiComponents {
            schedule_reliability: sr.map(round_ratio),
            cycle_time_stability: cts.map(round_ratio),
            blocker_resolution_rate: brr.map(round_ratio),
        },
        reason: value
            .is_none()
            .then(|| reasons::NO_DPI_COMPONENTS.to_owned()),
    }
}

#[cfg(test)]
#[path = "predictability_tests.rs"]
mod tests;
