//! Exactly once: batch-size identity, rebuild, verify, idempotency, poison events, out-of-order facts, import.

use super::*;
use flowmeter_shared::metrics::TaskState;

/// Task rows written before the typed state columns existed carry their state as JSONB
/// `facts` only; the worker reads them as they are.
#[tokio::test]
async fn task_rows_with_only_the_older_jsonb_facts_are_read_and_verified() {
    let (app, project) = seeded(12).await;
    let url = app.db.url.clone();
    let client = app.db.client().await;
    assert_eq!(backfill(&url, project, 10_000)["caught_up"], true);
    let converted = client
        .execute(
            "UPDATE metrics_task SET facts = jsonb_build_object(
                 'task_id', task_id, 'title', title, 'phase_id', phase_id,
                 'milestone_id', milestone_id, 'assignee', assignee, 'task_class', task_class,
                 'priority', priority, 'state', state, 'inferred', inferred,
                 'created_at', created_at, 'claimed_at', claimed_at,
                 'implemented_at', implemented_at, 'integrated_at', integrated_at,
                 'terminal_at', terminal_at, 'state_entered_at', state_entered_at,
                 'blocked_since', blocked_since,
                 'time_in_state_seconds', jsonb_build_object(
                     'backlog', time_in_state_seconds[1], 'ready', time_in_state_seconds[2],
                     'reserved', time_in_state_seconds[3], 'claimed', time_in_state_seconds[4],
                     'in_progress', time_in_state_seconds[5], 'implemented', time_in_state_seconds[6],
                     'integrated', time_in_state_seconds[7], 'conflict', time_in_state_seconds[8],
                     'blocked', time_in_state_seconds[9], 'abandoned', time_in_state_seconds[10],
                     'cancelled', time_in_state_seconds[11]),
                 'blocked_episodes', COALESCE((SELECT jsonb_agg(jsonb_build_object('started_at', s, 'ended_at', e) ORDER BY i)
                     FROM unnest(blocked_started_at, blocked_ended_at) WITH ORDINALITY AS b(s, e, i)), '[]'::jsonb),
                 'integration_attempts', integration_attempts,
                 'integration_failures', integration_failures),
                 time_in_state_seconds = NULL, blocked_started_at = NULL, blocked_ended_at = NULL
              WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    assert!(converted >= 12, "{converted} task rows converted");
    assert_verified(&url, project);
}

/// Drill-down rows are written with snapshots. A worker that stops between snapshots leaves
/// tasks whose rows are still owed; the next process must find them from the projections.
#[tokio::test]
async fn drilldown_rows_owed_at_a_stop_between_snapshots_are_written_by_the_next_process() {
    let (app, project) = seeded(24).await;
    let url = app.db.url.clone();
    let client = app.db.client().await;
    let drilldown_rows = || async {
        client
            .query_one(
                "SELECT count(*) FROM metrics_drilldown WHERE project_id = $1",
                &[&project],
            )
            .await
            .unwrap()
            .get::<_, i64>(0)
    };

    let whole = backfill(&url, project, 10_000);
    assert_eq!(whole["caught_up"], true, "{whole}");
    let expected = dump_read_model(&client, project).await;

    reset_projections(&app.db, project).await;
    // The first run of a process snapshots; the two after it do not.
    let args = [
        "backfill",
        "--project",
        &project.to_string(),
        "--max-events",
        "40",
        "--max-runs",
        "3",
    ];
    worker_json(&url, &args, &[]);
    let after_first_process = drilldown_rows().await;
    let rest = backfill(&url, project, 40);
    assert_eq!(rest["caught_up"], true, "{rest}");
    assert!(
        drilldown_rows().await > after_first_process,
        "the second process wrote the owed rows"
    );
    assert_verified(&url, project);
    assert_eq!(
        dump_read_model(&client, project).await["metrics_drilldown"],
        expected["metrics_drilldown"],
        "drill-down rows differ from a fold in one process"
    );
}

#[tokio::test]
async fn batches_of_1_7_and_10000_give_identical_read_models_and_rebuild_reproduces_them() {
    let (app, project) = seeded(24).await;
    let url = app.db.url.clone();
    let client = app.db.client().await;

    let mut dumps = Vec::new();
    for batch in [10_000, 7, 1] {
        reset_projections(&app.db, project).await;
        let result = backfill(&url, project, batch);
        assert_eq!(result["caught_up"], true, "{result}");
        assert_verified(&url, project);
        dumps.push(dump_read_model(&client, project).await);
    }
    let events: i64 = client
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert!(events > 200, "a stream of some size: {events}");
    assert_eq!(dumps[0]["metrics_summary"].as_array().unwrap().len(), 1);
    assert!(dumps[0]["metrics_trend_point"].as_array().unwrap().len() > 100);
    assert_eq!(dumps[0], dumps[1], "batch 7 differs from batch 10000");
    assert_eq!(dumps[0], dumps[2], "batch 1 differs from batch 10000");

    let rebuilt = worker_json(&url, &["rebuild", "--project", &project.to_string()], &[]);
    assert_eq!(rebuilt["replayed_events"], events);
    assert_eq!(
        dump_read_model(&client, project).await,
        dumps[0],
        "rebuild is not byte for byte"
    );
    assert_verified(&url, project);

    let refused = worker(
        &url,
        &["rebuild", "--project", &project.to_string(), "--from", "5"],
        &[],
    );
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("from the middle"));
}

