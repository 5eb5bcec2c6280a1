//! What one task adds to the count metrics (arrivals and throughput trend points, breakdown
//! counts and duration sums) and to the data-quality counters. A batch notes the
//! contribution of every task it touches before the first change and compares it with the
//! task's contribution after the batch: only a difference is written, as a subtraction of
//! the old and an addition of the new. Counts are therefore a function of the tasks' facts,
//! which are a function of the set of events, so a late event that moves a task's creation
//! or integration moves its counts with it. Durations are summed in whole microseconds,
//! which add exactly in any order and any batch sizes.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use flowmeter_shared::metrics::TaskFacts;

use super::apply::trend_key;
use super::model::{keys, BreakdownKey, Delta, Dims, BREAKDOWN_DIMENSIONS};
use super::state::dimension_value;
use flowmeter_shared::read_model::Grain;

/// Data-quality issue names.
pub mod issues {
    /// A transition's `from_state` disagreed with the state its task had at that point.
    pub const FROM_STATE_MISMATCH: &str = "from_state_mismatch";
    /// A task's history begins with a transition (the task was inferred, SPEC §3.1).
    pub const INFERRED_TASK: &str = "inferred_task";
}

/// One task's share of the count metrics and the data-quality counters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contribution {
    created_at: DateTime<Utc>,
    integrated_at: Option<DateTime<Utc>>,
    dims: Dims,
    dimension_values: [String; 5],
    cycle_micros: Option<i64>,
    lead_micros: Option<i64>,
    from_state_mismatches: u32,
    inferred_start: bool,
}

fn micros(seconds: Option<f64>) -> Option<i64> {
    seconds.map(|s| (s * 1_000_000.0).round() as i64)
}

impl Contribution {
    /// The contribution of a task as it is now.
    pub fn of(task: &TaskFacts) -> Self {
        Self {
            created_at: task.created_at,
            integrated_at: task.integrated_at,
            dims: Dims::of(task),
            dimension_values: BREAKDOWN_DIMENSIONS.map(|d| dimension_value(task, d)),
            cycle_micros: micros(task.cycle_time_seconds()),
            lead_micros: micros(task.lead_time_seconds()),
            from_state_mismatches: task.from_state_mismatches,
            inferred_start: task.inferred_start,
        }
    }

    /// Adds (`sign` = 1) or subtracts (−1) this contribution.
    fn emit<'a>(&'a self, sign: i64, counts: &mut Counts<'a>, delta: &mut Delta) {
        self.emit_arrival(sign, counts);
        self.emit_integration(sign, counts);
        self.emit_quality(sign, delta);
    }

    /// Writes the change from `old` to `new`. Each of the three parts (arrival, integration,
    /// data quality) that both sides share is left out: its subtraction and addition would
    /// cancel exactly (counts and whole-microsecond sums are integers), so skipping them
    /// writes the same values with less work.
    fn emit_change<'a>(
        old: Option<&'a Self>,
        new: Option<&'a Self>,
        counts: &mut Counts<'a>,
        delta: &mut Delta,
    ) {
        match (old, new) {
            (Some(old), Some(new)) => {
                let same_dims =
                    old.dims == new.dims && old.dimension_values == new.dimension_values;
                if !(same_dims && old.created_at == new.created_at) {
                    old.emit_arrival(-1, counts);
                    new.emit_arrival(1, counts);
                }
                if !(same_dims
                    && old.integrated_at == new.integrated_at
                    && old.cycle_micros == new.cycle_micros
                    && old.lead_micros == new.lead_micros)
                {
                    old.emit_integration(-1, counts);
                    new.emit_integration(1, counts);
                }
                if (old.from_state_mismatches, old.inferred_start)
                    != (new.from_state_mismatches, new.inferred_start)
                {
                    old.emit_quality(-1, delta);
                    new.emit_quality(1, delta);
                }
            }
            (old, new) => {
                if let Some(old) = old {
                    old.emit(-1, counts, delta);
                }
                if let Some(new) = new {
                    new.emit(1, counts, delta);
                }
            }
        }
    }

    fn emit_arrival<'a>(&'a self, sign: i64, counts: &mut Counts<'a>) {
        self.count(keys::ARRIVALS, self.created_at, sign, counts);
    }

    fn emit_integration<'a>(&'a self, sign: i64, counts: &mut Counts<'a>) {
        let Some(integrated_at) = self.integrated_at else {
            return;
        };
        self.count(keys::THROUGHPUT, integrated_at, sign, counts);
        let day = integrated_at.date_naive();
        for (metric, value) in [
            (keys::CYCLE_TIME, self.cycle_micros),
            (keys::LEAD_TIME, self.lead_micros),
        ] {
            let Some(value) = value else { continue };
            for (dimension, of) in BREAKDOWN_DIMENSIONS.iter().zip(&self.dimension_values) {
                counts.breakdown((metric, dimension, of, day), sign * value, sign);
            }
        }
    }

    fn emit_quality(&self, sign: i64, delta: &mut Delta) {
        if self.from_state_mismatches > 0 {
            delta.data_quality_by(
                issues::FROM_STATE_MISMATCH,
                sign * i64::from(self.from_state_mismatches),
            );
        }
        if self.inferred_start {
            delta.data_quality_by(issues::INFERRED_TASK, sign);
        }
    }

    fn count<'a>(
        &'a self,
        metric: &'static str,
        at: DateTime<Utc>,
        sign: i64,
        counts: &mut Counts<'a>,
    ) {
        for grain in Grain::ALL {
            let bucket = grain.bucket(at);
            counts.trend((metric, grain, bucket, None), sign);
            if grain.has_dimensions() {
                counts.trend((metric, grain, bucket, Some(&self.dims)), sign);
            }
        }
        let day = at.date_naive();
        for (dimension, of) in BREAKDOWN_DIMENSIONS.iter().zip(&self.dimension_values) {
            counts.breakdown((metric, dimension, of, day), sign, sign);
        }
    }
}

