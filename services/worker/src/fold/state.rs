//! One project's fold state in memory: the facts every formula reads, indexes by entity id,
//! the event-time bucket cursors, and derived caches (current state counts, WIP/blocked per
//! dimension, the integrated-task index) that make bucket closes cheap. Every change to a
//! task goes through [`ProjectState::update_task`], which removes the task's contribution to
//! the caches, applies the change and adds it back, so the caches cannot drift.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use flowmeter_shared::metrics::{
    AttemptFacts, AttemptResult, GateFacts, MilestoneFacts, ProjectFacts, TaskFacts, TaskState,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::model::Delta;
use super::model::{Dims, PhaseFacts, BREAKDOWN_DIMENSIONS};
use super::reliability::FinishedAttempts;
use flowmeter_shared::read_model::Grain;

/// A map from entity id to its position: looked up for nearly every event, so it hashes with a
/// fast hasher (ids come from authenticated producers).
pub(super) type IdMap<V> = HashMap<String, V, foldhash::fast::RandomState>;

/// WIP and blocked counts of a group of tasks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCount {
    /// Tasks in WIP states.
    pub wip: i64,
    /// Tasks blocked.
    pub blocked: i64,
}

impl LevelCount {
    fn add(&mut self, task: &TaskFacts, sign: i64) {
        if task.state.is_wip() {
            self.wip += sign;
        }
        if task.state == TaskState::Blocked {
            self.blocked += sign;
        }
    }

    fn is_zero(self) -> bool {
        self.wip == 0 && self.blocked == 0
    }
}

/// Durations of an integrated task, indexed by integration time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntegratedSample {
    /// Cycle time in seconds, when the task was claimed.
    pub cycle_seconds: Option<f64>,
    /// Lead time in seconds.
    pub lead_seconds: f64,
    /// Seconds per state over the task's closed stays (what FES sums).
    pub time_in_state_seconds: flowmeter_shared::metrics::PerState<f64>,
}

/// Event-time cursors carried between batches (stored in the checkpoint's `fold_state`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursors {
    /// The open (not yet closed) bucket per grain.
    pub open: BTreeMap<Grain, DateTime<Utc>>,
    /// The event-time horizon: the latest `occurred_at` folded. An event older than it is
    /// late and makes the fold revise history from its time on.
    #[serde(default)]
    pub horizon: Option<DateTime<Utc>>,
}

/// How long a fact counts in the trailing windows of the level metrics (SPEC §4): 30 days
/// for the duration percentiles, CTS, BRR, FES and IRS, 90 days for schedule reliability.
/// A level value can change only at an event or when a fact leaves one of these windows.
pub const EXPIRY_WINDOWS_DAYS: [i64; 2] = [30, 90];

/// The hours in which a task's facts lie that leave trailing windows later: integration,
/// terminal time, and the ends of blocked stays.
fn task_fact_hours(task: &TaskFacts) -> impl Iterator<Item = DateTime<Utc>> + '_ {
    task.integrated_at
        .into_iter()
        .chain(task.terminal_at)
        .chain(task.blocked_episodes.iter().filter_map(|e| e.ended_at))
        .map(|at| Grain::Hour.bucket(at))
}

