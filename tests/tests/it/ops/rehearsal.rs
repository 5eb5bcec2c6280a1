//! The rollout rehearsal of the runbook, end to end: migrate → ingest and fold → smoke →
//! rollback → nothing of the metrics subsystem left, the event log, projects and keys kept →
//! start again (the migrations re-apply) → fold from seq 1 → smoke → the same numbers.

use flowmeter_shared::auth::Role;
use flowmeter_tests::{TestApp, TestAppOptions, TestDb};

use super::*;

/// Everything named metrics_* in the catalog, plus the metrics migrations still recorded.
pub async fn metrics_leftovers(client: &tokio_postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT 'relation ' || relname FROM pg_class
              WHERE relname LIKE 'metrics\\_%' AND relnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'type ' || typname FROM pg_type
              WHERE (typname LIKE 'metrics\\_%' OR typname LIKE '\\_metrics\\_%')
                AND typnamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'routine ' || proname FROM pg_proc
              WHERE proname LIKE 'metrics\\_%' AND pronamespace = 'public'::regnamespace
             UNION ALL
             SELECT 'trigger ' || tgname FROM pg_trigger WHERE tgname LIKE 'metrics\\_%'
             UNION ALL
             SELECT 'migration ' || version FROM schema_migrations WHERE version LIKE '%\\_metrics\\_%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect()
}

/// Rows of the tables a rollback keeps, as one comparable JSON value.
pub async fn kept_data(client: &tokio_postgres::Client) -> Value {
    let text: String = client
        .query_one(
            "SELECT jsonb_build_object(
                 'events', (SELECT jsonb_agg(jsonb_build_array(project_id, seq, event_id) ORDER BY project_id, seq) FROM event_log),
                 'heads', (SELECT jsonb_agg(to_jsonb(h) ORDER BY project_id) FROM event_stream_head h),
                 'projects', (SELECT jsonb_agg(to_jsonb(p) ORDER BY id) FROM project p),
                 'keys', (SELECT jsonb_agg(jsonb_build_array(id, key_hash, status) ORDER BY id) FROM api_key),
                 'migrations', (SELECT jsonb_agg(version ORDER BY version) FROM schema_migrations
                                 WHERE version NOT LIKE '%\\_metrics\\_%'))::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    serde_json::from_str(&text).unwrap()
}

/// Alert ids are new random ids after a refold; everything else must come out the same.
fn without_alert_ids(value: &mut Value) {
    match value {
        Value::String(text) if text.starts_with("alert:") => *text = "alert:<id>".into(),
        Value::Array(items) => items.iter_mut().for_each(without_alert_ids),
        Value::Object(fields) => fields.values_mut().for_each(without_alert_ids),
        _ => {}
    }
}

/// What the summary and the firing alerts say, without the ids a refold renews.
async fn summary_numbers(app: &TestApp, project: Uuid, key: &str) -> Value {
    let body = get_json(
        &app.base_url,
        &format!("/v1/metrics/summary?project_id={project}"),
        key,
    )
    .await;
    let alerts = get_json(
        &app.base_url,
        &format!("/v1/metrics/alerts?project_id={project}&state=firing&limit=500"),
        key,
    )
    .await;
    let mut firing: Vec<Value> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            serde_json::json!([
                a["metric_key"],
                a["alert_type"],
                a["severity"],
                a["value"],
                a["threshold"]
            ])
        })
        .collect();
    firing.sort_by_key(|a| a.to_string());
    let mut numbers = serde_json::json!({
        "timestamp": body["timestamp"],
        "metrics": body["metrics"],
        "as_of_seq": body["freshness"]["as_of_seq"],
        "log_head_seq": body["freshness"]["log_head_seq"],
        "firing_alerts": firing,
    });
    without_alert_ids(&mut numbers);
    numbers
}

fn assert_smoke_passes(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "smoke failed: {}", output_text(out));
    assert_eq!(
        text.lines().filter(|l| l.starts_with("PASS")).count(),
        8,
        "health and the seven metrics endpoints pass:\n{text}"
    );
    assert!(!text.contains("FAIL"), "{text}");
}

