//! Level points "as of the bucket's end" (SPEC §4.1, §13). The fold closes a bucket when
//! event time (canonical order) moves past its end, so the points depend on the events
//! alone, never on batch boundaries or wall-clock time. Points are change points: a bucket
//! gets one when it holds events or a fact leaves a trailing window in it, and readers carry
//! the last value forward through the buckets between. A snapshot writes the same kind of
//! points for buckets that have ended in wall-clock time but not yet in event time
//! (`close_until`), without moving the cursors; event time passing them deletes and
//! rewrites them.

use std::collections::{BTreeSet, HashMap};
use std::sync::MutexGuard;

use chrono::{DateTime, Duration, Utc};
use flowmeter_shared::metrics::stats::{round_duration, round_score};
use flowmeter_shared::metrics::time::{in_window, FLOW_WINDOW, SCHEDULE_WINDOW};
use flowmeter_shared::metrics::{efficiency, predictability};

/// The window of IRS (SPEC §4: attempts finished in the last 30 days).
fn integration_window() -> Duration {
    FLOW_WINDOW
}
use serde_json::{json, Value};

use super::apply::trend_key;
use super::durations::Window;
use super::model::{keys, BreakdownKey, BreakdownValue, Delta, TrendValue, BREAKDOWN_DIMENSIONS};
use super::state::{ProjectState, EXPIRY_WINDOWS_DAYS};
use flowmeter_shared::read_model::Grain;

/// The window of the cycle and lead time percentiles.
const DURATION_WINDOW_DAYS: i64 = 30;

/// Scores as of one instant, shared by the grains that close at that instant.
#[derive(Debug, Clone, Copy)]
struct Scores {
    dpi: Option<f64>,
    fes: Option<f64>,
    irs: Option<f64>,
}

/// The median of ascending `sorted` samples, interpolated exactly as `percentile_cont`
/// does, with a distribution-free 95 % confidence interval from order statistics.
pub fn p50_of_sorted(sorted: &[f64]) -> (Option<f64>, Value) {
    let n = sorted.len();
    if n == 0 {
        return (None, json!({}));
    }
    // Zero-based position of `1 + (n − 1)·p` with p = 0.5.
    let position = (n - 1) as f64 * 0.5;
    let lower = position.floor() as usize;
    let upper = position.ceil() as usize;
    let fraction = position - lower as f64;
    // Ranks j < k with P(x_(j) ≤ median ≤ x_(k)) ≈ 0.95 (normal approximation to the
    // binomial), clamped to the sample.
    let half_width = 1.96 * (n as f64).sqrt() / 2.0;
    let lower_rank = ((n as f64) / 2.0 - half_width).floor().max(1.0) as usize;
    let upper_rank = ((n as f64) / 2.0 + half_width).ceil().min(n as f64) as usize;
    // lower_rank − 1 ≤ lower ≤ upper ≤ upper_rank − 1 for every n ≥ 1.
    let (p_lower, p_upper) = (sorted[lower], sorted[upper]);
    let p50 = Some(round_duration(p_lower + (p_upper - p_lower) * fraction));
    let interval = json!({
        "confidence_interval": {
            "lower": round_duration(sorted[lower_rank - 1]),
            "upper": round_duration(sorted[upper_rank - 1]),
            "level": 0.95,
        }
    });
    (p50, interval)
}

impl ProjectState {
    /// Closes every bucket that ends at or before `t` and moves the cursors past them. Of
    /// the buckets between the open one and `t`'s, only those in which a value can change
    /// (a fact leaves a trailing window there) get points: readers carry the value forward
    /// through the others, so a stretch of empty event time costs nothing.
    pub fn advance_to(&mut self, t: DateTime<Utc>, delta: &mut Delta) {
        let mut scores = HashMap::new();
        for grain in Grain::ALL {
            let Some(start) = self.cursors.open.get(&grain).copied() else {
                self.cursors.open.insert(grain, grain.bucket(t));
                continue;
            };
            let end = grain.next(start);
            if end > t {
                continue;
            }
            self.close(grain, start, end, delta, &mut scores);
            let target = grain.bucket(t);
            self.close_changes_between(grain, end, target, delta, &mut scores);
            self.cursors.open.insert(grain, target);
        }
    }

    /// Closes the buckets in `[from, to)` in which a fact leaves a trailing window, after
    /// deleting whatever points lie in that range (snapshots write ahead of event time).
    fn close_changes_between(
        &self,
        grain: Grain,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        delta: &mut Delta,
        scores: &mut HashMap<DateTime<Utc>, Scores>,
    ) {
        if from >= to {
            return;
        }
        delta.level_clear.push((grain, from, Some(to)));
        for bucket in self.expiry_buckets(grain, from, to) {
            self.close(grain, bucket, grain.next(bucket), delta, scores);
        }
    }

