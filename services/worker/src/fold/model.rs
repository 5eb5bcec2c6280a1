//! What a fold step changes (`Delta`) and the whole read model of one project as plain
//! data (`ReadModel`); the row types themselves live in `flowmeter_shared::read_model`. The database sink applies a delta with SQL; `verify` applies the
//! same deltas to an in-memory `ReadModel` and compares it with one loaded from the
//! database, so both paths share one definition of every row.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use flowmeter_shared::metrics::{GateFacts, MilestoneFacts, TaskFacts};
pub use flowmeter_shared::read_model::{
    keys, BreakdownKey, BreakdownValue, Dims, DrilldownRow, Grain, PhaseFacts, QuarantinedEvent,
    SummaryRow, TrendKey, TrendValue, BREAKDOWN_DIMENSIONS,
};

use super::state::ProjectState;

pub use flowmeter_shared::read_model::LEVEL_METRICS;

/// Breakdown metrics whose daily points are levels.
pub const BREAKDOWN_LEVEL_METRICS: [&str; 2] = [keys::WIP, keys::BLOCKED];

/// Drill-down rows by (metric, task).
pub type DrilldownRows = BTreeMap<(String, String), DrilldownRow>;

/// Everything one fold step or snapshot changes.
#[derive(Debug, Default)]
pub struct Delta {
    /// Tasks whose projection row must be written.
    pub tasks: BTreeSet<String>,
    /// Gates to write.
    pub gates: BTreeSet<String>,
    /// Attempts to write.
    pub attempts: BTreeSet<String>,
    /// The `tasks` that have no row yet (inserted without conflict handling).
    pub fresh_tasks: BTreeSet<String>,
    /// The `gates` that have no row yet.
    pub fresh_gates: BTreeSet<String>,
    /// The `attempts` that have no row yet.
    pub fresh_attempts: BTreeSet<String>,
    /// Milestones to write.
    pub milestones: BTreeSet<String>,
    /// Phases to write.
    pub phases: BTreeSet<String>,
    /// Transitions into each state (added).
    pub transitions: BTreeMap<String, i64>,
    /// Data-quality issues (added).
    pub data_quality: BTreeMap<String, i64>,
    /// Count points (value and sample size added).
    pub trend_add: BTreeMap<TrendKey, TrendValue>,
    /// Level points (replaced).
    pub trend_set: BTreeMap<TrendKey, TrendValue>,
    /// The trend buckets that had points before this delta: its points in other buckets are
    /// inserted without conflict handling. `None`: unknown, upsert everything.
    pub trend_written: Option<super::state::TrendWritten>,
    /// (metric, grain, bucket) whose dimensioned points are replaced wholesale by the
    /// dimensioned entries of `trend_set` (a close writes the complete set).
    pub trend_replace_dims: BTreeSet<(String, Grain, DateTime<Utc>)>,
    /// Breakdown counts and duration sums (added).
    pub breakdown_add: BTreeMap<BreakdownKey, BreakdownValue>,
    /// Breakdown levels (replaced).
    pub breakdown_set: BTreeMap<BreakdownKey, BreakdownValue>,
    /// (metric, day) whose breakdown points are replaced wholesale by `breakdown_set`.
    pub breakdown_replace: BTreeSet<(String, NaiveDate)>,
    /// Tasks whose event-driven drill-down rows (arrivals, throughput, cycle and lead
    /// time) are rewritten from the state (`ProjectState::task_rows`); a snapshot carries
    /// every task changed since the previous one.
    pub drilldown_tasks: BTreeSet<String>,
    /// The `drilldown_tasks` that have no drill-down row yet.
    pub drilldown_fresh: BTreeSet<String>,
    /// The `drilldown_tasks` that have an arrival row but no integration rows yet.
    pub drilldown_fresh_marks: BTreeSet<String>,
    /// Metrics whose drill-down rows are replaced wholesale (snapshot-time metrics).
    pub drilldown_replace: Option<(Vec<String>, DrilldownRows)>,
    /// Poison events, by seq.
    pub quarantine: BTreeMap<i64, QuarantinedEvent>,
    /// A new summary snapshot.
    pub summary: Option<SummaryRow>,
    /// The last seq this delta covers.
    pub last_seq: Option<i64>,
    /// Level points (and WIP/blocked breakdown levels) to delete before `trend_set` is
    /// written: per grain, buckets from the first instant (inclusive) to the second
    /// (exclusive; `None`: no end). Event time passing a stretch with no change deletes what
    /// snapshots wrote there; a late event deletes from its time on, and the re-fold writes
    /// those buckets again.
    pub level_clear: Vec<(Grain, DateTime<Utc>, Option<DateTime<Utc>>)>,
    /// A late event re-folded entities: rows may exist for any of them.
    pub rewound: bool,
    /// The count contribution of every task this delta touched, as it was before
    /// (`None`: the task did not exist).
    pub contributions_before:
        std::collections::HashMap<String, Option<super::contrib::Contribution>>,
    /// Tasks whose attempts changed: their attempt counts are recounted.
    pub attempt_tasks: BTreeSet<String>,
    /// Changes, deployments and incidents whose rows must be written.
    pub dora: BTreeSet<(super::dora::DoraKind, String)>,
}

