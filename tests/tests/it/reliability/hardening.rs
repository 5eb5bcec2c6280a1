//! SPEC §14 against the real server: conflicting duplicates, first occurrence wins inside a
//! batch, exact payload numbers, gzip ingest, 415, the body timeout, the envelope on
//! refusals made outside our handlers, and PostgreSQL data errors as 422.

use std::io::Write;
use std::time::{Duration, Instant};

use flowmeter_tests::app::{assert_common_headers, assert_error};
use flowmeter_tests::{TestApp, TestAppOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test]
async fn a_reused_event_id_with_other_content_is_409_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let at = Utc::now() - chrono::Duration::hours(1);
    let first = b.task_created("t1", at, json!({"priority": 2, "weight": 2}));
    app.ingest(std::slice::from_ref(&first)).await;

    // The same event again: a duplicate, as before.
    let body = app.ingest(std::slice::from_ref(&first)).await;
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(0), Some(1))
    );

    // The same event_id with any field changed: 409 naming the index, nothing stored.
    let fresh = b.task_created("t2", at, json!({}));
    let changes: Vec<(&str, Value)> = vec![
        (
            "payload",
            json!({"title": "Task t1", "priority": 3, "weight": 2}),
        ),
        ("entity_id", json!("t9")),
        (
            "occurred_at",
            json!((at + chrono::Duration::seconds(1)).to_rfc3339()),
        ),
        ("caused_by", json!("someone")),
        ("correlation_id", json!("c-1")),
    ];
    for (field, value) in changes {
        let mut changed = first.clone();
        changed[field] = value;
        let response = app
            .post_events(&json!([fresh.clone(), changed]), None)
            .await;
        let error = assert_error(response, 409, "conflict").await;
        assert_eq!(
            error["details"]["conflicts"],
            json!([{"index": 1, "event_id": first["event_id"]}]),
            "{field}: {error}"
        );
    }
    assert_eq!(
        app.stored_events(project).await,
        1,
        "no refused batch stored anything"
    );
    // A number written differently but equal is the same content (JSONB equality).
    let mut same = first.clone();
    same["payload"]["weight"] = json!(2.0);
    let body = app.ingest(&[same]).await;
    assert_eq!(body["duplicates"], 1);
}

#[tokio::test]
async fn inside_a_batch_the_first_occurrence_wins_in_the_log_and_the_projections() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let at = Utc::now() - chrono::Duration::hours(3);
    let named = |name: &str| {
        json!({
            "project_id": project,
            "event_id": "name-1",
            "entity_type": "project",
            "entity_id": project,
            "event_type": "project_upserted",
            "occurred_at": at.to_rfc3339(),
            "payload": {"name": name},
        })
    };
    // Two different copies of one event in a batch: a conflict at the second.
    let response = app
        .post_events(&json!([named("First"), named("Second")]), None)
        .await;
    let error = assert_error(response, 409, "conflict").await;
    assert_eq!(error["details"]["conflicts"][0]["index"], 1);
    assert_eq!(app.stored_events(project).await, 0);

    // Two identical copies: one stored, one duplicate; the name is the first's.
    let task = b.task_created("t1", at, json!({}));
    let moved = b.transition("t1", "in_progress", at + chrono::Duration::minutes(5));
    let body = app
        .ingest(&[named("First"), task.clone(), named("First"), task, moved])
        .await;
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(3), Some(2))
    );
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT name FROM project WHERE id = $1),
                    (SELECT count(*) FROM event_log WHERE project_id = $1),
                    (SELECT last_seq FROM event_stream_head WHERE project_id = $1)",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "First");
    assert_eq!(row.get::<_, i64>(1), 3);
    assert_eq!(row.get::<_, i64>(2), 3, "a duplicate never consumes a seq");

    // The fold sees the task once.
    flowmeter_tests::worker::worker_json(
        &app.db.url,
        &["once", "--project", &project.to_string()],
        &[],
    );
    let tasks: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_task WHERE project_id = $1 AND state = 'in_progress'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tasks, 1);
    flowmeter_tests::worker::assert_verified(&app.db.url, project);
}