/// A project's fold state.
#[derive(Debug, Clone)]
pub struct ProjectState {
    /// The project.
    pub project_id: Uuid,
    /// Tasks, gates, attempts and milestones for the formulas.
    pub facts: ProjectFacts,
    /// Phases.
    pub phases: BTreeMap<String, PhaseFacts>,
    /// Event-time cursors.
    pub cursors: Cursors,
    pub(super) task_index: IdMap<usize>,
    pub(super) gate_index: IdMap<usize>,
    pub(super) attempt_index: IdMap<usize>,
    pub(super) milestone_index: IdMap<usize>,
    /// Tasks per current state.
    pub state_counts: [i64; 11],
    /// WIP/blocked per full dimension tuple.
    pub levels_by_dims: BTreeMap<Dims, LevelCount>,
    /// WIP/blocked per value of each breakdown dimension, in `BREAKDOWN_DIMENSIONS` order.
    pub levels_by_dimension: [BTreeMap<String, LevelCount>; 5],
    /// Integrated tasks by (integrated_at, task_id).
    pub integrated: BTreeMap<(DateTime<Utc>, String), IntegratedSample>,
    /// The durations of the integrated tasks in the last close's window, sorted.
    pub(super) durations: super::durations::Cache,
    /// Tasks changed since the last snapshot, whose drill-down rows the next snapshot
    /// writes. Loading from the projections restores it from `metrics_task.last_seq`.
    pub drilldown_pending: BTreeSet<String>,
    /// Which entities already have rows, so rows that cannot exist yet are written with a
    /// plain insert instead of an upsert (half the cost per row in PostgreSQL).
    pub stored: Stored,
    /// Hours holding facts that leave a trailing window later (a multiset: fact count per
    /// hour), so a stretch of event time without events closes only the buckets in which
    /// a value can change, never every empty bucket in between.
    pub fact_hours: BTreeMap<DateTime<Utc>, u32>,
    /// Finished attempts per task and by finish time, so a score point walks only the
    /// window's attempts.
    pub finished_attempts: FinishedAttempts,
    /// Resolved blocked stays by end time: (stays, stays of at most 48 h), for the blocker
    /// resolution rate over a window without a pass over every task.
    pub resolved_blocked: BTreeMap<DateTime<Utc>, (u32, u32)>,
    /// Per milestone, what its completion (`milestones::milestone_completion`) is read
    /// from, kept as its tasks change.
    pub milestone_tallies: HashMap<String, MilestoneTally>,
    /// Changes, deployments and incidents (the DORA keys' facts).
    pub dora: flowmeter_shared::metrics::dora::DoraFacts,
}

/// A milestone's tasks as its completion reads them: complete when none is open and one is
/// integrated, at the latest terminal time.
#[derive(Debug, Clone, Default)]
pub struct MilestoneTally {
    open: i64,
    integrated: i64,
    /// Terminal times of the terminal tasks (a multiset).
    terminal_at: BTreeMap<DateTime<Utc>, u32>,
}

impl MilestoneTally {
    fn add(&mut self, task: &TaskFacts, sign: i64) {
        self.integrated += sign * i64::from(task.state == TaskState::Integrated);
        let Some(at) = task.terminal_time() else {
            self.open += sign;
            return;
        };
        if sign > 0 {
            *self.terminal_at.entry(at).or_default() += 1;
        } else if let Some(n) = self.terminal_at.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.terminal_at.remove(&at);
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.open == 0 && self.terminal_at.is_empty()
    }

    /// When the milestone was completed, if it is.
    pub fn completed_at(&self) -> Option<DateTime<Utc>> {
        if self.open > 0 || self.integrated == 0 {
            return None;
        }
        self.terminal_at.keys().next_back().copied()
    }
}

/// Which of a project's entities already have rows in the database. Tasks, gates and
/// attempts are only ever appended to [`ProjectFacts`], so a prefix length says which may have
/// a row: a state loaded from the projections starts with all of them, an empty state (a
/// new project, a rebuild after its delete) with none. The marks move when a delta is made,
/// which then names its fresh rows; a delta is always written in the run's transaction, and
/// a failed transaction drops the whole state, so a mark never claims a row that is not there
/// (the other way round only costs an upsert).
#[derive(Debug, Clone, Default)]
pub struct Stored {
    /// Leading `facts.tasks` that may have a `metrics_task` row.
    pub tasks: usize,
    /// Leading `facts.gates` that may have a `metrics_gate` row.
    pub gates: usize,
    /// Leading `facts.attempts` that may have a `metrics_integration_attempt` row.
    pub attempts: usize,
    /// Leading `facts.tasks` that may have drill-down rows.
    pub drilldown_tasks: usize,
    /// Tasks integrated for the first time since drill-down rows were last written: they
    /// have no throughput, cycle or lead time rows yet.
    pub integrated_since_drilldown: HashSet<String>,
    /// Which trend buckets have points.
    pub trend: TrendWritten,
    /// A late event re-folded entities since drill-down rows were last written: an entity
    /// taken out and folded again may be appended anew although its rows exist, so the next
    /// drill-down write upserts everything.
    pub rewound_since_drilldown: bool,
}

/// Which trend buckets have points, per metric and grain: every bucket up to the latest one
/// the event-time fold wrote, plus the buckets snapshots wrote beyond it (the wall clock's
/// open bucket, and the gap up to it when a snapshot fills it). A point in any other bucket
/// cannot exist yet.
#[derive(Debug, Clone, Default)]
pub struct TrendWritten {
    latest: HashMap<String, [Option<DateTime<Utc>>; 4]>,
    beyond: HashMap<String, BTreeSet<(Grain, DateTime<Utc>)>>,
}