impl Delta {
    /// Adds to a count point.
    pub fn add_trend(&mut self, key: TrendKey, value: f64, samples: i64) {
        let entry = self.trend_add.entry(key).or_insert(TrendValue {
            value: Some(0.0),
            sample_size: 0,
            detail: serde_json::Value::Object(Default::default()),
        });
        entry.value = Some(entry.value.unwrap_or(0.0) + value);
        entry.sample_size += samples;
    }

    /// Adds to a breakdown count or sum.
    pub fn add_breakdown(&mut self, key: BreakdownKey, value: f64, samples: i64) {
        let entry = self.breakdown_add.entry(key).or_insert(BreakdownValue {
            value: 0.0,
            sample_size: 0,
        });
        entry.value += value;
        entry.sample_size += samples;
    }

    /// Adds `n` (may be negative) to a data-quality issue's count.
    pub fn data_quality_by(&mut self, issue: &str, n: i64) {
        *self.data_quality.entry(issue.to_owned()).or_default() += n;
    }

    /// Notes a task's count contribution before its first change in this delta.
    pub fn note_task(&mut self, id: &str, task: Option<&TaskFacts>) {
        if !self.contributions_before.contains_key(id) {
            self.contributions_before
                .insert(id.to_owned(), task.map(super::contrib::Contribution::of));
        }
    }
}

/// The whole read model of one project, as plain data.
#[derive(Debug, Default, PartialEq)]
pub struct ReadModel {
    /// `metrics_task`.
    pub tasks: BTreeMap<String, TaskFacts>,
    /// `metrics_gate`.
    pub gates: BTreeMap<String, GateFacts>,
    /// `metrics_integration_attempt`.
    pub attempts: BTreeMap<String, flowmeter_shared::metrics::AttemptFacts>,
    /// `metrics_milestone`.
    pub milestones: BTreeMap<String, MilestoneFacts>,
    /// `metrics_phase`.
    pub phases: BTreeMap<String, PhaseFacts>,
    /// `metrics_state_transition_counter`.
    pub transitions: BTreeMap<String, i64>,
    /// `metrics_data_quality_counter`.
    pub data_quality: BTreeMap<String, i64>,
    /// `metrics_trend_point`.
    pub trend: BTreeMap<TrendKey, TrendValue>,
    /// `metrics_breakdown_point`.
    pub breakdown: BTreeMap<BreakdownKey, BreakdownValue>,
    /// `metrics_drilldown`.
    pub drilldown: BTreeMap<(String, String), DrilldownRow>,
    /// `metrics_event_quarantine`.
    pub quarantine: BTreeMap<i64, QuarantinedEvent>,
    /// The latest `metrics_summary` row.
    pub summary: Option<SummaryRow>,
    /// `metrics_change`, `metrics_deployment`, `metrics_incident`.
    pub dora: flowmeter_shared::metrics::dora::DoraFacts,
}

