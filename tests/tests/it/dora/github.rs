//! Replayed GitHub deliveries (tests/fixtures/github, written in the shapes of GitHub's
//! webhook documentation) through the real API and worker. Snapshot time: 2026-03-20T12:00Z.
//!
//! The deliveries, in order (repository acme/shop, pull request #12):
//! - 01 PR opened as a draft 17 Mar 09:00 → task created in progress; 02 ready for review
//!   15:00 → implemented; 03 review requested from bo 15:05 → gate requested.
//! - 04 workflow run 901 attempt 1 fails 15:10–15:20 → attempt failed_checks; 05 bo requests
//!   changes 17:00 → gate rejected; 06 attempt 2 succeeds 18 Mar 09:00–09:12; 07 bo approves
//!   10:00 → gate approved (the latest decision).
//! - 08 push of commits aaa111 (10:30) and bbb222 (10:50) → two changes; 09 PR merged
//!   11:00 → integrated.
//! - 10 deployment 5001 of bbb222 to production created 12:00 → started; 11 status
//!   in_progress → ignored; 12 status success 12:20 → finished.
//! - 13 issue #40 labelled incident opened 13:00, its body names deployment 5001; 14 closed
//!   14:30 → incident resolved.
//! - 15 a `star` delivery and 16 GitHub's `ping` → ignored.
//!
//! Worked numbers: lead and cycle time 17 Mar 09:00 → 18 Mar 11:00 = 1560 min; throughput
//! 1; gate latency 15:05 → 10:00 = 1135 min; outcomes 1 success, 1 failed_checks, retry to
//! success 15:20 → 09:12 = 1072 min. DORA: one successful production deployment (1/30 =
//! 0.0333 per day, medium); lead time for changes bbb222 10:50 → 12:20 = 90 min (aaa111 is
//! not the deployment's sha); change failure rate 1/1 (the incident names it, low); time to
//! restore 90 min (high).

use crate::ops::workspace_root;
use flowmeter_api::integrations::signature_of;
use flowmeter_tests::app::TestAppOptions;
use flowmeter_tests::worker::{assert_verified, backfill, metric_value};
use flowmeter_tests::{bin_path, TestApp};
use reqwest::StatusCode;
use serde_json::{json, Value};
use uuid::Uuid;

pub const SECRET_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const SECRET: &str = "a webhook secret";

/// (fixture, X-GitHub-Event, status, event types stored)
const DELIVERIES: [(&str, &str, u16, &[&str]); 16] = [
    (
        "01-pull_request-opened",
        "pull_request",
        200,
        &["task_created"],
    ),
    (
        "02-pull_request-ready_for_review",
        "pull_request",
        200,
        &["task_state_transitioned"],
    ),
    (
        "03-pull_request-review_requested",
        "pull_request",
        200,
        &["gate_requested"],
    ),
    (
        "04-workflow_run-failure",
        "workflow_run",
        200,
        &[
            "integration_attempt_started",
            "integration_attempt_finished",
        ],
    ),
    (
        "05-pull_request_review-changes_requested",
        "pull_request_review",
        200,
        &["gate_decision_recorded"],
    ),
    (
        "06-workflow_run-success",
        "workflow_run",
        200,
        &[
            "integration_attempt_started",
            "integration_attempt_finished",
        ],
    ),
    (
        "07-pull_request_review-approved",
        "pull_request_review",
        200,
        &["gate_decision_recorded"],
    ),
    (
        "08-push",
        "push",
        200,
        &["change_committed", "change_committed"],
    ),
    (
        "09-pull_request-closed-merged",
        "pull_request",
        200,
        &["task_state_transitioned"],
    ),
    (
        "10-deployment-created",
        "deployment",
        200,
        &["deployment_started"],
    ),
    (
        "11-deployment_status-in_progress",
        "deployment_status",
        202,
        &[],
    ),
    (
        "12-deployment_status-success",
        "deployment_status",
        200,
        &["deployment_finished"],
    ),
    ("13-issues-opened", "issues", 200, &["incident_opened"]),
    ("14-issues-closed", "issues", 200, &["incident_resolved"]),
    ("15-star-created", "star", 202, &[]),
    ("16-ping", "ping", 202, &[]),
];

