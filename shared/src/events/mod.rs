//! The event catalogue (SPEC §2.3): the closed lists of entity and event types, the
//! validated form of an incoming event, and the validator that turns producer JSON into it.

mod bounds;
pub mod catalogue;
mod validate;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::metrics::dora::DeploymentStatus;
use crate::metrics::{AttemptResult, GateOutcome, TaskState};

pub use bounds::{TimeBounds, DEFAULT_EARLIEST_EVENT_TIME, DEFAULT_MAX_FUTURE_SECONDS};
pub use validate::{validate_event, FieldError, EVENT_FIELDS, MAX_ID_LEN};

/// The task states of SPEC §2.3, in catalogue order (the names of [`TaskState`]).
pub const TASK_STATES: [&str; 11] = {
    let mut names = [""; 11];
    let mut i = 0;
    while i < names.len() {
        names[i] = TaskState::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Outcomes of `gate_decision_recorded` (the names of [`GateOutcome`]).
pub const GATE_OUTCOMES: [&str; 3] = {
    let mut names = [""; 3];
    let mut i = 0;
    while i < names.len() {
        names[i] = GateOutcome::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Results of `integration_attempt_finished` (the names of [`AttemptResult`]).
pub const ATTEMPT_RESULTS: [&str; 4] = {
    let mut names = [""; 4];
    let mut i = 0;
    while i < names.len() {
        names[i] = AttemptResult::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Statuses of `deployment_finished` (the names of [`DeploymentStatus`]).
pub const DEPLOYMENT_STATUSES: [&str; 3] = {
    let mut names = [""; 3];
    let mut i = 0;
    while i < names.len() {
        names[i] = DeploymentStatus::ALL[i].as_str();
        i += 1;
    }
    names
};

/// Project statuses of `project_upserted`.
pub const PROJECT_STATUSES: [&str; 3] = ["active", "paused", "archived"];

macro_rules! closed_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($variant),+ }

        impl $name {
            /// Every value, in catalogue order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl std::str::FromStr for $name {
            type Err = ();
            fn from_str(s: &str) -> Result<Self, ()> {
                match s { $($text => Ok($name::$variant),)+ _ => Err(()) }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

closed_enum! {
    /// What an event is about.
    EntityType {
        Project => "project",
        Phase => "phase",
        Milestone => "milestone",
        Task => "task",
        Gate => "gate",
        IntegrationAttempt => "integration_attempt",
        Change => "change",
        Deployment => "deployment",
        Incident => "incident",
    }
}

closed_enum! {
    /// What happened.
    EventType {
        ProjectUpserted => "project_upserted",
        PhaseUpserted => "phase_upserted",
        MilestoneUpserted => "milestone_upserted",
        TaskCreated => "task_created",
        TaskUpdated => "task_updated",
        TaskStateTransitioned => "task_state_transitioned",
        GateRequested => "gate_requested",
        GateDecisionRecorded => "gate_decision_recorded",
        IntegrationAttemptStarted => "integration_attempt_started",
        IntegrationAttemptFinished => "integration_attempt_finished",
        ChangeCommitted => "change_committed",
        DeploymentStarted => "deployment_started",
        DeploymentFinished => "deployment_finished",
        IncidentOpened => "incident_opened",
        IncidentResolved => "incident_resolved",
    }
}

impl EventType {
    /// The entity type every event of this type must carry.
    pub fn entity_type(self) -> EntityType {
        match self {
            Self::ProjectUpserted => EntityType::Project,
            Self::PhaseUpserted => EntityType::Phase,
            Self::MilestoneUpserted => EntityType::Milestone,
            Self::TaskCreated | Self::TaskUpdated | Self::TaskStateTransitioned => EntityType::Task,
            Self::GateRequested | Self::GateDecisionRecorded => EntityType::Gate,
            Self::IntegrationAttemptStarted | Self::IntegrationAttemptFinished => {
                EntityType::IntegrationAttempt
            }
            Self::ChangeCommitted => EntityType::Change,
            Self::DeploymentStarted | Self::DeploymentFinished => EntityType::Deployment,
            Self::IncidentOpened | Self::IncidentResolved => EntityType::Incident,
        }
    }
}

/// An event that passed validation and can be appended to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The project the event belongs to.
    pub project_id: Uuid,
    /// The producer's idempotency key, unique per project.
    pub event_id: String,
    /// What the event is about.
    pub entity_type: EntityType,
    /// The entity's id in the producer's system.
    pub entity_id: String,
    /// What happened.
    pub event_type: EventType,
    /// When it happened at the source.
    pub occurred_at: DateTime<Utc>,
    /// The event's payload object, unknown fields included.
    pub payload: serde_json::Value,
    /// The payload's JSON text exactly as the producer sent it, when the caller kept it: it
    /// is what gets stored, so numbers keep every digit (`payload` holds them as `f64`).
    /// `None`: `payload` is serialised instead.
    pub payload_text: Option<String>,
    /// The event that caused this one, if the producer knows it.
    pub caused_by: Option<String>,
    /// A correlation id spanning several events.
    pub correlation_id: Option<String>,
}