    /// The buckets of `grain` in `[from, to)` (both bucket starts) in which some fact
    /// leaves one of the trailing windows.
    fn expiry_buckets(
        &self,
        grain: Grain,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> BTreeSet<DateTime<Utc>> {
        let mut buckets = BTreeSet::new();
        for days in EXPIRY_WINDOWS_DAYS {
            let window = Duration::days(days);
            for hour in self
                .fact_hours
                .range(from - window..to - window)
                .map(|(h, _)| *h)
            {
                let bucket = grain.bucket(hour + window);
                if bucket >= from && bucket < to {
                    buckets.insert(bucket);
                }
            }
        }
        buckets
    }

    /// The level points a snapshot at `now` writes: everything ahead of event time is
    /// deleted first; with `fill_gap`, the open bucket is closed when `now` is past it and
    /// the buckets up to `now` in which a value changes get points; the bucket holding
    /// `now` is written as of `now` by [`ProjectState::open_buckets`].
    pub fn close_until(&self, now: DateTime<Utc>, fill_gap: bool, delta: &mut Delta) {
        let mut scores = HashMap::new();
        for grain in Grain::ALL {
            let Some(start) = self.cursors.open.get(&grain).copied() else {
                continue;
            };
            let end = grain.next(start);
            delta.level_clear.push((grain, end, None));
            if !fill_gap || end > now {
                continue;
            }
            self.close(grain, start, end, delta, &mut scores);
            let target = grain.bucket(now);
            for bucket in self.expiry_buckets(grain, end, target) {
                self.close(grain, bucket, grain.next(bucket), delta, &mut scores);
            }
        }
    }

    /// The three scores as of `end`; `cycle` holds the cycle times (minutes) of the tasks
    /// integrated in the 30 days before it.
    fn scores_at(
        &self,
        end: DateTime<Utc>,
        cycle: &[f64],
        cache: &mut HashMap<DateTime<Utc>, Scores>,
    ) -> Scores {
        *cache.entry(end).or_insert_with(|| Scores {
            dpi: self.delivery_predictability(end, cycle),
            fes: self.flow_efficiency(end),
            irs: self.integration_reliability(end).value,
        })
    }

    /// FES (0–100) as of `end`, as `efficiency::flow_efficiency_score` computes it, summing
    /// the closed stays of the window's integrated tasks from the integration index (in
    /// integration order, so the sum does not depend on the order tasks arrived in).
    pub fn flow_efficiency(&self, end: DateTime<Utc>) -> Option<f64> {
        let from = (end - FLOW_WINDOW, String::new());
        let mut total = flowmeter_shared::metrics::PerState::<f64>::default();
        for ((at, _), sample) in self.integrated.range(from..) {
            if *at >= end {
                break;
            }
            for (state, seconds) in sample.time_in_state_seconds.iter() {
                total.add(state, seconds);
            }
        }
        efficiency::FlowTimes::from_states(&total)
            .efficiency()
            .map(|e| round_score(100.0 * e))
    }

    /// DPI (0–100) as of `end`, as `predictability::delivery_predictability_index` computes
    /// it, from the milestone tallies and resolved blocked stays (no pass over the tasks).
    /// CTS sums the cycle times in ascending order, so their mean and deviation do not
    /// depend on the order tasks arrived in.
    pub fn delivery_predictability(&self, end: DateTime<Utc>, cycle: &[f64]) -> Option<f64> {
        let verdicts: Vec<bool> = self
            .facts
            .milestones
            .iter()
            .filter_map(|milestone| {
                let completed_at = self
                    .milestone_tallies
                    .get(&milestone.milestone_id)?
                    .completed_at()?;
                if !in_window(completed_at, end, SCHEDULE_WINDOW) {
                    return None;
                }
                predictability::completed_on_time(milestone, completed_at)
            })
            .collect();
        let on_time = verdicts.iter().filter(|on_time| **on_time).count();
        let sr = (!verdicts.is_empty()).then(|| on_time as f64 / verdicts.len() as f64);
        let cts = predictability::cycle_time_stability(cycle);
        let (stays, quick) = self
            .resolved_blocked
            .range(end - FLOW_WINDOW..end)
            .fold((0u32, 0u32), |(s, q), (_, (n, k))| (s + n, q + k));
        let brr = (stays > 0).then(|| f64::from(quick) / f64::from(stays));
        predictability::dpi_combine(sr, cts, brr).map(|dpi| round_score(100.0 * dpi))
    }

    /// IRS as of `end`, equal to `integration::integration_reliability_score` over the facts,
    /// from the window's finished attempts (each failure knowing the success that recovers
    /// it, so there is no grouping and no sort).
    pub fn integration_reliability(
        &self,
        end: DateTime<Utc>,
    ) -> flowmeter_shared::metrics::summary::IntegrationReliabilityScore {
        self.finished_attempts
            .tally(end, integration_window(), |task_id| {
                self.task(task_id).is_none_or(|t| !t.state.is_terminal())
            })
            .score()
    }

    /// The cycle and lead times (minutes, ascending) of the tasks integrated in the 30 days
    /// before `end`.
    pub(super) fn duration_window(&self, end: DateTime<Utc>) -> MutexGuard<'_, Window> {
        self.durations.at(
            &self.integrated,
            end - Duration::days(DURATION_WINDOW_DAYS),
            end,
        )
    }

