//! `FLOWMETER_READ_DATABASE_URL` (SPEC §12, §18): metrics reads come from the read database,
//! ingest and acknowledgements go to the primary. In the first test a copy of the primary
//! stands in for a replica that stopped replaying, so the two visibly differ; the second runs
//! a real streaming replica made with `pg_basebackup -R` whose replay is paused and resumed.

use flowmeter_tests::app::assert_error;
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::{TestApp, TestAppOptions, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn events(b: &mut EventBuilder, from: usize, to: usize) -> Vec<Value> {
    let at = t("2026-03-18T09:00:00Z");
    (from..to)
        .flat_map(|i| {
            let id = format!("t{i}");
            [
                b.task_created(&id, at, json!({})),
                b.transition(&id, "in_progress", at),
            ]
        })
        .collect()
}

async fn as_of_seq(app: &TestApp, endpoint: &str, project: Uuid) -> Value {
    let response = app
        .get(
            &format!("/v1/metrics/{endpoint}?project_id={project}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{endpoint}");
    let body: Value = response.json().await.unwrap();
    body["freshness"].clone()
}

async fn log_count(db: &TestDb, project: Uuid) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn metrics_reads_come_from_the_read_database_and_writes_go_to_the_primary() {
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let fold = |url: &str| {
        worker_json(url, &["once", "--project", &project.to_string()], &[]);
    };
    let setup = TestApp::spawn().await;
    setup.ingest(&events(&mut b, 0, 5)).await;
    fold(&setup.db.url);
    let primary = setup.shut_down().await;
    let replica = primary.copy().await;

    let app = TestApp::spawn_on(
        primary,
        TestAppOptions::default().env("FLOWMETER_READ_DATABASE_URL", replica.url.clone()),
    )
    .await;
    let seen = as_of_seq(&app, "summary", project).await;
    assert_eq!(seen["as_of_seq"], 10);

    // Ingest lands on the primary, and the primary folds it; the read database does not
    // have it, and every metrics read says so.
    app.ingest(&events(&mut b, 5, 8)).await;
    fold(&app.db.url);
    assert_eq!(log_count(&app.db, project).await, 16);
    assert_eq!(log_count(&replica, project).await, 10);
    for endpoint in ["summary", "health", "actions", "alerts"] {
        let freshness = as_of_seq(&app, endpoint, project).await;
        assert_eq!(
            (&freshness["as_of_seq"], &freshness["log_head_seq"]),
            (&json!(10), &json!(10)),
            "{endpoint} reads the read database"
        );
    }
    let trend: Value = app
        .get(
            &format!("/v1/metrics/trends?project_id={project}&metric=arrivals&start_date=2026-03-18&end_date=2026-03-18"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trend["data"][0]["value"],
        json!(5.0),
        "arrivals as the read database has them"
    );
    assert_eq!(app.get("/health/db", None).await.status(), 200);

    // Without the read database, reads fail fast while writes go on.
    let admin = flowmeter_tests::db::connect(&flowmeter_tests::db::admin_url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", replica.name))
        .await
        .unwrap();
    assert_error(
        app.get(&format!("/v1/metrics/summary?project_id={project}"), None)
            .await,
        503,
        "service_unavailable",
    )
    .await;
    assert_error(
        app.get("/health/db", None).await,
        503,
        "service_unavailable",
    )
    .await;
    app.ingest(&events(&mut b, 8, 9)).await;
    assert_eq!(log_count(&app.db, project).await, 18);
    let unknown = Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/v1/metrics/summary?project_id={unknown}"), None)
            .await
            .status(),
        503
    );
}

/// GETs a metrics endpoint of a real API process; returns its freshness.
async fn process_freshness(http: &reqwest::Client, base: &str, path: &str) -> Value {
    let response = http.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status(), 200, "{path}");
    let body: Value = response.json().await.unwrap();
    body["freshness"].clone()
}

/// Waits until the summary read through `base` reports `seq` as folded and as the log head.
async fn wait_for_replay(http: &reqwest::Client, base: &str, project: Uuid, seq: i64) {
    let started = std::time::Instant::now();
    loop {
        // 404 until the project's first rows have replayed.
        let response = http
            .get(format!("{base}/v1/metrics/summary?project_id={project}"))
            .send()
            .await
            .unwrap();
        let seen = match response.status().as_u16() {
            200 => response.json::<Value>().await.unwrap()["freshness"].clone(),
            404 => Value::Null,
            other => panic!("summary answered {other}"),
        };
        if seen["as_of_seq"] == seq && seen["log_head_seq"] == seq {
            return;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(30),
            "the replica did not replay seq {seq} within 30 s: {seen}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_streaming_replica_serves_metrics_reads_and_its_replay_lag_shows_as_freshness() {
    use flowmeter_tests::cluster::Cluster;
    use flowmeter_tests::process::ApiProcess;

    let primary = Cluster::primary();
    let primary_url = primary.migrated_database("flowmeter");
    let replica = primary.streaming_replica();
    let replica_url = replica.url("flowmeter");
    let api = ApiProcess::spawn(
        &primary_url,
        &[("FLOWMETER_READ_DATABASE_URL", replica_url.as_str())],
    )
    .await;
    let http = reqwest::Client::new();
    let base = api.base_url.clone();
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let ingest = |events: Vec<Value>| {
        let http = http.clone();
        let url = format!("{base}/v1/events");
        async move {
            let response = http.post(url).json(&events).send().await.unwrap();
            assert_eq!(response.status(), 200, "{:?}", response.text().await);
        }
    };
    let fold = || {
        worker_json(
            &primary_url,
            &["once", "--project", &project.to_string()],
            &[],
        )
    };

    // The replica replays what the primary commits; the API reads it there.
    ingest(events(&mut b, 0, 5)).await;
    fold();
    wait_for_replay(&http, &base, project, 10).await;
    let standby = flowmeter_tests::db::connect(&replica_url).await;
    let in_recovery: bool = standby
        .query_one("SELECT pg_is_in_recovery()", &[])
        .await
        .unwrap()
        .get(0);
    assert!(in_recovery, "the read database is a standby");
    let refused = standby
        .batch_execute("CREATE TABLE written_on_the_standby (id int)")
        .await
        .expect_err("a standby refuses writes");
    let message = refused
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(message.contains("read-only"), "{refused:?}");

    // Replay paused: the primary moves on, every metrics read shows the replica's older,
    // consistent snapshot and log head.
    standby
        .batch_execute("SELECT pg_wal_replay_pause()")
        .await
        .unwrap();
    ingest(events(&mut b, 5, 8)).await;
    fold();
    let primary_client = flowmeter_tests::db::connect(&primary_url).await;
    let folded: i64 = primary_client
        .query_one(
            "SELECT last_seq FROM metrics_job_checkpoint WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(folded, 16, "the primary folded everything");
    for path in [
        format!("/v1/metrics/summary?project_id={project}"),
        format!("/v1/metrics/health?project_id={project}"),
        format!("/v1/metrics/actions?project_id={project}"),
        format!("/v1/metrics/alerts?project_id={project}"),
        format!("/v1/metrics/drilldown?project_id={project}&metric=wip"),
        format!("/v1/metrics/breakdown?project_id={project}&metric=wip&dimension=state"),
    ] {
        let freshness = process_freshness(&http, &base, &path).await;
        assert_eq!(
            (&freshness["as_of_seq"], &freshness["log_head_seq"]),
            (&json!(10), &json!(10)),
            "{path} reads the paused replica"
        );
    }
    // The standby receives the primary's WAL while it does not replay it.
    let started = std::time::Instant::now();
    loop {
        let lag: f64 = standby
            .query_one(
                "SELECT COALESCE((pg_last_wal_receive_lsn() - pg_last_wal_replay_lsn())::float8, 0)",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if lag > 0.0 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no WAL received but not replayed within 20 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Replay resumed: the replica catches up and the reads with it.
    standby
        .batch_execute("SELECT pg_wal_replay_resume()")
        .await
        .unwrap();
    wait_for_replay(&http, &base, project, 16).await;
    let drilldown: Value = http
        .get(format!(
            "{base}/v1/metrics/drilldown?project_id={project}&metric=wip"
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        drilldown["pagination"]["total"], 8,
        "eight tasks in progress"
    );
}
