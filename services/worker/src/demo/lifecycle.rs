//! One task's walk through the SPEC §2.3 lifecycle, emitting its task, gate and integration
//! events in causal order until it finishes or runs into the end of the period.

use flowmeter_shared::metrics::TaskState;
use serde_json::{json, Value};

use super::rng::{Rng, Tail};
use super::{Milestone, Stream, Team, FOREVER, HOUR, MINUTE, REVIEWER_WEIGHTS};

/// (task_class, title verb, median hours of work, weight in the mix).
const CLASSES: [(&str, &str, f64, u32); 4] = [
    ("feature", "Add", 30.0, 45),
    ("bug", "Fix", 10.0, 30),
    ("chore", "Upgrade", 6.0, 15),
    ("spike", "Investigate", 16.0, 10),
];
const OBJECTS: [&str; 12] = [
    "login flow",
    "billing export",
    "search index",
    "audit log",
    "rate limiter",
    "CSV import",
    "dashboard filters",
    "webhook retries",
    "SSO settings",
    "notification digest",
    "API pagination",
    "cache warm-up",
];
const BLOCK_REASONS: [&str; 5] = [
    "waiting on upstream API",
    "needs product decision",
    "test environment down",
    "waiting on security review",
    "dependency not released",
];
const GATE_OUTCOMES: [&str; 3] = ["approved", "approved_with_risk", "rejected"];
const ATTEMPT_RESULTS: [&str; 4] = ["success", "conflict", "failed_checks", "aborted"];

/// Where a stalled task stops for good.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stall {
    Work,
    Blocked,
    Review,
    Integration,
}

/// Stall points and their weights: staying blocked for good is the most common.
const STALLS: [Stall; 4] = [
    Stall::Work,
    Stall::Blocked,
    Stall::Review,
    Stall::Integration,
];
const STALL_WEIGHTS: [u32; 4] = [2, 4, 2, 2];

/// Where and when a task enters the simulation.
pub(super) struct NewTask {
    /// 1-based, in arrival order; names the task `task-00001`, ….
    pub(super) number: usize,
    /// Seconds from the start of the period.
    pub(super) created_at: i64,
    /// The milestone's earliest task: in the past-due milestone it always stays blocked, so
    /// even a small demo has a long-blocked task to unblock.
    pub(super) first_in_milestone: bool,
}

/// Creates the task in `milestone` and walks it until it finishes or reaches the end of the
/// period. Tasks of the past-due milestone block more often, and there and in the current
/// milestone some stall for good, leaving the aged WIP the actions react to.
pub(super) fn simulate_task(
    stream: &mut Stream,
    rng: &mut Rng,
    team: &Team,
    milestone: &Milestone,
    task: NewTask,
) {
    let NewTask {
        number,
        created_at,
        first_in_milestone,
    } = task;
    let (class, verb, work_hours, _) = CLASSES[rng.weighted(&CLASSES.map(|c| c.3))];
    let task_id = format!("task-{number:05}");
    let payload = json!({
        "title": format!("{verb} {}", rng.pick(&OBJECTS)),
        "phase_id": milestone.phase_id,
        "milestone_id": milestone.id,
        "task_class": class,
        "priority": 1 + rng.weighted(&[1, 3, 4, 2]),
        "assignee": team.assignee(rng),
        "state": "backlog",
    });
    stream.push(created_at, ("task", &task_id), "task_created", payload);
    let stall_chance = match (milestone.troubled, milestone.current) {
        (true, _) => 0.3,
        (false, true) => 0.1,
        (false, false) => 0.0,
    };
    let stall = if milestone.troubled && first_in_milestone {
        Some(Stall::Blocked)
    } else {
        rng.chance(stall_chance)
            .then(|| STALLS[rng.weighted(&STALL_WEIGHTS)])
    };
    let mut run = TaskRun {
        stream,
        rng,
        team,
        task_id,
        at: created_at,
        state: TaskState::Backlog,
        stall,
        block_chance: if milestone.troubled { 0.4 } else { 0.22 },
    };
    // `None` means the task ran into `end`; it simply stays in its current state.
    let _ran_to_completion = run.lifecycle(class == "spike", work_hours);
}

/// One task walking its lifecycle; every step returns `None` once it would pass `end`.
struct TaskRun<'a> {
    stream: &'a mut Stream,
    rng: &'a mut Rng,
    team: &'a Team,
    task_id: String,
    at: i64,
    state: TaskState,
    stall: Option<Stall>,
    block_chance: f64,
}