    /// Writes the open bucket of every grain as of `now` (scores at every grain, the hour
    /// included).
    pub fn open_buckets(&self, now: DateTime<Utc>, delta: &mut Delta) {
        let mut scores = HashMap::new();
        for grain in Grain::ALL {
            self.close(grain, grain.bucket(now), now, delta, &mut scores);
        }
    }

    fn close(
        &self,
        grain: Grain,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        delta: &mut Delta,
        cache: &mut HashMap<DateTime<Utc>, Scores>,
    ) {
        let level = |value: f64| TrendValue {
            value: Some(value),
            sample_size: value as i64,
            detail: json!({}),
        };
        let total = |metric: &str| trend_key(metric, grain, start, None);
        delta
            .trend_set
            .insert(total(keys::WIP), level(self.wip_count() as f64));
        delta
            .trend_set
            .insert(total(keys::BLOCKED), level(self.blocked_count() as f64));

        let window = self.duration_window(end);
        let scores = self.scores_at(end, &window.cycle, cache);
        for (metric, samples) in [
            (keys::CYCLE_TIME, &window.cycle),
            (keys::LEAD_TIME, &window.lead),
        ] {
            let n = samples.len() as i64;
            let (p50, detail) = p50_of_sorted(samples);
            delta.trend_set.insert(
                total(metric),
                TrendValue {
                    value: p50,
                    sample_size: n,
                    detail,
                },
            );
        }

        {
            for (metric, value) in [
                (keys::DPI, scores.dpi),
                (keys::FES, scores.fes),
                (keys::IRS, scores.irs),
            ] {
                delta.trend_set.insert(
                    total(metric),
                    TrendValue {
                        value: value.map(round_score),
                        sample_size: 0,
                        detail: json!({}),
                    },
                );
            }
        }

        if grain.has_dimensions() {
            for metric in [keys::WIP, keys::BLOCKED] {
                delta
                    .trend_replace_dims
                    .insert((metric.to_owned(), grain, start));
            }
            for (dims, count) in &self.levels_by_dims {
                for (metric, value) in [(keys::WIP, count.wip), (keys::BLOCKED, count.blocked)] {
                    if value != 0 {
                        delta.trend_set.insert(
                            trend_key(metric, grain, start, Some(dims.clone())),
                            level(value as f64),
                        );
                    }
                }
            }
        }

        if grain == Grain::Day {
            let day = start.date_naive();
            for metric in [keys::WIP, keys::BLOCKED] {
                delta.breakdown_replace.insert((metric.to_owned(), day));
            }
            let by_dimension = self
                .levels_by_dimension
                .iter()
                .zip(BREAKDOWN_DIMENSIONS)
                .flat_map(|(values, dimension)| values.iter().map(move |(v, c)| (dimension, v, c)));
            for (dimension, value, count) in by_dimension {
                for (metric, n) in [(keys::WIP, count.wip), (keys::BLOCKED, count.blocked)] {
                    if n != 0 {
                        delta.breakdown_set.insert(
                            BreakdownKey {
                                metric: metric.to_owned(),
                                dimension: dimension.to_owned(),
                                value: value.clone(),
                                day,
                            },
                            BreakdownValue {
                                value: n as f64,
                                sample_size: n,
                            },
                        );
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::p50_of_sorted;
    use flowmeter_shared::metrics::stats::{percentile_cont, round_duration};

    /// The selection-based median and interval equal the sort-based definition.
    #[test]
    fn median_and_interval_match_a_full_sort() {
        let mut seed: u64 = 7;
        for n in 1..300usize {
            let mut samples: Vec<f64> = (0..n)
                .map(|_| {
                    seed = seed
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    // Many ties, as real durations rounded to minutes have.
                    ((seed >> 33) % 500) as f64 / 4.0
                })
                .collect();
            let mut sorted = samples.clone();
            sorted.sort_by(f64::total_cmp);
            let half_width = 1.96 * (n as f64).sqrt() / 2.0;
            let lower_rank = ((n as f64) / 2.0 - half_width).floor().max(1.0) as usize;
            let upper_rank = ((n as f64) / 2.0 + half_width).ceil().min(n as f64) as usize;
            samples.sort_by(f64::total_cmp);
            let (p50, detail) = p50_of_sorted(&samples);
            assert_eq!(
                p50,
                percentile_cont(&sorted, 0.5).map(round_duration),
                "n = {n}"
            );
            let interval = &detail["confidence_interval"];
            assert_eq!(
                interval["lower"],
                round_duration(sorted[lower_rank - 1]),
                "n = {n}"
            );
            assert_eq!(
                interval["upper"],
                round_duration(sorted[upper_rank - 1]),
                "n = {n}"
            );
        }
        assert_eq!(p50_of_sorted(&[]).0, None);
    }
}
