//! `POST /v1/events`: validation of the whole catalogue, all-or-nothing batches,
//! idempotency, limits, NDJSON.

use flowmeter_tests::app::{assert_common_headers, assert_error};
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::{json, Value};
use uuid::Uuid;

fn scenario(b: &mut EventBuilder) -> Vec<Value> {
    let at = t("2026-03-02T09:00:00Z");
    vec![
        b.event(
            "project",
            "p",
            "project_upserted",
            at,
            json!({"name": "Apollo"}),
        ),
        b.task_created("t1", at, json!({"priority": 2, "assignee": "ana"})),
        b.transition("t1", "claimed", t("2026-03-02T10:00:00Z")),
        b.transition("t1", "in_progress", t("2026-03-02T10:05:00Z")),
    ]
}

#[tokio::test]
async fn a_valid_batch_is_stored_with_counts_and_a_resend_is_all_duplicates() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let batch = scenario(&mut b);

    let response = app.post_events(&Value::Array(batch.clone()), None).await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["version"], "1.0");
    assert_eq!(body["accepted"], 4);
    assert_eq!(body["duplicates"], 0);
    assert_eq!(
        body["projects"],
        json!([{"project_id": b.project_id, "accepted": 4, "duplicates": 0, "first_seq": 1, "last_seq": 4}])
    );
    assert_eq!(app.stored_events(b.project_id).await, 4);

    let again = app.ingest(&batch).await;
    assert_eq!(again["accepted"], 0);
    assert_eq!(again["duplicates"], 4);
    assert_eq!(again["projects"][0]["first_seq"], Value::Null);
    assert_eq!(app.stored_events(b.project_id).await, 4);

    // The project took its name from project_upserted.
    let name: String = app
        .db
        .client()
        .await
        .query_one("SELECT name FROM project WHERE id = $1", &[&b.project_id])
        .await
        .unwrap()
        .get(0);
    assert_eq!(name, "Apollo");
}

#[tokio::test]
async fn a_batch_spanning_projects_reports_each_project() {
    let app = TestApp::spawn().await;
    let mut a = EventBuilder::new();
    let mut b = EventBuilder::new();
    let at = t("2026-03-02T09:00:00Z");
    let batch = vec![
        a.task_created("t1", at, json!({})),
        b.task_created("t1", at, json!({})),
        a.transition("t1", "ready", at),
        a.transition("t1", "ready", at),
    ];
    let body = app.ingest(&batch).await;
    assert_eq!(body["accepted"], 4);
    let projects = body["projects"].as_array().unwrap();
    assert_eq!(projects.len(), 2);
    let of = |p: Uuid| {
        projects
            .iter()
            .find(|x| x["project_id"] == p.to_string())
            .unwrap()
            .clone()
    };
    assert_eq!(of(a.project_id)["accepted"], 3);
    assert_eq!(of(a.project_id)["last_seq"], 3);
    assert_eq!(of(b.project_id)["accepted"], 1);
}

