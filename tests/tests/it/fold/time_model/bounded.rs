//! Bounded work: events decades apart, occurred_at outside the accepted range, and one
//! project's failure leaving the others be.

use super::*;

#[tokio::test]
async fn events_twenty_six_years_apart_fold_without_walking_the_years_between() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let now = chrono::Utc::now();
    let events = vec![
        b.task_created("old", t("2000-01-01T00:00:00Z"), json!({})),
        b.transition("old", "in_progress", t("2000-01-01T01:00:00Z")),
        b.task_created("new", now - Span::minutes(5), json!({})),
    ];
    app.ingest(&events).await;
    let now_text = now.to_rfc3339();
    let started = Instant::now();
    let child = std::process::Command::new(flowmeter_tests::bin_path("flowmeter-worker"))
        .args(["backfill", "--project", &b.project_id.to_string()])
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", &app.db.url)
        .env("FLOWMETER_LOG", "warn")
        .env("FLOWMETER_TEST_NOW", &now_text)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let peak_kib = flowmeter_tests::process::children_peak_rss_kib();
    // Debug build, shared machine: the bound of SPEC §13 holds with room to spare.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
    let client = app.db.client().await;
    let points: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_trend_point WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(points < 400, "{points} trend points for three events");
    // The old task is still in progress today: the series carries it over the years.
    let body: Value = json_at(
        &app,
        &format!(
            "/v1/metrics/trends?project_id={}&metric=wip&granularity=month\
                 &start_date=2010-01-01&end_date=2010-12-31",
            b.project_id
        ),
    )
    .await;
    let values: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![1.0; 12]);
    eprintln!("fold of 2000 → today: {elapsed:?}, peak RSS of the children {peak_kib} KiB");
}

#[tokio::test]
async fn occurred_at_outside_the_accepted_range_is_refused_at_ingest_and_import() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    for at in [
        "0001-01-01T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "1999-12-31T23:59:59Z",
    ] {
        let event = b.task_created("x", t(at), json!({}));
        let response = app.post_events(&json!([event]), None).await;
        let body = flowmeter_tests::app::assert_error(response, 422, "validation_error").await;
        let error = &body["details"]["errors"][0];
        assert_eq!(error["field"], "occurred_at", "{body}");
        assert_eq!(error["code"], "out_of_range", "{body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("2000-01-01T00:00:00Z"),
            "{body}"
        );
    }
    let file = std::env::temp_dir().join(format!("flowmeter-bounds-{}.ndjson", b.project_id));
    let good = b.task_created("ok", t("2026-03-01T00:00:00Z"), json!({}));
    let bad = b.task_created("bad", t("9999-12-31T00:00:00Z"), json!({}));
    std::fs::write(&file, format!("{good}\n{bad}\n")).unwrap();
    let output = worker(&app.db.url, &["import", file.to_str().unwrap()], &[]);
    std::fs::remove_file(&file).ok();
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stored"], 0, "{report}");
    assert_eq!(report["errors"][0]["field"], "occurred_at", "{report}");
    assert_eq!(report["errors"][0]["line"], 2, "{report}");
    let stored: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_project_that_fails_while_folding_does_not_stop_the_others() {
    let app = TestApp::spawn().await;
    let (broken, healthy) = (Uuid::new_v4(), Uuid::new_v4());
    let at = chrono::Utc::now() - Span::hours(1);
    for project in [broken, healthy] {
        let mut b = EventBuilder::for_project(project);
        app.ingest(&[
            b.task_created("a", at, json!({})),
            b.transition("a", "in_progress", at + Span::minutes(1)),
        ])
        .await;
    }
    let worker = WorkerProcess::spawn(
        &app.db.url,
        &[("FLOWMETER_TEST_PANIC_PROJECTS", &broken.to_string())],
    );
    let client = app.db.client().await;
    wait_until_caught_up(&client, &[healthy], Duration::from_secs(30)).await;
    // The broken project's run failed like any error: recorded, backing off, not folded.
    let started = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT c.status, c.last_seq, r.failure_reason FROM metrics_job_checkpoint c
                   JOIN metrics_job_run r USING (project_id)
                  WHERE c.project_id = $1 AND r.status = 'failed'",
                &[&broken],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            assert_eq!(row.get::<_, String>(0), "failing");
            assert_eq!(row.get::<_, i64>(1), 0);
            let reason: String = row.get(2);
            assert!(reason.contains("panicked"), "{reason}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no failed run recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later events of the healthy project are still folded by the same worker.
    let mut b = EventBuilder::for_project(healthy);
    let mut more = b.transition("a", "implemented", at + Span::minutes(2));
    more["event_id"] = json!("after-the-failure");
    app.ingest(&[more]).await;
    wait_until_caught_up(&client, &[healthy], Duration::from_secs(30)).await;
    drop(worker);
    assert_verified(&app.db.url, healthy);
}
