//! `/v1/metrics/summary`, `/health`, `/actions`: shape, freshness, caching, errors, kill
//! switches; plus `/health/all` and CORS.

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

#[tokio::test]
async fn the_summary_serves_the_snapshot_with_freshness_and_the_version() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let response = app
        .get(&format!("/v1/metrics/summary?project_id={project}"), None)
        .await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    assert!(response.headers().get("etag").is_some());
    assert_eq!(
        response.headers().get("cache-control").unwrap(),
        "private, max-age=30"
    );
    let body: Value = response.json().await.unwrap();
    let keys: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        vec!["freshness", "metrics", "project_id", "timestamp", "version"]
    );
    assert_eq!(body["version"], "1.0");
    assert_eq!(body["project_id"], project.to_string());
    assert_eq!(body["timestamp"], "2026-03-14T12:00:00.000000Z");
    let mut differences = Vec::new();
    json_diff(
        "metrics",
        &expected_metrics(),
        &body["metrics"],
        &mut differences,
    );
    assert!(differences.is_empty(), "{}", differences.join("\n"));
    let head = hand_built_events(&mut EventBuilder::new()).len();
    assert_eq!(
        body["freshness"],
        json!({"as_of_seq": head, "log_head_seq": head, "lag_events": 0, "captured_at": "2026-03-14T12:00:00.000000Z"})
    );

    // timestamp selects the latest snapshot at or before it.
    let response = app
        .get(
            &format!("/v1/metrics/summary?project_id={project}&timestamp=2026-03-15"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200);
    let body = assert_error(
        app.get(
            &format!("/v1/metrics/summary?project_id={project}&timestamp=2026-03-01"),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("at or before"));
}

#[tokio::test]
async fn an_unchanged_summary_answers_304_and_a_new_fold_gives_a_new_etag() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let url = app.url(&format!("/v1/metrics/summary?project_id={project}"));
    let first = app.http.get(&url).send().await.unwrap();
    let etag = first
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    let again = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_common_headers(&again);
    assert_eq!(again.headers().get("etag").unwrap().to_str().unwrap(), etag);

    // A new event moves the log head: same snapshot, new tag (lag is in the body).
    let mut b = EventBuilder::for_project(project);
    let mut event = b.task_created("t9", t("2026-03-14T10:00:00Z"), json!({}));
    event["event_id"] = json!("late-1");
    app.ingest(&[event]).await;
    let lagging = app
        .http
        .get(&url)
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(lagging.status(), 200);
    let lag_tag = lagging
        .headers()
        .get("etag")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(lag_tag, etag);
    let body: Value = lagging.json().await.unwrap();
    assert_eq!(body["freshness"]["lag_events"], 1);

    worker_json(
        &app.db.url,
        &["backfill", "--project", &project.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-14T13:00:00Z")],
    );
    let folded = app
        .http
        .get(&url)
        .header("if-none-match", &lag_tag)
        .send()
        .await
        .unwrap();
    assert_eq!(folded.status(), 200);
    assert_ne!(
        folded.headers().get("etag").unwrap().to_str().unwrap(),
        lag_tag
    );
    let body: Value = folded.json().await.unwrap();
    assert_eq!(body["freshness"]["lag_events"], 0);
    assert_eq!(
        body["metrics"]["operational"]["state_distribution"]["by_state"]["backlog"],
        2
    );
}

#[tokio::test]
async fn milestone_health_and_actions_are_served_from_the_snapshot() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let response = app
        .get(&format!("/v1/metrics/health?project_id={project}"), None)
        .await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], "1.0");
    let m2 = body["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone_id"] == "m2")
        .unwrap();
    assert_eq!(m2["forecast"]["status"], "insufficient_data");
    assert_eq!(m2["health_score"], 25.0);
    assert!(body["freshness"]["as_of_seq"].as_i64().unwrap() > 0);

    let body: Value = app
        .get(&format!("/v1/metrics/actions?project_id={project}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["suggestions"], json!([]));
    assert_eq!(body["version"], "1.0");
}

#[tokio::test]
async fn bad_and_unknown_projects_and_parameters_get_4xx_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    for path in [
        "/v1/metrics/summary",
        "/v1/metrics/health",
        "/v1/metrics/actions",
    ] {
        let body = assert_error(app.get(path, None).await, 400, "bad_request").await;
        assert_eq!(body["details"]["field"], "project_id");
        let body = assert_error(
            app.get(&format!("{path}?project_id=nope"), None).await,
            400,
            "bad_request",
        )
        .await;
        assert_eq!(body["details"]["field"], "project_id");
        let unknown = uuid::Uuid::new_v4();
        assert_error(
            app.get(&format!("{path}?project_id={unknown}"), None).await,
            404,
            "not_found",
        )
        .await;
        let body = assert_error(
            app.get(&format!("{path}?project_id={project}&colour=red"), None)
                .await,
            400,
            "bad_request",
        )
        .await;
        assert_eq!(body["details"]["field"], "colour");
        assert!(body["details"]["allowed_values"]
            .as_array()
            .unwrap()
            .contains(&json!("project_id")));
        let body = assert_error(
            app.get(
                &format!("{path}?project_id={project}&project_id={project}"),
                None,
            )
            .await,
            400,
            "bad_request",
        )
        .await;
        assert_eq!(body["details"]["field"], "project_id");
    }
    let body = assert_error(
        app.get(
            &format!("/v1/metrics/summary?project_id={project}&timestamp=2026-02-30"),
            None,
        )
        .await,
        400,
        "bad_request",
    )
    .await;
    assert_eq!(body["details"]["field"], "timestamp");
    // A project whose events are not folded yet.
    let mut b = EventBuilder::new();
    app.ingest(&[b.task_created("t1", t("2026-03-01T00:00:00Z"), json!({}))])
        .await;
    let body = assert_error(
        app.get(
            &format!("/v1/metrics/summary?project_id={}", b.project_id),
            None,
        )
        .await,
        404,
        "not_found",
    )
    .await;
    assert!(body["message"]
        .as_str()
        .unwrap()
        .contains("not been folded yet"));
}

