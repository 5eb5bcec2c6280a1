//! `/v1/openapi.json`: served without a key, valid OpenAPI 3 with every `$ref` resolving,
//! and every route the app registers is documented with exactly its methods.

use std::collections::BTreeSet;

use actix_web::{test, web, App, HttpRequest, HttpResponse};
use flowmeter_tests::app::assert_common_headers;
use flowmeter_tests::openapi::{references, resolve, validate};
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::Value;

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

async fn document(app: &TestApp) -> Value {
    let response = app.get("/v1/openapi.json", None).await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    assert_eq!(
        response.headers().get("content-type").unwrap(),
        "application/json"
    );
    response.json().await.unwrap()
}

/// The route templates the app registers, read from actix's resource map (the map's debug
/// form is the only public view of every registered pattern).
async fn registered_paths() -> BTreeSet<String> {
    let app = test::init_service(
        App::new()
            .configure(flowmeter_api::startup::configure_routes)
            .default_service(web::to(|req: HttpRequest| async move {
                HttpResponse::Ok().body(format!("{:#?}", req.resource_map()))
            })),
    )
    .await;
    let request = test::TestRequest::get().uri("/no/such/route").to_request();
    let dump = String::from_utf8(test::call_and_read_body(&app, request).await.to_vec()).unwrap();
    assert!(
        !dump.contains("patterns: List("),
        "a resource with several patterns; teach this test to read them"
    );
    let lines: Vec<&str> = dump.lines().collect();
    let mut paths = BTreeSet::new();
    // (indent of the scope's `ResourceMap {`, its prefix)
    let mut scopes: Vec<(usize, String)> = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "ResourceMap {" {
            continue;
        }
        let indent = line.len() - line.trim_start().len();
        let rest = &lines[i + 1..];
        let pattern_at = rest
            .iter()
            .position(|l| l.trim() == "patterns: Single(")
            .expect("a pattern");
        let pattern = rest[pattern_at + 1]
            .trim()
            .trim_end_matches(',')
            .trim_matches('"');
        let is_prefix = rest
            .iter()
            .find_map(|l| l.trim().strip_prefix("is_prefix: "))
            .expect("is_prefix")
            .starts_with("true");
        while scopes.last().is_some_and(|(at, _)| *at >= indent) {
            scopes.pop();
        }
        let prefix: String = scopes.iter().map(|(_, p)| p.as_str()).collect();
        if is_prefix {
            scopes.push((indent, pattern.to_owned()));
        } else {
            paths.insert(format!("{prefix}{pattern}"));
        }
    }
    paths
}