#[tokio::test]
async fn rollback_rehearsal_round_trips_to_the_same_numbers() {
    // Migrate (the template is migrated), ingest and fold with the real worker.
    let db = TestDb::migrated().await;
    let projects = load_demo(&db.url, 2, 40);
    let mut worker = fold_everything(&db.url).await;
    let app = TestApp::spawn_on(db, TestAppOptions::with_auth()).await;
    let key = app.create_key(None, &[Role::Viewer]).await;

    for project in &projects {
        assert_smoke_passes(&smoke(&app.base_url, *project, Some(&key)));
    }
    let mut before = Vec::new();
    for project in &projects {
        before.push(summary_numbers(&app, *project, &key).await);
    }
    assert!(
        before[0]["metrics"]["operational"]["throughput"]["tasks_integrated_week"].is_number(),
        "the demo projects have folded numbers: {:#}",
        before[0]
    );
    assert!(
        before
            .iter()
            .any(|b| !b["firing_alerts"].as_array().unwrap().is_empty()),
        "the demo data fires alerts, so their re-derivation is compared too"
    );
    let client = app.db.client().await;
    let kept_before = kept_data(&client).await;

    // Stop the processes, as the runbook says, then roll back.
    worker.terminate();
    let _ = worker.child.wait();
    let db = app.shut_down().await;
    let out = run_script(
        "rollback_metrics.sh",
        &["--confirm"],
        &[("FLOWMETER_DATABASE_URL", &db.url)],
    );
    assert!(out.status.success(), "rollback: {}", output_text(&out));
    assert_eq!(metrics_leftovers(&client).await, Vec::<String>::new());
    assert_eq!(
        kept_data(&client).await,
        kept_before,
        "the event log, projects and keys are kept"
    );

    // Start again: the server's start-up re-applies the metrics migrations and the worker
    // folds every project from seq 1.
    let app = TestApp::spawn_on(db, TestAppOptions::with_auth()).await;
    let versions: Vec<String> = client
        .query(
            "SELECT version FROM schema_migrations WHERE version LIKE '%\\_metrics\\_%'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(
        versions.iter().any(|v| v == "0003_metrics_fold"),
        "{versions:?}"
    );
    let _worker = fold_everything(&app.db.url).await;
    for (project, before) in projects.iter().zip(&before) {
        assert_smoke_passes(&smoke(&app.base_url, *project, Some(&key)));
        assert_eq!(
            &summary_numbers(&app, *project, &key).await,
            before,
            "project {project} folds to the same summary after the rollback"
        );
    }
    assert_eq!(kept_data(&client).await, kept_before);
}

#[tokio::test]
async fn smoke_fails_with_exit_1_for_an_unknown_project_a_bad_key_or_no_server() {
    let db = TestDb::migrated().await;
    let projects = load_demo(&db.url, 1, 20);
    let _worker = fold_everything(&db.url).await;
    let app = TestApp::spawn_on(db, TestAppOptions::with_auth()).await;
    let key = app.create_key(None, &[Role::Viewer]).await;

    let out = smoke(&app.base_url, Uuid::new_v4(), Some(&key));
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    let summary = text
        .lines()
        .find(|l| l.contains("/v1/metrics/summary"))
        .unwrap();
    assert!(
        summary.starts_with("FAIL") && summary.contains("404"),
        "{text}"
    );
    // /health needs no project, so it still passes.
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASS") && l.contains(" /health ")),
        "{text}"
    );

    let out = smoke(
        &app.base_url,
        projects[0],
        Some("fm_not_a_key_000000000000"),
    );
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("401"));

    let out = smoke(&app.base_url, projects[0], None);
    assert_eq!(out.status.code(), Some(1), "no key: {}", output_text(&out));

    // Nothing listens on a port we just released.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let out = smoke(&format!("http://{closed}"), projects[0], Some(&key));
    assert_eq!(out.status.code(), Some(1), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("request failed"));
}
