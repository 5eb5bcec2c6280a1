//! Failures and upkeep: backoff into stalled, recover, retention.

use super::*;

async fn checkpoint_status(
    client: &tokio_postgres::Client,
    project: Uuid,
) -> (String, i32, Option<f64>) {
    let row = client
        .query_one(
            "SELECT status, failure_count, extract(epoch FROM next_attempt_at - now())::float8
               FROM metrics_job_checkpoint WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// Runs `f` while another connection holds an exclusive lock on metrics_task, so every fold
/// run's statements time out (a real database failure, not a simulated one).
async fn with_projections_locked<T>(url: &str, f: impl FnOnce() -> T) -> T {
    let mut blocker = flowmeter_tests::db::connect(url).await;
    let tx = blocker.transaction().await.unwrap();
    tx.batch_execute("LOCK TABLE metrics_task IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    let result = f();
    tx.rollback().await.unwrap();
    result
}

#[tokio::test]
async fn repeated_failures_back_off_exponentially_then_stall_and_a_success_clears_it() {
    let (app, project) = seeded(3).await;
    let url = app.db.url.clone();
    let p = project.to_string();
    let client = app.db.client().await;
    let failing = [("FLOWMETER_DB_STATEMENT_TIMEOUT_MS", "300")];
    for attempt in 1..=5 {
        let out = with_projections_locked(&url, || {
            worker(
                &url,
                &["once", "--project", &p, "--mode", "batch"],
                &failing,
            )
        })
        .await;
        assert!(!out.status.success());
        let (state, failures, wait) = checkpoint_status(&client, project).await;
        assert_eq!(failures, attempt);
        if attempt < 5 {
            assert_eq!(state, "failing");
            // 60 s × 2^(attempt − 1), ±20 % jitter.
            let base = 60.0 * 2f64.powi(attempt - 1);
            let wait = wait.expect("a next attempt is scheduled");
            assert!(
                wait > base * 0.75 && wait < base * 1.25,
                "attempt {attempt}: waits {wait} s, base {base} s"
            );
        } else {
            assert_eq!(state, "stalled", "after the batch mode's 5 retries");
            assert_eq!(wait, None);
        }
    }
    let run = client
        .query_one(
            "SELECT status, attempts FROM metrics_job_run WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    assert_eq!(
        (run.get::<_, String>(0), run.get::<_, i32>(1)),
        ("failed".into(), 5),
        "one run, retried"
    );

    // A stalled project is not picked up by the scheduler…
    let worker_process = WorkerProcess::spawn(&url, &[]);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(checkpoint(&client, project).await.0, 0);
    drop(worker_process);
    // …until an operator runs it and it succeeds.
    let fixed = worker_json(&url, &["once", "--project", &p, "--mode", "batch"], &[]);
    assert_eq!(fixed["outcome"]["run"]["status"], "succeeded");
    assert_eq!(
        checkpoint_status(&client, project).await,
        ("idle".into(), 0, None)
    );
}

#[tokio::test]
async fn recover_resumes_a_failed_backfill_from_that_runs_start() {
    let (app, project) = seeded(10).await;
    let url = app.db.url.clone();
    let p = project.to_string();
    let client = app.db.client().await;
    let out = with_projections_locked(&url, || {
        worker(
            &url,
            &["backfill", "--project", &p, "--max-events", "50"],
            &[("FLOWMETER_DB_STATEMENT_TIMEOUT_MS", "300")],
        )
    })
    .await;
    assert!(!out.status.success());
    let failed: Uuid = client
        .query_one(
            "SELECT id FROM metrics_job_run WHERE project_id = $1 AND status = 'failed'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    let recovered = worker_json(
        &url,
        &["recover", "--project", &p, "--run", &failed.to_string()],
        &[],
    );
    assert_eq!(recovered["replay_from_seq"], 1);
    assert_eq!(recovered["caught_up"], true);
    let run = client
        .query_one(
            "SELECT status, attempts, idempotency_key FROM metrics_job_run WHERE project_id = $1 AND id = $2",
            &[&project, &failed],
        )
        .await
        .unwrap();
    assert_eq!(run.get::<_, String>(0), "succeeded");
    assert_eq!(run.get::<_, i32>(1), 2);
    assert_eq!(run.get::<_, String>(2), "backfill:batch:1:start:1");
    let (last, head) = checkpoint(&client, project).await;
    assert_eq!(last, head);
    assert_verified(&url, project);

    let again = worker(
        &url,
        &["recover", "--project", &p, "--run", &failed.to_string()],
        &[],
    );
    assert!(
        !again.status.success(),
        "a succeeded run has nothing to recover"
    );
}

async fn oldest_trend_point(
    client: &tokio_postgres::Client,
    project: Uuid,
) -> chrono::DateTime<chrono::Utc> {
    client
        .query_one(
            "SELECT min(time_bucket) FROM metrics_trend_point WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn batch_runs_apply_retention_and_verify_still_passes() {
    let (app, project) = seeded(12).await;
    let url = app.db.url.clone();
    let p = project.to_string();
    // Events span 1 February to 6 March; now is 20 March; keep 30 days.
    let keep = [("FLOWMETER_RETENTION_DAYS", "30")];
    worker_json(
        &url,
        &["backfill", "--project", &p, "--mode", "near_real_time"],
        &keep,
    );
    let client = app.db.client().await;
    let before = oldest_trend_point(&client, project).await;
    assert!(
        before < t("2026-02-18T12:00:00Z"),
        "near-real-time runs keep everything"
    );
    worker_json(&url, &["once", "--project", &p, "--mode", "batch"], &keep);
    let cutoff = t("2026-02-18T12:00:00Z");
    // Counts before the cut-off are gone; each level series keeps only its latest point
    // before it, the value readers carry into the retained range.
    let old: Vec<(String, i64, i64)> = client
        .query(
            "SELECT metric_key, count(*), count(DISTINCT (time_grain, dimensions))
               FROM metrics_trend_point WHERE project_id = $1 AND time_bucket < $2
              GROUP BY metric_key ORDER BY 1",
            &[&project, &cutoff],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert!(
        !old.is_empty(),
        "the level series keep a point before the cut-off"
    );
    for (metric, points, series) in &old {
        assert!(
            flowmeter_shared::read_model::LEVEL_METRICS.contains(&metric.as_str()),
            "{metric} points before the cut-off remain"
        );
        assert_eq!(
            points, series,
            "{metric}: one point per series before the cut-off"
        );
    }
    // verify compares what the same retention keeps.
    let out = worker(&url, &["verify", "--project", &p], &keep);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
