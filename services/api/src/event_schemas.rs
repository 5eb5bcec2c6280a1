//! The OpenAPI schemas of the ingest body, rendered from the validator's catalogue
//! (`flowmeter_shared::events::catalogue`): one event schema per event type, each with its
//! payload schema, joined by `oneOf` with `event_type` as the discriminator. The validator
//! reads the same table, so the document and ingest cannot disagree.

use flowmeter_shared::events::catalogue::{
    EventSpec, FieldKind, PayloadField, CATALOGUE, MAX_LIST_LEN,
};
use flowmeter_shared::events::{EventType, MAX_ID_LEN};
use utoipa::openapi::schema::{
    AdditionalProperties, ArrayBuilder, Discriminator, KnownFormat, ObjectBuilder, OneOfBuilder,
    Schema, SchemaFormat, SchemaType, Type,
};
use utoipa::openapi::{Ref, RefOr};

/// One event as a producer sends it (SPEC §2.3, docs/EVENTS.md): the schema of its
/// `event_type`. Its OpenAPI schema is rendered from the catalogue, not derived.
pub struct EventInput;

impl utoipa::PartialSchema for EventInput {
    fn schema() -> RefOr<Schema> {
        let mut discriminator = Discriminator::new("event_type");
        let mut one_of = OneOfBuilder::new().description(Some(
            "One event; its `event_type` selects the schema (docs/EVENTS.md lists every type with an example).",
        ));
        for spec in &CATALOGUE {
            let name = event_schema_name(spec.event_type);
            discriminator.mapping.insert(
                spec.event_type.as_str().to_owned(),
                format!("#/components/schemas/{name}"),
            );
            one_of = one_of.item(Ref::from_schema_name(name));
        }
        one_of.discriminator(Some(discriminator)).into()
    }
}

impl utoipa::ToSchema for EventInput {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for spec in &CATALOGUE {
            schemas.push((event_schema_name(spec.event_type), event_schema(spec)));
            schemas.push((payload_schema_name(spec.event_type), payload_schema(spec)));
        }
    }
}

/// `task_created` → `TaskCreated`.
fn pascal_case(name: &str) -> String {
    name.split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// The component name of an event type's event schema (`TaskCreatedEvent`).
pub fn event_schema_name(event_type: EventType) -> String {
    format!("{}Event", pascal_case(event_type.as_str()))
}

/// The component name of an event type's payload schema (`TaskCreatedPayload`).
pub fn payload_schema_name(event_type: EventType) -> String {
    format!("{}Payload", pascal_case(event_type.as_str()))
}

/// A string of 1 to `max` characters (any length without `max`).
fn string(max: Option<usize>, description: &str) -> ObjectBuilder {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(max)
        .description(Some(description))
}

/// The envelope of one event type, its `payload` a reference to the payload schema.
fn event_schema(spec: &EventSpec) -> RefOr<Schema> {
    let event_type = spec.event_type;
    let single = |value: &str, description: &str| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some([value.to_owned()]))
            .description(Some(description))
    };
    let optional_id = |description: &str| {
        string(Some(MAX_ID_LEN), description)
            .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
    };
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .title(Some(event_type.as_str()))
        .description(Some(spec.description))
        .property(
            "project_id",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::Uuid)))
                .description(Some("The project the event belongs to.")),
        )
        .property(
            "event_id",
            string(
                Some(MAX_ID_LEN),
                "The producer's idempotency key, unique per project.",
            ),
        )
        .property(
            "entity_type",
            single(
                event_type.entity_type().as_str(),
                "What the event is about.",
            ),
        )
        .property(
            "entity_id",
            string(
                Some(MAX_ID_LEN),
                "The entity's id in the producer's system.",
            ),
        )
        .property("event_type", single(event_type.as_str(), "What happened."))
        .property(
            "occurred_at",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                .description(Some("When it happened at the source (RFC 3339).")),
        )
        .property(
            "payload",
            Ref::from_schema_name(payload_schema_name(event_type)),
        )
        .property(
            "caused_by",
            optional_id("The event_id of the event that caused this one, if known."),
        )
        .property(
            "correlation_id",
            optional_id("An id spanning several events."),
        )
        .required("project_id")
        .required("event_id")
        .required("entity_type")
        .required("entity_id")
        .required("event_type")
        .required("occurred_at")
        .required("payload")
        // Unknown top-level fields are refused as likely typos.
        .additional_properties(Some(AdditionalProperties::FreeForm(false)))
        .into()
}

/// The payload of one event type: its catalogue fields; unknown fields are kept.
fn payload_schema(spec: &EventSpec) -> RefOr<Schema> {
    let mut payload = ObjectBuilder::new()
        .schema_type(Type::Object)
        .description(Some(format!(
            "The payload of `{}`. Fields not listed here are kept with the event and ignored.",
            spec.event_type
        )));
    for field in spec.fields {
        payload = payload.property(field.name, field_schema(field));
        if field.required {
            payload = payload.required(field.name);
        }
    }
    payload
        .additional_properties(Some(AdditionalProperties::FreeForm(true)))
        .into()
}

/// An id list: an array of ids, `null` accepted when optional.
fn id_list_schema(field: &PayloadField) -> RefOr<Schema> {
    let array = ArrayBuilder::new()
        .items(string(Some(MAX_ID_LEN), "An id."))
        .max_items(Some(MAX_LIST_LEN))
        .description(Some(field.description));
    let json_type = if field.required {
        SchemaType::new(Type::Array)
    } else {
        SchemaType::from_iter([Type::Array, Type::Null])
    };
    array.schema_type(json_type).into()
}

fn field_schema(field: &PayloadField) -> RefOr<Schema> {
    let schema = match field.kind {
        FieldKind::Id => string(Some(MAX_ID_LEN), field.description),
        FieldKind::Text => string(None, field.description),
        FieldKind::Enum(values) => ObjectBuilder::new()
            .schema_type(Type::String)
            .enum_values(Some(values.iter().copied())),
        FieldKind::Timestamp => ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime))),
        FieldKind::Integer { min, max } => ObjectBuilder::new()
            .schema_type(Type::Integer)
            .minimum(Some(min))
            .maximum(Some(max)),
        FieldKind::Number { min, max } => ObjectBuilder::new()
            .schema_type(Type::Number)
            .minimum(Some(min))
            .maximum(Some(max)),
        FieldKind::Bool => ObjectBuilder::new().schema_type(Type::Boolean),
        FieldKind::IdList => return id_list_schema(field),
    }
    .description(Some(field.description));
    if field.required {
        return schema.into();
    }
    // `null` counts as absent.
    let json_type = match field.kind {
        FieldKind::Integer { .. } => Type::Integer,
        FieldKind::Number { .. } => Type::Number,
        FieldKind::Bool => Type::Boolean,
        _ => Type::String,
    };
    schema
        .schema_type(SchemaType::from_iter([json_type, Type::Null]))
        .into()
}