/// More buckets than this written by snapshots beyond event time are folded into `latest`
/// (every bucket up to the newest then counts as written), which bounds the memory.
const MAX_BEYOND: usize = 4096;

fn grain_index(grain: Grain) -> usize {
    match grain {
        Grain::Hour => 0,
        Grain::Day => 1,
        Grain::Week => 2,
        Grain::Month => 3,
    }
}

impl TrendWritten {
    /// Whether the point may already exist.
    pub fn may_exist(&self, metric: &str, grain: Grain, bucket: DateTime<Utc>) -> bool {
        self.latest
            .get(metric)
            .and_then(|l| l[grain_index(grain)])
            .is_some_and(|latest| bucket <= latest)
            || self
                .beyond
                .get(metric)
                .is_some_and(|b| b.contains(&(grain, bucket)))
    }

    /// Records a point of the event-time fold (`beyond = false`) or of a snapshot.
    fn record(&mut self, metric: &str, grain: Grain, bucket: DateTime<Utc>, beyond: bool) {
        if !self.latest.contains_key(metric) {
            self.latest.insert(metric.to_owned(), [None; 4]);
        }
        let Some(latest) = self.latest.get_mut(metric) else {
            return;
        };
        let latest = &mut latest[grain_index(grain)];
        if latest.is_some_and(|l| bucket <= l) {
            return;
        }
        if !beyond {
            *latest = Some(bucket);
            if let Some(b) = self.beyond.get_mut(metric) {
                b.retain(|(g, at)| *g != grain || *at > bucket);
            }
            return;
        }
        if !self.beyond.contains_key(metric) {
            self.beyond.insert(metric.to_owned(), BTreeSet::new());
        }
        if let Some(b) = self.beyond.get_mut(metric) {
            b.insert((grain, bucket));
        }
    }

    /// Bounds the memory of `beyond` (see [`MAX_BEYOND`]).
    fn compact(&mut self) {
        if self.beyond.values().map(BTreeSet::len).sum::<usize>() <= MAX_BEYOND {
            return;
        }
        for (metric, buckets) in std::mem::take(&mut self.beyond) {
            for (grain, bucket) in buckets {
                self.record(&metric, grain, bucket, false);
            }
        }
    }

    /// From the latest bucket of each (metric, grain) in the table.
    pub fn from_latest(rows: impl Iterator<Item = (String, Grain, DateTime<Utc>)>) -> Self {
        let mut written = Self::default();
        for (metric, grain, bucket) in rows {
            written.record(&metric, grain, bucket, false);
        }
        written
    }
}

/// The value of one breakdown dimension for a task ("" when it has none), borrowed.
pub fn dimension_str<'a>(task: &'a TaskFacts, dimension: &str) -> &'a str {
    match dimension {
        "phase" => task.phase_id.as_deref(),
        "milestone" => task.milestone_id.as_deref(),
        "assignee" => task.assignee.as_deref(),
        "task_class" => task.task_class.as_deref(),
        "state" => Some(task.state.as_str()),
        _ => None,
    }
    .unwrap_or_default()
}

/// The value of one breakdown dimension for a task ("" when it has none).
pub fn dimension_value(task: &TaskFacts, dimension: &str) -> String {
    dimension_str(task, dimension).to_owned()
}

impl ProjectState {
    /// An empty project.
    pub fn new(project_id: Uuid) -> Self {
        Self::from_parts(
            project_id,
            ProjectFacts::default(),
            BTreeMap::new(),
            Cursors::default(),
        )
    }

