//! Behaviour shared by every route: version and request-id headers, the error envelope,
//! unknown routes and methods, the query-string bound, health and Prometheus metrics.

use flowmeter_tests::app::{assert_common_headers, assert_error};
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::Value;

#[tokio::test]
async fn health_answers_with_the_version_header() {
    let app = TestApp::spawn().await;
    let response = app.get("/health", None).await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], "ok");

    let response = app.get("/health/db", None).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["database"], "up");
}

#[tokio::test]
async fn a_client_request_id_is_echoed_and_one_is_generated_otherwise() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers().get("x-request-id").unwrap(), "abc-123");
    let response = app
        .http
        .get(app.url("/nope"))
        .header("x-request-id", "bad id with spaces")
        .send()
        .await
        .unwrap();
    let generated = response
        .headers()
        .get("x-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(generated, "bad id with spaces");
    let body = assert_error(response, 404, "not_found").await;
    assert_eq!(body["request_id"], generated.as_str());
}

#[tokio::test]
async fn unknown_routes_methods_and_long_query_strings_get_the_envelope() {
    let app = TestApp::spawn().await;
    assert_error(app.get("/v1/nothing-here", None).await, 404, "not_found").await;
    assert_error(app.get("/v1/events", None).await, 405, "method_not_allowed").await;
    let long = format!("/health?x={}", "a".repeat(9000));
    let body = assert_error(app.get(&long, None).await, 400, "bad_request").await;
    assert_eq!(body["details"]["field"], "query");
}

#[tokio::test]
async fn health_db_answers_503_quickly_when_the_database_is_gone() {
    let app = TestApp::spawn_with(
        TestAppOptions::default().env("FLOWMETER_DB_CONNECT_TIMEOUT_MS", "500"),
    )
    .await;
    assert_eq!(app.get("/health/db", None).await.status(), 200);
    let admin = flowmeter_tests::db::connect(&flowmeter_tests::db::admin_url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", app.db.name))
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let response = app.get("/health/db", None).await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_error(response, 503, "service_unavailable").await;
    // Liveness is unaffected.
    assert_eq!(app.get("/health", None).await.status(), 200);
}

#[tokio::test]
async fn prometheus_metrics_use_route_templates_and_report_the_pool() {
    let app = TestApp::spawn().await;
    app.get("/health", None).await;
    app.get("/v1/unknown/abc", None).await;
    let response = app.get("/metrics", None).await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let text = response.text().await.unwrap();
    for needle in [
        "flowmeter_http_requests_total{method=\"GET\",route=\"/health\",status=\"200\"} 1",
        "flowmeter_http_requests_total{method=\"GET\",route=\"unmatched\",status=\"404\"} 1",
        "flowmeter_http_request_duration_seconds_bucket",
        "flowmeter_http_requests_in_flight",
        "flowmeter_db_pool_connections{state=\"max\"} 8",
        "flowmeter_ingest_events_total{result=\"rejected\"} 0",
    ] {
        assert!(text.contains(needle), "missing {needle} in\n{text}");
    }
    assert!(
        !text.contains("/v1/unknown/abc"),
        "raw paths must not become labels"
    );
}
