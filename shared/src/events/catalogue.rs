//! The payload fields of every event type as data (SPEC §2.3): the validator checks events
//! against this table, the OpenAPI document renders its payload schemas from it, and a test
//! compares docs/EVENTS.md with it, so the three cannot disagree.

use super::MAX_ID_LEN;
use super::{
    EventType, ATTEMPT_RESULTS, DEPLOYMENT_STATUSES, GATE_OUTCOMES, PROJECT_STATUSES, TASK_STATES,
};

/// The JSON type of a payload field and what values it accepts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FieldKind {
    /// A non-empty string of at most [`MAX_ID_LEN`] characters (ids, names, types).
    Id,
    /// A non-empty string of any length (titles, reasons).
    Text,
    /// A string from a closed list.
    Enum(&'static [&'static str]),
    /// An RFC 3339 timestamp string.
    Timestamp,
    /// An integer in `min..=max`.
    Integer {
        /// The smallest accepted value.
        min: i64,
        /// The largest accepted value.
        max: i64,
    },
    /// A finite number in `min..=max`.
    Number {
        /// The smallest accepted value.
        min: f64,
        /// The largest accepted value.
        max: f64,
    },
    /// `true` or `false`.
    Bool,
    /// An array of at most [`MAX_LIST_LEN`] ids (each as [`FieldKind::Id`]).
    IdList,
}

/// The most items an id list (`change_ids`, `task_ids`) may hold.
pub const MAX_LIST_LEN: usize = 1000;

impl FieldKind {
    /// The JSON type as docs/EVENTS.md names it.
    pub fn json_type(self) -> &'static str {
        match self {
            Self::Id | Self::Text | Self::Enum(_) | Self::Timestamp => "string",
            Self::Integer { .. } => "integer",
            Self::Number { .. } => "number",
            Self::Bool => "boolean",
            Self::IdList => "array",
        }
    }

    /// The accepted values in words, as docs/EVENTS.md states them.
    pub fn allowed(self) -> String {
        match self {
            Self::Id => format!("1–{MAX_ID_LEN} characters"),
            Self::Text => "non-empty".to_owned(),
            Self::Enum(values) => values
                .iter()
                .map(|v| format!("`{v}`"))
                .collect::<Vec<_>>()
                .join(", "),
            Self::Timestamp => "RFC 3339 date-time".to_owned(),
            Self::Integer { min, max } => format!("{min} to {max}"),
            Self::Number { min, max } => format!("{min} to {max}"),
            Self::Bool => "`true`, `false`".to_owned(),
            Self::IdList => format!("up to {MAX_LIST_LEN} strings of 1–{MAX_ID_LEN} characters"),
        }
    }
}

/// One payload field of an event type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PayloadField {
    /// The field's name inside `payload`.
    pub name: &'static str,
    /// Its type and accepted values.
    pub kind: FieldKind,
    /// Whether an event without it (or with `null`) is refused.
    pub required: bool,
    /// What it means, for people.
    pub description: &'static str,
}

/// The payload fields of one event type.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventSpec {
    /// The event type.
    pub event_type: EventType,
    /// What the event says, for people.
    pub description: &'static str,
    /// Its payload fields (unknown extra fields are kept, not refused).
    pub fields: &'static [PayloadField],
}

const I32: FieldKind = FieldKind::Integer {
    min: i32::MIN as i64,
    max: i32::MAX as i64,
};
const COUNT: FieldKind = FieldKind::Integer {
    min: 0,
    max: i32::MAX as i64,
};

const fn required(name: &'static str, kind: FieldKind, description: &'static str) -> PayloadField {
    PayloadField {
        name,
        kind,
        required: true,
        description,
    }
}

const fn optional(name: &'static str, kind: FieldKind, description: &'static str) -> PayloadField {
    PayloadField {
        name,
        kind,
        required: false,
        description,
    }
}

const TASK_ATTRIBUTES: [PayloadField; 5] = [
    optional("phase_id", FieldKind::Id, "The phase the task belongs to."),
    optional(
        "milestone_id",
        FieldKind::Id,
        "The milestone the task counts towards.",
    ),
    optional(
        "task_class",
        FieldKind::Id,
        "A producer-defined class (feature, bug, chore …), a breakdown dimension.",
    ),
    optional("priority", I32, "Lower is more urgent."),
    optional("assignee", FieldKind::Id, "Who works on the task."),
];

