//! The scheduler as a real process: several workers, crashes, metrics, signals, NOTIFY, schedules.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_workers_and_concurrent_writers_fold_every_event_exactly_once() {
    let app = TestApp::spawn().await;
    let url = app.db.url.clone();
    let _w1 = WorkerProcess::spawn(&url, &[("FLOWMETER_NRT_MAX_EVENTS", "40")]);
    let _w2 = WorkerProcess::spawn(&url, &[("FLOWMETER_NRT_MAX_EVENTS", "40")]);
    let projects: Vec<Uuid> = (0..3).map(|_| Uuid::new_v4()).collect();

    let mut writers = Vec::new();
    for writer in 0..6 {
        let base_url = app.base_url.clone();
        let projects = projects.clone();
        writers.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut sent = 0;
            for round in 0..10 {
                let project = projects[(writer + round) % projects.len()];
                let mut b = EventBuilder::for_project(project);
                let mut batch = Vec::new();
                // Recent times: the daemon's batch runs apply the 90-day retention.
                let at = chrono::Utc::now() - Span::hours(3)
                    + Span::minutes((writer * 10 + round) as i64);
                for k in 0..5 {
                    let id = format!("w{writer}r{round}k{k}");
                    batch.push(b.task_created(&id, at, json!({})));
                    batch.push(b.transition(&id, "in_progress", at + Span::minutes(5)));
                }
                for event in &mut batch {
                    let unique =
                        format!("{}-w{writer}-r{round}", event["event_id"].as_str().unwrap());
                    event["event_id"] = json!(unique);
                }
                let response = http
                    .post(format!("{base_url}/v1/events"))
                    .json(&batch)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(response.status(), 200);
                sent += batch.len();
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            sent
        }));
    }
    let mut sent = 0;
    for w in writers {
        sent += w.await.unwrap();
    }
    assert_eq!(sent, 600);
    let client = app.db.client().await;
    wait_until_caught_up(&client, &projects, Duration::from_secs(60)).await;

    let transitions: i64 = client
        .query_one(
            "SELECT sum(transition_count)::bigint FROM metrics_state_transition_counter WHERE project_id = ANY($1)",
            &[&projects],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(transitions, 300, "one count per committed transition");
    let arrivals: f64 = client
        .query_one(
            "SELECT sum(value_numeric) FROM metrics_trend_point
              WHERE project_id = ANY($1) AND metric_key = 'arrivals' AND time_grain = 'day' AND dimensions = '{}'",
            &[&projects],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(arrivals, 300.0, "one arrival per committed task_created");
    for project in &projects {
        assert_verified(&url, *project);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_killed_mid_run_leaves_nothing_partial_and_another_takes_over() {
    let (app, project) = seeded(8).await;
    let url = app.db.url.clone();
    let client = app.db.client().await;
    let mut doomed = WorkerProcess::spawn(
        &url,
        &[
            ("FLOWMETER_TEST_FOLD_DELAY_MS", "30000"),
            ("FLOWMETER_LEASE_SECONDS", "3"),
        ],
    );
    // Wait until it holds the lease and is inside its run (sleeping before the commit).
    wait_until_in_run(&client, Duration::from_secs(30)).await;
    doomed.kill();
    let (last, _) = checkpoint(&client, project).await;
    assert_eq!(last, 0, "the killed run committed nothing");
    let tasks: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_task WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tasks, 0, "no partial batch");

    let rescuer = WorkerProcess::spawn(&url, &[("FLOWMETER_LEASE_SECONDS", "3")]);
    wait_until_caught_up(&client, &[project], Duration::from_secs(60)).await;
    assert_verified(&url, project);
    let metrics = rescuer.metrics().await;
    assert_eq!(
        metric_value(&metrics, "flowmeter_jobs_recovered_total"),
        Some(1.0),
        "{metrics}"
    );
}

#[tokio::test]
async fn the_worker_serves_prometheus_metrics_and_stops_on_sigterm() {
    let (app, project) = seeded(3).await;
    let client = app.db.client().await;
    let mut worker = WorkerProcess::spawn(&app.db.url, &[]);
    wait_until_caught_up(&client, &[project], Duration::from_secs(30)).await;
    let mut text = String::new();
    for _ in 0..50 {
        text = worker.metrics().await;
        if metric_value(&text, "flowmeter_fold_events_total").is_some_and(|v| v > 0.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (_, head) = checkpoint(&client, project).await;
    assert_eq!(
        metric_value(&text, "flowmeter_fold_events_total"),
        Some(head as f64)
    );
    for name in [
        "flowmeter_fold_runs_total{mode=\"batch\",status=\"succeeded\"}",
        "flowmeter_fold_run_duration_seconds_count",
        "flowmeter_fold_lag_events",
        "flowmeter_fold_last_success_timestamp_seconds",
        "flowmeter_jobs_running",
        "flowmeter_jobs_submitted_total",
        "flowmeter_jobs_completed_total",
        "flowmeter_jobs_failed_total",
        "flowmeter_jobs_recovered_total",
        "flowmeter_events_quarantined_total",
        "flowmeter_db_pool_connections{state=\"max\"}",
    ] {
        assert!(text.contains(name), "missing {name} in\n{text}");
    }
    worker.terminate();
    let started = Instant::now();
    loop {
        if let Some(status) = worker.child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "no exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notify_makes_an_ingested_event_folded_within_a_second() {
    let app = TestApp::spawn().await;
    let client = app.db.client().await;
    // Schedules far apart, so only the NOTIFY wake-up can explain a fast fold.
    let _worker = WorkerProcess::spawn(
        &app.db.url,
        &[
            ("FLOWMETER_NRT_SCHEDULE", "0 0 0 1 1 *"),
            ("FLOWMETER_BATCH_SCHEDULE", "0 0 0 1 1 *"),
        ],
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut b = EventBuilder::new();
    let mut slowest = Duration::ZERO;
    for i in 0..5 {
        let at = chrono::Utc::now() - Span::minutes(10);
        let body = app
            .ingest(&[b.task_created(&format!("t{i}"), at, json!({}))])
            .await;
        let seq = body["projects"][0]["last_seq"].as_i64().unwrap();
        let committed = Instant::now();
        loop {
            let as_of: Option<i64> = client
                .query_opt(
                    "SELECT as_of_seq FROM metrics_summary WHERE project_id = $1 ORDER BY captured_at DESC LIMIT 1",
                    &[&b.project_id],
                )
                .await
                .unwrap()
                .map(|r| r.get(0));
            if as_of == Some(seq) {
                break;
            }
            assert!(
                committed.elapsed() < Duration::from_secs(5),
                "event {seq} not folded after 5 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        slowest = slowest.max(committed.elapsed());
    }
    assert!(
        slowest < Duration::from_secs(1),
        "slowest ingest → summary: {slowest:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_batch_schedule_refreshes_snapshots_without_new_events() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&[b.task_created("t1", chrono::Utc::now() - Span::hours(30), json!({}))])
        .await;
    let client = app.db.client().await;
    let _worker = WorkerProcess::spawn(
        &app.db.url,
        &[("FLOWMETER_BATCH_SCHEDULE", "*/2 * * * * *")],
    );
    wait_until_caught_up(&client, &[b.project_id], Duration::from_secs(30)).await;
    let first: chrono::DateTime<chrono::Utc> = client
        .query_one(
            "SELECT last_snapshot_at FROM metrics_job_checkpoint WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    tokio::time::sleep(Duration::from_millis(4500)).await;
    let row = client
        .query_one(
            "SELECT c.last_snapshot_at, c.last_seq, (SELECT count(*) FROM metrics_job_run r
                                                     WHERE r.project_id = c.project_id AND r.mode = 'batch')
               FROM metrics_job_checkpoint c WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap();
    let later: chrono::DateTime<chrono::Utc> = row.get(0);
    assert!(
        later > first,
        "the snapshot was refreshed: {first} → {later}"
    );
    assert_eq!(row.get::<_, i64>(1), 1, "no new events were folded");
    assert!(row.get::<_, i64>(2) >= 2, "refresh runs are recorded");
}
