//! Plain per-project facts, as of one point in time, that every formula reads. The fold
//! produces them from events (and stores them in the `metrics_*` projections); `verify`
//! rebuilds them in memory from the raw log. All timestamps are event `occurred_at` times in
//! UTC; all durations are seconds.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use std::str::FromStr;

use super::state::{ParseEnumError, PerState, TaskState};
use super::time::{in_window, opt_in_window, seconds_between};

/// One blocked stay of a task: entered `blocked` at `started_at`, left it at `ended_at`
/// (`None` while the task is still blocked). A stay ends with any transition out of blocked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlockedEpisode {
    /// When the task entered `blocked`.
    pub started_at: DateTime<Utc>,
    /// When the task left `blocked`; `None` while still blocked.
    pub ended_at: Option<DateTime<Utc>>,
}

impl BlockedEpisode {
    /// Length of a resolved episode in seconds (clamped at 0); `None` while still open.
    pub fn resolved_duration_seconds(&self) -> Option<f64> {
        self.ended_at
            .map(|end| seconds_between(self.started_at, end))
    }
}

/// One task as of a point in time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TaskFacts {
    /// The task's `entity_id`.
    pub task_id: String,
    /// Title; `None` for an inferred task that never had a `task_created`.
    pub title: Option<String>,
    /// Phase the task belongs to.
    pub phase_id: Option<String>,
    /// Milestone the task belongs to (milestone completion, health and throughput grouping).
    pub milestone_id: Option<String>,
    /// Assignee.
    pub assignee: Option<String>,
    /// Free-form class (e.g. `feature`, `bug`).
    pub task_class: Option<String>,
    /// Priority; lower is more urgent.
    pub priority: Option<i64>,
    /// Current state.
    pub state: TaskState,
    /// True when the task was created by a transition for an unknown task (SPEC §3.1).
    pub inferred: bool,
    /// `task_created` time, or the first transition's time for an inferred task.
    pub created_at: DateTime<Utc>,
    /// First entry into `claimed` or `in_progress`; `None` if never claimed.
    pub claimed_at: Option<DateTime<Utc>>,
    /// Last entry into `implemented`.
    pub implemented_at: Option<DateTime<Utc>>,
    /// Entry into `integrated` (the latest one if the task was ever re-integrated); `None`
    /// if never integrated. A task with this set counts as "integrated" in every formula.
    pub integrated_at: Option<DateTime<Utc>>,
    /// Entry into the current terminal state; `None` while the task is not terminal.
    pub terminal_at: Option<DateTime<Utc>>,
    /// When the current state was entered (start of the open stay).
    pub state_entered_at: DateTime<Utc>,
    /// Start of the current blocked stay; `Some` exactly while the task is blocked.
    pub blocked_since: Option<DateTime<Utc>>,
    /// Seconds spent in each state over **closed** stays only; the open stay in `state`
    /// (since `state_entered_at`) is not included. See [`TaskFacts::time_in_state_as_of`].
    pub time_in_state_seconds: PerState<f64>,
    /// Every blocked stay, oldest first, including the open one.
    pub blocked_episodes: Vec<BlockedEpisode>,
    /// Integration attempts started or finished for this task (for contributing factors).
    pub integration_attempts: u32,
    /// Finished attempts whose result was not `success` (conflict, failed_checks, aborted).
    pub integration_failures: u32,
    /// Transitions whose `from_state` disagreed with the state the task had at that point
    /// of its history (a data-quality finding, counted per task).
    #[serde(default)]
    pub from_state_mismatches: u32,
    /// True when the task's history (in event time) starts with a transition rather than
    /// its `task_created` (a data-quality finding; `inferred` clears when the creation
    /// arrives, this stays).
    #[serde(default)]
    pub inferred_start: bool,
}

impl TaskFacts {
    /// A fresh task in `backlog` created at `created_at`, with nothing else known. The fold
    /// starts here and applies events; tests use it with struct-update syntax.
    pub fn new(task_id: impl Into<String>, created_at: DateTime<Utc>) -> Self {
        TaskFacts {
            task_id: task_id.into(),
            title: None,
            phase_id: None,
            milestone_id: None,
            assignee: None,
            task_class: None,
            priority: None,
            state: TaskState::Backlog,
            inferred: false,
            created_at,
            claimed_at: None,
            implemented_at: None,
            integrated_at: None,
            terminal_at: None,
            state_entered_at: created_at,
            blocked_since: None,
            time_in_state_seconds: PerState::default(),
            blocked_episodes: Vec::new(),
            integration_attempts: 0,
            integration_failures: 0,
            from_state_mismatches: 0,
            inferred_start: false,
        }
    }

