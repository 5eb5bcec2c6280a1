//! What one task adds to the count metrics (arrivals and throughput trend points, breakdown
//! counts and duration sums) and to the data-quality counters. A batch notes the
//! contribution of every task it touches before the first change and compares it with the
//! task's contribution after the batch: only a difference is written, as a subtraction of
//! the old and an addition of the new. Counts are therefore a function of the tasks' facts,
//! which are a function of the set of events, so a late event that moves a task's creation
//! or integration moves its counts with it. Durations are summed in whole microseconds,
//! which add exactly in any order and any batch sizes.

use chrono::{DateTime, Utc};
use flowmeter_shared::metrics::TaskFacts;

use super::apply::{breakdown_key, trend_key};
use super::model::{keys, Delta, Dims, BREAKDOWN_DIMENSIONS};
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
    fn emit(&self, sign: i64, delta: &mut Delta) {
        self.emit_arrival(sign, delta);
        self.emit_integration(sign, delta);
        self.emit_quality(sign, delta);
    }

    /// Writes the change from `old` to `new`. Each of the three parts (arrival, integration,
    /// data quality) that both sides share is left out: its subtraction and addition would
    /// cancel exactly (counts and whole-microsecond sums are integers), so skipping them
    /// writes the same values with less work.
    pub fn emit_change(old: Option<&Self>, new: Option<&Self>, delta: &mut Delta) {
        match (old, new) {
            (Some(old), Some(new)) => {
                let same_dims =
                    old.dims == new.dims && old.dimension_values == new.dimension_values;
                if !(same_dims && old.created_at == new.created_at) {
                    old.emit_arrival(-1, delta);
                    new.emit_arrival(1, delta);
                }
                if !(same_dims
                    && old.integrated_at == new.integrated_at
                    && old.cycle_micros == new.cycle_micros
                    && old.lead_micros == new.lead_micros)
                {
                    old.emit_integration(-1, delta);
                    new.emit_integration(1, delta);
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
                    old.emit(-1, delta);
                }
                if let Some(new) = new {
                    new.emit(1, delta);
                }
            }
        }
    }

    fn emit_arrival(&self, sign: i64, delta: &mut Delta) {
        self.count(keys::ARRIVALS, self.created_at, sign, delta);
    }

    fn emit_integration(&self, sign: i64, delta: &mut Delta) {
        let Some(integrated_at) = self.integrated_at else {
            return;
        };
        self.count(keys::THROUGHPUT, integrated_at, sign, delta);
        for (metric, value) in [
            (keys::CYCLE_TIME, self.cycle_micros),
            (keys::LEAD_TIME, self.lead_micros),
        ] {
            let Some(value) = value else { continue };
            for (dimension, of) in BREAKDOWN_DIMENSIONS.iter().zip(&self.dimension_values) {
                delta.add_breakdown(
                    breakdown_key(metric, dimension, of, integrated_at),
                    (sign * value) as f64,
                    sign,
                );
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

    fn count(&self, metric: &str, at: DateTime<Utc>, sign: i64, delta: &mut Delta) {
        for grain in Grain::ALL {
            let bucket = grain.bucket(at);
            delta.add_trend(trend_key(metric, grain, bucket, None), sign as f64, sign);
            if grain.has_dimensions() {
                delta.add_trend(
                    trend_key(metric, grain, bucket, Some(self.dims.clone())),
                    sign as f64,
                    sign,
                );
            }
        }
        for (dimension, of) in BREAKDOWN_DIMENSIONS.iter().zip(&self.dimension_values) {
            delta.add_breakdown(breakdown_key(metric, dimension, of, at), sign as f64, sign);
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
    for (id, old) in before {
        let new = after(&id);
        if old != new {
            Contribution::emit_change(old.as_ref(), new.as_ref(), delta);
        }
    }
    delta
        .trend_add
        .retain(|_, v| v.sample_size != 0 || v.value.is_some_and(|x| x != 0.0));
    delta
        .breakdown_add
        .retain(|_, v| v.sample_size != 0 || v.value != 0.0);
    delta.data_quality.retain(|_, n| *n != 0);
}