impl ReadModel {
    /// Applies a delta exactly as the database sink does.
    pub fn apply(&mut self, state: &ProjectState, delta: &Delta) {
        for id in &delta.tasks {
            if let Some(task) = state.task(id) {
                self.tasks.insert(id.clone(), task.clone());
            }
        }
        for id in &delta.gates {
            if let Some(gate) = state.gate(id) {
                self.gates.insert(id.clone(), gate.clone());
            }
        }
        for id in &delta.attempts {
            if let Some(attempt) = state.attempt(id) {
                self.attempts.insert(id.clone(), attempt.clone());
            }
        }
        for id in &delta.milestones {
            if let Some(milestone) = state.milestone(id) {
                self.milestones.insert(id.clone(), milestone.clone());
            }
        }
        for id in &delta.phases {
            if let Some(phase) = state.phases.get(id) {
                self.phases.insert(id.clone(), phase.clone());
            }
        }
        for (state_name, n) in &delta.transitions {
            *self.transitions.entry(state_name.clone()).or_default() += n;
        }
        for (issue, n) in &delta.data_quality {
            let count = self.data_quality.entry(issue.clone()).or_default();
            *count += n;
            if *count == 0 {
                self.data_quality.remove(issue);
            }
        }
        for (key, add) in &delta.trend_add {
            let entry = self.trend.entry(key.clone()).or_insert(TrendValue {
                value: Some(0.0),
                sample_size: 0,
                detail: add.detail.clone(),
            });
            entry.value = Some(entry.value.unwrap_or(0.0) + add.value.unwrap_or(0.0));
            entry.sample_size += add.sample_size;
            if entry.sample_size == 0 {
                self.trend.remove(key);
            }
        }
        for (grain, from, to) in &delta.level_clear {
            let cleared = |grain_of: Grain, bucket: DateTime<Utc>| {
                grain_of == *grain && bucket >= *from && to.is_none_or(|to| bucket < to)
            };
            self.trend.retain(|key, _| {
                !(LEVEL_METRICS.contains(&key.metric.as_str()) && cleared(key.grain, key.bucket))
            });
            if *grain == Grain::Day {
                self.breakdown.retain(|key, _| {
                    !(BREAKDOWN_LEVEL_METRICS.contains(&key.metric.as_str())
                        && cleared(Grain::Day, Grain::Day.bucket_of_day(key.day)))
                });
            }
        }
        for (metric, grain, bucket) in &delta.trend_replace_dims {
            self.trend.retain(|key, _| {
                !(key.dims.is_some()
                    && key.metric == *metric
                    && key.grain == *grain
                    && key.bucket == *bucket)
            });
        }
        for (key, value) in &delta.trend_set {
            self.trend.insert(key.clone(), value.clone());
        }
        for (key, add) in &delta.breakdown_add {
            let entry = self.breakdown.entry(key.clone()).or_insert(BreakdownValue {
                value: 0.0,
                sample_size: 0,
            });
            entry.value += add.value;
            entry.sample_size += add.sample_size;
            if entry.sample_size == 0 {
                self.breakdown.remove(key);
            }
        }
        for (metric, day) in &delta.breakdown_replace {
            self.breakdown
                .retain(|key, _| !(key.metric == *metric && key.day == *day));
        }
        for (key, value) in &delta.breakdown_set {
            self.breakdown.insert(key.clone(), *value);
        }
        for id in &delta.drilldown_tasks {
            for (metric, row) in state.task_rows(id) {
                self.drilldown.insert((metric.to_owned(), id.clone()), row);
            }
        }
        if let Some((metrics, rows)) = &delta.drilldown_replace {
            self.drilldown
                .retain(|(metric, _), _| !metrics.contains(metric));
            for (key, row) in rows {
                self.drilldown.insert(key.clone(), row.clone());
            }
        }
        for (seq, event) in &delta.quarantine {
            self.quarantine.insert(*seq, event.clone());
        }
        super::dora::copy_rows(&state.dora, &delta.dora, &mut self.dora);
        if let Some(summary) = &delta.summary {
            self.summary = Some(summary.clone());
        }
    }