#[tokio::test]
async fn metrics_scope_is_checked_before_existence() {
    let (app, project) = folded_scenario(TestAppOptions::with_auth()).await;
    let viewer = app
        .create_key(Some(project), &[flowmeter_shared::auth::Role::Viewer])
        .await;
    let ingest = app
        .create_key(Some(project), &[flowmeter_shared::auth::Role::Ingest])
        .await;
    let path = format!("/v1/metrics/summary?project_id={project}");
    assert_error(app.get(&path, None).await, 401, "unauthorized").await;
    assert_eq!(app.get(&path, Some(&viewer)).await.status(), 200);
    assert_error(app.get(&path, Some(&ingest)).await, 403, "forbidden").await;
    // Another project, existing or not: 403 either way, so a key cannot probe.
    let elsewhere = format!("/v1/metrics/summary?project_id={}", uuid::Uuid::new_v4());
    assert_error(app.get(&elsewhere, Some(&viewer)).await, 403, "forbidden").await;
}

#[tokio::test]
async fn kill_switches_answer_503_and_are_listed_in_health_all() {
    let (app, project) = folded_scenario(
        TestAppOptions::default().env("FLOWMETER_DISABLED_FEATURES", "ingest,actions,forecast"),
    )
    .await;
    let body = assert_error(
        app.get(&format!("/v1/metrics/actions?project_id={project}"), None)
            .await,
        503,
        "service_unavailable",
    )
    .await;
    assert_eq!(body["message"], "actions disabled");
    assert_error(
        app.get(&format!("/v1/metrics/health?project_id={project}"), None)
            .await,
        503,
        "service_unavailable",
    )
    .await;
    let mut b = EventBuilder::for_project(project);
    let body = assert_error(
        app.post_events(
            &json!([b.task_created("x", t("2026-03-01T00:00:00Z"), json!({}))]),
            None,
        )
        .await,
        503,
        "service_unavailable",
    )
    .await;
    assert_eq!(body["message"], "ingest disabled");
    assert_eq!(
        app.get(&format!("/v1/metrics/summary?project_id={project}"), None)
            .await
            .status(),
        200
    );

    let response = app.get("/health/all", None).await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let health: Value = response.json().await.unwrap();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["database"]["status"], "up");
    assert_eq!(health["migrations"]["current"], true);
    assert_eq!(health["worker"]["lag_events"], 0);
    assert_eq!(
        health["kill_switches"],
        json!({"ingest": "disabled", "alerts": "enabled", "actions": "disabled", "forecast": "disabled", "drilldown": "enabled"})
    );
}

