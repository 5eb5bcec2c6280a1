//! Applying one event to a project's state. Parsing comes first and is the only step that
//! can fail (a poison event); the mutation that follows cannot, so a poison event never
//! leaves the state half-changed.

use chrono::{DateTime, Utc};
use flowmeter_shared::metrics::{AttemptResult, GateOutcome, TaskFacts, TaskState};

use super::model::{Delta, Dims, TrendKey};
use super::payload::{Payload, Raw};
use super::state::ProjectState;
use flowmeter_shared::read_model::Grain;

/// An event as read from the log.
#[derive(Debug, Clone)]
pub struct LoggedEvent {
    /// Per-project sequence number.
    pub seq: i64,
    /// Producer's id.
    pub event_id: String,
    /// The entity's id.
    pub entity_id: String,
    /// Event type as stored.
    pub event_type: String,
    /// The payload's JSON text, parsed when the event is applied: a parsed tree holds
    /// several times the memory, and a batch of 10 000 events is read at once.
    pub payload: Box<str>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
}

pub use super::contrib::issues;

/// A payload field that is absent, explicitly null, or set.
#[derive(Debug, Clone, PartialEq)]
enum Field<T> {
    Absent,
    Null,
    Set(T),
}

impl<T: Clone> Field<T> {
    fn apply_to(&self, target: &mut Option<T>) {
        match self {
            Field::Absent => {}
            Field::Null => *target = None,
            Field::Set(value) => *target = Some(value.clone()),
        }
    }
}

#[derive(Debug, Clone)]
struct TaskAttrs {
    title: Field<String>,
    phase_id: Field<String>,
    milestone_id: Field<String>,
    task_class: Field<String>,
    assignee: Field<String>,
    priority: Field<i64>,
}

#[derive(Debug, Clone)]
enum Change {
    Nothing,
    Phase {
        name: Option<String>,
        sequence: Option<i64>,
    },
    Milestone {
        name: Option<String>,
        phase_id: Field<String>,
        sequence: Field<i64>,
        planned_start_at: Field<DateTime<Utc>>,
        due_at: Field<DateTime<Utc>>,
    },
    TaskCreated {
        attrs: TaskAttrs,
        state: Option<TaskState>,
    },
    TaskUpdated {
        attrs: TaskAttrs,
    },
    Transition {
        to: TaskState,
        from: Option<TaskState>,
    },
    GateRequested {
        task_id: String,
        gate_type: Option<String>,
        reviewer: Option<String>,
        sla_hours: Option<f64>,
    },
    GateDecided {
        task_id: String,
        outcome: GateOutcome,
        gate_type: Option<String>,
    },
    AttemptStarted {
        task_id: String,
        attempt_number: Option<i64>,
    },
    AttemptFinished {
        task_id: String,
        result: AttemptResult,
        attempt_number: Option<i64>,
    },
}

impl Payload<'_> {
    fn string(&self, name: &str) -> Result<Field<String>, String> {
        match self.get(name) {
            None => Ok(Field::Absent),
            Some(Raw::Null) => Ok(Field::Null),
            Some(Raw::Str(s)) => Ok(Field::Set(s.clone().into_owned())),
            Some(_) => Err(format!("payload.{name} must be a string")),
        }
    }

    fn opt_string(&self, name: &str) -> Result<Option<String>, String> {
        Ok(match self.string(name)? {
            Field::Set(s) => Some(s),
            _ => None,
        })
    }

    /// A string field as borrowed text, for values that are parsed further.
    fn opt_str(&self, name: &str) -> Result<Option<&str>, String> {
        match self.get(name) {
            None | Some(Raw::Null) => Ok(None),
            Some(Raw::Str(s)) => Ok(Some(s)),
            Some(_) => Err(format!("payload.{name} must be a string")),
        }
    }

    fn required_string(&self, name: &str) -> Result<String, String> {
        self.opt_string(name)?
            .ok_or_else(|| format!("payload.{name} is required"))
    }

    fn integer(&self, name: &str) -> Result<Field<i64>, String> {
        match self.get(name) {
            None => Ok(Field::Absent),
            Some(Raw::Null) => Ok(Field::Null),
            Some(Raw::Number(Some(n), _)) => Ok(Field::Set(*n)),
            Some(_) => Err(format!("payload.{name} must be an integer")),
        }
    }

    fn opt_integer(&self, name: &str) -> Result<Option<i64>, String> {
        Ok(match self.integer(name)? {
            Field::Set(n) => Some(n),
            _ => None,
        })
    }

    fn timestamp(&self, name: &str) -> Result<Field<DateTime<Utc>>, String> {
        match self.get(name) {
            None => Ok(Field::Absent),
            Some(Raw::Null) => Ok(Field::Null),
            Some(Raw::Str(text)) => DateTime::parse_from_rfc3339(text)
                .map(|t| Field::Set(t.with_timezone(&Utc)))
                .map_err(|_| format!("payload.{name} is not an RFC 3339 timestamp")),
            Some(_) => Err(format!("payload.{name} must be a string")),
        }
    }

    fn parsed<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, String>
    where
        T::Err: std::fmt::Display,
    {
        self.opt_str(name)?
            .map(|text| {
                text.parse::<T>()
                    .map_err(|e| format!("payload.{name}: {e}"))
            })
            .transpose()
    }

    fn attrs(&self) -> Result<TaskAttrs, String> {
        Ok(TaskAttrs {
            title: self.string("title")?,
            phase_id: self.string("phase_id")?,
            milestone_id: self.string("milestone_id")?,
            task_class: self.string("task_class")?,
            assignee: self.string("assignee")?,
            priority: self.integer("priority")?,
        })
    }
}

