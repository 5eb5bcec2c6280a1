//! Graceful shutdown: SIGTERM lets the API finish the requests in flight and the worker
//! finish (commit) the batch it is folding; nothing is half-written.

use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::worker::{assert_verified, wait_until_in_run, WorkerProcess};
use flowmeter_tests::TestDb;

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_lets_in_flight_ingest_batches_finish_whole() {
    let db = TestDb::migrated().await;
    let mut api = ApiProcess::spawn(&db.url, &[("FLOWMETER_SHUTDOWN_TIMEOUT_SECS", "20")]).await;
    let project = Uuid::new_v4();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    // Large batches keep requests in flight long enough to be caught by the signal.
    let mut requests = Vec::new();
    for i in 0..6 {
        let batch = task_events(project, &format!("b{i}"), 1500);
        let (http, url) = (http.clone(), format!("{}/v1/events", api.base_url));
        requests.push(tokio::spawn(async move {
            let response = http.post(url).json(&batch).send().await;
            (i, response.map(|r| r.status().as_u16()))
        }));
    }
    tokio::time::sleep(Duration::from_millis(150)).await;
    api.terminate();
    let mut answered = Vec::new();
    for request in requests {
        let (i, outcome) = request.await.unwrap();
        // A request in flight is answered (200); one sent after the listener closed is
        // refused at connect time and never reached the application.
        match outcome {
            Ok(status) => {
                assert_eq!(status, 200, "batch {i}");
                answered.push(i);
            }
            Err(error) => assert!(
                error.is_connect() || error.is_request(),
                "batch {i}: {error}"
            ),
        }
    }
    assert!(!answered.is_empty(), "no request was in flight");
    let status = tokio::task::spawn_blocking(move || api.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(
        status.success(),
        "the API exits cleanly after SIGTERM: {status}"
    );

    // Each batch is all there or not there at all.
    let client = db.client().await;
    for i in 0..6 {
        let stored: i64 = client
            .query_one(
                "SELECT count(*) FROM event_log WHERE project_id = $1 AND event_id LIKE $2",
                &[&project, &format!("b{i}-%")],
            )
            .await
            .unwrap()
            .get(0);
        if answered.contains(&i) {
            assert_eq!(stored, 3000, "batch {i} was acknowledged");
        } else {
            assert!(
                stored == 0 || stored == 3000,
                "batch {i} half-written: {stored}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_lets_the_worker_commit_the_batch_it_is_folding() {
    let db = TestDb::migrated().await;
    let project = Uuid::new_v4();
    let api = flowmeter_tests::TestApp::spawn_on(db, Default::default()).await;
    api.ingest(&task_events(project, "w", 100)).await;
    let mut worker = WorkerProcess::spawn(
        &api.db.url,
        &[
            ("FLOWMETER_TEST_FOLD_DELAY_MS", "1500"),
            ("FLOWMETER_BATCH_MAX_EVENTS", "50"),
        ],
    );
    let client = api.db.client().await;
    // Wait until a run is inside its transaction (sleeping before the commit).
    wait_until_in_run(&client, Duration::from_secs(30)).await;
    worker.terminate();
    let status = tokio::task::spawn_blocking(move || {
        let status = worker.child.wait();
        (worker, status)
    })
    .await
    .unwrap()
    .1
    .unwrap();
    assert!(
        status.success(),
        "the worker exits cleanly after SIGTERM: {status}"
    );
    // The batch in progress committed: the checkpoint sits on a batch boundary past 0, and
    // nothing after it was started.
    let (last_seq, runs): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT c.last_seq, (SELECT count(*) FROM metrics_job_run r WHERE r.project_id = c.project_id)
                   FROM metrics_job_checkpoint c WHERE project_id = $1",
                &[&project],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(
        last_seq, 50,
        "the first batch of 50 events committed at shutdown"
    );
    assert_eq!(runs, 1);
    let tasks: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_task WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        tasks, 25,
        "exactly the 25 tasks of that batch are projected"
    );
    assert_verified(&api.db.url, project);
}
