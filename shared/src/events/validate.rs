//! Validation of producer JSON against the catalogue: every error names its field and
//! carries a stable code, so a producer can fix the event without reading our code.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::{
    EntityType, EventType, NewEvent, ATTEMPT_RESULTS, GATE_OUTCOMES, PROJECT_STATUSES, TASK_STATES,
};

/// The longest accepted id (event_id, entity_id, ids inside payloads).
pub const MAX_ID_LEN: usize = 256;

/// The top-level fields of an event; anything else is refused as a likely typo.
const EVENT_FIELDS: [&str; 9] = [
    "project_id",
    "event_id",
    "entity_type",
    "entity_id",
    "event_type",
    "occurred_at",
    "payload",
    "caused_by",
    "correlation_id",
];

/// Why one event of a batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// Position of the event in the batch (0-based).
    pub index: usize,
    /// The offending field, dotted for payload fields (`payload.to_state`).
    pub field: String,
    /// A stable machine-readable code: required, invalid_type, invalid_value,
    /// invalid_uuid, invalid_timestamp, unknown_field, too_long, mismatch.
    pub code: &'static str,
    /// A sentence for people.
    pub message: String,
}

struct Checker<'a> {
    index: usize,
    object: &'a Map<String, Value>,
    prefix: &'static str,
}

impl<'a> Checker<'a> {
    fn error(&self, field: &str, code: &'static str, message: String) -> FieldError {
        FieldError {
            index: self.index,
            field: format!("{}{field}", self.prefix),
            code,
            message,
        }
    }

    /// A present, non-null value.
    fn get(&self, field: &str) -> Option<&'a Value> {
        self.object.get(field).filter(|v| !v.is_null())
    }

    fn required_string(&self, field: &str) -> Result<&'a str, FieldError> {
        match self.get(field) {
            None => Err(self.error(field, "required", format!("{field} is required"))),
            Some(value) => self.string_value(field, value),
        }
    }

    fn optional_string(&self, field: &str) -> Result<Option<&'a str>, FieldError> {
        self.get(field)
            .map(|value| self.string_value(field, value))
            .transpose()
    }

    fn string_value(&self, field: &str, value: &'a Value) -> Result<&'a str, FieldError> {
        let text = value.as_str().ok_or_else(|| {
            self.error(field, "invalid_type", format!("{field} must be a string"))
        })?;
        if text.contains('\0') {
            return Err(self.error(field, "invalid_value", nul_message(field)));
        }
        if text.trim().is_empty() {
            return Err(self.error(field, "required", format!("{field} must not be empty")));
        }
        if text.chars().count() > MAX_ID_LEN && field != "title" && field != "reason" {
            return Err(self.error(
                field,
                "too_long",
                format!("{field} must be at most {MAX_ID_LEN} characters"),
            ));
        }
        Ok(text)
    }

    fn one_of(&self, field: &str, text: &str, allowed: &[&str]) -> Result<(), FieldError> {
        if allowed.contains(&text) {
            Ok(())
        } else {
            Err(self.error(
                field,
                "invalid_value",
                format!("{field} must be one of {}", allowed.join(", ")),
            ))
        }
    }

    fn required_enum(&self, field: &str, allowed: &[&str]) -> Result<(), FieldError> {
        let text = self.required_string(field)?;
        self.one_of(field, text, allowed)
    }

    fn optional_enum(&self, field: &str, allowed: &[&str]) -> Result<(), FieldError> {
        match self.optional_string(field)? {
            Some(text) => self.one_of(field, text, allowed),
            None => Ok(()),
        }
    }

    fn optional_timestamp(&self, field: &str) -> Result<Option<DateTime<Utc>>, FieldError> {
        self.optional_string(field)?
            .map(|text| self.timestamp_value(field, text))
            .transpose()
    }

    fn timestamp_value(&self, field: &str, text: &str) -> Result<DateTime<Utc>, FieldError> {
        DateTime::parse_from_rfc3339(text)
            .ok()
            .map(|t| t.with_timezone(&Utc))
            // PostgreSQL and the read model keep years 1–9999 (SPEC §14).
            .filter(|t| (1..=9999).contains(&chrono::Datelike::year(t)))
            .ok_or_else(|| {
                self.error(
                    field,
                    "invalid_timestamp",
                    format!("{field} must be an RFC 3339 timestamp such as 2026-01-31T09:30:00Z"),
                )
            })
    }

    fn optional_integer(&self, field: &str, min: i64, max: i64) -> Result<(), FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(());
        };
        match value.as_i64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            Some(_) => Err(self.error(
                field,
                "invalid_value",
                format!("{field} must be between {min} and {max}"),
            )),
            None => Err(self.error(field, "invalid_type", format!("{field} must be an integer"))),
        }
    }

    fn optional_number(&self, field: &str, min: f64, max: f64) -> Result<(), FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(());
        };
        match value.as_f64() {
            Some(n) if n.is_finite() && (min..=max).contains(&n) => Ok(()),
            Some(_) => Err(self.error(
                field,
                "invalid_value",
                format!("{field} must be between {min} and {max}"),
            )),
            None => Err(self.error(field, "invalid_type", format!("{field} must be a number"))),
        }
    }

    fn optional_bool(&self, field: &str) -> Result<(), FieldError> {
        match self.get(field) {
            Some(value) if !value.is_boolean() => Err(self.error(
                field,
                "invalid_type",
                format!("{field} must be true or false"),
            )),
            _ => Ok(()),
        }
    }
}