    /// A project rebuilt from stored projections.
    pub fn from_parts(
        project_id: Uuid,
        facts: ProjectFacts,
        phases: BTreeMap<String, PhaseFacts>,
        cursors: Cursors,
    ) -> Self {
        let mut state = Self {
            project_id,
            facts,
            phases,
            cursors,
            task_index: IdMap::default(),
            gate_index: IdMap::default(),
            attempt_index: IdMap::default(),
            milestone_index: IdMap::default(),
            state_counts: [0; 11],
            levels_by_dims: BTreeMap::new(),
            levels_by_dimension: Default::default(),
            integrated: BTreeMap::new(),
            durations: Default::default(),
            drilldown_pending: BTreeSet::new(),
            stored: Stored::default(),
            fact_hours: BTreeMap::new(),
            finished_attempts: FinishedAttempts::default(),
            resolved_blocked: BTreeMap::new(),
            milestone_tallies: HashMap::new(),
            dora: Default::default(),
        };
        state.stored.tasks = state.facts.tasks.len();
        state.stored.gates = state.facts.gates.len();
        state.stored.attempts = state.facts.attempts.len();
        state.stored.drilldown_tasks = state.facts.tasks.len();
        for (i, task) in state.facts.tasks.iter().enumerate() {
            state.task_index.insert(task.task_id.clone(), i);
        }
        for (i, gate) in state.facts.gates.iter().enumerate() {
            state.gate_index.insert(gate.gate_id.clone(), i);
        }
        for (i, attempt) in state.facts.attempts.iter().enumerate() {
            state.attempt_index.insert(attempt.attempt_id.clone(), i);
        }
        for (i, milestone) in state.facts.milestones.iter().enumerate() {
            state
                .milestone_index
                .insert(milestone.milestone_id.clone(), i);
        }
        for i in 0..state.facts.tasks.len() {
            state.index_task(i, 1);
        }
        for i in 0..state.facts.attempts.len() {
            state.index_attempt(i, 1);
        }
        state
    }

    /// Moves the tasks, gates and attempts of `delta` that have no row yet into its
    /// `fresh_*` sets, and records that all of them will have one once it is written.
    pub fn mark_fresh_projections(&mut self, delta: &mut Delta) {
        if delta.rewound {
            // Entities taken out and folded again were appended anew: any may have a row.
            self.stored.tasks = self.facts.tasks.len();
            self.stored.gates = self.facts.gates.len();
            self.stored.attempts = self.facts.attempts.len();
            return;
        }
        let fresh = |index: &IdMap<usize>, stored: usize, ids: &BTreeSet<String>| {
            ids.iter()
                .filter(|id| index.get(id.as_str()).is_some_and(|&i| i >= stored))
                .cloned()
                .collect::<BTreeSet<String>>()
        };
        delta.fresh_tasks = fresh(&self.task_index, self.stored.tasks, &delta.tasks);
        delta.fresh_gates = fresh(&self.gate_index, self.stored.gates, &delta.gates);
        delta.fresh_attempts = fresh(&self.attempt_index, self.stored.attempts, &delta.attempts);
        self.stored.tasks = self.facts.tasks.len();
        self.stored.gates = self.facts.gates.len();
        self.stored.attempts = self.facts.attempts.len();
    }

    /// Gives `delta` the trend buckets written before it (its points elsewhere are fresh),
    /// and records its own points as written: a snapshot's (`snapshot`) as beyond event time.
    pub fn mark_fresh_trend(&mut self, delta: &mut Delta, snapshot: bool) {
        delta.trend_written = Some(self.stored.trend.clone());
        for key in delta.trend_add.keys().chain(delta.trend_set.keys()) {
            self.stored
                .trend
                .record(&key.metric, key.grain, key.bucket, snapshot);
        }
        self.stored.trend.compact();
    }

    /// For the drill-down rows of `delta.drilldown_tasks` (every task changed since the
    /// previous snapshot): which tasks have none yet, and which have no integration rows
    /// yet; then records that all of them will exist once `delta` is written.
    pub fn mark_fresh_drilldown(&mut self, delta: &mut Delta) {
        let rewound = std::mem::take(&mut self.stored.rewound_since_drilldown);
        for id in delta.drilldown_tasks.iter().filter(|_| !rewound) {
            match self.task_index.get(id.as_str()) {
                Some(&i) if i >= self.stored.drilldown_tasks => {
                    delta.drilldown_fresh.insert(id.clone());
                }
                Some(_) if self.stored.integrated_since_drilldown.contains(id) => {
                    delta.drilldown_fresh_marks.insert(id.clone());
                }
                _ => {}
            }
        }
        self.stored.drilldown_tasks = self.facts.tasks.len();
        self.stored.integrated_since_drilldown.clear();
    }

    /// A task by id.
    pub fn task(&self, id: &str) -> Option<&TaskFacts> {
        self.task_index.get(id).map(|&i| &self.facts.tasks[i])
    }

    /// A gate by id.
    pub fn gate(&self, id: &str) -> Option<&GateFacts> {
        self.gate_index.get(id).map(|&i| &self.facts.gates[i])
    }

