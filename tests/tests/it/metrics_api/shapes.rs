//! The exact JSON shape of every endpoint's response for the folded scenario, pinned with
//! insta snapshots (`snapshots/`), and each body checked against its schema in
//! `/v1/openapi.json` (an undocumented or missing field fails). Values that change per run
//! (the scenario's project id, request ids, error timestamps, latencies) are redacted.
//! Under CI (`CI=true`) insta never writes snapshots: a changed shape fails the test;
//! locally, `INSTA_UPDATE=always` rewrites them for review in the diff.

use flowmeter_tests::openapi::{response_schema, validate};
use insta::assert_json_snapshot;
use insta::internals::{Content, ContentPath};

use super::*;

/// A project id that never exists, so the 404 message is the same in every run.
const UNKNOWN_PROJECT: &str = "00000000-0000-4000-8000-000000000000";

/// GETs `path`, asserts `status`, validates the body against the documented schema of
/// `template` and returns it.
async fn get_documented(
    app: &TestApp,
    document: &Value,
    template: &str,
    path: &str,
    status: u16,
) -> Value {
    let response = app.get(path, None).await;
    assert_eq!(response.status().as_u16(), status, "{path}");
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    let schema = response_schema(document, "get", template, status)
        .unwrap_or_else(|| panic!("GET {template} documents no JSON body for {status}"));
    let errors = validate(document, schema, &body);
    assert!(
        errors.is_empty(),
        "GET {path} does not match its schema:\n{}",
        errors.join("\n")
    );
    body
}

/// Redacts a value that differs per request, after checking it is there.
fn per_request(value: Content, _: ContentPath<'_>) -> Content {
    assert!(value.as_str().is_some_and(|v| !v.is_empty()), "{value:?}");
    Content::from("[per request]")
}

#[tokio::test]
async fn every_metrics_endpoint_answers_in_its_documented_and_pinned_shape() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let document: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let cases = [
        ("summary", "summary", ""),
        (
            "trends",
            "trends",
            "metric=cycle_time&start_date=2026-03-01&end_date=2026-03-14",
        ),
        (
            "trends_by_assignee",
            "trends",
            "metric=throughput&start_date=2026-03-01&end_date=2026-03-14&dimensions=assignee",
        ),
        (
            "breakdown",
            "breakdown",
            "metric=cycle_time&dimension=assignee&time_range=30d",
        ),
        (
            "drilldown",
            "drilldown",
            "metric=cycle_time&limit=2&sort_by=task_id&sort_order=asc",
        ),
        ("health", "health", ""),
        ("actions", "actions", ""),
    ];
    for (name, endpoint, query) in cases {
        let template = format!("/v1/metrics/{endpoint}");
        let body = get_documented(
            &app,
            &document,
            &template,
            &format!("{template}?project_id={project}&{query}"),
            200,
        )
        .await;
        assert_eq!(body["project_id"], project.to_string());
        assert_json_snapshot!(name, body, { ".project_id" => "[project_id]" });
    }
}

#[tokio::test]
async fn error_envelopes_answer_in_their_documented_and_pinned_shape() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let document: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let unknown_project = get_documented(
        &app,
        &document,
        "/v1/metrics/summary",
        &format!("/v1/metrics/summary?project_id={UNKNOWN_PROJECT}"),
        404,
    )
    .await;
    assert_json_snapshot!("error_unknown_project", unknown_project, {
        ".request_id" => insta::dynamic_redaction(per_request), ".timestamp" => insta::dynamic_redaction(per_request)
    });
    let unknown_metric = get_documented(
        &app,
        &document,
        "/v1/metrics/trends",
        &format!(
            "/v1/metrics/trends?project_id={project}&metric=velocity&start_date=2026-03-01&end_date=2026-03-14"
        ),
        422,
    )
    .await;
    assert_json_snapshot!("error_unknown_metric", unknown_metric, {
        ".request_id" => insta::dynamic_redaction(per_request), ".timestamp" => insta::dynamic_redaction(per_request)
    });
    let missing_parameter = get_documented(
        &app,
        &document,
        "/v1/metrics/breakdown",
        &format!("/v1/metrics/breakdown?project_id={project}&metric=wip"),
        400,
    )
    .await;
    assert_json_snapshot!("error_missing_parameter", missing_parameter, {
        ".request_id" => insta::dynamic_redaction(per_request), ".timestamp" => insta::dynamic_redaction(per_request)
    });
}

#[tokio::test]
async fn ingest_and_operations_endpoints_answer_in_their_documented_and_pinned_shape() {
    let app = TestApp::spawn().await;
    let document: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut b = EventBuilder::new();
    let events = json!([b.task_created("t1", t("2026-03-02T09:00:00Z"), json!({}))]);
    let response = app.post_events(&events, None).await;
    assert_eq!(response.status(), 200);
    let ingest: Value = response.json().await.unwrap();
    let schema = response_schema(&document, "post", "/v1/events", 200).unwrap();
    assert_eq!(validate(&document, schema, &ingest), Vec::<String>::new());
    assert_json_snapshot!("ingest", ingest, { ".projects[].project_id" => "[project_id]" });

    let live = get_documented(&app, &document, "/health", "/health", 200).await;
    assert_json_snapshot!("health_live", live);
    let all = get_documented(&app, &document, "/health/all", "/health/all", 200).await;
    assert_json_snapshot!("health_all", all, {
        ".database.latency_ms" => "[latency]",
        ".service_version" => "[version]",
    });
}

#[tokio::test]
async fn alerts_and_their_acknowledgement_answer_in_their_documented_and_pinned_shape() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let document: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut body = get_documented(
        &app,
        &document,
        "/v1/metrics/alerts",
        &format!("/v1/metrics/alerts?project_id={project}"),
        200,
    )
    .await;
    // Alerts of one snapshot share `created_at`; their order among themselves follows their
    // random ids, so the pinned list is sorted by metric and type.
    let items = body["items"].as_array_mut().unwrap();
    assert!(!items.is_empty(), "the scenario fires alerts");
    items.sort_by_key(|a| (a["metric_key"].to_string(), a["alert_type"].to_string()));
    assert_json_snapshot!("alerts", body, {
        ".project_id" => "[project_id]",
        ".items[].project_id" => "[project_id]",
        ".items[].id" => insta::dynamic_redaction(per_request),
    });

    let alert = body["items"][0]["id"].as_str().unwrap().to_owned();
    let response = app
        .http
        .post(app.url(&format!(
            "/v1/metrics/alerts/{alert}/acknowledge?project_id={project}"
        )))
        .json(&json!({"reason": "looking", "expires_in_minutes": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let acknowledged: Value = response.json().await.unwrap();
    let schema = response_schema(
        &document,
        "post",
        "/v1/metrics/alerts/{id}/acknowledge",
        200,
    )
    .expect("the acknowledgement documents its body");
    let errors = validate(&document, schema, &acknowledged);
    assert!(errors.is_empty(), "{}", errors.join("\n"));
    assert_json_snapshot!("alert_acknowledged", acknowledged, {
        ".project_id" => "[project_id]",
        ".id" => insta::dynamic_redaction(per_request),
        ".acknowledged_at" => insta::dynamic_redaction(per_request),
        ".ack_expires_at" => insta::dynamic_redaction(per_request),
    });
}
