//! Summary, health, actions, caching, errors, scope, kill switches, /health/all, CORS, rate limits.

use super::*;

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
