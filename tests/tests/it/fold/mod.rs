//! The fold engine end to end: the real worker binary against a real PostgreSQL.

mod correctness;
mod daemon;
mod operations;
mod time_model;

use std::time::{Duration, Instant};

use chrono::Duration as Span;
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::{
    assert_verified, backfill, dump_read_model, metric_value, verify, wait_until_caught_up,
    wait_until_in_run, worker, worker_json, WorkerProcess,
};
use flowmeter_tests::{TestApp, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

/// A varied stream: tasks through their whole life, gates, failing and succeeding
/// attempts, blocked episodes, a milestone, an out-of-order transition for an unknown
/// task and a from_state that disagrees with the projection.
pub fn varied_stream(b: &mut EventBuilder, tasks: usize) -> Vec<Value> {
    let start = t("2026-02-01T08:00:00Z");
    let mut events = vec![
        b.event("project", "p", "project_upserted", start, json!({"name": "Varied"})),
        b.event("phase", "ph1", "phase_upserted", start, json!({"name": "Build", "sequence": 1})),
        b.event(
            "milestone",
            "m1",
            "milestone_upserted",
            start,
            json!({"name": "M1", "phase_id": "ph1", "planned_start_at": "2026-02-01T00:00:00Z", "due_at": "2026-03-01T00:00:00Z"}),
        ),
    ];
    let people = ["ana", "bo", "cy"];
    for i in 0..tasks {
        let id = format!("t{i}");
        let at = |hours: i64| start + Span::hours(hours + i as i64 * 7);
        events.push(b.task_created(
            &id,
            at(0),
            json!({"milestone_id": if i % 3 == 0 { "m1" } else { "m2" }, "phase_id": "ph1",
                   "assignee": people[i % 3], "task_class": if i % 2 == 0 { "feature" } else { "bug" }}),
        ));
        events.push(b.transition(&id, "ready", at(2)));
        events.push(b.transition(&id, "claimed", at(5)));
        events.push(b.transition(&id, "in_progress", at(6)));
        if i % 4 == 1 {
            events.push(b.transition(&id, "blocked", at(10)));
            events.push(b.transition(&id, "in_progress", at(10 + 20 + (i as i64 % 3) * 30)));
        }
        if i % 5 == 4 {
            continue; // still in progress
        }
        events.push(b.transition(&id, "implemented", at(100)));
        let gate = format!("g{i}");
        events.push(b.event(
            "gate",
            &gate,
            "gate_requested",
            at(101),
            json!({"task_id": id, "reviewer": people[(i + 1) % 3], "sla_hours": 24}),
        ));
        if i % 7 == 3 {
            continue; // waiting for review
        }
        events.push(b.event(
            "gate",
            &gate,
            "gate_decision_recorded",
            at(101 + 3 + i as i64 % 40),
            json!({"task_id": id, "outcome": "approved"}),
        ));
        let attempt = format!("a{i}");
        events.push(b.event(
            "integration_attempt",
            &attempt,
            "integration_attempt_started",
            at(150),
            json!({"task_id": id, "attempt_number": 1}),
        ));
        if i % 3 == 2 {
            events.push(b.event(
                "integration_attempt",
                &attempt,
                "integration_attempt_finished",
                at(151),
                json!({"task_id": id, "result": "conflict"}),
            ));
            events.push(b.transition(&id, "conflict", at(151)));
            events.push(b.transition(&id, "implemented", at(160)));
            let retry = format!("a{i}r");
            events.push(b.event(
                "integration_attempt",
                &retry,
                "integration_attempt_started",
                at(161),
                json!({"task_id": id, "attempt_number": 2}),
            ));
            events.push(b.event(
                "integration_attempt",
                &retry,
                "integration_attempt_finished",
                at(162),
                json!({"task_id": id, "result": "success"}),
            ));
            events.push(b.transition(&id, "integrated", at(162)));
        } else {
            events.push(b.event(
                "integration_attempt",
                &attempt,
                "integration_attempt_finished",
                at(151),
                json!({"task_id": id, "result": "success"}),
            ));
            events.push(b.transition(&id, "integrated", at(151)));
        }
    }
    // Out of order and inconsistent facts.
    events.push(b.transition("ghost", "in_progress", t("2026-02-20T10:00:00Z")));
    events.push(b.event(
        "task",
        "t0",
        "task_state_transitioned",
        t("2026-03-05T10:00:00Z"),
        json!({"to_state": "cancelled", "from_state": "ready"}),
    ));
    events.push(b.event(
        "task",
        "t1",
        "task_updated",
        t("2026-03-06T10:00:00Z"),
        json!({"assignee": "dee"}),
    ));
    events
}

async fn seeded(tasks: usize) -> (TestApp, Uuid) {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let events = varied_stream(&mut b, tasks);
    for chunk in events.chunks(500) {
        app.ingest(chunk).await;
    }
    (app, b.project_id)
}

async fn checkpoint(client: &tokio_postgres::Client, project: Uuid) -> (i64, i64) {
    let row = client
        .query_one(
            "SELECT c.last_seq, h.last_seq FROM metrics_job_checkpoint c
               JOIN event_stream_head h USING (project_id) WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

async fn reset_projections(db: &TestDb, project: Uuid) {
    let client = db.client().await;
    for table in [
        "metrics_task",
        "metrics_gate",
        "metrics_integration_attempt",
        "metrics_milestone",
        "metrics_phase",
        "metrics_state_transition_counter",
        "metrics_data_quality_counter",
        "metrics_trend_point",
        "metrics_breakdown_point",
        "metrics_drilldown",
        "metrics_event_quarantine",
        "metrics_summary",
        "metrics_job_run",
        "metrics_job_checkpoint",
    ] {
        client
            .execute(
                &format!("DELETE FROM {table} WHERE project_id = $1"),
                &[&project],
            )
            .await
            .unwrap();
    }
}

async fn assignee(client: &tokio_postgres::Client, project: Uuid) -> Option<String> {
    client
        .query_one(
            "SELECT assignee FROM metrics_task WHERE project_id = $1 AND task_id = 't1'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0)
}