#[tokio::test]
async fn verify_reports_a_tampered_read_model() {
    let (app, project) = seeded(6).await;
    backfill(&app.db.url, project, 10_000);
    assert_verified(&app.db.url, project);
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE metrics_state_transition_counter SET transition_count = transition_count + 1
              WHERE project_id = $1 AND task_state = 'integrated'",
            &[&project],
        )
        .await
        .unwrap();
    let (ok, report) = verify(&app.db.url, project);
    assert!(!ok);
    let mismatches = report["mismatches"].as_array().unwrap();
    assert_eq!(mismatches.len(), 1, "{report:#}");
    assert!(mismatches[0]
        .as_str()
        .unwrap()
        .contains("metrics_state_transition_counter"));
}

#[tokio::test]
async fn the_same_idempotency_key_twice_runs_once_and_a_failed_key_is_retried() {
    let (app, project) = seeded(6).await;
    let url = app.db.url.clone();
    let p = project.to_string();
    let first = worker_json(
        &url,
        &["once", "--project", &p, "--key", "k1", "--max-events", "10"],
        &[],
    );
    assert_eq!(first["outcome"]["reused"], false);
    assert_eq!(first["outcome"]["processed_events"], 10);
    let again = worker_json(
        &url,
        &["once", "--project", &p, "--key", "k1", "--max-events", "10"],
        &[],
    );
    assert_eq!(again["outcome"]["reused"], true);
    assert_eq!(again["outcome"]["processed_events"], 0);
    let client = app.db.client().await;
    assert_eq!(
        checkpoint(&client, project).await.0,
        10,
        "the second call folded nothing"
    );

    // A run that fails (its statements time out behind a lock) is recorded as failed…
    let mut blocker = flowmeter_tests::db::connect(&url).await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE metrics_task IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let failed = worker(
        &url,
        &["once", "--project", &p, "--key", "k2"],
        &[("FLOWMETER_DB_STATEMENT_TIMEOUT_MS", "300")],
    );
    assert!(!failed.status.success());
    tx.rollback().await.unwrap();
    let row = client
        .query_one(
            "SELECT status, attempts FROM metrics_job_run WHERE project_id = $1 AND idempotency_key = 'k2'",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(
        (row.get::<_, String>(0), row.get::<_, i32>(1)),
        ("failed".into(), 1)
    );
    assert_eq!(
        checkpoint(&client, project).await.0,
        10,
        "a failed run advances nothing"
    );

    // …and the same key retried succeeds, with attempts + 1.
    let retried = worker_json(&url, &["once", "--project", &p, "--key", "k2"], &[]);
    assert_eq!(retried["outcome"]["run"]["status"], "succeeded");
    assert_eq!(retried["outcome"]["run"]["attempts"], 2);
    let (last, head) = checkpoint(&client, project).await;
    assert_eq!(last, head);
    assert_verified(&url, project);
}

#[tokio::test]
async fn a_poison_event_is_quarantined_the_cursor_moves_on_and_retry_reapplies_it() {
    let (app, project) = seeded(4).await;
    let url = app.db.url.clone();
    let p = project.to_string();
    let client = app.db.client().await;
    // A payload an older validator let through, appended with plain SQL.
    client
        .execute(
            "INSERT INTO event_log (project_id, event_id, entity_type, entity_id, event_type, payload, occurred_at)
             VALUES ($1, 'bad-1', 'task', 't1', 'task_state_transitioned', '{\"to_state\": \"done\"}', now())",
            &[&project],
        )
        .await
        .unwrap();
    // A bug in the current code makes task_updated events unappliable (simulated).
    let poisoned = [("FLOWMETER_TEST_POISON_EVENT_TYPES", "task_updated")];
    worker_json(&url, &["backfill", "--project", &p], &poisoned);
    let (last, head) = checkpoint(&client, project).await;
    assert_eq!(last, head, "the cursor moved past the poison events");

    let listed = worker_json(&url, &["quarantine", "list", "--project", &p], &[]);
    let items = listed["quarantined"].as_array().unwrap();
    let types: Vec<&str> = items
        .iter()
        .map(|i| i["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        vec!["task_updated", "task_state_transitioned"],
        "{listed:#}"
    );
    assert!(items[1]["error"].as_str().unwrap().contains("to_state"));
    assert_eq!(
        assignee(&client, project).await.as_deref(),
        Some("bo"),
        "the poisoned update was not applied"
    );

    // With the code fixed, retry clears the entries and applies the events again.
    let retried = worker_json(&url, &["quarantine", "retry", "--project", &p], &[]);
    assert_eq!(
        retried["rebuild"]["quarantined"], 1,
        "only the truly bad event stays quarantined"
    );
    assert_eq!(
        assignee(&client, project).await.as_deref(),
        Some("dee"),
        "the update is applied now"
    );
    let listed = worker_json(&url, &["quarantine", "list", "--project", &p], &[]);
    assert_eq!(listed["quarantined"].as_array().unwrap().len(), 1);
    assert_verified(&url, project);
}

#[tokio::test]
async fn out_of_order_facts_are_placed_in_the_task_history_by_time_and_counted_as_findings() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&[
        // A transition for a task never created: inferred, created at the transition's time.
        b.transition("ghost", "in_progress", t("2026-03-10T10:00:00Z")),
        // from_state disagrees with the state the task has at that time (integrated, from
        // the next event, which is older): to_state wins.
        b.event(
            "task",
            "ghost",
            "task_state_transitioned",
            t("2026-03-10T12:00:00Z"),
            json!({"to_state": "implemented", "from_state": "ready"}),
        ),
        // Older than the stay before it in arrival order: placed in the history by its time,
        // so no stay is negative and the newer state stays current.
        b.transition("ghost", "integrated", t("2026-03-10T11:00:00Z")),
    ])
    .await;
    backfill(&app.db.url, b.project_id, 10_000);
    let client = app.db.client().await;
    let task = client
        .query_one(
            "SELECT inferred, state, created_at, time_in_state_seconds FROM metrics_task WHERE project_id = $1 AND task_id = 'ghost'",
            &[&b.project_id],
        )
        .await
        .unwrap();
    assert!(task.get::<_, bool>(0));
    assert_eq!(task.get::<_, String>(1), "implemented");
    assert_eq!(
        task.get::<_, chrono::DateTime<chrono::Utc>>(2),
        t("2026-03-10T10:00:00Z")
    );
    let times: Vec<f64> = task.get(3);
    assert_eq!(times[TaskState::InProgress.index()], 3600.0);
    assert_eq!(times[TaskState::Integrated.index()], 3600.0);
    let issues: Vec<(String, i64)> = client
        .query(
            "SELECT issue, count FROM metrics_data_quality_counter WHERE project_id = $1 ORDER BY issue",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(
        issues,
        vec![
            ("from_state_mismatch".to_owned(), 1),
            ("inferred_task".to_owned(), 1),
        ]
    );
    assert_verified(&app.db.url, b.project_id);
}

async fn event_count(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one("SELECT count(*) FROM event_log", &[])
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn import_validates_the_whole_file_before_storing_and_is_idempotent() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let events = varied_stream(&mut b, 3);
    let dir = std::env::temp_dir().join(format!("fm-import-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let good = dir.join("good.ndjson");
    let lines: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    std::fs::write(&good, format!("{}\n", lines.join("\n"))).unwrap();
    let bad = dir.join("bad.ndjson");
    std::fs::write(
        &bad,
        format!("{}\n{{\"event_id\": 1}}\nnot json\n", lines[0]),
    )
    .unwrap();

    let out = worker(&app.db.url, &["import", bad.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["invalid"], 2);
    // Every problem of line 2 (a lone event_id of the wrong type), then line 3's.
    let errors = report["errors"].as_array().unwrap();
    let line_2: Vec<&str> = errors
        .iter()
        .filter(|e| e["line"] == 2)
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        line_2,
        [
            "project_id",
            "event_id",
            "event_type",
            "entity_type",
            "entity_id",
            "occurred_at",
            "payload"
        ],
        "{report}"
    );
    let last = errors.last().unwrap();
    assert_eq!(
        (&last["line"], &last["code"]),
        (&json!(3), &json!("invalid_json"))
    );
    let client = app.db.client().await;
    assert_eq!(
        event_count(&client).await,
        0,
        "nothing stored from an invalid file"
    );

    let first = worker_json(
        &app.db.url,
        &["import", good.to_str().unwrap(), "--batch-size", "7"],
        &[],
    );
    assert_eq!(first["accepted"], events.len());
    let again = worker_json(&app.db.url, &["import", good.to_str().unwrap()], &[]);
    assert_eq!(
        (again["accepted"].as_u64(), again["duplicates"].as_u64()),
        (Some(0), Some(events.len() as u64))
    );
    assert_eq!(event_count(&client).await, events.len() as i64);
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn import_stores_payload_numbers_exactly_as_written() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let mut event = b.task_created("big", t("2026-03-01T00:00:00Z"), json!({}));
    event["payload"]["estimate"] = json!(1);
    let line = event
        .to_string()
        .replace("\"estimate\":1", "\"estimate\":12345678901234567890123");
    let file = std::env::temp_dir().join(format!("flowmeter-exact-{}.ndjson", b.project_id));
    std::fs::write(&file, format!("{line}\n")).unwrap();
    let report = worker_json(&app.db.url, &["import", file.to_str().unwrap()], &[]);
    std::fs::remove_file(&file).ok();
    assert_eq!(report["accepted"], 1, "{report}");
    let stored: String = app
        .db
        .client()
        .await
        .query_one(
            "SELECT payload->>'estimate' FROM event_log WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, "12345678901234567890123");
}