    /// An attempt by id.
    pub fn attempt(&self, id: &str) -> Option<&AttemptFacts> {
        self.attempt_index.get(id).map(|&i| &self.facts.attempts[i])
    }

    /// A milestone by id.
    pub fn milestone(&self, id: &str) -> Option<&MilestoneFacts> {
        self.milestone_index
            .get(id)
            .map(|&i| &self.facts.milestones[i])
    }

    /// Tasks in WIP states now.
    pub fn wip_count(&self) -> i64 {
        TaskState::ALL
            .iter()
            .filter(|s| s.is_wip())
            .map(|s| self.state_counts[s.index()])
            .sum()
    }

    /// Tasks blocked now.
    pub fn blocked_count(&self) -> i64 {
        self.state_counts[TaskState::Blocked.index()]
    }

    /// Adds (`sign` = 1) or removes (−1) hours of facts that leave trailing windows.
    fn index_fact_hours(
        fact_hours: &mut BTreeMap<DateTime<Utc>, u32>,
        hours: impl Iterator<Item = DateTime<Utc>>,
        sign: i64,
    ) {
        for hour in hours {
            if sign > 0 {
                *fact_hours.entry(hour).or_default() += 1;
            } else if let Some(n) = fact_hours.get_mut(&hour) {
                *n -= 1;
                if *n == 0 {
                    fact_hours.remove(&hour);
                }
            }
        }
    }

    /// Adds (`sign` = 1) or removes (−1) an attempt's contribution to the derived caches.
    pub(super) fn index_attempt(&mut self, i: usize, sign: i64) {
        let attempt = &self.facts.attempts[i];
        let hours = attempt.finished_at.map(|at| Grain::Hour.bucket(at));
        Self::index_fact_hours(&mut self.fact_hours, hours.into_iter(), sign);
        if let (Some(at), Some(result)) = (attempt.finished_at, attempt.result) {
            let rank = AttemptResult::ALL
                .iter()
                .position(|r| *r == result)
                .unwrap_or_default() as u8;
            let key = (
                attempt.task_id.clone(),
                at,
                attempt.attempt_number,
                attempt.attempt_id.clone(),
                rank,
            );
            if sign > 0 {
                self.finished_attempts.insert(key);
            } else {
                self.finished_attempts.remove(&key);
            }
        }
    }

    /// Adds (`sign` = 1) or removes (−1) a task's contribution to the derived caches.
    pub(super) fn index_task(&mut self, i: usize, sign: i64) {
        let task = &self.facts.tasks[i];
        Self::index_fact_hours(&mut self.fact_hours, task_fact_hours(task), sign);
        if let Some(milestone) = &task.milestone_id {
            // Look up before inserting: a key is only built (allocated) for a new entry.
            if let Some(tally) = self.milestone_tallies.get_mut(milestone) {
                tally.add(task, sign);
                if tally.is_empty() {
                    self.milestone_tallies.remove(milestone);
                }
            } else {
                let mut tally = MilestoneTally::default();
                tally.add(task, sign);
                self.milestone_tallies.insert(milestone.clone(), tally);
            }
        }
        let quick_seconds =
            flowmeter_shared::metrics::predictability::BRR_MAX_EPISODE.num_seconds() as f64;
        for episode in &task.blocked_episodes {
            let (Some(ended_at), Some(seconds)) =
                (episode.ended_at, episode.resolved_duration_seconds())
            else {
                continue;
            };
            let quick = u32::from(seconds <= quick_seconds);
            if sign > 0 {
                let entry = self.resolved_blocked.entry(ended_at).or_default();
                entry.0 += 1;
                entry.1 += quick;
            } else if let Some(entry) = self.resolved_blocked.get_mut(&ended_at) {
                entry.0 -= 1;
                entry.1 -= quick;
                if entry.0 == 0 {
                    self.resolved_blocked.remove(&ended_at);
                }
            }
        }
        self.state_counts[task.state.index()] += sign;
        if task.state.is_wip() {
            // Look up before inserting: a key is only built (allocated) for a new entry.
            let dims = Dims::of(task);
            if let Some(entry) = self.levels_by_dims.get_mut(&dims) {
                entry.add(task, sign);
                if entry.is_zero() {
                    self.levels_by_dims.remove(&dims);
                }
            } else {
                let mut entry = LevelCount::default();
                entry.add(task, sign);
                self.levels_by_dims.insert(dims, entry);
            }
            for (values, dimension) in self
                .levels_by_dimension
                .iter_mut()
                .zip(BREAKDOWN_DIMENSIONS)
            {
                let value = dimension_str(task, dimension);
                if let Some(entry) = values.get_mut(value) {
                    entry.add(task, sign);
                    if entry.is_zero() {
                        values.remove(value);
                    }
                } else {
                    let mut entry = LevelCount::default();
                    entry.add(task, sign);
                    values.insert(value.to_owned(), entry);
                }
            }
        }
        if let Some(integrated_at) = task.integrated_at {
            let key = (integrated_at, task.task_id.clone());
            if sign > 0 {
                let sample = IntegratedSample {
                    cycle_seconds: task.cycle_time_seconds(),
                    lead_seconds: task.lead_time_seconds().unwrap_or(0.0),
                    time_in_state_seconds: task.time_in_state_seconds,
                };
                self.durations.get_mut().note(integrated_at, &sample, 1);
                self.integrated.insert(key, sample);
            } else if let Some(sample) = self.integrated.remove(&key) {
                self.durations.get_mut().note(integrated_at, &sample, -1);
            }
        }
    }

