//! `/v1/metrics/summary`, `/health`, `/actions`: shape, freshness, caching, errors, kill
//! switches; plus `/health/all` and CORS.

mod breakdown;
mod drilldown;
mod forecast;
mod precomputed;
mod shapes;
mod snapshots;
mod summary_cache;
mod trends;

use flowmeter_tests::app::{assert_common_headers, assert_error};
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::{json, Value};

use crate::scenario::{expected_metrics, hand_built_events, json_diff};

const NOW: &str = "2026-03-14T12:00:00Z";

async fn folded_scenario(options: TestAppOptions) -> (TestApp, uuid::Uuid) {
    let app = TestApp::spawn_with(options).await;
    let mut b = EventBuilder::new();
    app.seed(&hand_built_events(&mut b)).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", NOW)],
    );
    (app, b.project_id)
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// GETs a metrics endpoint for the project, asserts 200 and the common headers, returns the body.
async fn get_ok(app: &TestApp, endpoint: &str, project: uuid::Uuid, query: &str) -> Value {
    let response = app
        .get(
            &format!("/v1/metrics/{endpoint}?project_id={project}&{query}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{endpoint}?{query}");
    assert_common_headers(&response);
    response.json::<Value>().await.unwrap()
}