#[tokio::test]
async fn the_same_event_id_twice_in_one_batch_is_stored_once() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let e = b.task_created("t1", t("2026-03-02T09:00:00Z"), json!({}));
    let body = app.ingest(&[e.clone(), e]).await;
    assert_eq!(
        (body["accepted"].as_u64(), body["duplicates"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(app.stored_events(b.project_id).await, 1);
}

#[tokio::test]
async fn one_bad_event_stores_nothing_and_reports_its_index_and_field() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let mut batch = scenario(&mut b);
    batch[2]["payload"]["to_state"] = json!("done");
    batch[3]["occurred_at"] = json!("2026-13-45");
    let response = app.post_events(&Value::Array(batch), None).await;
    let body = assert_error(response, 422, "validation_error").await;
    let errors = body["details"]["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0]["index"], 2);
    assert_eq!(errors[0]["field"], "payload.to_state");
    assert_eq!(errors[0]["code"], "invalid_value");
    assert_eq!(errors[1]["index"], 3);
    assert_eq!(errors[1]["field"], "occurred_at");
    assert_eq!(app.stored_events(b.project_id).await, 0);
}

#[tokio::test]
async fn every_invalid_field_of_every_event_is_reported() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let at = t("2026-03-02T09:00:00Z");
    let mut three = b.event("tusk", "t1", "task_created", at, json!({"assignee": "ana"}));
    three["occurred_at"] = json!("last tuesday");
    let mut two = b.transition("t2", "finished", at);
    two["payload"]["force"] = json!("yes");
    let valid = b.task_created("t3", at, json!({}));
    let response = app.post_events(&json!([three, valid, two]), None).await;
    let body = assert_error(response, 422, "validation_error").await;
    let found: Vec<(u64, &str, &str)> = body["details"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["index"].as_u64().unwrap(),
                e["field"].as_str().unwrap(),
                e["code"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            (0, "entity_type", "invalid_value"),
            (0, "occurred_at", "invalid_timestamp"),
            (0, "payload.title", "required"),
            (2, "payload.to_state", "invalid_value"),
            (2, "payload.force", "invalid_type"),
        ],
        "{body}"
    );
    assert_eq!(
        body["message"],
        "2 of 3 events are invalid; nothing was stored"
    );
    assert_eq!(app.stored_events(b.project_id).await, 0);
}

/// (event_type, entity_type, a valid payload, an invalid payload, the field it names).
fn catalogue() -> Vec<(&'static str, &'static str, Value, Value, &'static str)> {
    vec![
        (
            "project_upserted",
            "project",
            json!({"name": "P", "status": "paused"}),
            json!({"status": "active"}),
            "payload.name",
        ),
        (
            "phase_upserted",
            "phase",
            json!({"name": "Build", "sequence": 2}),
            json!({"name": "B", "sequence": "two"}),
            "payload.sequence",
        ),
        (
            "milestone_upserted",
            "milestone",
            json!({"name": "M1", "phase_id": "ph1", "sequence": 1, "planned_start_at": "2026-03-01T00:00:00Z", "due_at": "2026-03-20T00:00:00Z"}),
            json!({"name": "M1", "due_at": "next friday"}),
            "payload.due_at",
        ),
        (
            "task_created",
            "task",
            json!({"title": "T", "phase_id": "ph1", "milestone_id": "m1", "task_class": "feature", "priority": 1, "assignee": "ana", "state": "ready"}),
            json!({"title": "T", "state": "started"}),
            "payload.state",
        ),
        (
            "task_updated",
            "task",
            json!({"assignee": "bo", "priority": 3}),
            json!({"priority": 1.5}),
            "payload.priority",
        ),
        (
            "task_state_transitioned",
            "task",
            json!({"to_state": "implemented", "from_state": "in_progress", "reason": "done", "reviewed_by": "cy", "force": false}),
            json!({"from_state": "ready"}),
            "payload.to_state",
        ),
        (
            "gate_requested",
            "gate",
            json!({"task_id": "t1", "gate_type": "review_gate", "reviewer": "cy", "sla_hours": 24}),
            json!({"task_id": "t1", "sla_hours": -1}),
            "payload.sla_hours",
        ),
        (
            "gate_decision_recorded",
            "gate",
            json!({"task_id": "t1", "outcome": "approved_with_risk", "actor_id": "cy"}),
            json!({"task_id": "t1", "outcome": "maybe"}),
            "payload.outcome",
        ),
        (
            "integration_attempt_started",
            "integration_attempt",
            json!({"task_id": "t1", "attempt_number": 1, "base_sha": "a", "head_sha": "b"}),
            json!({"attempt_number": 1}),
            "payload.task_id",
        ),
        (
            "integration_attempt_finished",
            "integration_attempt",
            json!({"task_id": "t1", "result": "failed_checks", "attempt_number": 1}),
            json!({"task_id": "t1", "result": 7}),
            "payload.result",
        ),
    ]
}

#[tokio::test]
async fn every_catalogue_event_type_has_a_valid_and_an_invalid_case() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let at = t("2026-03-02T09:00:00Z");
    for (event_type, entity_type, valid, invalid, field) in catalogue() {
        let good = b.event(entity_type, "x1", event_type, at, valid);
        let response = app.post_events(&json!([good]), None).await;
        assert_eq!(response.status(), 200, "{event_type} valid case");

        let bad = b.event(entity_type, "x1", event_type, at, invalid);
        let body = assert_error(
            app.post_events(&json!([bad]), None).await,
            422,
            "validation_error",
        )
        .await;
        assert_eq!(
            body["details"]["errors"][0]["field"], field,
            "{event_type} invalid case: {body}"
        );
    }
    assert_eq!(
        app.stored_events(b.project_id).await,
        catalogue().len() as i64
    );
}