/// Validates one event of a batch. Returns the first problem found, naming its field.
pub fn validate_event(index: usize, value: &Value) -> Result<NewEvent, FieldError> {
    let Some(object) = value.as_object() else {
        return Err(FieldError {
            index,
            field: "event".into(),
            code: "invalid_type",
            message: "each event must be a JSON object".into(),
        });
    };
    let top = Checker {
        index,
        object,
        prefix: "",
    };
    if let Some(unknown) = object.keys().find(|k| !EVENT_FIELDS.contains(&k.as_str())) {
        return Err(top.error(
            unknown,
            "unknown_field",
            format!(
                "unknown field {unknown}; allowed: {}",
                EVENT_FIELDS.join(", ")
            ),
        ));
    }

    let project_id = top.required_string("project_id")?;
    let project_id = Uuid::parse_str(project_id).map_err(|_| {
        top.error(
            "project_id",
            "invalid_uuid",
            "project_id must be a UUID".into(),
        )
    })?;
    let event_id = top.required_string("event_id")?.to_owned();
    let event_type_text = top.required_string("event_type")?;
    let event_type: EventType = event_type_text.parse().map_err(|()| {
        let allowed: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
        top.error(
            "event_type",
            "invalid_value",
            format!("event_type must be one of {}", allowed.join(", ")),
        )
    })?;
    let entity_type_text = top.required_string("entity_type")?;
    let entity_type: EntityType = entity_type_text.parse().map_err(|()| {
        let allowed: Vec<_> = EntityType::ALL.iter().map(|t| t.as_str()).collect();
        top.error(
            "entity_type",
            "invalid_value",
            format!("entity_type must be one of {}", allowed.join(", ")),
        )
    })?;
    if entity_type != event_type.entity_type() {
        return Err(top.error(
            "entity_type",
            "mismatch",
            format!(
                "{} events must have entity_type {}",
                event_type,
                event_type.entity_type()
            ),
        ));
    }
    let entity_id = top.required_string("entity_id")?.to_owned();
    let occurred_at = top.timestamp_value("occurred_at", top.required_string("occurred_at")?)?;
    let caused_by = top.optional_string("caused_by")?.map(str::to_owned);
    let correlation_id = top.optional_string("correlation_id")?.map(str::to_owned);

    let payload = match object.get("payload") {
        Some(Value::Object(payload)) => payload,
        Some(Value::Null) | None => {
            return Err(top.error("payload", "required", "payload is required".into()))
        }
        Some(_) => {
            return Err(top.error(
                "payload",
                "invalid_type",
                "payload must be a JSON object".into(),
            ))
        }
    };
    if let Some(path) = first_nul(payload) {
        let field = format!("payload.{path}");
        return Err(FieldError {
            index,
            message: nul_message(&field),
            field,
            code: "invalid_value",
        });
    }
    validate_payload(
        event_type,
        &Checker {
            index,
            object: payload,
            prefix: "payload.",
        },
    )?;

    Ok(NewEvent {
        project_id,
        event_id,
        entity_type,
        entity_id,
        event_type,
        occurred_at,
        payload: Value::Object(payload.clone()),
        payload_text: None,
        caused_by,
        correlation_id,
    })
}

