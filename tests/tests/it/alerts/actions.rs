//! Suggested actions through the real worker and API: each action type with its
//! confidence and affected tasks from the projections, and none for a healthy project.

use super::*;
use flowmeter_tests::worker::{assert_verified, dump_read_model};
use flowmeter_tests::TestAppOptions;

async fn actions(app: &TestApp, project: Uuid) -> Vec<Value> {
    let response = app
        .get(&format!("/v1/metrics/actions?project_id={project}"), None)
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let summary: Value = app
        .get(&format!("/v1/metrics/summary?project_id={project}"), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["metrics"]["actionability"]["suggested_actions"], body["suggestions"],
        "the summary and the actions endpoint carry the same objects"
    );
    body["suggestions"].as_array().unwrap().clone()
}

fn find<'a>(actions: &'a [Value], kind: &str) -> &'a Value {
    actions
        .iter()
        .find(|a| a["action_type"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {actions:#?}"))
}

#[tokio::test]
async fn blocked_old_and_waiting_work_produce_unblock_swarm_and_reroute() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let h = |hours: i64| now() - Duration::hours(hours);
    let mut events = Vec::new();
    // Blocked 50 h and 48 + 24·2 + 3 h (2 whole days beyond 48 h → 0.7).
    for (id, blocked_for) in [("blk-a", 50), ("blk-b", 48 + 48 + 3)] {
        events.push(b.task_created(id, h(200), json!({})));
        events.push(b.transition(id, "in_progress", h(blocked_for + 1)));
        events.push(b.transition(id, "blocked", h(blocked_for)));
    }
    // In progress since 7 d + 3 d + 1 h (3 whole days beyond 7 d → 0.7) and 7 d + 2 h.
    for (id, age) in [("old-a", 24 * 10 + 1), ("old-b", 24 * 7 + 2)] {
        events.push(b.task_created(id, h(age + 10), json!({})));
        events.push(b.transition(id, "in_progress", h(age)));
    }
    // Reviews pending: ana 5, bo 1, cy 2 (median 2) → ana holds more than twice the median.
    let mut gate = 0;
    for (reviewer, count) in [("ana", 5), ("bo", 1), ("cy", 2)] {
        for i in 0..count {
            gate += 1;
            let task = format!("rev-{reviewer}-{i}");
            events.push(b.task_created(&task, h(30), json!({})));
            events.push(b.transition(&task, "implemented", h(29)));
            events.push(b.event(
                "gate",
                &format!("g{gate}"),
                "gate_requested",
                h(20 - i),
                json!({"task_id": task, "reviewer": reviewer, "gate_type": "review_gate"}),
            ));
        }
    }
    app.ingest(&events).await;
    fold(&app, project, &[]);
    let found = actions(&app, project).await;
    // The stored suggestions (with the firing alerts they name) survive verify and rebuild.
    let client = app.db.client().await;
    assert_verified(&app.db.url, project);
    let before = dump_read_model(&client, project).await;
    worker_json(
        &app.db.url,
        &["rebuild", "--project", &project.to_string()],
        &[],
    );
    assert_eq!(
        dump_read_model(&client, project).await,
        before,
        "rebuild is not byte for byte"
    );
    assert!(
        found.iter().any(|a| a["evidence_refs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r.as_str().unwrap().starts_with("alert:"))),
        "the blocked-ratio alert is named as evidence: {found:#?}"
    );
    let kinds: Vec<&str> = found
        .iter()
        .map(|a| a["action_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        vec!["unblock", "swarm", "reroute_reviewer"],
        "{found:#?}"
    );

    let unblock = find(&found, "unblock");
    assert_eq!(unblock["confidence"], json!(0.7));
    // blk-a and blk-b are WIP older than 7 d too? No: they entered WIP 51 h and 100 h ago.
    assert_eq!(unblock["affected_tasks"], json!(["blk-b", "blk-a"]));
    assert!(unblock["rationale"].as_str().unwrap().contains("2 tasks"));

    let swarm = find(&found, "swarm");
    assert_eq!(swarm["confidence"], json!(0.7));
    assert_eq!(swarm["affected_tasks"], json!(["old-a", "old-b"]));

    let reroute = find(&found, "reroute_reviewer");
    assert_eq!(reroute["confidence"], json!(0.4));
    // ana's pending gates' tasks, oldest request first (gate i was requested 20 − i h ago).
    assert_eq!(
        reroute["affected_tasks"],
        json!([
            "rev-ana-0",
            "rev-ana-1",
            "rev-ana-2",
            "rev-ana-3",
            "rev-ana-4"
        ])
    );
    assert_eq!(
        reroute["evidence_refs"],
        json!(["metric:gates.pending_by_reviewer:ana:5"])
    );
}

#[tokio::test]
async fn a_large_backlog_escalates_naming_its_alert_and_the_oldest_tasks() {
    let app = TestApp::spawn().await;
    let mut backlog = Backlog::new();
    let project = backlog.project();
    backlog.set(&app, 12, &[]).await;
    let alert = alerts_for(&app, project, "ini_backlog").await[0].0;
    let found = actions(&app, project).await;
    let escalate = find(&found, "escalate");
    assert_eq!(escalate["confidence"], json!(0.5));
    assert_eq!(
        escalate["affected_tasks"],
        json!(["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7", "t8", "t9"])
    );
    assert_eq!(
        escalate["evidence_refs"],
        json!(["metric:ini_backlog:12", format!("alert:{alert}")])
    );
}

#[tokio::test]
async fn a_healthy_project_gets_no_suggestions_and_the_switch_turns_them_off() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let h = |hours: i64| now() - Duration::hours(hours);
    app.ingest(&[
        b.task_created("a", h(30), json!({})),
        b.transition("a", "in_progress", h(20)),
        b.transition("a", "implemented", h(10)),
        b.transition("a", "integrated", h(5)),
        b.task_created("b", h(4), json!({})),
        b.transition("b", "in_progress", h(3)),
    ])
    .await;
    fold(&app, project, &[]);
    assert_eq!(actions(&app, project).await, Vec::<Value>::new());

    // With actions switched off in the worker, even a project that needs them gets none,
    // and the API answers 503 for the actions endpoint.
    let mut backlog = Backlog::new();
    let busy = backlog.project();
    backlog
        .set(&app, 15, &[("FLOWMETER_DISABLED_FEATURES", "actions")])
        .await;
    assert_eq!(actions(&app, busy).await, Vec::<Value>::new());
    let off = TestApp::spawn_with(
        TestAppOptions::default().env("FLOWMETER_DISABLED_FEATURES", "actions,alerts"),
    )
    .await;
    for path in ["/v1/metrics/actions", "/v1/metrics/alerts"] {
        let response = off.get(&format!("{path}?project_id={busy}"), None).await;
        flowmeter_tests::app::assert_error(response, 503, "service_unavailable").await;
    }
}