#[tokio::test]
async fn health_all_reports_stalled_projects_and_lag() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE metrics_job_checkpoint SET status = 'stalled', last_error = 'boom', last_seq = last_seq - 2 WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    let health: Value = app.get("/health/all", None).await.json().await.unwrap();
    assert_eq!(health["status"], "degraded");
    assert_eq!(health["worker"]["lag_events"], 2);
    assert_eq!(
        health["worker"]["stalled_projects"][0]["project_id"],
        project.to_string()
    );
    assert_eq!(
        health["worker"]["stalled_projects"][0]["last_error"],
        "boom"
    );
}

#[tokio::test]
async fn cors_allows_configured_origins_only() {
    let (app, project) = folded_scenario(
        TestAppOptions::default().env("FLOWMETER_CORS_ORIGINS", "https://dash.example.com"),
    )
    .await;
    let url = app.url(&format!("/v1/metrics/summary?project_id={project}"));
    let preflight = app
        .http
        .request(reqwest::Method::OPTIONS, &url)
        .header("origin", "https://dash.example.com")
        .header("access-control-request-method", "GET")
        .header("access-control-request-headers", "authorization")
        .send()
        .await
        .unwrap();
    assert!(preflight.status().is_success(), "{}", preflight.status());
    assert_eq!(
        preflight
            .headers()
            .get("access-control-allow-origin")
            .unwrap(),
        "https://dash.example.com"
    );
    let get = app
        .http
        .get(&url)
        .header("origin", "https://dash.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(
        get.headers().get("access-control-allow-origin").unwrap(),
        "https://dash.example.com"
    );
    let expose = get
        .headers()
        .get("access-control-expose-headers")
        .unwrap()
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        expose.contains("etag") && expose.contains("x-api-version"),
        "{expose}"
    );
    let other = app
        .http
        .get(&url)
        .header("origin", "https://evil.example.com")
        .send()
        .await
        .unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
}

async fn trends(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/v1/metrics/trends?{query}"), None).await
}