    /// Drops trend and breakdown points older than the retention cut-off, as the batch
    /// run does in the database.
    pub fn apply_retention(&mut self, cutoff: DateTime<Utc>) {
        // A level series keeps its latest point before the cut-off: readers carry it
        // forward into the retained range.
        let mut kept: BTreeMap<(String, Grain, Option<Dims>), DateTime<Utc>> = BTreeMap::new();
        for key in self.trend.keys() {
            if key.bucket < cutoff && LEVEL_METRICS.contains(&key.metric.as_str()) {
                let latest = kept
                    .entry((key.metric.clone(), key.grain, key.dims.clone()))
                    .or_insert(key.bucket);
                *latest = (*latest).max(key.bucket);
            }
        }
        self.trend.retain(|key, _| {
            key.bucket >= cutoff
                || kept
                    .get(&(key.metric.clone(), key.grain, key.dims.clone()))
                    .is_some_and(|latest| *latest == key.bucket)
        });
        let day = cutoff.date_naive();
        self.breakdown.retain(|key, _| key.day >= day);
        let tasks = &self.tasks;
        self.drilldown.retain(|(_, task_id), _| {
            tasks
                .get(task_id)
                .and_then(|t| t.terminal_at)
                .is_none_or(|at| at >= cutoff)
        });
    }

    /// Compares two models table by table: rows compared per table and every difference.
    pub fn diff(&self, stored: &ReadModel) -> (BTreeMap<&'static str, usize>, Vec<String>) {
        let mut compared = BTreeMap::new();
        let mut out = Vec::new();
        compare(
            "metrics_task",
            &self.tasks,
            &stored.tasks,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_gate",
            &self.gates,
            &stored.gates,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_integration_attempt",
            &self.attempts,
            &stored.attempts,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_milestone",
            &self.milestones,
            &stored.milestones,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_phase",
            &self.phases,
            &stored.phases,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_state_transition_counter",
            &self.transitions,
            &stored.transitions,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_data_quality_counter",
            &self.data_quality,
            &stored.data_quality,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_trend_point",
            &self.trend,
            &stored.trend,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_breakdown_point",
            &self.breakdown,
            &stored.breakdown,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_drilldown",
            &self.drilldown,
            &stored.drilldown,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_event_quarantine",
            &self.quarantine,
            &stored.quarantine,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_change",
            &self.dora.changes,
            &stored.dora.changes,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_deployment",
            &self.dora.deployments,
            &stored.dora.deployments,
            &mut compared,
            &mut out,
        );
        compare(
            "metrics_incident",
            &self.dora.incidents,
            &stored.dora.incidents,
            &mut compared,
            &mut out,
        );
        compared.insert("metrics_summary", usize::from(self.summary.is_some()));
        if self.summary != stored.summary {
            out.push(format!(
                "metrics_summary: expected {} but stored {}",
                serde_json::to_string(&self.summary).unwrap_or_default(),
                serde_json::to_string(&stored.summary).unwrap_or_default()
            ));
        }
        (compared, out)
    }
}

fn compare<K: Ord + std::fmt::Debug, V: PartialEq + std::fmt::Debug>(
    table: &'static str,
    expected: &BTreeMap<K, V>,
    stored: &BTreeMap<K, V>,
    compared: &mut BTreeMap<&'static str, usize>,
    out: &mut Vec<String>,
) {
    compared.insert(table, expected.len().max(stored.len()));
    for (key, value) in expected {
        match stored.get(key) {
            None => out.push(format!("{table}: missing {key:?} (expected {value:?})")),
            Some(found) if found != value => out.push(format!(
                "{table}: {key:?} expected {value:?} but stored {found:?}"
            )),
            Some(_) => {}
        }
    }
    for (key, value) in stored {
        if !expected.contains_key(key) {
            out.push(format!("{table}: unexpected {key:?} = {value:?}"));
        }
    }
}