fn nul_message(field: &str) -> String {
    format!("{field} must not contain the NUL character (\\u0000)")
}

/// The dotted path of the first payload key or string value (at any depth) that holds a
/// NUL character, which PostgreSQL cannot store in text or JSONB.
fn first_nul(object: &Map<String, Value>) -> Option<String> {
    fn join(head: &str, rest: String) -> String {
        if rest.is_empty() {
            head.to_owned()
        } else {
            format!("{head}.{rest}")
        }
    }
    fn walk(value: &Value) -> Option<String> {
        match value {
            Value::String(text) if text.contains('\0') => Some(String::new()),
            Value::Array(items) => items
                .iter()
                .enumerate()
                .find_map(|(i, item)| walk(item).map(|rest| join(&i.to_string(), rest))),
            Value::Object(map) => first_nul(map),
            _ => None,
        }
    }
    object.iter().find_map(|(key, item)| {
        if key.contains('\0') {
            return Some(key.replace('\0', "\\u0000"));
        }
        walk(item).map(|rest| join(key, rest))
    })
}

fn validate_payload(event_type: EventType, p: &Checker<'_>) -> Result<(), FieldError> {
    match event_type {
        EventType::ProjectUpserted => {
            p.required_string("name")?;
            p.optional_enum("status", &PROJECT_STATUSES)?;
        }
        EventType::PhaseUpserted => {
            p.required_string("name")?;
            p.optional_integer("sequence", i64::from(i32::MIN), i64::from(i32::MAX))?;
        }
        EventType::MilestoneUpserted => {
            p.required_string("name")?;
            p.optional_string("phase_id")?;
            p.optional_integer("sequence", i64::from(i32::MIN), i64::from(i32::MAX))?;
            let planned = p.optional_timestamp("planned_start_at")?;
            let due = p.optional_timestamp("due_at")?;
            if let (Some(planned), Some(due)) = (planned, due) {
                if due < planned {
                    return Err(p.error(
                        "due_at",
                        "invalid_value",
                        "due_at must not be before planned_start_at".into(),
                    ));
                }
            }
        }
        EventType::TaskCreated | EventType::TaskUpdated => {
            if event_type == EventType::TaskCreated {
                p.required_string("title")?;
                p.optional_enum("state", &TASK_STATES)?;
            } else {
                p.optional_string("title")?;
            }
            for field in ["phase_id", "milestone_id", "task_class", "assignee"] {
                p.optional_string(field)?;
            }
            p.optional_integer("priority", i64::from(i32::MIN), i64::from(i32::MAX))?;
        }
        EventType::TaskStateTransitioned => {
            p.required_enum("to_state", &TASK_STATES)?;
            p.optional_enum("from_state", &TASK_STATES)?;
            p.optional_string("reason")?;
            p.optional_string("reviewed_by")?;
            p.optional_bool("force")?;
        }
        EventType::GateRequested => {
            p.required_string("task_id")?;
            p.optional_string("gate_type")?;
            p.optional_string("reviewer")?;
            p.optional_number("sla_hours", 0.0, 24.0 * 366.0)?;
        }
        EventType::GateDecisionRecorded => {
            p.required_string("task_id")?;
            p.required_enum("outcome", &GATE_OUTCOMES)?;
            p.optional_string("actor_id")?;
            p.optional_string("gate_type")?;
        }
        EventType::IntegrationAttemptStarted => {
            p.required_string("task_id")?;
            p.optional_integer("attempt_number", 0, i64::from(i32::MAX))?;
            p.optional_string("base_sha")?;
            p.optional_string("head_sha")?;
        }
        EventType::IntegrationAttemptFinished => {
            p.required_string("task_id")?;
            p.required_enum("result", &ATTEMPT_RESULTS)?;
            p.optional_integer("attempt_number", 0, i64::from(i32::MAX))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(event_type: &str, entity_type: &str, payload: Value) -> Value {
        json!({
            "project_id": "7b0c6a52-3f1e-4a43-9a55-0f0d6f2f4a10",
            "event_id": "e1",
            "entity_type": entity_type,
            "entity_id": "x1",
            "event_type": event_type,
            "occurred_at": "2026-03-02T10:00:00Z",
            "payload": payload,
        })
    }

    #[test]
    fn a_valid_transition_is_accepted_with_extra_payload_fields_kept() {
        let v = event(
            "task_state_transitioned",
            "task",
            json!({"to_state": "claimed", "from_state": "ready", "tascade_extra": 1}),
        );
        let e = validate_event(0, &v).unwrap();
        assert_eq!(e.event_type, EventType::TaskStateTransitioned);
        assert_eq!(e.payload["tascade_extra"], 1);
    }

    #[test]
    fn an_unknown_state_names_the_payload_field() {
        let v = event(
            "task_state_transitioned",
            "task",
            json!({"to_state": "done"}),
        );
        let e = validate_event(3, &v).unwrap_err();
        assert_eq!(
            (e.index, e.field.as_str(), e.code),
            (3, "payload.to_state", "invalid_value")
        );
    }

    #[test]
    fn entity_type_must_match_the_event_type() {
        let v = event("gate_requested", "task", json!({"task_id": "t1"}));
        assert_eq!(validate_event(0, &v).unwrap_err().code, "mismatch");
    }

    #[test]
    fn a_malformed_timestamp_is_refused() {
        let mut v = event("project_upserted", "project", json!({"name": "P"}));
        v["occurred_at"] = json!("yesterday");
        let e = validate_event(0, &v).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("occurred_at", "invalid_timestamp")
        );
    }

    #[test]
    fn unknown_top_level_fields_are_refused() {
        let mut v = event("project_upserted", "project", json!({"name": "P"}));
        v["ocurred_at"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(validate_event(0, &v).unwrap_err().code, "unknown_field");
    }

    #[test]
    fn a_wrong_json_type_is_refused() {
        let v = event(
            "task_created",
            "task",
            json!({"title": "T", "priority": "high"}),
        );
        let e = validate_event(0, &v).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("payload.priority", "invalid_type")
        );
    }

    #[test]
    fn nul_anywhere_is_refused_naming_the_field() {
        let mut v = event("task_created", "task", json!({"title": "t"}));
        v["caused_by"] = json!("a\u{0}b");
        let e = validate_event(0, &v).unwrap_err();
        assert_eq!((e.field.as_str(), e.code), ("caused_by", "invalid_value"));

        let v = event(
            "task_created",
            "task",
            json!({"title": "t", "extra": {"list": ["ok", "x\u{0}"]}}),
        );
        let e = validate_event(0, &v).unwrap_err();
        assert_eq!(e.field, "payload.extra.list.1");

        let v = event("task_created", "task", json!({"title": "t", "k\u{0}": 1}));
        assert_eq!(validate_event(0, &v).unwrap_err().field, "payload.k\\u0000");
    }

    #[test]
    fn a_timestamp_before_year_one_is_refused() {
        let mut v = event("task_created", "task", json!({"title": "t"}));
        v["occurred_at"] = json!("0000-06-01T00:00:00Z");
        let e = validate_event(0, &v).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("occurred_at", "invalid_timestamp")
        );
    }
}