#[tokio::test]
async fn trends_serve_event_time_points_for_totals_and_dimensions() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    // Integrations: t1 on 4 March, t6 on 6 March, t2 on 10 March.
    let response = trends(
        &app,
        &format!(
            "project_id={project}&metric=throughput&start_date=2026-03-01&end_date=2026-03-13"
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["granularity"], "day");
    assert_eq!(
        body["end_date"], "2026-03-14T00:00:00Z",
        "end_date covers its whole day"
    );
    let points: Vec<(String, f64)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap().to_owned(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        points,
        vec![
            ("2026-03-04T00:00:00Z".to_owned(), 1.0),
            ("2026-03-06T00:00:00Z".to_owned(), 1.0),
            ("2026-03-10T00:00:00Z".to_owned(), 1.0)
        ]
    );
    assert_eq!(body["data"][0]["metadata"]["sample_size"], 1);

    // Arrivals on 2 March, by assignee: t1 (ana) and t2 (bo).
    let body: Value = trends(&app, &format!("project_id={project}&metric=arrivals&start_date=2026-03-02&end_date=2026-03-02&dimensions=assignee"))
        .await
        .json()
        .await
        .unwrap();
    let groups: Vec<(Value, f64)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["dimensions"].clone(), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        groups,
        vec![
            (json!({"assignee": "ana"}), 1.0),
            (json!({"assignee": "bo"}), 1.0)
        ]
    );

    // Cycle time p50 as of the end of 4 March: only t1 (1980 min), with its interval.
    let body: Value = trends(
        &app,
        &format!(
            "project_id={project}&metric=cycle_time&start_date=2026-03-04&end_date=2026-03-04"
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["data"][0]["value"], 1980.0);
    assert_eq!(
        body["data"][0]["metadata"],
        json!({"sample_size": 1, "confidence_interval": {"lower": 1980.0, "upper": 1980.0}})
    );

    // Weekly WIP as of the end of the week starting Monday 2 March (9 March 00:00): t1 and
    // t6 are integrated, t3 and t4 not yet claimed; only t2 (implemented) is in WIP.
    let body: Value = trends(&app, &format!("project_id={project}&metric=wip&start_date=2026-03-02&end_date=2026-03-08&granularity=week"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["timestamp"], "2026-03-02T00:00:00Z");
    assert_eq!(body["data"][0]["value"], 1.0);
}

#[tokio::test]
async fn trend_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let base = format!("project_id={project}&start_date=2026-03-01&end_date=2026-03-10");
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{base}&metric=velocity"), 422, "metric"),
        (format!("project_id={project}&start_date=2026-03-01&end_date=2026-03-10"), 400, "metric"),
        (format!("{base}&metric=wip&granularity=fortnight"), 422, "granularity"),
        (format!("project_id={project}&metric=wip&end_date=2026-03-10"), 400, "start_date"),
        (format!("project_id={project}&metric=wip&start_date=2026-03-10&end_date=2026-03-01"), 422, "end_date"),
        (format!("project_id={project}&metric=wip&start_date=03/01/2026&end_date=2026-03-10"), 400, "start_date"),
        (format!("{base}&metric=cycle_time&dimensions=assignee"), 422, "dimensions"),
        (format!("{base}&metric=wip&dimensions=planet"), 422, "dimensions"),
        (format!("{base}&metric=wip&dimensions=assignee&granularity=hour"), 422, "granularity"),
        (format!("project_id={project}&metric=wip&granularity=hour&start_date=2025-01-01&end_date=2026-03-10"), 422, "start_date"),
    ];
    for (query, status, field) in cases {
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(trends(&app, &query).await, status, code).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let body = assert_error(
        trends(&app, &format!("{base}&metric=velocity")).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(
        body["details"]["allowed_values"].as_array().unwrap().len(),
        9
    );
}

#[tokio::test]
async fn drilldown_lists_filters_sorts_paginates_and_aggregates() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let get = |query: String| {
        let app = &app;
        async move {
            let response = app
                .get(
                    &format!("/v1/metrics/drilldown?project_id={project}&{query}"),
                    None,
                )
                .await;
            assert_eq!(response.status(), 200, "{query}");
            assert_common_headers(&response);
            response.json::<Value>().await.unwrap()
        }
    };
    // Cycle times: t1 1980, t6 3240, t2 7260 minutes (the summary's samples).
    let body = get("metric=cycle_time".into()).await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t2", "t6", "t1"], "value descending by default");
    assert_eq!(
        body["aggregation"],
        json!({"sum": 12480.0, "avg": 4160.0, "min": 1980.0, "max": 7260.0, "p50": 3240.0, "p90": 6456.0, "p95": 6858.0})
    );
    assert_eq!(
        body["pagination"],
        json!({"total": 3, "limit": 50, "offset": 0, "has_more": false})
    );
    let t2 = &body["items"][0];
    assert_eq!(t2["value"], 7260.0);
    assert_eq!(t2["timestamp"], "2026-03-10T10:00:00Z");
    assert_eq!(t2["context"]["milestone"], "m1");
    assert_eq!(t2["context"]["assignee"], "bo");
    let factors: Vec<&str> = t2["contributing_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["factor"].as_str().unwrap())
        .collect();
    assert!(
        factors.contains(&"blocked_episodes") && factors.contains(&"integration_retries"),
        "{factors:?}"
    );

    let body = get(format!(
        "metric=cycle_time&filters={}",
        urlencode(r#"{"assignee": "ana"}"#)
    ))
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["task_id"], "t1");
    assert_eq!(body["filters_applied"], json!({"assignee": ["ana"]}));

    let body =
        get("metric=cycle_time&sort_by=task_id&sort_order=asc&limit=2&offset=1".into()).await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t2", "t6"]);
    assert_eq!(
        body["pagination"],
        json!({"total": 3, "limit": 2, "offset": 1, "has_more": false})
    );
    let body = get("metric=cycle_time&sort_by=task_id&sort_order=asc&limit=1".into()).await;
    assert_eq!(body["pagination"]["has_more"], true);

    // WIP ages as of the snapshot: t3 99 h (claimed 10 March 09:00), t4 75 h.
    let body = get("metric=wip".into()).await;
    let rows: Vec<(&str, f64)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["task_id"].as_str().unwrap(), i["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(rows, vec![("t3", 99.0), ("t4", 75.0)]);
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

#[tokio::test]
async fn drilldown_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("metric=velocity".into(), 422, "metric"),
        ("".into(), 400, "metric"),
        ("metric=wip&limit=0".into(), 422, "limit"),
        ("metric=wip&limit=501".into(), 422, "limit"),
        ("metric=wip&limit=-1".into(), 422, "limit"),
        ("metric=wip&limit=ten".into(), 400, "limit"),
        ("metric=wip&offset=-1".into(), 422, "offset"),
        (
            "metric=wip&offset=99999999999999999999".into(),
            400,
            "offset",
        ),
        ("metric=wip&sort_by=colour".into(), 422, "sort_by"),
        ("metric=wip&sort_order=up".into(), 422, "sort_order"),
        (
            format!("metric=wip&filters={}", urlencode("{not json")),
            400,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"{"planet": "mars"}"#)),
            422,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"{"assignee": 7}"#)),
            422,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"["assignee"]"#)),
            422,
            "filters",
        ),
        (
            format!(
                "metric=wip&filters={}",
                urlencode(r#"{"assignee": "'; DROP TABLE metrics_drilldown; --"}"#)
            ),
            200,
            "",
        ),
    ];
    for (query, status, field) in cases {
        let response = app
            .get(
                &format!("/v1/metrics/drilldown?project_id={project}&{query}"),
                None,
            )
            .await;
        if status == 200 {
            assert_eq!(response.status(), 200, "{query}");
            continue;
        }
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(response, status, code).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let rows: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM metrics_drilldown", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 0, "the injection string was only a value");
}

#[tokio::test]
async fn the_101st_summary_request_in_a_minute_is_rate_limited_for_that_key_only() {
    let (app, project) = folded_scenario(TestAppOptions::with_auth()).await;
    let first = app
        .create_key(Some(project), &[flowmeter_shared::auth::Role::Viewer])
        .await;
    let second = app
        .create_key(Some(project), &[flowmeter_shared::auth::Role::Viewer])
        .await;
    let path = format!("/v1/metrics/summary?project_id={project}");
    // A burst of 101 requests at once: the budget is a bucket of 100 that refills
    // continuously at 100 per minute (one every 0.6 s), so a burst gets 100 through.
    let started = std::time::Instant::now();
    let responses =
        futures_util::future::join_all((0..101).map(|_| app.get(&path, Some(&first)))).await;
    let refills = (started.elapsed().as_millis() / 600) as usize;
    let ok: Vec<_> = responses.iter().filter(|r| r.status() == 200).collect();
    let denied = responses.iter().filter(|r| r.status() == 429).count();
    assert!(
        ok.len() >= 100 && ok.len() <= 100 + refills,
        "{} allowed after {refills} refills",
        ok.len()
    );
    assert_eq!(ok.len() + denied, 101);
    let mut remaining: Vec<u64> = ok
        .iter()
        .map(|r| {
            r.headers()
                .get("x-ratelimit-remaining")
                .unwrap()
                .to_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    remaining.sort_unstable();
    if refills == 0 {
        assert_eq!(denied, 1);
        assert_eq!(
            remaining,
            (0..100).collect::<Vec<u64>>(),
            "each allowed request used one unit"
        );
    }
    for response in &ok {
        let headers = response.headers();
        assert_eq!(headers.get("x-ratelimit-limit").unwrap(), "100");
        assert_eq!(headers.get("x-ratelimit-policy").unwrap(), "100;w=60");
        assert!(
            headers
                .get("x-ratelimit-reset")
                .unwrap()
                .to_str()
                .unwrap()
                .parse::<u64>()
                .unwrap()
                > 1_700_000_000
        );
    }
    // Past the budget, the next requests are limited (after whatever refilled meanwhile).
    let mut tries = 0;
    let limited = loop {
        let response = app.get(&path, Some(&first)).await;
        if response.status() == 429 {
            break response;
        }
        tries += 1;
        assert!(tries <= refills + 5, "no 429 after {tries} more requests");
    };
    assert!(
        limited
            .headers()
            .get("retry-after")
            .unwrap()
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(limited.headers().get("x-ratelimit-remaining").unwrap(), "0");
    let body = assert_error(limited, 429, "rate_limited").await;
    assert!(body["details"]["retry_after"].as_u64().unwrap() >= 1);
    // Another key has its own budget; other endpoints have their own budgets.
    assert_eq!(app.get(&path, Some(&second)).await.status(), 200);
    let health = app
        .get(
            &format!("/v1/metrics/health?project_id={project}"),
            Some(&first),
        )
        .await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.headers().get("x-ratelimit-limit").unwrap(), "120");
    // Ingest is bounded by size, not rate.
    assert!(app
        .get("/health", None)
        .await
        .headers()
        .get("x-ratelimit-limit")
        .is_none());
}

#[tokio::test]
async fn breakdown_splits_a_metric_by_a_dimension_with_shares_totals_and_trends() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let get = |query: String| {
        let app = &app;
        async move {
            let response = app
                .get(
                    &format!("/v1/metrics/breakdown?project_id={project}&{query}"),
                    None,
                )
                .await;
            assert_eq!(response.status(), 200, "{query}");
            assert_common_headers(&response);
            response.json::<Value>().await.unwrap()
        }
    };
    // Last 7 days (to 14 March 12:00): only t2 integrated, in m1 ("Alpha"). The week before:
    // t1 (m1) and t6 (no milestone) → m1 had 1 then too.
    let body = get("metric=throughput&dimension=milestone".into()).await;
    assert_eq!(body["time_range"], "7d");
    assert_eq!(body["total"], 1.0);
    assert_eq!(
        body["breakdown"],
        json!([{"dimension_value": "m1", "dimension_label": "Alpha", "value": 1.0, "percentage": 100.0, "count": 1,
                "trend": {"direction": "stable", "change_pct": 0.0}}])
    );
    // 30 days: t1, t2 in m1, t6 without a milestone.
    let body = get("metric=throughput&dimension=milestone&time_range=30d".into()).await;
    let groups: Vec<(Value, f64, f64)> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dimension_value"].clone(),
                g["value"].as_f64().unwrap(),
                g["percentage"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![(json!("m1"), 2.0, 66.67), (Value::Null, 1.0, 33.33)]
    );
    assert_eq!(body["total"], 3.0);

    // Cycle time by assignee over 30 days: each group's median, total = overall median.
    let body = get("metric=cycle_time&dimension=assignee&time_range=30d".into()).await;
    let groups: Vec<(String, f64, i64)> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dimension_value"].as_str().unwrap().to_owned(),
                g["value"].as_f64().unwrap(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("ana".into(), 1980.0, 1),
            ("bo".into(), 7260.0, 1),
            ("cy".into(), 3240.0, 1)
        ]
    );
    assert_eq!(body["total"], 3240.0);
    // Filters on the other dimensions apply: m1 only (t1, t2).
    let body = get(format!(
        "metric=cycle_time&dimension=assignee&time_range=30d&filters={}",
        urlencode(r#"{"milestone": "m1"}"#)
    ))
    .await;
    assert_eq!(body["breakdown"].as_array().unwrap().len(), 2);
    assert_eq!(body["total"], 4620.0);
    assert_eq!(body["filters_applied"], json!({"milestone": ["m1"]}));

    // WIP by state: t3 implemented, t4 blocked (both entered WIP within the week).
    let body = get("metric=wip&dimension=state".into()).await;
    let states: Vec<&str> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["dimension_value"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["blocked", "implemented"]);
    assert_eq!(body["total"], 2.0);
}

#[tokio::test]
async fn breakdown_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("metric=throughput".into(), 400, "dimension"),
        ("dimension=assignee".into(), 400, "metric"),
        (
            "metric=throughput&dimension=planet".into(),
            422,
            "dimension",
        ),
        (
            "metric=delivery_predictability_index&dimension=assignee".into(),
            422,
            "metric",
        ),
        (
            "metric=throughput&dimension=assignee&time_range=1y".into(),
            422,
            "time_range",
        ),
        (
            format!(
                "metric=throughput&dimension=assignee&filters={}",
                urlencode(r#"{"assignee": "ana"}"#)
            ),
            422,
            "filters",
        ),
        (
            format!(
                "metric=throughput&dimension=assignee&filters={}",
                urlencode("{")
            ),
            400,
            "filters",
        ),
    ];
    for (query, status, field) in cases {
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(
            app.get(
                &format!("/v1/metrics/breakdown?project_id={project}&{query}"),
                None,
            )
            .await,
            status,
            code,
        )
        .await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
}

/// P(Binomial(n, ½) < k): the chance that fewer than k of n days complete a task.
fn binomial_half_below(n: u64, k: u64) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for i in 0..k.min(n + 1) {
        if i > 0 {
            choose = choose * (n - i + 1) as f64 / i as f64;
        }
        total += choose;
    }
    total / 2f64.powi(n as i32)
}

#[tokio::test]
async fn the_milestone_forecast_matches_a_closed_form_breach_probability() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let mut events = vec![b.event(
        "milestone",
        "target",
        "milestone_upserted",
        t("2026-03-01T00:00:00Z"),
        json!({"name": "Target", "planned_start_at": "2026-03-01T00:00:00Z", "due_at": "2026-04-10T18:00:00Z"}),
    )];
    // The 30 complete days before 31 March: one task integrated on each odd day (15 days),
    // none on even days, so each simulated day draws 0 or 1 with probability ½.
    for day in (1..=30).filter(|d| d % 2 == 1) {
        let id = format!("h{day}");
        let at = |hour: u32| t(&format!("2026-03-{day:02}T{hour:02}:00:00Z"));
        events.push(b.task_created(&id, at(8), json!({})));
        events.push(b.transition(&id, "in_progress", at(9)));
        events.push(b.transition(&id, "integrated", at(17)));
    }
    for i in 0..5 {
        events.push(b.task_created(
            &format!("open{i}"),
            t("2026-03-20T08:00:00Z"),
            json!({"milestone_id": "target"}),
        ));
    }
    events.sort_by_key(|e| e["occurred_at"].as_str().unwrap().to_owned());
    app.ingest(&events).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-31T12:00:00Z")],
    );

    let body: Value = app
        .get(
            &format!("/v1/metrics/health?project_id={}", b.project_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let target = body["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone_id"] == "target")
        .unwrap();
    assert_eq!(target["forecast"]["status"], "ok", "{target}");
    // Day 1 is 1 April; due on 10 April: the milestone breaches when fewer than 5 of those
    // 10 days complete a task.
    let expected = binomial_half_below(10, 5);
    assert!((expected - 0.376953).abs() < 1e-6);
    let got = target["breach_probability"].as_f64().unwrap();
    assert!(
        (got - expected).abs() <= 0.03,
        "breach probability {got}, closed form {expected}"
    );
    let score = target["health_score"].as_f64().unwrap();
    assert!((score - 100.0 * (1.0 - got)).abs() < 0.01);
    assert_eq!(
        target["health_status"],
        if score >= 70.0 {
            "green"
        } else if score >= 50.0 {
            "yellow"
        } else {
            "red"
        }
    );
    assert_eq!(target["task_summary"]["remaining"], 5);

    // With completions on only 4 of the 30 days there is no forecast, never a made-up one.
    let mut c = EventBuilder::new();
    let mut sparse = vec![c.event(
        "milestone",
        "m",
        "milestone_upserted",
        t("2026-03-01T00:00:00Z"),
        json!({"name": "M", "due_at": "2026-04-10T00:00:00Z"}),
    )];
    for day in [3, 9, 15, 21] {
        let id = format!("s{day}");
        sparse.push(c.task_created(
            &id,
            t(&format!("2026-03-{day:02}T08:00:00Z")),
            json!({"milestone_id": "m"}),
        ));
        sparse.push(c.transition(&id, "integrated", t(&format!("2026-03-{day:02}T17:00:00Z"))));
    }
    sparse.push(c.task_created(
        "left",
        t("2026-03-25T08:00:00Z"),
        json!({"milestone_id": "m"}),
    ));
    app.ingest(&sparse).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &c.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-31T12:00:00Z")],
    );
    let body: Value = app
        .get(
            &format!("/v1/metrics/health?project_id={}", c.project_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let m = &body["milestones"][0];
    assert_eq!(
        m["forecast"],
        json!({"status": "insufficient_data", "p50": null, "p85": null, "p95": null})
    );
    assert_eq!(m["breach_probability"], Value::Null);
    assert_eq!(m["health_score"], 80.0, "100 × 4 completed / 5 tasks");
}