impl TaskRun<'_> {
    /// Moves the task's clock on by `after` seconds (at least one, so a task's own events never
    /// tie); `None` once that would pass the end of the period.
    fn advance(&mut self, after: i64) -> Option<i64> {
        let at = self.at.saturating_add(after.max(1));
        if at > self.stream.span {
            return None;
        }
        self.at = at;
        Some(at)
    }

    fn emit(
        &mut self,
        after: i64,
        entity: (&str, &str),
        event_type: &str,
        payload: Value,
    ) -> Option<()> {
        let at = self.advance(after)?;
        self.stream.push(at, entity, event_type, payload);
        Some(())
    }

    fn emit_task(&mut self, after: i64, event_type: &str, payload: Value) -> Option<()> {
        let at = self.advance(after)?;
        self.stream
            .push(at, ("task", &self.task_id), event_type, payload);
        Some(())
    }

    fn transition(
        &mut self,
        after: i64,
        to: TaskState,
        reason: Option<&str>,
        reviewed_by: Option<&str>,
    ) -> Option<()> {
        let mut payload = json!({"from_state": self.state.as_str(), "to_state": to.as_str()});
        if let Some(reason) = reason {
            payload["reason"] = json!(reason);
        }
        if let Some(reviewer) = reviewed_by {
            payload["reviewed_by"] = json!(reviewer);
        }
        self.emit_task(after, "task_state_transitioned", payload)?;
        self.state = to;
        Some(())
    }

    fn lifecycle(&mut self, spike: bool, work_hours: f64) -> Option<()> {
        // Stalled tasks are kept alive to the end on purpose, so they are never cancelled.
        if self.stall.is_none() && self.rng.chance(0.04) {
            let wait = self.rng.duration(30.0, Tail::Heavy, 240.0);
            return self.transition(wait, TaskState::Cancelled, Some("out of scope"), None);
        }
        let wait = self.rng.duration(10.0, Tail::Heavy, 168.0);
        self.transition(wait, TaskState::Ready, None, None)?;
        if self.rng.chance(0.12) {
            self.update()?;
        }
        if self.rng.chance(0.25) {
            let wait = self.rng.duration(3.0, Tail::Heavy, 48.0);
            self.transition(wait, TaskState::Reserved, None, None)?;
        }
        let wait = self.rng.duration(6.0, Tail::Heavy, 120.0);
        self.transition(wait, TaskState::Claimed, None, None)?;
        let wait = self.rng.duration(1.0, Tail::Heavy, 24.0);
        self.transition(wait, TaskState::InProgress, None, None)?;

        let mut work = match self.stall {
            Some(Stall::Work) => FOREVER,
            _ => self.rng.duration(work_hours, Tail::Light, 240.0),
        };
        if self.stall == Some(Stall::Blocked) || self.rng.chance(self.block_chance) {
            let before = (work.min(72 * HOUR) as f64 * (0.2 + 0.6 * self.rng.unit())) as i64;
            work = work.saturating_sub(before);
            let reason = *self.rng.pick(&BLOCK_REASONS);
            self.transition(before, TaskState::Blocked, Some(reason), None)?;
            let long = self.rng.chance(0.4);
            let blocked_for = match (self.stall, long) {
                (Some(Stall::Blocked), _) => FOREVER,
                (_, true) => self.rng.between(50 * HOUR, 160 * HOUR),
                (_, false) => self.rng.duration(8.0, Tail::Light, 40.0),
            };
            if long && self.rng.chance(0.12) {
                let reason = Some("blocked too long");
                return self.transition(blocked_for, TaskState::Abandoned, reason, None);
            }
            self.transition(blocked_for, TaskState::InProgress, Some("unblocked"), None)?;
        }
        if (spike && self.rng.chance(0.3)) || self.rng.chance(0.02) {
            let reason = if spike {
                "spike concluded"
            } else {
                "superseded"
            };
            return self.transition(work, TaskState::Abandoned, Some(reason), None);
        }
        self.transition(work, TaskState::Implemented, None, None)?;
        self.review()?;
        self.integrate()
    }

    /// A reassignment or a reprioritisation while the task waits to be picked up.
    fn update(&mut self) -> Option<()> {
        let after = self.rng.between(5 * MINUTE, 6 * HOUR);
        let payload = if self.rng.chance(0.5) {
            json!({"priority": 1 + self.rng.weighted(&[1, 3, 4, 2])})
        } else {
            json!({"assignee": self.team.assignee(self.rng)})
        };
        self.emit_task(after, "task_updated", payload)
    }

    /// Review gates until one is approved (the third round always is). Reviewer 0 carries most
    /// gates and answers slowly, so latency and SLA breaches concentrate on them.
    fn review(&mut self) -> Option<()> {
        for round in 1..=3 {
            let reviewer_index = self
                .rng
                .weighted(&REVIEWER_WEIGHTS[..self.team.reviewers.len()]);
            let reviewer = self.team.reviewers[reviewer_index];
            let sla_hours = if self.rng.chance(0.6) { 24 } else { 48 };
            let gate_id = format!("{}-gate-{round}", self.task_id);
            let after = self.rng.between(MINUTE, 30 * MINUTE);
            let payload = json!({"task_id": self.task_id, "gate_type": "review_gate",
                "reviewer": reviewer, "sla_hours": sla_hours});
            self.emit(after, ("gate", &gate_id), "gate_requested", payload)?;
            let latency = match (self.stall, reviewer_index) {
                (Some(Stall::Review), _) if round == 1 => FOREVER,
                (_, 0) => self.rng.duration(22.0, Tail::Heavy, 168.0),
                _ => self.rng.duration(4.0, Tail::Heavy, 96.0),
            };
            let outcome = match round {
                3 => "approved",
                _ => GATE_OUTCOMES[self.rng.weighted(&[78, 6, 16])],
            };
            let payload = json!({"task_id": self.task_id, "outcome": outcome,
                "actor_id": reviewer, "gate_type": "review_gate"});
            self.emit(
                latency,
                ("gate", &gate_id),
                "gate_decision_recorded",
                payload,
            )?;
            if outcome != "rejected" {
                return Some(());
            }
            let after = self.rng.between(MINUTE, 15 * MINUTE);
            let reason = Some("changes requested");
            self.transition(after, TaskState::InProgress, reason, Some(reviewer))?;
            let rework = self.rng.duration(5.0, Tail::Light, 72.0);
            self.transition(rework, TaskState::Implemented, None, None)?;
        }
        Some(())
    }

    /// Integration attempts until one succeeds (the fifth always does). A conflict sends the
    /// task through `conflict` and rework; failed checks and aborts are retried in place.
    fn integrate(&mut self) -> Option<()> {
        for attempt in 1..=5 {
            let wait = match self.stall {
                Some(Stall::Integration) if attempt == 1 => FOREVER,
                _ => self.rng.duration(2.0, Tail::Heavy, 72.0),
            };
            let attempt_id = format!("{}-attempt-{attempt}", self.task_id);
            let payload = json!({"task_id": self.task_id, "attempt_number": attempt,
                "base_sha": self.rng.sha(), "head_sha": self.rng.sha()});
            let entity = ("integration_attempt", attempt_id.as_str());
            self.emit(wait, entity, "integration_attempt_started", payload)?;
            let result = match attempt {
                5 => 0,
                _ => self.rng.weighted(&[78, 11, 9, 2]),
            };
            let after = self.rng.between(4 * MINUTE, 50 * MINUTE);
            let payload = json!({"task_id": self.task_id, "result": ATTEMPT_RESULTS[result],
                "attempt_number": attempt});
            self.emit(after, entity, "integration_attempt_finished", payload)?;
            match result {
                0 => {
                    let after = self.rng.between(MINUTE, 5 * MINUTE);
                    return self.transition(after, TaskState::Integrated, None, None);
                }
                1 => {
                    let after = self.rng.between(MINUTE, 10 * MINUTE);
                    self.transition(after, TaskState::Conflict, Some("merge conflict"), None)?;
                    let wait = self.rng.duration(2.0, Tail::Heavy, 48.0);
                    let reason = Some("resolving conflict");
                    self.transition(wait, TaskState::InProgress, reason, None)?;
                    let fix = self.rng.duration(3.0, Tail::Light, 48.0);
                    self.transition(fix, TaskState::Implemented, None, None)?;
                }
                2 => {
                    // The fix is pushed while the task stays implemented.
                    let fix = self.rng.duration(2.0, Tail::Heavy, 48.0);
                    self.advance(fix)?;
                }
                _ => {}
            }
        }
        Some(())
    }
}
