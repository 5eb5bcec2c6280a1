//! Scale-out on real components (SPEC §18): PgBouncer from Debian in front of the database for
//! the API and the worker, and two API processes with three workers sharing 30 projects while
//! one worker is SIGKILLed. `verify` passes for every project afterwards.

use std::time::Duration;

use flowmeter_tests::cluster::Bouncer;
use flowmeter_tests::events::EventBuilder;
use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::worker::{assert_verified, wait_until_caught_up, WorkerProcess};
use flowmeter_tests::TestDb;
use serde_json::Value;
use uuid::Uuid;

use crate::fold::varied_stream;

/// A project's `last_seq` in `table` (`event_stream_head` or `metrics_job_checkpoint`).
async fn last_seq(client: &tokio_postgres::Client, table: &str, project: &Uuid) -> i64 {
    client
        .query_one(
            &format!("SELECT last_seq FROM {table} WHERE project_id = $1"),
            &[project],
        )
        .await
        .unwrap()
        .get(0)
}

/// How many workers committed a run.
async fn workers_with_runs(client: &tokio_postgres::Client) -> i64 {
    client
        .query_one(
            "SELECT count(DISTINCT worker_id) FROM metrics_job_run WHERE status = 'succeeded'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

/// POSTs events to one API process.
async fn post(http: &reqwest::Client, base: &str, events: &[Value]) {
    let response = http
        .post(format!("{base}/v1/events"))
        .json(&events)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// The summary's freshness for a project, through one API process.
async fn summary_freshness(http: &reqwest::Client, base: &str, project: Uuid) -> Value {
    let response = http
        .get(format!("{base}/v1/metrics/summary?project_id={project}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    response.json::<Value>().await.unwrap()["freshness"].clone()
}

/// Session pooling: the pools keep named prepared statements on their connections (tokio-
/// postgres' `prepare_cached`) and the worker LISTENs, which transaction pooling in PgBouncer
/// 1.18 cannot carry (docs/SCALING.md).
#[tokio::test]
async fn api_and_worker_run_through_pgbouncer_in_session_mode() {
    let db = TestDb::migrated().await;
    let bouncer = Bouncer::start(Bouncer::port_of(&db.url), &db.name, "session", 12);
    let pooled = bouncer.url(&db.name);
    let api = ApiProcess::spawn(&pooled, &[("FLOWMETER_DB_POOL_SIZE", "4")]).await;
    let _worker = WorkerProcess::spawn(
        &pooled,
        &[
            ("FLOWMETER_DB_POOL_SIZE", "4"),
            ("FLOWMETER_LEASE_SECONDS", "5"),
        ],
    );
    let http = reqwest::Client::new();
    let mut projects = Vec::new();
    for _ in 0..3 {
        let mut b = EventBuilder::new();
        post(&http, &api.base_url, &varied_stream(&mut b, 12)).await;
        projects.push(b.project_id);
    }
    let direct = db.client().await;
    wait_until_caught_up(&direct, &projects, Duration::from_secs(90)).await;
    for project in &projects {
        let head = last_seq(&direct, "event_stream_head", project).await;
        let freshness = summary_freshness(&http, &api.base_url, *project).await;
        assert_eq!(
            freshness["as_of_seq"], head,
            "{project} read through PgBouncer"
        );
        let drilldown = http
            .get(format!(
                "{}/v1/metrics/drilldown?project_id={project}&metric=cycle_time",
                api.base_url
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(drilldown.status(), 200);
        assert_verified(&pooled, *project);
    }
    // Every statement went through PgBouncer: it counted the transactions of this database.
    let stats = bouncer.show("STATS").await;
    let ours = stats
        .iter()
        .find(|row| row.get("database") == Some(&db.name))
        .expect("PgBouncer has stats for the database");
    let transactions: i64 = ours["total_xact_count"].parse().unwrap();
    assert!(
        transactions > 20,
        "{transactions} transactions through PgBouncer"
    );
    let pools = bouncer.show("POOLS").await;
    assert!(
        pools
            .iter()
            .any(|row| row.get("database") == Some(&db.name) && row["pool_mode"] == "session"),
        "{pools:?}"
    );
}

#[tokio::test]
async fn two_apis_and_three_workers_share_thirty_projects_through_a_worker_kill() {
    let db = TestDb::migrated().await;
    let env = [
        ("FLOWMETER_DB_POOL_SIZE", "3"),
        ("FLOWMETER_LEASE_SECONDS", "3"),
        ("FLOWMETER_BATCH_MAX_EVENTS", "40"),
    ];
    let apis = [
        ApiProcess::spawn(&db.url, &env[..1]).await,
        ApiProcess::spawn(&db.url, &env[..1]).await,
    ];
    let mut workers: Vec<WorkerProcess> = (0..3)
        .map(|_| WorkerProcess::spawn(&db.url, &env))
        .collect();
    let http = reqwest::Client::new();
    let mut projects = Vec::new();
    for i in 0..30 {
        let mut b = EventBuilder::new();
        let events = varied_stream(&mut b, 8);
        // Each project's events arrive in two requests, through both API processes.
        let half = events.len() / 2;
        post(&http, &apis[i % 2].base_url, &events[..half]).await;
        post(&http, &apis[(i + 1) % 2].base_url, &events[half..]).await;
        projects.push(b.project_id);
    }
    let client = db.client().await;
    // SIGKILL the first worker once it has committed work: its leases expire and the others
    // take its projects over.
    let started = std::time::Instant::now();
    loop {
        if workers_with_runs(&client).await > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no run committed"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    workers[0].kill();
    wait_until_caught_up(&client, &projects, Duration::from_secs(180)).await;
    let folded_by = workers_with_runs(&client).await;
    assert!(
        folded_by >= 2,
        "the projects were shared: {folded_by} workers ran"
    );
    for (i, project) in projects.iter().enumerate() {
        let head = last_seq(&client, "event_stream_head", project).await;
        let folded = last_seq(&client, "metrics_job_checkpoint", project).await;
        assert_eq!(folded, head, "{project} folded to its head exactly once");
        let freshness = summary_freshness(&http, &apis[i % 2].base_url, *project).await;
        assert_eq!(freshness["as_of_seq"], head);
        assert_verified(&db.url, *project);
    }
    drop(workers);
}