#[tokio::test]
async fn payload_numbers_round_trip_exactly_through_ingest_and_the_log() {
    let app = TestApp::spawn().await;
    let project = Uuid::new_v4();
    let at = (Utc::now() - chrono::Duration::hours(1)).to_rfc3339();
    let body = format!(
        r#"[{{"project_id": "{project}", "event_id": "big-1", "entity_type": "task",
             "entity_id": "t1", "event_type": "task_created", "occurred_at": "{at}",
             "payload": {{"title": "big", "priority": 1, "external_id": 12345678901234567890123,
                          "ratio": 0.10000000000000000555111512312578270211815834045}}}}]"#
    );
    let response = app
        .http
        .post(app.url("/v1/events"))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{}", response.text().await.unwrap());
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT payload->>'external_id', payload->>'ratio' FROM event_log
              WHERE project_id = $1 AND event_id = 'big-1'",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "12345678901234567890123");
    assert_eq!(
        row.get::<_, String>(1),
        "0.10000000000000000555111512312578270211815834045"
    );
    // The resend is an identical duplicate (not a conflict), and the worker still folds it.
    let again = app
        .http
        .post(app.url("/v1/events"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.json::<Value>().await.unwrap()["duplicates"], 1);
    flowmeter_tests::worker::worker_json(
        &app.db.url,
        &["once", "--project", &project.to_string()],
        &[],
    );
    let priority: Option<i64> = client
        .query_one(
            "SELECT priority FROM metrics_task WHERE project_id = $1 AND task_id = 't1'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(priority, Some(1));
}

#[tokio::test]
async fn gzip_ingest_is_accepted_and_bombs_and_other_types_are_refused() {
    let app = TestApp::spawn_with(
        TestAppOptions::default().env("FLOWMETER_INGEST_MAX_BYTES", (256 * 1024).to_string()),
    )
    .await;
    let mut b = EventBuilder::new();
    let at = Utc::now() - chrono::Duration::hours(1);
    let events = json!([
        b.task_created("t1", at, json!({})),
        b.task_created("t2", at, json!({}))
    ]);
    let post = |body: Vec<u8>, content_type: &str, encoding: Option<&str>| {
        let mut request = app
            .http
            .post(app.url("/v1/events"))
            .header("content-type", content_type)
            .body(body);
        if let Some(encoding) = encoding {
            request = request.header("content-encoding", encoding);
        }
        request.send()
    };
    let json_bytes = serde_json::to_vec(&events).unwrap();
    let response = post(gzip(&json_bytes), "application/json", Some("gzip"))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 2);

    let ndjson: String = [
        b.task_created("t3", at, json!({})),
        b.task_created("t4", at, json!({})),
    ]
    .iter()
    .map(|e| format!("{e}\n"))
    .collect();
    let response = post(
        gzip(ndjson.as_bytes()),
        "application/x-ndjson; charset=utf-8",
        Some("gzip"),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["accepted"], 2);

    // A bomb: 2 KiB compressed, 16 MiB of spaces inside; the decompressed size counts.
    let mut bomb_plain = json_bytes.clone();
    bomb_plain.extend(std::iter::repeat_n(b' ', 16 * 1024 * 1024));
    let bomb = gzip(&bomb_plain);
    assert!(bomb.len() < 64 * 1024);
    let started = Instant::now();
    let error = assert_error(
        post(bomb, "application/json", Some("gzip")).await.unwrap(),
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(error["details"]["max_bytes"], 256 * 1024);
    assert!(started.elapsed() < Duration::from_secs(5));

    let error = assert_error(
        post(
            b"not gzip at all".to_vec(),
            "application/json",
            Some("gzip"),
        )
        .await
        .unwrap(),
        400,
        "bad_request",
    )
    .await;
    assert_eq!(error["details"]["field"], "body");
    let error = assert_error(
        post(json_bytes.clone(), "application/json", Some("br"))
            .await
            .unwrap(),
        415,
        "unsupported_media_type",
    )
    .await;
    assert_eq!(error["details"]["field"], "content-encoding");
    for content_type in [
        "text/plain",
        "application/x-www-form-urlencoded",
        "application/xml",
    ] {
        let error = assert_error(
            post(json_bytes.clone(), content_type, None).await.unwrap(),
            415,
            "unsupported_media_type",
        )
        .await;
        assert_eq!(error["details"]["field"], "content-type");
        assert_eq!(
            error["details"]["allowed_values"],
            json!(["application/json", "application/x-ndjson"])
        );
    }
}

/// Sends a raw HTTP/1.1 request head (and part of a body) and reads the answer.
async fn raw_exchange(app: &TestApp, head_and_body: &str, wait: Duration) -> (String, Duration) {
    let mut stream = tokio::net::TcpStream::connect(app.address).await.unwrap();
    stream.write_all(head_and_body.as_bytes()).await.unwrap();
    let started = Instant::now();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    (
        String::from_utf8_lossy(&answer).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_is_408_in_the_envelope() {
    let app =
        TestApp::spawn_with(TestAppOptions::default().env("FLOWMETER_HTTP_BODY_TIMEOUT_MS", "700"))
            .await;
    for path in [
        "/v1/events".to_owned(),
        format!(
            "/v1/metrics/alerts/{}/acknowledge?project_id={}",
            Uuid::new_v4(),
            Uuid::new_v4()
        ),
    ] {
        let request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\nX-Request-ID: slow-1\r\n\r\n[{{\"a\":"
        );
        let (answer, took) = raw_exchange(&app, &request, Duration::from_secs(10)).await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{path}: {answer}");
        assert!(took < Duration::from_secs(3), "{path}: {took:?}");
        let lower = answer.to_ascii_lowercase();
        assert!(lower.contains("x-api-version: 1.0"), "{answer}");
        assert!(lower.contains("x-request-id: slow-1"), "{answer}");
        assert!(answer.contains("\"error\":\"request_timeout\""), "{answer}");
    }
}

#[tokio::test]
async fn refusals_outside_the_handlers_carry_the_envelope_and_headers() {
    let app = TestApp::spawn_with(
        TestAppOptions::default().env("FLOWMETER_CORS_ORIGINS", "https://dash.example.com"),
    )
    .await;
    let (project, alert) = folded_project_with_alert(&app).await;

    // An acknowledgement body over 256 KiB.
    let big = json!({"reason": "x".repeat(300 * 1024)});
    let response = app
        .http
        .post(app.url(&format!(
            "/v1/metrics/alerts/{alert}/acknowledge?project_id={project}"
        )))
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_error(response, 413, "payload_too_large").await;
    // ... a body in another type, and NUL in the reason.
    let response = app
        .http
        .post(app.url(&format!(
            "/v1/metrics/alerts/{alert}/acknowledge?project_id={project}"
        )))
        .header("content-type", "text/plain")
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(response, 415, "unsupported_media_type").await;

    // A CORS preflight from an origin that is not allowed: 403 forbidden.
    let response = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.url(&format!("/v1/metrics/summary?project_id={project}")),
        )
        .header("origin", "https://evil.example.com")
        .header("access-control-request-method", "GET")
        .send()
        .await
        .unwrap();
    let error = assert_error(response, 403, "forbidden").await;
    assert!(
        error["message"].as_str().unwrap().contains("CORS"),
        "{error}"
    );

    // Query strings past 8 KiB up to what the HTTP parser takes (64 KiB): our 400.
    for size in [9 * 1024, 60 * 1024] {
        let long = format!(
            "/v1/metrics/summary?project_id={project}&x={}",
            "a".repeat(size)
        );
        let error = assert_error(app.get(&long, None).await, 400, "bad_request").await;
        assert_eq!(error["details"]["field"], "query");
    }
    // Every answer above had the headers; so does a plain success.
    let ok = app.get("/health", None).await;
    assert_common_headers(&ok);
}

#[tokio::test]
async fn postgresql_data_errors_become_422_never_500() {
    use flowmeter_api::error::ApiError;
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    for (sql, sqlstate) in [
        ("SELECT 'abc'::int", "22P02"),
        ("SELECT 1 / 0", "22012"),
        (r#"SELECT '"a\u0000b"'::jsonb"#, "22P05"),
    ] {
        let error = client.query(sql, &[]).await.unwrap_err();
        let api: ApiError = anyhow::Error::new(error)
            .context("a repository call")
            .into();
        match api {
            ApiError::Validation { details, .. } => {
                assert_eq!(details["sqlstate"], sqlstate, "{sql}")
            }
            other => panic!("{sql}: {other:?}"),
        }
    }
}
