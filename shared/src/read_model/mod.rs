//! Rows of the read model as plain data, shared by the worker (which writes them) and the
//! API (which reads them): metric keys, grains, trend and breakdown points, drill-down rows,
//! summary snapshots.

pub mod grain;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::TaskFacts;

pub use grain::Grain;

/// Metric keys of trend points, breakdown points and drill-down rows.
pub mod keys {
    /// Tasks integrated (count).
    pub const THROUGHPUT: &str = "throughput";
    /// Tasks created (count).
    pub const ARRIVALS: &str = "arrivals";
    /// Cycle time p50 in minutes (level).
    pub const CYCLE_TIME: &str = "cycle_time";
    /// Lead time p50 in minutes (level).
    pub const LEAD_TIME: &str = "lead_time";
    /// Tasks in WIP states (level).
    pub const WIP: &str = "wip";
    /// Tasks blocked (level).
    pub const BLOCKED: &str = "blocked";
    /// Implemented, not integrated (drill-down only).
    pub const BACKLOG: &str = "backlog";
    /// Delivery predictability index, 0–100 (level).
    pub const DPI: &str = "delivery_predictability_index";
    /// Flow efficiency score, 0–100 (level).
    pub const FES: &str = "flow_efficiency_score";
    /// Integration reliability score, 0–100 (level).
    pub const IRS: &str = "integration_reliability_score";
}

/// Metric identifiers the trends endpoint accepts.
pub const TREND_METRICS: [&str; 13] = [
    keys::THROUGHPUT,
    keys::ARRIVALS,
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::WIP,
    keys::BLOCKED,
    keys::DPI,
    keys::FES,
    keys::IRS,
    crate::metrics::dora::TREND_METRICS[0],
    crate::metrics::dora::TREND_METRICS[1],
    crate::metrics::dora::TREND_METRICS[2],
    crate::metrics::dora::TREND_METRICS[3],
];

/// Metrics that have drill-down rows.
pub const DRILLDOWN_METRICS: [&str; 7] = [
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::WIP,
    keys::BLOCKED,
    keys::BACKLOG,
    keys::THROUGHPUT,
    keys::ARRIVALS,
];

/// Trend metrics whose points are levels as of a bucket's end, stored as change points and
/// carried forward by readers; the others are counts, 0 where no point is stored.
pub const LEVEL_METRICS: [&str; 7] = [
    keys::WIP,
    keys::BLOCKED,
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::DPI,
    keys::FES,
    keys::IRS,
];

/// Trend metrics that add up across dimensions (the only ones with dimensioned points).
pub const ADDITIVE_METRICS: [&str; 4] =
    [keys::THROUGHPUT, keys::ARRIVALS, keys::WIP, keys::BLOCKED];

/// Dimensions of dimensioned trend points.
pub const TREND_DIMENSIONS: [&str; 4] = ["phase", "milestone", "assignee", "task_class"];

/// The task metrics of the breakdown endpoint, whose groups the worker precomputes at
/// snapshot time (the endpoint also accepts the DORA keys, computed when served).
pub const BREAKDOWN_METRICS: [&str; 6] = [
    keys::THROUGHPUT,
    keys::ARRIVALS,
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::WIP,
    keys::BLOCKED,
];

/// Time ranges of a breakdown with their lengths in hours (exact, so a range never depends on
/// a time zone's daylight saving).
pub const BREAKDOWN_RANGES: [(&str, i64); 4] =
    [("24h", 24), ("7d", 168), ("30d", 720), ("90d", 2160)];

/// The single dimensions of breakdown points.
pub const BREAKDOWN_DIMENSIONS: [&str; 5] =
    ["phase", "milestone", "assignee", "task_class", "state"];

/// The dimensions of a dimensioned trend point: every grouping attribute of the task at
/// the time. Only additive metrics (counts and WIP/blocked levels) carry them, so the API
/// can group by any subset by summing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dims {
    /// Phase id.
    pub phase: Option<String>,
    /// Milestone id.
    pub milestone: Option<String>,
    /// Assignee.
    pub assignee: Option<String>,
    /// Task class.
    pub task_class: Option<String>,
}

impl Dims {
    /// The dimensions of a task.
    pub fn of(task: &TaskFacts) -> Self {
        Self {
            phase: task.phase_id.clone(),
            milestone: task.milestone_id.clone(),
            assignee: task.assignee.clone(),
            task_class: task.task_class.clone(),
        }
    }
}

/// Identifies one trend point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TrendKey {
    /// Metric key.
    pub metric: String,
    /// Grain.
    pub grain: Grain,
    /// Bucket start.
    pub bucket: DateTime<Utc>,
    /// `None` for the project total.
    pub dims: Option<Dims>,
}

/// The value of one trend point.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrendValue {
    /// The number (count, level, p50 or score); `None` when it cannot be computed.
    pub value: Option<f64>,
    /// Events counted, or samples behind a percentile.
    pub sample_size: i64,
    /// Extra detail, e.g. a percentile's confidence interval.
    pub detail: Value,
}

/// Identifies one breakdown point.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct BreakdownKey {
    /// Metric key.
    pub metric: String,
    /// One of [`BREAKDOWN_DIMENSIONS`].
    pub dimension: String,
    /// The dimension's value (an id); empty when the task has none.
    pub value: String,
    /// The UTC day.
    pub day: NaiveDate,
}

/// A breakdown point: a count or level (`value`, `sample_size` = tasks), or for durations
/// the day's sum of minutes with `sample_size` tasks.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BreakdownValue {
    /// Count, level or summed minutes.
    pub value: f64,
    /// Tasks behind the value.
    pub sample_size: i64,
}

/// One drill-down row.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrilldownRow {
    /// Minutes, hours or 1, depending on the metric.
    pub value: f64,
    /// The row's time (integration, creation or entry into the measured state).
    pub ts: DateTime<Utc>,
    /// Task title.
    pub title: Option<String>,
    /// Phase id.
    pub phase_id: Option<String>,
    /// Milestone id.
    pub milestone_id: Option<String>,
    /// Assignee.
    pub assignee: Option<String>,
    /// Task class.
    pub task_class: Option<String>,
    /// Current state.
    pub state: String,
}

/// A poison event set aside.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedEvent {
    /// Producer's id.
    pub event_id: String,
    /// Event type as stored.
    pub event_type: String,
    /// Why it could not be applied.
    pub error: String,
}

/// A phase, as projected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseFacts {
    /// Phase id.
    pub phase_id: String,
    /// Name.
    pub name: Option<String>,
    /// Order.
    pub sequence: Option<i64>,
}

/// A stored summary snapshot.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SummaryRow {
    /// Snapshot time.
    pub captured_at: DateTime<Utc>,
    /// Last folded seq.
    pub as_of_seq: i64,
    /// The summary's `metrics` object.
    pub payload: Value,
    /// Milestone health.
    pub health: Value,
    /// Whether the snapshot wrote the buckets between event time and `captured_at`.
    pub gap_filled: bool,
}