    /// Seconds per state as of `now`: the closed stays plus the open stay in the current
    /// state (`now − state_entered_at`, clamped at 0).
    pub fn time_in_state_as_of(&self, now: DateTime<Utc>) -> PerState<f64> {
        let mut times = self.time_in_state_seconds;
        times.add(self.state, seconds_between(self.state_entered_at, now));
        times
    }

    /// True when the task's `integrated_at` lies in the window of length `window` ending at
    /// `now`.
    pub fn integrated_within(&self, now: DateTime<Utc>, window: TimeDelta) -> bool {
        opt_in_window(self.integrated_at, now, window)
    }

    /// Lead time (`integrated_at − created_at`) in seconds; `None` if not integrated.
    pub fn lead_time_seconds(&self) -> Option<f64> {
        self.integrated_at
            .map(|integrated| seconds_between(self.created_at, integrated))
    }

    /// Cycle time (`integrated_at − claimed_at`) in seconds; `None` if not integrated or
    /// never claimed.
    pub fn cycle_time_seconds(&self) -> Option<f64> {
        Some(seconds_between(self.claimed_at?, self.integrated_at?))
    }

    /// When a terminal task became terminal: `terminal_at`, falling back to
    /// `state_entered_at` (the same instant for a consistent fold). `None` if not terminal.
    pub fn terminal_time(&self) -> Option<DateTime<Utc>> {
        self.state
            .is_terminal()
            .then(|| self.terminal_at.unwrap_or(self.state_entered_at))
    }

    /// Start of the age of a WIP task: `claimed_at`, or `created_at` if never claimed.
    pub fn wip_since(&self) -> DateTime<Utc> {
        self.claimed_at.unwrap_or(self.created_at)
    }

    /// Start of the current blocked stay: `blocked_since`, falling back to
    /// `state_entered_at`. Meaningful only while `state` is blocked.
    pub fn blocked_start(&self) -> DateTime<Utc> {
        self.blocked_since.unwrap_or(self.state_entered_at)
    }
}

/// Outcome of a gate decision (`gate_decision_recorded.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateOutcome {
    /// Approved.
    Approved,
    /// Rejected.
    Rejected,
    /// Approved while accepting a known risk.
    ApprovedWithRisk,
}

impl GateOutcome {
    /// Every outcome.
    pub const ALL: [GateOutcome; 3] = [
        GateOutcome::Approved,
        GateOutcome::Rejected,
        GateOutcome::ApprovedWithRisk,
    ];

    /// The snake_case name used in events.
    pub const fn as_str(self) -> &'static str {
        match self {
            GateOutcome::Approved => "approved",
            GateOutcome::Rejected => "rejected",
            GateOutcome::ApprovedWithRisk => "approved_with_risk",
        }
    }
}

impl FromStr for GateOutcome {
    type Err = ParseEnumError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        GateOutcome::ALL
            .into_iter()
            .find(|outcome| outcome.as_str() == value)
            .ok_or_else(|| ParseEnumError {
                kind: "gate outcome",
                value: value.to_owned(),
                allowed: GateOutcome::ALL.map(GateOutcome::as_str).join(", "),
            })
    }
}

/// One review or merge gate (matched request and decision by the gate's `entity_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateFacts {
    /// The gate's `entity_id`.
    pub gate_id: String,
    /// The task under review.
    pub task_id: String,
    /// `review_gate`, `merge_gate` or any other name.
    pub gate_type: Option<String>,
    /// Reviewer the gate was requested from.
    pub reviewer: Option<String>,
    /// `gate_requested` time; `None` for a decision without a request.
    pub requested_at: Option<DateTime<Utc>>,
    /// `gate_decision_recorded` time; `None` while pending.
    pub decided_at: Option<DateTime<Utc>>,
    /// Decision outcome; `None` while pending.
    pub outcome: Option<GateOutcome>,
    /// Review SLA in hours from the request; `None` means the default of 48 h.
    pub sla_hours: Option<f64>,
}