type Hashed<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// A trend point's key, borrowed: metric, grain, bucket, dimensions.
type TrendPoint<'a> = (&'static str, Grain, DateTime<Utc>, Option<&'a Dims>);

/// A breakdown point's key, borrowed: metric, dimension, value, day.
type BreakdownPoint<'a> = (&'static str, &'static str, &'a str, NaiveDate);

/// The count changes of one settle, keyed by borrowed parts: a point's key is built (and its
/// strings allocated) once per distinct point rather than once per task and sign. Values and
/// sample sizes are integers (counts, whole microseconds), so the sums are exact in any order.
#[derive(Default)]
struct Counts<'a> {
    /// Point → (value, sample size).
    trend: Hashed<TrendPoint<'a>, (i64, i64)>,
    /// Point → (value, sample size).
    breakdown: Hashed<BreakdownPoint<'a>, (i64, i64)>,
}

impl<'a> Counts<'a> {
    fn trend(&mut self, key: TrendPoint<'a>, sign: i64) {
        let entry = self.trend.entry(key).or_default();
        entry.0 += sign;
        entry.1 += sign;
    }

    fn breakdown(&mut self, key: BreakdownPoint<'a>, value: i64, samples: i64) {
        let entry = self.breakdown.entry(key).or_default();
        entry.0 += value;
        entry.1 += samples;
    }

    /// Adds the changes that do not cancel to `delta`.
    fn add_to(self, delta: &mut Delta) {
        for ((metric, grain, bucket, dims), (value, samples)) in self.trend {
            if value != 0 || samples != 0 {
                delta.add_trend(
                    trend_key(metric, grain, bucket, dims.cloned()),
                    value as f64,
                    samples,
                );
            }
        }
        for ((metric, dimension, of, day), (value, samples)) in self.breakdown {
            if value != 0 || samples != 0 {
                delta.add_breakdown(
                    BreakdownKey {
                        metric: metric.to_owned(),
                        dimension: dimension.to_owned(),
                        value: of.to_owned(),
                        day,
                    },
                    value as f64,
                    samples,
                );
            }
        }
    }
}

/// Writes the difference between the contributions noted before a batch and the tasks'
/// contributions after it, and drops the count entries that cancel out.
pub fn settle(
    before: std::collections::HashMap<String, Option<Contribution>>,
    after: impl Fn(&str) -> Option<Contribution>,
    delta: &mut Delta,
) {
    let changed: Vec<(Option<Contribution>, Option<Contribution>)> = before
        .into_iter()
        .filter_map(|(id, old)| {
            let new = after(&id);
            (old != new).then_some((old, new))
        })
        .collect();
    let mut counts = Counts::default();
    for (old, new) in &changed {
        Contribution::emit_change(old.as_ref(), new.as_ref(), &mut counts, delta);
    }
    counts.add_to(delta);
    delta
        .trend_add
        .retain(|_, v| v.sample_size != 0 || v.value.is_some_and(|x| x != 0.0));
    delta
        .breakdown_add
        .retain(|_, v| v.sample_size != 0 || v.value != 0.0);
    delta.data_quality.retain(|_, n| *n != 0);
}