pub fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(workspace_root().join(format!("tests/fixtures/github/{name}.json"))).unwrap()
}

fn set_secret(app: &TestApp, project: Uuid, key: Option<&str>) -> std::process::Output {
    use std::io::Write;
    let mut command = std::process::Command::new(bin_path("flowmeter-api"));
    command
        .args([
            "integrations",
            "github",
            "set-secret",
            "--project",
            &project.to_string(),
        ])
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", &app.db.url)
        .env("FLOWMETER_LOG", "warn")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    if let Some(key) = key {
        command.env("FLOWMETER_SECRET_KEY", key);
    }
    let mut child = command.spawn().unwrap();
    // A refused command may exit before it reads its input.
    if let Err(e) = writeln!(child.stdin.take().unwrap(), "{SECRET}") {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    child.wait_with_output().unwrap()
}

/// Stores `SECRET` for a project directly (sealed with `SECRET_KEY`), as set-secret does.
pub async fn store_secret(app: &TestApp, project: Uuid) {
    let key = flowmeter_api::integrations::secrets::SecretKey::parse(SECRET_KEY).unwrap();
    let sealed = key.seal(project, SECRET.as_bytes());
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO integration_github_secret (project_id, nonce, ciphertext) VALUES ($1, $2, $3)",
            &[&project, &sealed.nonce, &sealed.ciphertext],
        )
        .await
        .unwrap();
}

/// The signature GitHub would send for `body` with the test secret.
pub fn signed(body: &[u8]) -> Option<String> {
    Some(signature_of(SECRET.as_bytes(), body))
}

/// An app whose FLOWMETER_SECRET_KEY opens the test secrets.
pub fn with_secret_key(options: TestAppOptions) -> TestAppOptions {
    options.env("FLOWMETER_SECRET_KEY", SECRET_KEY)
}