/// Result of a finished integration attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptResult {
    /// Merged.
    Success,
    /// Merge conflict.
    Conflict,
    /// Checks failed.
    FailedChecks,
    /// Attempt aborted.
    Aborted,
}

impl AttemptResult {
    /// Every result.
    pub const ALL: [AttemptResult; 4] = [
        AttemptResult::Success,
        AttemptResult::Conflict,
        AttemptResult::FailedChecks,
        AttemptResult::Aborted,
    ];

    /// The snake_case name used in events.
    pub const fn as_str(self) -> &'static str {
        match self {
            AttemptResult::Success => "success",
            AttemptResult::Conflict => "conflict",
            AttemptResult::FailedChecks => "failed_checks",
            AttemptResult::Aborted => "aborted",
        }
    }

    /// Every result that is not `success` counts as a failure (IRS recovery, retries).
    pub fn is_failure(self) -> bool {
        self != AttemptResult::Success
    }
}

impl FromStr for AttemptResult {
    type Err = ParseEnumError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        AttemptResult::ALL
            .into_iter()
            .find(|result| result.as_str() == value)
            .ok_or_else(|| ParseEnumError {
                kind: "integration result",
                value: value.to_owned(),
                allowed: AttemptResult::ALL.map(AttemptResult::as_str).join(", "),
            })
    }
}

/// One integration (merge) attempt (start and finish matched by the attempt's `entity_id`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptFacts {
    /// The attempt's `entity_id`.
    pub attempt_id: String,
    /// The task being integrated.
    pub task_id: String,
    /// Producer's attempt number, when given (tie-breaker for equal finish times).
    pub attempt_number: Option<i64>,
    /// `integration_attempt_started` time; `None` for a finish without a start.
    pub started_at: Option<DateTime<Utc>>,
    /// `integration_attempt_finished` time; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Result; `None` while running.
    pub result: Option<AttemptResult>,
}

impl AttemptFacts {
    /// `(finished_at, result)` when the attempt finished inside the window ending at `now`.
    pub fn finished_within(
        &self,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> Option<(DateTime<Utc>, AttemptResult)> {
        let finished_at = self.finished_at?;
        let result = self.result?;
        in_window(finished_at, now, window).then_some((finished_at, result))
    }
}

/// One milestone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MilestoneFacts {
    /// The milestone's `entity_id`.
    pub milestone_id: String,
    /// Name; `None` when only referenced by tasks and never upserted.
    pub name: Option<String>,
    /// Phase the milestone belongs to.
    pub phase_id: Option<String>,
    /// Ordering hint from `milestone_upserted.sequence`.
    pub sequence: Option<i64>,
    /// Planned start; the schedule-reliability grace period is measured from it.
    pub planned_start_at: Option<DateTime<Utc>>,
    /// Due date-time; `None` leaves the milestone out of SR and breach probability.
    pub due_at: Option<DateTime<Utc>>,
    /// When the milestone was first seen (first upsert or first task referencing it); the
    /// grace-period start when `planned_start_at` is absent.
    pub created_at: DateTime<Utc>,
}

/// Everything known about one project as of a point in time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProjectFacts {
    /// Every task.
    pub tasks: Vec<TaskFacts>,
    /// Every gate.
    pub gates: Vec<GateFacts>,
    /// Every integration attempt.
    pub attempts: Vec<AttemptFacts>,
    /// Every milestone.
    pub milestones: Vec<MilestoneFacts>,
}

impl ProjectFacts {
    /// Tasks whose `integrated_at` lies in the window of length `window` ending at `now`.
    pub fn tasks_integrated_within(
        &self,
        now: DateTime<Utc>,
        window: TimeDelta,
    ) -> impl Iterator<Item = &TaskFacts> {
        self.tasks
            .iter()
            .filter(move |task| task.integrated_within(now, window))
    }

    /// Tasks of one milestone.
    pub fn milestone_tasks<'a>(
        &'a self,
        milestone_id: &'a str,
    ) -> impl Iterator<Item = &'a TaskFacts> + 'a {
        self.tasks
            .iter()
            .filter(move |task| task.milestone_id.as_deref() == Some(milestone_id))
    }
}

#[cfg(test)]
#[path = "facts_tests.rs"]
mod tests;
