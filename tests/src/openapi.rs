//! Checks against the served OpenAPI document: `$ref` resolution, and a strict validator
//! for the JSON Schema subset the document uses (types with `null`, objects with
//! `properties`/`required`/`additionalProperties`, arrays, `enum`, `oneOf`/`anyOf`/`allOf`,
//! `$ref`). Properties a schema does not declare are errors, so a field added to a response
//! without documentation fails the test that validates it.

use serde_json::Value;

/// Resolves a local `$ref` (`#/components/schemas/X`) in `document`.
pub fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    document.pointer(reference.strip_prefix('#')?)
}

/// Every `$ref` in `value`, with the JSON pointer where it sits.
pub fn references(value: &Value, at: &str, found: &mut Vec<(String, String)>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if key == "$ref" {
                    if let Some(target) = child.as_str() {
                        found.push((at.to_owned(), target.to_owned()));
                    }
                } else {
                    references(child, &format!("{at}/{key}"), found);
                }
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                references(child, &format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// The OpenAPI document a running server serves.
pub async fn document(app: &crate::TestApp) -> Value {
    app.get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .expect("the OpenAPI document is JSON")
}

/// The schema of an operation's response body for `status` (JSON content).
pub fn response_schema<'a>(
    document: &'a Value,
    method: &str,
    path: &str,
    status: u16,
) -> Option<&'a Value> {
    document
        .get("paths")?
        .get(path)?
        .get(method)?
        .get("responses")?
        .get(status.to_string())?
        .pointer("/content/application~1json/schema")
}

/// Validates `value` against `schema`; returns every violation with its location.
pub fn validate(document: &Value, schema: &Value, value: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    check(document, schema, value, "$", &mut errors);
    errors
}

fn type_matches(name: &str, value: &Value) -> bool {
    match name {
        "null" => value.is_null(),
        "boolean" => value.is_boolean(),
        "string" => value.is_string(),
        "integer" => value.is_i64() || value.is_u64(),
        "number" => value.is_number(),
        "array" => value.is_array(),
        "object" => value.is_object(),
        _ => false,
    }
}

fn check(document: &Value, schema: &Value, value: &Value, at: &str, errors: &mut Vec<String>) {
    if let Some(reference) = schema.get("$ref").and_then(Value::as_str) {
        match resolve(document, reference) {
            Some(target) => check(document, target, value, at, errors),
            None => errors.push(format!("{at}: unresolved $ref {reference}")),
        }
        return;
    }
    if let Some(all) = schema.get("allOf").and_then(Value::as_array) {
        match value {
            // Each part of a composed object documents some of its properties: a part sees
            // only its own, and every property must belong to one part.
            Value::Object(object) => {
                let mut declared = std::collections::HashSet::new();
                for part in all {
                    let mut target = part;
                    while let Some(reference) = target.get("$ref").and_then(Value::as_str) {
                        match resolve(document, reference) {
                            Some(next) => target = next,
                            None => break,
                        }
                    }
                    let own = target.get("properties").and_then(Value::as_object);
                    let restricted: serde_json::Map<String, Value> = object
                        .iter()
                        .filter(|(name, _)| own.is_none_or(|p| p.contains_key(*name)))
                        .map(|(name, v)| (name.clone(), v.clone()))
                        .collect();
                    if let Some(own) = own {
                        declared.extend(own.keys().cloned());
                    }
                    check(document, part, &Value::Object(restricted), at, errors);
                }
                for name in object.keys().filter(|n| !declared.contains(*n)) {
                    errors.push(format!("{at}: property {name} is not documented"));
                }
            }
            _ => {
                for part in all {
                    check(document, part, value, at, errors);
                }
            }
        }
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(options) = schema.get(key).and_then(Value::as_array) {
            let matching = options
                .iter()
                .filter(|option| validate(document, option, value).is_empty())
                .count();
            let ok = if key == "oneOf" {
                matching == 1
            } else {
                matching >= 1
            };
            if !ok {
                errors.push(format!(
                    "{at}: {matching} of the {key} options match {value}"
                ));
            }
        }
    }
    match schema.get("type") {
        Some(Value::String(name)) if !type_matches(name, value) => {
            errors.push(format!("{at}: expected {name}, found {value}"));
            return;
        }
        Some(Value::Array(names))
            if !names
                .iter()
                .filter_map(Value::as_str)
                .any(|name| type_matches(name, value)) =>
        {
            errors.push(format!("{at}: expected one of {names:?}, found {value}"));
            return;
        }
        _ => {}
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array) {
        if !value.is_null() && !allowed.contains(value) {
            errors.push(format!("{at}: {value} is not one of {allowed:?}"));
        }
    }
    if let Value::Object(object) = value {
        let properties = schema.get("properties").and_then(Value::as_object);
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !object.contains_key(name) {
                    errors.push(format!("{at}: required property {name} is missing"));
                }
            }
        }
        for (name, child) in object {
            let declared = properties.and_then(|p| p.get(name));
            match (declared, schema.get("additionalProperties")) {
                (Some(property), _) => {
                    check(document, property, child, &format!("{at}.{name}"), errors)
                }
                (None, Some(Value::Bool(true))) => {}
                (None, Some(additional @ Value::Object(_))) => {
                    check(document, additional, child, &format!("{at}.{name}"), errors)
                }
                (None, _) if properties.is_some() => {
                    errors.push(format!("{at}: property {name} is not documented"))
                }
                // A free-form object (`type: object` without properties).
                (None, _) => {}
            }
        }
    }
    if let (Value::Array(items), Some(item_schema)) = (value, schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            check(document, item_schema, item, &format!("{at}[{i}]"), errors);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn document() -> Value {
        json!({"components": {"schemas": {
            "Point": {"type": "object", "required": ["value"], "properties": {
                "value": {"type": ["number", "null"]},
                "kind": {"oneOf": [{"type": "null"}, {"$ref": "#/components/schemas/Kind"}]},
                "tags": {"type": "array", "items": {"type": "string"}},
            }},
            "Kind": {"type": "string", "enum": ["count", "level"]},
        }}})
    }

    fn errors(value: Value) -> Vec<String> {
        let document = document();
        validate(
            &document,
            &json!({"$ref": "#/components/schemas/Point"}),
            &value,
        )
    }

    #[test]
    fn a_matching_value_has_no_errors() {
        assert_eq!(
            errors(json!({"value": null, "kind": "count", "tags": ["a"]})),
            Vec::<String>::new()
        );
        assert_eq!(
            errors(json!({"value": 1.5, "kind": null})),
            Vec::<String>::new()
        );
    }

    #[test]
    fn undocumented_missing_mistyped_and_unlisted_values_are_errors() {
        assert_eq!(errors(json!({"value": 1, "extra": 2})).len(), 1);
        assert_eq!(errors(json!({"kind": "count"})).len(), 1);
        assert_eq!(errors(json!({"value": "1"})).len(), 1);
        assert_eq!(errors(json!({"value": 1, "kind": "rate"})).len(), 1);
        assert_eq!(errors(json!({"value": 1, "tags": [1]})).len(), 1);
        assert_eq!(
            validate(
                &document(),
                &json!({"$ref": "#/components/schemas/Nope"}),
                &json!(1)
            )
            .len(),
            1
        );
    }
}