pub async fn deliver(
    app: &TestApp,
    project: Uuid,
    kind: &str,
    delivery: &str,
    body: &[u8],
    signature: Option<String>,
) -> reqwest::Response {
    let mut request = app
        .http
        .post(app.url(&format!("/v1/integrations/github?project_id={project}")))
        .header("content-type", "application/json")
        .header("x-github-event", kind)
        .header("x-github-delivery", delivery)
        .body(body.to_vec());
    if let Some(signature) = signature {
        request = request.header("x-hub-signature-256", signature);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn replayed_github_deliveries_give_the_expected_events_and_metrics() {
    let app =
        TestApp::spawn_with(TestAppOptions::with_auth().env("FLOWMETER_SECRET_KEY", SECRET_KEY))
            .await;
    let project = Uuid::new_v4();

    // The secret: refused without FLOWMETER_SECRET_KEY, stored encrypted with it.
    let refused = set_secret(&app, project, None);
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("FLOWMETER_SECRET_KEY"));
    let stored = set_secret(&app, project, Some(SECRET_KEY));
    assert!(
        stored.status.success(),
        "{}",
        String::from_utf8_lossy(&stored.stderr)
    );
    let ciphertext: Vec<u8> = app
        .db
        .client()
        .await
        .query_one(
            "SELECT ciphertext FROM integration_github_secret WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert!(!ciphertext
        .windows(SECRET.len())
        .any(|w| w == SECRET.as_bytes()));

    let sign = signed;
    for (i, (name, kind, status, types)) in DELIVERIES.iter().enumerate() {
        let body = fixture(name);
        let delivery = format!("7d3f0c2e-0000-4000-8000-{i:012}");
        let response = deliver(&app, project, kind, &delivery, &body, sign(&body)).await;
        assert_eq!(response.status().as_u16(), *status, "{name}");
        let answer: Value = response.json().await.unwrap();
        assert_eq!(answer["event_types"], json!(types), "{name}: {answer}");
        assert_eq!(answer["accepted"], types.len(), "{name}");
        assert_eq!(answer["ignored"], *status == 202, "{name}");
    }
    assert_eq!(app.stored_events(project).await, 16);

    // A redelivery (same delivery id) stores nothing new.
    let merged = fixture(DELIVERIES[8].0);
    let again = deliver(
        &app,
        project,
        "pull_request",
        "7d3f0c2e-0000-4000-8000-000000000008",
        &merged,
        sign(&merged),
    )
    .await;
    assert_eq!(again.status(), StatusCode::OK);
    let again: Value = again.json().await.unwrap();
    assert_eq!(
        (again["accepted"].clone(), again["duplicates"].clone()),
        (json!(0), json!(1))
    );

    // A bad or missing signature, or a project without a secret: 401, nothing stored.
    let wrong = Some(signature_of(b"another secret", &merged));
    for (target, signature) in [
        (project, wrong),
        (project, None),
        (Uuid::new_v4(), sign(&merged)),
    ] {
        let response = deliver(
            &app,
            target,
            "pull_request",
            "new-delivery",
            &merged,
            signature,
        )
        .await;
        flowmeter_tests::app::assert_error(response, 401, "unauthorized").await;
    }
    let tampered = {
        let mut body = merged.clone();
        body.extend_from_slice(b" ");
        body
    };
    let response = deliver(
        &app,
        project,
        "pull_request",
        "tampered",
        &tampered,
        sign(&merged),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.stored_events(project).await, 16);

    let metrics = app.get("/metrics", None).await.text().await.unwrap();
    let counter = |result: &str| {
        metric_value(
            &metrics,
            &format!("flowmeter_github_deliveries_total{{result=\"{result}\"}}"),
        )
    };
    assert_eq!(counter("ignored"), Some(3.0));
    assert_eq!(counter("stored"), Some(14.0));
    assert_eq!(counter("unauthorized"), Some(4.0));

    backfill(&app.db.url, project, 10_000);
    assert_verified(&app.db.url, project);
    let payload = app.latest_summary_payload(project).await;
    let op = &payload["operational"];
    assert_eq!(op["lead_time"]["p50_minutes"], 1560.0);
    assert_eq!(op["cycle_time"]["p50_minutes"], 1560.0);
    assert_eq!(op["throughput"]["tasks_integrated_week"], 1);
    assert_eq!(op["gates"]["queue_length"], 0);
    assert_eq!(op["gates"]["avg_latency_minutes"], 1135.0);
    assert_eq!(op["integration_outcomes"]["success"], 1);
    assert_eq!(op["integration_outcomes"]["failed_checks"], 1);
    assert_eq!(
        op["integration_outcomes"]["avg_retry_to_success_minutes"],
        1072.0
    );
    assert_eq!(
        payload["dora"],
        json!({
            "deployment_frequency": {"per_day": 0.0333, "count_30d": 1, "performance_level": "medium"},
            "lead_time_for_changes": {"p50_minutes": 90.0, "p90_minutes": 90.0, "sample_size": 1,
                                      "performance_level": "high"},
            "change_failure_rate": {"rate": 1.0, "failures": 1, "deployments": 1,
                                    "performance_level": "low"},
            "time_to_restore": {"p50_minutes": 90.0, "sample_size": 1, "performance_level": "high"}
        })
    );
}

#[tokio::test]
async fn a_delivery_missing_a_mapped_field_is_refused_naming_it() {
    let app =
        TestApp::spawn_with(TestAppOptions::default().env("FLOWMETER_SECRET_KEY", SECRET_KEY))
            .await;
    let project = Uuid::new_v4();
    assert!(set_secret(&app, project, Some(SECRET_KEY)).status.success());
    let mut body: Value = serde_json::from_slice(&fixture("01-pull_request-opened")).unwrap();
    body["pull_request"]
        .as_object_mut()
        .unwrap()
        .remove("created_at");
    let body = serde_json::to_vec(&body).unwrap();
    let sig = signed(&body);
    let response = deliver(&app, project, "pull_request", "d-1", &body, sig.clone()).await;
    let error = flowmeter_tests::app::assert_error(response, 422, "validation_error").await;
    assert_eq!(error["details"]["field"], "pull_request.created_at");
    let response = deliver(&app, project, "", "d-2", &body, sig).await;
    let error = flowmeter_tests::app::assert_error(response, 400, "bad_request").await;
    assert_eq!(error["details"]["field"], "X-GitHub-Event");
    assert_eq!(app.stored_events(project).await, 0);
}
