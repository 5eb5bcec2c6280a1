//! Builders for catalogue events, so tests state only what matters to them.

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use uuid::Uuid;

/// Builds events for one project with sequential event ids.
#[derive(Debug, Clone)]
pub struct EventBuilder {
    /// The project.
    pub project_id: Uuid,
    next: u64,
    prefix: String,
}

impl EventBuilder {
    /// A builder for a new random project.
    pub fn new() -> Self {
        Self::for_project(Uuid::new_v4())
    }

    /// A builder for a given project.
    pub fn for_project(project_id: Uuid) -> Self {
        Self {
            project_id,
            next: 0,
            prefix: "ev".into(),
        }
    }

    /// Any event; `at` is RFC 3339 or a parseable time.
    pub fn event(
        &mut self,
        entity_type: &str,
        entity_id: &str,
        event_type: &str,
        at: DateTime<Utc>,
        payload: Value,
    ) -> Value {
        self.next += 1;
        json!({
            "project_id": self.project_id,
            "event_id": format!("{}-{}", self.prefix, self.next),
            "entity_type": entity_type,
            "entity_id": entity_id,
            "event_type": event_type,
            "occurred_at": at.to_rfc3339(),
            "payload": payload,
        })
    }

    /// `task_created`.
    pub fn task_created(&mut self, task: &str, at: DateTime<Utc>, payload: Value) -> Value {
        let mut payload = payload;
        if payload.get("title").is_none() {
            payload["title"] = json!(format!("Task {task}"));
        }
        self.event("task", task, "task_created", at, payload)
    }

    /// `task_state_transitioned` to `to_state`.
    pub fn transition(&mut self, task: &str, to_state: &str, at: DateTime<Utc>) -> Value {
        self.event(
            "task",
            task,
            "task_state_transitioned",
            at,
            json!({ "to_state": to_state }),
        )
    }
}

impl Default for EventBuilder {
    fn default() -> Self {
        Self::new()
    }
}

/// Parses an RFC 3339 time (test convenience).
pub fn t(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("RFC 3339 time")
        .with_timezone(&Utc)
}