const DEPLOYMENT_FIELDS: [PayloadField; 5] = [
    required(
        "environment",
        FieldKind::Id,
        "Where it deploys to (`production`, `staging` …); see FLOWMETER_PRODUCTION_ENVIRONMENTS.",
    ),
    optional(
        "service",
        FieldKind::Id,
        "The service deployed, a breakdown dimension.",
    ),
    optional("version", FieldKind::Id, "The version deployed."),
    optional(
        "change_ids",
        FieldKind::IdList,
        "The changes (change_committed entity ids) the deployment contains.",
    ),
    optional(
        "task_ids",
        FieldKind::IdList,
        "The tasks the deployment delivers.",
    ),
];

const INCIDENT_FIELDS: [PayloadField; 3] = [
    optional(
        "severity",
        FieldKind::Id,
        "The incident's severity, in the producer's terms.",
    ),
    optional("service", FieldKind::Id, "The service affected."),
    optional(
        "caused_by_deployment_id",
        FieldKind::Id,
        "The deployment (its entity id) that caused it; counts in the change failure rate.",
    ),
];

/// Every event type's payload fields, in catalogue order (one entry per [`EventType`]).
pub static CATALOGUE: [EventSpec; 15] = [
    EventSpec {
        event_type: EventType::ProjectUpserted,
        description: "A project was created or renamed; its name is the project's display name.",
        fields: &[
            required("name", FieldKind::Id, "The project's name."),
            optional(
                "status",
                FieldKind::Enum(&PROJECT_STATUSES),
                "The project's status.",
            ),
        ],
    },
    EventSpec {
        event_type: EventType::PhaseUpserted,
        description: "A phase (a stage of the plan that groups milestones and tasks) was created or changed.",
        fields: &[
            required("name", FieldKind::Id, "The phase's name."),
            optional("sequence", I32, "Its position among the phases."),
        ],
    },
    EventSpec {
        event_type: EventType::MilestoneUpserted,
        description: "A milestone was created or changed; its due date drives the forecast.",
        fields: &[
            required("name", FieldKind::Id, "The milestone's name."),
            optional("phase_id", FieldKind::Id, "The phase it belongs to."),
            optional("sequence", I32, "Its position among the milestones."),
            optional(
                "planned_start_at",
                FieldKind::Timestamp,
                "When work on it is planned to start.",
            ),
            optional(
                "due_at",
                FieldKind::Timestamp,
                "When it is due; not before planned_start_at.",
            ),
        ],
    },
    EventSpec {
        event_type: EventType::TaskCreated,
        description: "A task was created.",
        fields: &[
            required("title", FieldKind::Text, "The task's title."),
            TASK_ATTRIBUTES[0],
            TASK_ATTRIBUTES[1],
            TASK_ATTRIBUTES[2],
            TASK_ATTRIBUTES[3],
            TASK_ATTRIBUTES[4],
            optional(
                "state",
                FieldKind::Enum(&TASK_STATES),
                "The state it starts in (default `backlog`).",
            ),
        ],
    },
    EventSpec {
        event_type: EventType::TaskUpdated,
        description: "Some of a task's attributes changed (the fields present are the new values); its state does not change.",
        fields: &[
            optional("title", FieldKind::Text, "The task's new title."),
            TASK_ATTRIBUTES[0],
            TASK_ATTRIBUTES[1],
            TASK_ATTRIBUTES[2],
            TASK_ATTRIBUTES[3],
            TASK_ATTRIBUTES[4],
        ],
    },
    EventSpec {
        event_type: EventType::TaskStateTransitioned,
        description: "A task moved to another state.",
        fields: &[
            required(
                "to_state",
                FieldKind::Enum(&TASK_STATES),
                "The new state; it wins when from_state disagrees with the projection.",
            ),
            optional(
                "from_state",
                FieldKind::Enum(&TASK_STATES),
                "The state the producer believes the task left.",
            ),
            optional("reason", FieldKind::Text, "Why (for people)."),
            optional("reviewed_by", FieldKind::Id, "Who reviewed the change."),
            optional(
                "force",
                FieldKind::Bool,
                "The producer overrode its own transition rules.",
            ),
        ],
    },
    EventSpec {
        event_type: EventType::GateRequested,
        description: "A review or merge gate was requested for a task; the gate is the event's entity.",
        fields: &[
            required("task_id", FieldKind::Id, "The task the gate is for."),
            optional(
                "gate_type",
                FieldKind::Id,
                "`review_gate`, `merge_gate` or any name.",
            ),
            optional("reviewer", FieldKind::Id, "Who is asked to decide."),
            optional(
                "sla_hours",
                FieldKind::Number {
                    min: 0.0,
                    max: 24.0 * 366.0,
                },
                "Hours within which a decision is due.",
            ),
        ],
    },
    EventSpec {
        event_type: EventType::GateDecisionRecorded,
        description: "A gate was decided; it matches its request by the gate's entity_id.",
        fields: &[
            required("task_id", FieldKind::Id, "The task the gate is for."),
            required(
                "outcome",
                FieldKind::Enum(&GATE_OUTCOMES),
                "The decision.",
            ),
            optional("actor_id", FieldKind::Id, "Who decided."),
            optional("gate_type", FieldKind::Id, "As in gate_requested."),
        ],
    },
    EventSpec {
        event_type: EventType::IntegrationAttemptStarted,
        description: "An attempt to integrate (merge) a task's work started; the attempt is the event's entity.",
        fields: &[
            required("task_id", FieldKind::Id, "The task being integrated."),
            optional("attempt_number", COUNT, "1 for the first attempt, and so on."),
            optional("base_sha", FieldKind::Id, "The commit merged into."),
            optional("head_sha", FieldKind::Id, "The commit being merged."),
        ],
    },
    EventSpec {
        event_type: EventType::IntegrationAttemptFinished,
        description: "An integration attempt ended; it matches its start by the attempt's entity_id.",
        fields: &[
            required("task_id", FieldKind::Id, "The task being integrated."),
            required(
                "result",
                FieldKind::Enum(&ATTEMPT_RESULTS),
                "How it ended.",
            ),
            optional("attempt_number", COUNT, "As in integration_attempt_started."),
        ],
    },
    EventSpec {
        event_type: EventType::ChangeCommitted,
        description: "A change (a commit) was made; the change is the event's entity and `occurred_at` is its commit time.",
        fields: &[
            optional("task_id", FieldKind::Id, "The task the change belongs to."),
            optional("author", FieldKind::Id, "Who made the change."),
            optional("service", FieldKind::Id, "The service the change is for."),
        ],
    },
    EventSpec {
        event_type: EventType::DeploymentStarted,
        description: "A deployment started; the deployment is the event's entity.",
        fields: &DEPLOYMENT_FIELDS,
    },
    EventSpec {
        event_type: EventType::DeploymentFinished,
        description: "A deployment ended; its time is the deployment's time in the DORA metrics.",
        fields: &[
            DEPLOYMENT_FIELDS[0],
            required(
                "status",
                FieldKind::Enum(&DEPLOYMENT_STATUSES),
                "How it ended.",
            ),
            DEPLOYMENT_FIELDS[1],
            DEPLOYMENT_FIELDS[2],
            DEPLOYMENT_FIELDS[3],
            DEPLOYMENT_FIELDS[4],
        ],
    },
    EventSpec {
        event_type: EventType::IncidentOpened,
        description: "An incident (a failure in service) began; the incident is the event's entity.",
        fields: &INCIDENT_FIELDS,
    },
    EventSpec {
        event_type: EventType::IncidentResolved,
        description: "An incident was resolved (service restored); it matches its opening by the incident's entity_id.",
        fields: &INCIDENT_FIELDS,
    },
];

/// The catalogue entry of an event type.
pub fn spec(event_type: EventType) -> &'static EventSpec {
    // CATALOGUE is in EventType::ALL order; the unit test below keeps it so.
    &CATALOGUE[event_type as usize]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_catalogue_has_one_entry_per_event_type_in_order() {
        let listed: Vec<EventType> = CATALOGUE.iter().map(|s| s.event_type).collect();
        assert_eq!(listed, EventType::ALL);
        for event_type in EventType::ALL {
            assert_eq!(spec(*event_type).event_type, *event_type);
        }
    }

    #[test]
    fn field_names_are_unique_per_event_type() {
        for spec in &CATALOGUE {
            let mut names: Vec<_> = spec.fields.iter().map(|f| f.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), spec.fields.len(), "{}", spec.event_type);
        }
    }
}