#[cfg(feature = "test-hooks")]
pub(super) fn forced_poison(event_type: &str) -> bool {
    static TYPES: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    TYPES
        .get_or_init(|| {
            std::env::var("FLOWMETER_TEST_POISON_EVENT_TYPES")
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .iter()
        .any(|t| t == event_type)
}

#[cfg(not(feature = "test-hooks"))]
pub(super) fn forced_poison(_: &str) -> bool {
    false
}

fn parse(event: &LoggedEvent) -> Result<Change, String> {
    if forced_poison(&event.event_type) {
        return Err(format!(
            "{} events are refused by FLOWMETER_TEST_POISON_EVENT_TYPES",
            event.event_type
        ));
    }
    let p = Payload::parse(&event.payload)?;
    Ok(match event.event_type.as_str() {
        "project_upserted" => Change::Nothing,
        "phase_upserted" => Change::Phase {
            name: p.opt_string("name")?,
            sequence: p.opt_integer("sequence")?,
        },
        "milestone_upserted" => Change::Milestone {
            name: p.opt_string("name")?,
            phase_id: p.string("phase_id")?,
            sequence: p.integer("sequence")?,
            planned_start_at: p.timestamp("planned_start_at")?,
            due_at: p.timestamp("due_at")?,
        },
        "task_created" => Change::TaskCreated {
            attrs: p.attrs()?,
            state: p.parsed("state")?,
        },
        "task_updated" => Change::TaskUpdated { attrs: p.attrs()? },
        "task_state_transitioned" => Change::Transition {
            to: p
                .parsed("to_state")?
                .ok_or_else(|| "payload.to_state is required".to_owned())?,
            from: p.parsed("from_state")?,
        },
        "gate_requested" => Change::GateRequested {
            task_id: p.required_string("task_id")?,
            gate_type: p.opt_string("gate_type")?,
            reviewer: p.opt_string("reviewer")?,
            sla_hours: match p.get("sla_hours") {
                None | Some(Raw::Null) => None,
                Some(Raw::Number(_, h)) if h.is_finite() && *h >= 0.0 => Some(*h),
                Some(_) => return Err("payload.sla_hours must be a non-negative number".into()),
            },
        },
        "gate_decision_recorded" => Change::GateDecided {
            task_id: p.required_string("task_id")?,
            outcome: p
                .parsed("outcome")?
                .ok_or_else(|| "payload.outcome is required".to_owned())?,
            gate_type: p.opt_string("gate_type")?,
        },
        "integration_attempt_started" => Change::AttemptStarted {
            task_id: p.required_string("task_id")?,
            attempt_number: p.opt_integer("attempt_number")?,
        },
        "integration_attempt_finished" => Change::AttemptFinished {
            task_id: p.required_string("task_id")?,
            result: p
                .parsed("result")?
                .ok_or_else(|| "payload.result is required".to_owned())?,
            attempt_number: p.opt_integer("attempt_number")?,
        },
        other => return Err(format!("unknown event_type {other:?}")),
    })
}

/// How an event is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Apply {
    /// The event was folded before and is applied again after a late event re-opened its
    /// time: what counts events (the transition counter) leaves it out.
    pub replayed: bool,
    /// Event time moves to the event (closing buckets it passes). Off for the events
    /// before a late event's time, which rebuild entities as of that time.
    pub advance: bool,
}

impl Apply {
    /// A new event, in canonical order.
    pub const NEW: Apply = Apply {
        replayed: false,
        advance: true,
    };
}

impl ProjectState {
    /// Applies one event. A poison event is recorded in `delta.quarantine` and otherwise
    /// ignored; the caller's cursor moves on either way.
    pub fn apply(&mut self, event: &LoggedEvent, delta: &mut Delta, how: Apply) {
        if let Some(kind) = super::dora::DoraKind::of(&event.event_type) {
            return self.apply_dora(kind, event, delta, how);
        }
        let change = match parse(event) {
            Ok(change) => change,
            Err(error) => return quarantine(event, error, delta),
        };
        let at = event.occurred_at;
        if how.advance {
            self.advance_to(at, delta);
        }
        let id = event.entity_id.as_str();
        match change {
            Change::Nothing => {}
            Change::Phase { name, sequence } => {
                let phase =
                    self.phases
                        .entry(id.to_owned())
                        .or_insert_with(|| super::model::PhaseFacts {
                            phase_id: id.to_owned(),
                            name: None,
                            sequence: None,
                        });
                phase.name = name.or(phase.name.take());
                phase.sequence = sequence.or(phase.sequence);
                delta.phases.insert(id.to_owned());
            }
            Change::Milestone {
                name,
                phase_id,
                sequence,
                planned_start_at,
                due_at,
            } => {
                let milestone = self.milestone_mut(id, at);
                if name.is_some() {
                    milestone.name = name;
                }
                phase_id.apply_to(&mut milestone.phase_id);
                sequence.apply_to(&mut milestone.sequence);
                planned_start_at.apply_to(&mut milestone.planned_start_at);
                due_at.apply_to(&mut milestone.due_at);
                delta.milestones.insert(id.to_owned());
            }
            Change::TaskCreated { attrs, state } => {
                delta.note_task(id, self.task(id));
                if self.task(id).is_none() {
                    self.create_task(id, at, false, state, Some(&attrs));
                } else {
                    // A creation after the task's first transition in event time, or a
                    // resend with a new event id: keep the state, take the attributes, and
                    // the creation time is this event's (lead time, arrivals, backlog age).
                    self.update_task(id, |task| {
                        apply_attrs(task, &attrs);
                        task.inferred = false;
                        task.created_at = at;
                    });
                }
                delta.tasks.insert(id.to_owned());
            }
            Change::TaskUpdated { attrs } => {
                delta.note_task(id, self.task(id));
                if self.task(id).is_none() {
                    self.create_task(id, at, true, None, None);
                }
                self.update_task(id, |task| apply_attrs(task, &attrs));
                delta.tasks.insert(id.to_owned());
            }
            Change::Transition { to, from } => {
                delta.note_task(id, self.task(id));
                if self.task(id).is_none() {
                    self.create_task(id, at, true, from, None);
                    self.update_task(id, |task| task.inferred_start = true);
                } else if from.is_some_and(|from| Some(from) != self.task(id).map(|t| t.state)) {
                    self.update_task(id, |task| task.from_state_mismatches += 1);
                }
                if !how.replayed {
                    *delta.transitions.entry(to.as_str().to_owned()).or_default() += 1;
                }
                self.transition(id, to, at);
                delta.tasks.insert(id.to_owned());
            }
            Change::GateRequested {
                task_id,
                gate_type,
                reviewer,
                sla_hours,
            } => {
                let gate = self.gate_mut(id, &task_id);
                gate.task_id = task_id;
                gate.requested_at = Some(at);
                gate.gate_type = gate_type.or(gate.gate_type.take());
                gate.reviewer = reviewer.or(gate.reviewer.take());
                gate.sla_hours = sla_hours.or(gate.sla_hours);
                delta.gates.insert(id.to_owned());
            }
            Change::GateDecided {
                task_id,
                outcome,
                gate_type,
            } => {
                let gate = self.gate_mut(id, &task_id);
                gate.decided_at = Some(at);
                gate.outcome = Some(outcome);
                gate.gate_type = gate_type.or(gate.gate_type.take());
                delta.gates.insert(id.to_owned());
            }
            Change::AttemptStarted {
                task_id,
                attempt_number,
            } => {
                self.update_attempt(id, &task_id, |attempt| {
                    attempt.started_at = Some(at);
                    attempt.attempt_number = attempt_number.or(attempt.attempt_number);
                });
                self.note_attempt_task(id, delta);
                delta.attempts.insert(id.to_owned());
            }
            Change::AttemptFinished {
                task_id,
                result,
                attempt_number,
            } => {
                self.update_attempt(id, &task_id, |attempt| {
                    attempt.finished_at = Some(at);
                    attempt.result = Some(result);
                    attempt.attempt_number = attempt_number.or(attempt.attempt_number);
                });
                self.note_attempt_task(id, delta);
                delta.attempts.insert(id.to_owned());
            }
        }
    }

    /// Remembers the task of an attempt, whose attempt counts are recounted after the batch.
    fn note_attempt_task(&self, attempt_id: &str, delta: &mut Delta) {
        if let Some(attempt) = self.attempt(attempt_id) {
            if !delta.attempt_tasks.contains(&attempt.task_id) {
                delta.attempt_tasks.insert(attempt.task_id.clone());
            }
        }
    }

    fn create_task(
        &mut self,
        id: &str,
        at: DateTime<Utc>,
        inferred: bool,
        state: Option<TaskState>,
        attrs: Option<&TaskAttrs>,
    ) {
        let mut task = TaskFacts::new(id, at);
        task.inferred = inferred;
        if let Some(attrs) = attrs {
            apply_attrs(&mut task, attrs);
        }
        let initial = state.unwrap_or(TaskState::Backlog);
        self.insert_task(task);
        if initial != TaskState::Backlog {
            // Enter the initial state through the same path as a transition, so its
            // timestamps (claimed_at, blocked episodes, …) are set consistently.
            self.enter_state(id, initial, at);
        }
    }

    fn transition(&mut self, id: &str, to: TaskState, at: DateTime<Utc>) {
        let Some(current) = self.task(id).map(|t| t.state) else {
            return;
        };
        if current == to {
            return;
        }
        self.enter_state(id, to, at);
    }

    /// Moves a task into `to` at `at`: closes the current stay (clamping a negative
    /// duration to 0) and sets the entry timestamps of SPEC §4.
    fn enter_state(&mut self, id: &str, to: TaskState, at: DateTime<Utc>) {
        if to == TaskState::Integrated && self.task(id).is_some_and(|t| t.integrated_at.is_none()) {
            self.stored.integrated_since_drilldown.insert(id.to_owned());
        }
        self.update_task(id, |task| {
            let stay = (at - task.state_entered_at)
                .num_microseconds()
                .unwrap_or(0)
                .max(0) as f64
                / 1_000_000.0;
            let from = task.state;
            task.time_in_state_seconds.add(from, stay);
            if from == TaskState::Blocked {
                if let Some(open) = task
                    .blocked_episodes
                    .iter_mut()
                    .rev()
                    .find(|e| e.ended_at.is_none())
                {
                    open.ended_at = Some(at.max(open.started_at));
                }
                task.blocked_since = None;
            }
            if to == TaskState::Blocked {
                task.blocked_episodes
                    .push(flowmeter_shared::metrics::BlockedEpisode {
                        started_at: at,
                        ended_at: None,
                    });
                task.blocked_since = Some(at);
            }
            if matches!(to, TaskState::Claimed | TaskState::InProgress) && task.claimed_at.is_none()
            {
                task.claimed_at = Some(at);
            }
            if to == TaskState::Implemented {
                task.implemented_at = Some(at);
            }
            if to == TaskState::Integrated {
                task.integrated_at = Some(at);
            }
            task.terminal_at = to.is_terminal().then_some(at);
            task.state = to;
            task.state_entered_at = task.state_entered_at.max(at);
        });
    }
}

/// Records a poison event (the caller's cursor moves on past it).
pub(super) fn quarantine(event: &LoggedEvent, error: String, delta: &mut Delta) {
    delta.quarantine.insert(
        event.seq,
        super::model::QuarantinedEvent {
            event_id: event.event_id.clone(),
            event_type: event.event_type.clone(),
            error,
        },
    );
}

fn apply_attrs(task: &mut TaskFacts, attrs: &TaskAttrs) {
    attrs.title.apply_to(&mut task.title);
    attrs.phase_id.apply_to(&mut task.phase_id);
    attrs.milestone_id.apply_to(&mut task.milestone_id);
    attrs.task_class.apply_to(&mut task.task_class);
    attrs.assignee.apply_to(&mut task.assignee);
    attrs.priority.apply_to(&mut task.priority);
}

/// A trend key.
pub fn trend_key(
    metric: &str,
    grain: Grain,
    bucket: DateTime<Utc>,
    dims: Option<Dims>,
) -> TrendKey {
    TrendKey {
        metric: metric.to_owned(),
        grain,
        bucket,
        dims,
    }
}