#[tokio::test]
async fn the_document_is_served_without_a_key_and_is_valid_openapi_3() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert!(
        doc.get("version").is_none(),
        "the document keeps its own shape"
    );
    assert_eq!(doc["info"]["version"], "1.0");

    let mut found = Vec::new();
    references(&doc, "", &mut found);
    assert!(found.len() > 50, "only {} references", found.len());
    let unresolved: Vec<_> = found
        .iter()
        .filter(|(_, target)| resolve(&doc, target).is_none())
        .collect();
    assert!(unresolved.is_empty(), "unresolved: {unresolved:?}");

    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["api_key"]["in"], "header");
    assert_eq!(schemes["api_key"]["name"], "X-API-Key");

    let mut operation_ids = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in METHODS {
            let Some(operation) = item.get(method) else {
                continue;
            };
            let id = operation["operationId"].as_str().unwrap();
            assert!(
                operation_ids.insert(id.to_owned()),
                "duplicate operationId {id}"
            );
            let responses = operation["responses"].as_object().unwrap();
            assert!(
                responses.keys().any(|s| s.starts_with('2')),
                "{method} {path}"
            );
            for (status, response) in responses {
                assert!(
                    response["headers"].get("X-Request-ID").is_some(),
                    "{method} {path} {status} lacks X-Request-ID"
                );
            }
            // Every security requirement names a declared scheme.
            for requirement in operation["security"].as_array().into_iter().flatten() {
                for name in requirement.as_object().unwrap().keys() {
                    assert!(schemes.contains_key(name), "{method} {path}: {name}");
                }
            }
            let secured = operation.get("security").is_some();
            assert_eq!(
                secured,
                // GitHub deliveries authenticate with their signature, not a key.
                path.starts_with("/v1/")
                    && path != "/v1/openapi.json"
                    && path != "/v1/integrations/github",
                "{method} {path}: security"
            );
            if secured {
                assert!(responses.contains_key("401") && responses.contains_key("403"));
            }
        }
    }

    // The closed lists are the ones the handlers validate against.
    let schemas = &doc["components"]["schemas"];
    assert_eq!(
        schemas["TrendMetric"]["enum"],
        serde_json::json!(flowmeter_shared::read_model::TREND_METRICS)
    );
    assert_eq!(
        schemas["Granularity"]["enum"],
        serde_json::json!(["hour", "day", "week", "month"])
    );
    assert_eq!(
        schemas["ErrorCode"]["enum"].as_array().unwrap().len(),
        13,
        "{}",
        schemas["ErrorCode"]
    );
    let trends = &doc["paths"]["/v1/metrics/trends"]["get"]["parameters"];
    let names: Vec<&str> = trends
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "project_id",
            "metric",
            "start_date",
            "end_date",
            "granularity",
            "dimensions"
        ]
    );
    assert_eq!(trends[1]["required"], true);
    assert_eq!(
        trends[1]["schema"]["$ref"],
        "#/components/schemas/TrendMetric"
    );
}

#[tokio::test]
async fn every_registered_route_is_documented_with_exactly_its_methods() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, item)| {
            METHODS
                .iter()
                .filter(|m| item.get(**m).is_some())
                .map(|m| (path.clone(), m.to_string()))
                .collect::<Vec<_>>()
        })
        .collect();

    let paths = registered_paths().await;
    assert!(paths.contains("/v1/metrics/summary"), "{paths:?}");
    assert!(paths.contains("/health"), "{paths:?}");
    // A method is registered on a path when the real server does not answer 405 for it
    // (every path answers 405 in the envelope for the methods it lacks).
    let mut registered = BTreeSet::new();
    for path in &paths {
        let concrete: String = path
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/");
        for method in METHODS {
            let response = app
                .http
                .request(method.to_uppercase().parse().unwrap(), app.url(&concrete))
                .send()
                .await
                .unwrap();
            if response.status() != 405 {
                registered.insert((path.clone(), method.to_owned()));
            }
        }
    }
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let unregistered: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from /v1/openapi.json (add #[utoipa::path] and list the handler in openapi::ApiDoc): {undocumented:?}"
    );
    assert!(
        unregistered.is_empty(),
        "documented routes the app does not serve: {unregistered:?}"
    );
}

