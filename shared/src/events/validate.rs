//! Validation of producer JSON against the catalogue: every error names its field and
//! carries a stable code, so a producer can fix the event without reading our code.

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value};
use uuid::Uuid;

use super::catalogue::{self, FieldKind, PayloadField};
use super::{EntityType, EventType, NewEvent};

/// The longest accepted id (event_id, entity_id, ids inside payloads).
pub const MAX_ID_LEN: usize = 256;

/// The top-level fields of an event; anything else is refused as a likely typo.
pub const EVENT_FIELDS: [&str; 9] = [
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
    /// invalid_uuid, invalid_timestamp, unknown_field, too_long, mismatch, out_of_range.
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

/// Keeps a check's error and hands back its value, so one event's checks all run and every
/// invalid field is reported, not only the first.
fn keep<T>(errors: &mut Vec<FieldError>, checked: Result<T, FieldError>) -> Option<T> {
    checked.map_err(|error| errors.push(error)).ok()
}

/// Validates one event of a batch. Returns every problem found, each naming its field.
pub fn validate_event(index: usize, value: &Value) -> Result<NewEvent, Vec<FieldError>> {
    let Some(object) = value.as_object() else {
        return Err(vec![FieldError {
            index,
            field: "event".into(),
            code: "invalid_type",
            message: "each event must be a JSON object".into(),
        }]);
    };
    let top = Checker {
        index,
        object,
        prefix: "",
    };
    let mut errors = Vec::new();
    for unknown in object
        .keys()
        .filter(|k| !EVENT_FIELDS.contains(&k.as_str()))
    {
        errors.push(top.error(
            unknown,
            "unknown_field",
            format!(
                "unknown field {unknown}; allowed: {}",
                EVENT_FIELDS.join(", ")
            ),
        ));
    }

    let project_id = top.required_string("project_id").and_then(|project_id| {
        Uuid::parse_str(project_id).map_err(|_| {
            top.error(
                "project_id",
                "invalid_uuid",
                "project_id must be a UUID".into(),
            )
        })
    });
    let project_id = keep(&mut errors, project_id);
    let event_id = keep(&mut errors, top.required_string("event_id")).map(str::to_owned);
    let event_type = top.required_string("event_type").and_then(|text| {
        text.parse::<EventType>().map_err(|()| {
            let allowed: Vec<_> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            top.error(
                "event_type",
                "invalid_value",
                format!("event_type must be one of {}", allowed.join(", ")),
            )
        })
    });
    let event_type = keep(&mut errors, event_type);
    let entity_type = top.required_string("entity_type").and_then(|text| {
        text.parse::<EntityType>().map_err(|()| {
            let allowed: Vec<_> = EntityType::ALL.iter().map(|t| t.as_str()).collect();
            top.error(
                "entity_type",
                "invalid_value",
                format!("entity_type must be one of {}", allowed.join(", ")),
            )
        })
    });
    let entity_type = keep(&mut errors, entity_type);
    if let (Some(event_type), Some(entity_type)) = (event_type, entity_type) {
        if entity_type != event_type.entity_type() {
            errors.push(top.error(
                "entity_type",
                "mismatch",
                format!(
                    "{} events must have entity_type {}",
                    event_type,
                    event_type.entity_type()
                ),
            ));
        }
    }
    let entity_id = keep(&mut errors, top.required_string("entity_id")).map(str::to_owned);
    let occurred_at = top
        .required_string("occurred_at")
        .and_then(|text| top.timestamp_value("occurred_at", text));
    let occurred_at = keep(&mut errors, occurred_at);
    let caused_by = keep(&mut errors, top.optional_string("caused_by")).flatten();
    let correlation_id = keep(&mut errors, top.optional_string("correlation_id")).flatten();

    let payload = match object.get("payload") {
        Some(Value::Object(payload)) => Some(payload),
        Some(Value::Null) | None => {
            errors.push(top.error("payload", "required", "payload is required".into()));
            None
        }
        Some(_) => {
            errors.push(top.error(
                "payload",
                "invalid_type",
                "payload must be a JSON object".into(),
            ));
            None
        }
    };
    if let (Some(event_type), Some(payload)) = (event_type, payload) {
        validate_payload(
            event_type,
            &Checker {
                index,
                object: payload,
                prefix: "payload.",
            },
            &mut errors,
        );
    }
    // NUL anywhere in the payload (keys and values at any depth, which the catalogue's
    // checks do not all see); a catalogue field already refused for it is not named twice.
    if let Some(path) = payload.and_then(first_nul) {
        let field = format!("payload.{path}");
        if !errors.iter().any(|e| e.field == field) {
            errors.push(FieldError {
                index,
                message: nul_message(&field),
                field,
                code: "invalid_value",
            });
        }
    }

    match (
        project_id,
        event_id,
        entity_type,
        entity_id,
        event_type,
        occurred_at,
        payload,
    ) {
        (
            Some(project_id),
            Some(event_id),
            Some(entity_type),
            Some(entity_id),
            Some(event_type),
            Some(occurred_at),
            Some(payload),
        ) if errors.is_empty() => Ok(NewEvent {
            project_id,
            event_id,
            entity_type,
            entity_id,
            event_type,
            occurred_at,
            payload: Value::Object(payload.clone()),
            payload_text: None,
            caused_by: caused_by.map(str::to_owned),
            correlation_id: correlation_id.map(str::to_owned),
        }),
        _ => Err(errors),
    }
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

/// Checks a payload against the event type's entry in the catalogue, then the rules that
/// span fields.
fn validate_payload(event_type: EventType, p: &Checker<'_>, errors: &mut Vec<FieldError>) {
    for field in catalogue::spec(event_type).fields {
        keep(errors, p.check_field(field));
    }
    if event_type == EventType::MilestoneUpserted {
        // Each timestamp's own error is already reported; compare only valid ones.
        let planned = p.optional_timestamp("planned_start_at").ok().flatten();
        let due = p.optional_timestamp("due_at").ok().flatten();
        if let (Some(planned), Some(due)) = (planned, due) {
            if due < planned {
                errors.push(p.error(
                    "due_at",
                    "invalid_value",
                    "due_at must not be before planned_start_at".into(),
                ));
            }
        }
    }
}

impl Checker<'_> {
    /// One catalogue field: present when required, of its kind when present.
    fn check_field(&self, field: &PayloadField) -> Result<(), FieldError> {
        let name = field.name;
        if field.required && self.get(name).is_none() {
            return Err(self.error(name, "required", format!("{name} is required")));
        }
        match field.kind {
            FieldKind::Id | FieldKind::Text => self.optional_string(name).map(drop),
            FieldKind::Enum(allowed) => self.optional_enum(name, allowed),
            FieldKind::Timestamp => self.optional_timestamp(name).map(drop),
            FieldKind::Integer { min, max } => self.optional_integer(name, min, max),
            FieldKind::Number { min, max } => self.optional_number(name, min, max),
            FieldKind::Bool => self.optional_bool(name),
            FieldKind::IdList => self.optional_id_list(name),
        }
    }

    /// An array of ids: each item as a string field, the array at most `MAX_LIST_LEN` long.
    fn optional_id_list(&self, field: &str) -> Result<(), FieldError> {
        let Some(value) = self.get(field) else {
            return Ok(());
        };
        let items = value.as_array().ok_or_else(|| {
            self.error(
                field,
                "invalid_type",
                format!("{field} must be an array of strings"),
            )
        })?;
        if items.len() > catalogue::MAX_LIST_LEN {
            return Err(self.error(
                field,
                "too_long",
                format!(
                    "{field} must hold at most {} items",
                    catalogue::MAX_LIST_LEN
                ),
            ));
        }
        for (i, item) in items.iter().enumerate() {
            if !item.is_string() {
                return Err(self.error(
                    field,
                    "invalid_type",
                    format!("{field} must be an array of strings (item {i} is not)"),
                ));
            }
            self.string_value(field, item).map_err(|mut e| {
                e.message = format!("{} (item {i})", e.message);
                e
            })?;
        }
        Ok(())
    }
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

    /// The one error of an event with one problem.
    fn only_error(result: Result<NewEvent, Vec<FieldError>>) -> FieldError {
        let errors = result.unwrap_err();
        assert_eq!(errors.len(), 1, "{errors:?}");
        errors.into_iter().next().unwrap()
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
        let e = only_error(validate_event(3, &v));
        assert_eq!(
            (e.index, e.field.as_str(), e.code),
            (3, "payload.to_state", "invalid_value")
        );
    }

    #[test]
    fn entity_type_must_match_the_event_type() {
        let v = event("gate_requested", "task", json!({"task_id": "t1"}));
        assert_eq!(only_error(validate_event(0, &v)).code, "mismatch");
    }

    #[test]
    fn a_malformed_timestamp_is_refused() {
        let mut v = event("project_upserted", "project", json!({"name": "P"}));
        v["occurred_at"] = json!("yesterday");
        let e = only_error(validate_event(0, &v));
        assert_eq!(
            (e.field.as_str(), e.code),
            ("occurred_at", "invalid_timestamp")
        );
    }

    #[test]
    fn unknown_top_level_fields_are_refused() {
        let mut v = event("project_upserted", "project", json!({"name": "P"}));
        v["ocurred_at"] = json!("2026-01-01T00:00:00Z");
        assert_eq!(only_error(validate_event(0, &v)).code, "unknown_field");
    }

    #[test]
    fn a_wrong_json_type_is_refused() {
        let v = event(
            "task_created",
            "task",
            json!({"title": "T", "priority": "high"}),
        );
        let e = only_error(validate_event(0, &v));
        assert_eq!(
            (e.field.as_str(), e.code),
            ("payload.priority", "invalid_type")
        );
    }

    #[test]
    fn every_invalid_field_of_an_event_is_reported() {
        let mut v = event("task_created", "tsk", json!({"priority": "high"}));
        v["occurred_at"] = json!("yesterday");
        let errors = validate_event(4, &v).unwrap_err();
        let found: Vec<_> = errors
            .iter()
            .map(|e| (e.index, e.field.as_str(), e.code))
            .collect();
        assert_eq!(
            found,
            [
                (4, "entity_type", "invalid_value"),
                (4, "occurred_at", "invalid_timestamp"),
                (4, "payload.title", "required"),
                (4, "payload.priority", "invalid_type"),
            ]
        );
    }

    #[test]
    fn a_payload_is_checked_even_when_the_envelope_has_errors() {
        let mut v = event(
            "gate_decision_recorded",
            "gate",
            json!({"outcome": "maybe"}),
        );
        v["project_id"] = json!("not-a-uuid");
        let errors = validate_event(0, &v).unwrap_err();
        let fields: Vec<_> = errors.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["project_id", "payload.task_id", "payload.outcome"]);
    }

    /// A valid value of each kind, and one of the right JSON type that the kind refuses.
    fn samples(kind: FieldKind) -> (Value, Option<Value>) {
        match kind {
            FieldKind::Id => (json!("x-1"), Some(json!("x".repeat(MAX_ID_LEN + 1)))),
            FieldKind::Text => (json!("x".repeat(MAX_ID_LEN + 1)), Some(json!("  "))),
            FieldKind::Enum(values) => (json!(values[0]), Some(json!("no-such-value"))),
            FieldKind::Timestamp => (json!("2026-03-02T10:00:00Z"), Some(json!("2026-03-02"))),
            FieldKind::Integer { min, max } => (json!(max), min.checked_sub(1).map(|n| json!(n))),
            FieldKind::Number { min, max } => (json!((min + max) / 2.0), Some(json!(max + 1.0))),
            FieldKind::Bool => (json!(true), None),
            FieldKind::IdList => (json!(["c-1", "c-2"]), Some(json!(["c-1", ""]))),
        }
    }

    #[test]
    fn every_catalogue_field_is_checked_as_its_kind_says() {
        for spec in &catalogue::CATALOGUE {
            let event_type = spec.event_type;
            let entity = event_type.entity_type().as_str();
            let valid: serde_json::Map<String, Value> = spec
                .fields
                .iter()
                .map(|f| (f.name.to_owned(), samples(f.kind).0))
                .collect();
            let v = event(event_type.as_str(), entity, Value::Object(valid.clone()));
            validate_event(0, &v).unwrap_or_else(|e| panic!("{event_type}: {e:?}"));
            for field in spec.fields {
                let path = format!("payload.{}", field.name);
                let with = |value: Option<Value>| {
                    let mut payload = valid.clone();
                    match value {
                        Some(value) => payload.insert(field.name.to_owned(), value),
                        None => payload.remove(field.name),
                    };
                    validate_event(
                        0,
                        &event(event_type.as_str(), entity, Value::Object(payload)),
                    )
                };
                let missing = with(None);
                if field.required {
                    let e = only_error(missing);
                    assert_eq!((e.field.as_str(), e.code), (path.as_str(), "required"));
                } else {
                    missing.unwrap_or_else(|e| panic!("{event_type}.{}: {e:?}", field.name));
                }
                let wrong_type = if field.kind == FieldKind::Bool {
                    json!("yes")
                } else {
                    json!([1])
                };
                let e = only_error(with(Some(wrong_type)));
                assert_eq!((e.field.as_str(), e.code), (path.as_str(), "invalid_type"));
                if let Some(refused) = samples(field.kind).1 {
                    let e = only_error(with(Some(refused)));
                    assert_eq!(e.field, path, "{e:?}");
                }
            }
        }
    }

    #[test]
    fn nul_anywhere_is_refused_naming_the_field() {
        let mut v = event("task_created", "task", json!({"title": "t"}));
        v["caused_by"] = json!("a\u{0}b");
        let e = only_error(validate_event(0, &v));
        assert_eq!((e.field.as_str(), e.code), ("caused_by", "invalid_value"));

        let v = event(
            "task_created",
            "task",
            json!({"title": "t", "extra": {"list": ["ok", "x\u{0}"]}}),
        );
        let e = only_error(validate_event(0, &v));
        assert_eq!(e.field, "payload.extra.list.1");

        let v = event("task_created", "task", json!({"title": "t", "k\u{0}": 1}));
        assert_eq!(only_error(validate_event(0, &v)).field, "payload.k\\u0000");
    }

    #[test]
    fn a_timestamp_before_year_one_is_refused() {
        let mut v = event("task_created", "task", json!({"title": "t"}));
        v["occurred_at"] = json!("0000-06-01T00:00:00Z");
        let e = only_error(validate_event(0, &v));
        assert_eq!(
            (e.field.as_str(), e.code),
            ("occurred_at", "invalid_timestamp")
        );
    }
}