#[tokio::test]
async fn malformed_envelopes_name_their_field() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let base = b.task_created("t1", t("2026-03-02T09:00:00Z"), json!({}));
    type Case = (Box<dyn Fn(&mut Value)>, &'static str, &'static str);
    let cases: Vec<Case> = vec![
        (
            Box::new(|e| e["project_id"] = json!("not-a-uuid")),
            "project_id",
            "invalid_uuid",
        ),
        (
            Box::new(|e| {
                e.as_object_mut().unwrap().remove("event_id");
            }),
            "event_id",
            "required",
        ),
        (
            Box::new(|e| e["event_type"] = json!("task_deleted")),
            "event_type",
            "invalid_value",
        ),
        (
            Box::new(|e| e["entity_type"] = json!("gate")),
            "entity_type",
            "mismatch",
        ),
        (
            Box::new(|e| e["payload"] = json!([1, 2])),
            "payload",
            "invalid_type",
        ),
        (
            Box::new(|e| e["entity_id"] = json!(42)),
            "entity_id",
            "invalid_type",
        ),
        (
            Box::new(|e| e["event_id"] = json!("x".repeat(300))),
            "event_id",
            "too_long",
        ),
        (
            Box::new(|e| e["surprise"] = json!(true)),
            "surprise",
            "unknown_field",
        ),
        (
            Box::new(|e| e["event_id"] = json!("'; DROP TABLE event_log; --")),
            "",
            "",
        ),
    ];
    for (mutate, field, code) in cases {
        let mut event = base.clone();
        mutate(&mut event);
        let response = app.post_events(&json!([event]), None).await;
        if field.is_empty() {
            // An injection string is just an id: stored verbatim, harmlessly.
            assert_eq!(response.status(), 200);
            continue;
        }
        let body = assert_error(response, 422, "validation_error").await;
        assert_eq!(body["details"]["errors"][0]["field"], field, "{body}");
        assert_eq!(body["details"]["errors"][0]["code"], code, "{body}");
    }
    let tables: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM event_log", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1);
}

#[tokio::test]
async fn bodies_that_are_not_an_event_array_are_bad_requests() {
    let app = TestApp::spawn().await;
    for body in ["{\"not\": \"an array\"}", "[{\"truncated\": ", "", "\u{0}"] {
        let response = app
            .http
            .post(app.url("/v1/events"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        let error = assert_error(response, 400, "bad_request").await;
        assert_eq!(error["details"]["field"], "body");
    }
    let response = app
        .http
        .post(app.url("/v1/events"))
        .body(vec![0xff, 0xfe, b'[', b']'])
        .send()
        .await
        .unwrap();
    assert_error(response, 400, "bad_request").await;
}

#[tokio::test]
async fn ndjson_bodies_are_accepted() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let lines: Vec<String> = scenario(&mut b).iter().map(|e| e.to_string()).collect();
    let response = app
        .http
        .post(app.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(format!("{}\n\n", lines.join("\n")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["accepted"], 4);

    let response = app
        .http
        .post(app.url("/v1/events"))
        .header("content-type", "application/x-ndjson")
        .body(format!("{}\nnot json\n", lines[0]))
        .send()
        .await
        .unwrap();
    let error = assert_error(response, 400, "bad_request").await;
    assert_eq!(error["details"]["line"], 2);
}

#[tokio::test]
async fn oversized_bodies_and_batches_get_413_and_store_nothing() {
    let app = TestApp::spawn_with(
        TestAppOptions::default()
            .env("FLOWMETER_INGEST_MAX_BYTES", "4096")
            .env("FLOWMETER_INGEST_MAX_EVENTS", "3"),
    )
    .await;
    let mut b = EventBuilder::new();
    let at = t("2026-03-02T09:00:00Z");
    let huge = b.task_created("t1", at, json!({"title": "x".repeat(5000)}));
    let body = assert_error(
        app.post_events(&json!([huge]), None).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(body["details"]["max_bytes"], 4096);

    let four: Vec<Value> = (0..4)
        .map(|i| b.task_created(&format!("t{i}"), at, json!({})))
        .collect();
    let body = assert_error(
        app.post_events(&Value::Array(four), None).await,
        413,
        "payload_too_large",
    )
    .await;
    assert_eq!(body["details"]["max_events"], 3);
    assert_eq!(app.stored_events(b.project_id).await, 0);
}

#[tokio::test]
async fn an_ingest_commit_notifies_listening_workers() {
    let app = TestApp::spawn().await;
    let (client, mut connection) = tokio_postgres::connect(&app.db.url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        use futures_util::StreamExt;
        while let Some(Ok(message)) = messages.next().await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send((n.channel().to_owned(), n.payload().to_owned()));
            }
        }
    });
    client
        .batch_execute("LISTEN flowmeter_events")
        .await
        .unwrap();
    let mut b = EventBuilder::new();
    app.ingest(&scenario(&mut b)).await;
    let (channel, payload) = tokio::time::timeout(std::time::Duration::from_secs(5), rx.recv())
        .await
        .expect("a notification within 5 s")
        .unwrap();
    assert_eq!(channel, "flowmeter_events");
    assert_eq!(payload, b.project_id.to_string());
}