/// The Python that has `openapi_spec_validator`: .tools/venv's when scripts/install-deps put
/// it there, else the system's.
fn python_with_validator() -> std::path::PathBuf {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap();
    let venv = root.join(".tools/venv/bin/python3");
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

#[tokio::test]
async fn an_openapi_3_1_validator_accepts_the_document() {
    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    let path =
        std::env::temp_dir().join(format!("flowmeter-openapi-{}.json", uuid::Uuid::new_v4()));
    std::fs::write(&path, serde_json::to_vec_pretty(&doc).unwrap()).unwrap();
    let out = std::process::Command::new(python_with_validator())
        .args([
            "-m",
            "openapi_spec_validator",
            "--schema",
            "3.1",
            "--validation-errors",
            "all",
        ])
        .arg(&path)
        .output()
        .expect("run openapi-spec-validator (scripts/install-deps installs it)");
    std::fs::remove_file(&path).ok();
    assert!(
        out.status.success(),
        "openapi-spec-validator refused the document:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn the_ingest_body_has_one_schema_per_event_type_discriminated_by_event_type() {
    use flowmeter_shared::events::catalogue::CATALOGUE;

    let app = TestApp::spawn().await;
    let doc = document(&app).await;
    let schemas = &doc["components"]["schemas"];
    let body = &doc["paths"]["/v1/events"]["post"]["requestBody"]["content"];
    assert_eq!(
        body["application/json"]["schema"]["items"]["$ref"],
        "#/components/schemas/EventInput"
    );
    assert_eq!(
        body["application/x-ndjson"]["schema"]["$ref"],
        "#/components/schemas/EventInput"
    );
    let input = &schemas["EventInput"];
    assert_eq!(input["discriminator"]["propertyName"], "event_type");
    let variants: Vec<&str> = input["oneOf"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["$ref"].as_str().unwrap())
        .collect();
    assert_eq!(variants.len(), CATALOGUE.len(), "{input}");
    let mapping = input["discriminator"]["mapping"].as_object().unwrap();
    assert_eq!(mapping.len(), CATALOGUE.len());
    for spec in &CATALOGUE {
        let name = spec.event_type.as_str();
        let target = mapping[name].as_str().unwrap();
        assert!(
            variants.contains(&target),
            "{name}: {target} is not in oneOf"
        );
        let event = resolve(&doc, target).unwrap_or_else(|| panic!("{target} is missing"));
        assert_eq!(
            event["properties"]["event_type"]["enum"],
            serde_json::json!([name])
        );
        assert_eq!(
            event["properties"]["entity_type"]["enum"],
            serde_json::json!([spec.event_type.entity_type().as_str()])
        );
        assert_eq!(event["additionalProperties"], false, "{name}");
        let payload = resolve(
            &doc,
            event["properties"]["payload"]["$ref"].as_str().unwrap(),
        )
        .unwrap_or_else(|| panic!("{name}: no payload schema"));
        let properties: BTreeSet<&str> = payload["properties"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let fields: BTreeSet<&str> = spec.fields.iter().map(|f| f.name).collect();
        assert_eq!(properties, fields, "{name}: payload properties");
        let required: BTreeSet<&str> = spec
            .fields
            .iter()
            .filter(|f| f.required)
            .map(|f| f.name)
            .collect();
        let documented: BTreeSet<&str> = payload["required"]
            .as_array()
            .map(|r| r.iter().map(|v| v.as_str().unwrap()).collect())
            .unwrap_or_default();
        assert_eq!(documented, required, "{name}: required payload fields");
    }
    assert_eq!(
        schemas["TaskStateTransitionedPayload"]["properties"]["to_state"]["enum"],
        serde_json::json!(flowmeter_shared::events::TASK_STATES)
    );

    // docs/EVENTS.md's examples match the schema of their type and of no other.
    let events_md = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .unwrap()
            .join("docs/EVENTS.md"),
    )
    .unwrap();
    let input_ref = serde_json::json!({"$ref": "#/components/schemas/EventInput"});
    let mut checked = 0;
    for block in events_md.split("```json\n").skip(1) {
        let text = block.split("```").next().unwrap();
        let example: Value = serde_json::from_str(text).unwrap();
        if example.get("event_type").is_none() {
            continue;
        }
        let errors = validate(&doc, &input_ref, &example);
        assert!(errors.is_empty(), "{example}: {errors:?}");
        // Every payload field of the wrong type (an array of a number fits none of them).
        let mut retyped = example.clone();
        for value in retyped["payload"].as_object_mut().unwrap().values_mut() {
            *value = serde_json::json!([7]);
        }
        assert!(
            !validate(&doc, &input_ref, &retyped).is_empty(),
            "{retyped} matched"
        );
        checked += 1;
    }
    assert_eq!(checked, CATALOGUE.len());
}