    /// Creates a task; returns false when it already exists.
    pub fn insert_task(&mut self, task: TaskFacts) -> bool {
        if self.task_index.contains_key(&task.task_id) {
            return false;
        }
        let i = self.facts.tasks.len();
        self.task_index.insert(task.task_id.clone(), i);
        self.facts.tasks.push(task);
        self.index_task(i, 1);
        true
    }

    /// Changes a task, keeping every derived cache consistent.
    pub fn update_task<R>(
        &mut self,
        id: &str,
        change: impl FnOnce(&mut TaskFacts) -> R,
    ) -> Option<R> {
        let i = *self.task_index.get(id)?;
        self.index_task(i, -1);
        let result = change(&mut self.facts.tasks[i]);
        self.index_task(i, 1);
        Some(result)
    }

    /// The gate with this id, created empty for `task_id` when unknown.
    pub fn gate_mut(&mut self, id: &str, task_id: &str) -> &mut GateFacts {
        let i = match self.gate_index.get(id) {
            Some(&i) => i,
            None => {
                self.facts.gates.push(GateFacts {
                    gate_id: id.to_owned(),
                    task_id: task_id.to_owned(),
                    gate_type: None,
                    reviewer: None,
                    requested_at: None,
                    decided_at: None,
                    outcome: None,
                    sla_hours: None,
                });
                self.gate_index
                    .insert(id.to_owned(), self.facts.gates.len() - 1);
                self.facts.gates.len() - 1
            }
        };
        &mut self.facts.gates[i]
    }

    /// Changes the attempt with this id (created empty for `task_id` when unknown), keeping
    /// the derived caches consistent.
    pub fn update_attempt(
        &mut self,
        id: &str,
        task_id: &str,
        change: impl FnOnce(&mut AttemptFacts),
    ) {
        let i = self.attempt_position(id, task_id);
        self.index_attempt(i, -1);
        change(&mut self.facts.attempts[i]);
        self.index_attempt(i, 1);
    }

    fn attempt_position(&mut self, id: &str, task_id: &str) -> usize {
        match self.attempt_index.get(id) {
            Some(&i) => i,
            None => {
                self.facts.attempts.push(AttemptFacts {
                    attempt_id: id.to_owned(),
                    task_id: task_id.to_owned(),
                    attempt_number: None,
                    started_at: None,
                    finished_at: None,
                    result: None,
                });
                let i = self.facts.attempts.len() - 1;
                self.attempt_index.insert(id.to_owned(), i);
                self.index_attempt(i, 1);
                i
            }
        }
    }

    /// The milestone with this id, created at `at` when unknown.
    pub fn milestone_mut(&mut self, id: &str, at: DateTime<Utc>) -> &mut MilestoneFacts {
        let i = match self.milestone_index.get(id) {
            Some(&i) => i,
            None => {
                self.facts.milestones.push(MilestoneFacts {
                    milestone_id: id.to_owned(),
                    name: None,
                    phase_id: None,
                    sequence: None,
                    planned_start_at: None,
                    due_at: None,
                    created_at: at,
                });
                self.milestone_index
                    .insert(id.to_owned(), self.facts.milestones.len() - 1);
                self.facts.milestones.len() - 1
            }
        };
        &mut self.facts.milestones[i]
    }
}
