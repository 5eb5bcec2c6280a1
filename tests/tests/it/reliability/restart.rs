//! PostgreSQL restarted under load. This test runs its own cluster (scripts/pg-local in a
//! temporary directory), the API and the worker as processes, a reader and an ingest client.
//! While the database is down the API answers 503 quickly (no request hangs) and /health/db
//! says so; afterwards the pool recovers without a restart, the worker resumes, and every
//! event acknowledged with 200 is in the log and folded.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::worker::{assert_verified, wait_until_caught_up, WorkerProcess};

use super::*;

fn pg_local_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/pg-local")
}

pub(super) fn pg_local(action: &str, dir: &Path) -> String {
    let out = Command::new(pg_local_script())
        .arg(action)
        .arg(dir)
        .output()
        .expect("run scripts/pg-local");
    assert!(
        out.status.success(),
        "pg-local {action} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A private cluster, destroyed when dropped.
pub(super) struct Cluster {
    root: PathBuf,
}

impl Cluster {
    pub(super) fn start() -> (Cluster, String) {
        let root =
            std::env::temp_dir().join(format!("flowmeter-restart-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&root).unwrap();
        // The postgres OS user must reach the cluster directory inside.
        Command::new("chmod")
            .arg("755")
            .arg(&root)
            .status()
            .unwrap();
        let cluster = Cluster { root };
        let url = pg_local("start", &cluster.dir());
        (cluster, url)
    }

    pub(super) fn dir(&self) -> PathBuf {
        self.root.join("cluster")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new(pg_local_script())
            .arg("destroy")
            .arg(self.dir())
            .output();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// What a client saw: status and how long the request took.
type Observations = Arc<Mutex<Vec<(u16, Duration, bool)>>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_database_restart_under_load_gives_quick_503s_then_recovers_losing_nothing() {
    let (cluster, url) = Cluster::start();
    let api = ApiProcess::spawn(
        &url,
        &[
            ("FLOWMETER_DB_CONNECT_TIMEOUT_MS", "500"),
            ("FLOWMETER_RATE_LIMIT_SUMMARY", "0"),
        ],
    )
    .await;
    let project = Uuid::new_v4();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let first = task_events(project, "seed", 5);
    let status = http
        .post(format!("{}/v1/events", api.base_url))
        .json(&first)
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let _worker = WorkerProcess::spawn(
        &url,
        &[
            ("FLOWMETER_LEASE_SECONDS", "3"),
            ("FLOWMETER_DB_CONNECT_TIMEOUT_MS", "500"),
        ],
    );
    let client = flowmeter_tests::db::connect(&url).await;
    wait_until_caught_up(&client, &[project], Duration::from_secs(60)).await;
    drop(client);

    // Load: one reader, one ingest client; every response is recorded with its latency and
    // whether the database was down when it was sent.
    let stop = Arc::new(AtomicBool::new(false));
    let down = Arc::new(AtomicBool::new(false));
    let reads: Observations = Arc::default();
    let writes: Observations = Arc::default();
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let (http, base, stop, down, reads) = (
            http.clone(),
            api.base_url.clone(),
            stop.clone(),
            down.clone(),
            reads.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let was_down = down.load(Ordering::Relaxed);
                let started = Instant::now();
                let status = match http
                    .get(format!("{base}/v1/metrics/summary?project_id={project}"))
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                reads
                    .lock()
                    .unwrap()
                    .push((status, started.elapsed(), was_down));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let writer = {
        let (http, base, stop, down, writes, acknowledged) = (
            http.clone(),
            api.base_url.clone(),
            stop.clone(),
            down.clone(),
            writes.clone(),
            acknowledged.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let batch = task_events(project, &format!("load{round}"), 5);
                let was_down = down.load(Ordering::Relaxed);
                let started = Instant::now();
                let status = match http
                    .post(format!("{base}/v1/events"))
                    .json(&batch)
                    .send()
                    .await
                {
                    Ok(r) => r.status().as_u16(),
                    Err(_) => 0,
                };
                writes
                    .lock()
                    .unwrap()
                    .push((status, started.elapsed(), was_down));
                if status == 200 {
                    let mut ack = acknowledged.lock().unwrap();
                    ack.extend(
                        batch
                            .iter()
                            .map(|e| e["event_id"].as_str().unwrap().to_owned()),
                    );
                }
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        })
    };

    tokio::time::sleep(Duration::from_secs(2)).await;
    down.store(true, Ordering::Relaxed);
    pg_local("stop", &cluster.dir());
    // /health/db reports the outage, quickly.
    let started = Instant::now();
    let health = http
        .get(format!("{}/health/db", api.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "/health/db took {:?}",
        started.elapsed()
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let restarted_url = pg_local("start", &cluster.dir());
    assert_eq!(restarted_url, url, "the cluster came back on its port");
    down.store(false, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    writer.await.unwrap();

    for (name, seen) in [("reads", &reads), ("writes", &writes)] {
        let seen = seen.lock().unwrap().clone();
        let unexpected: Vec<_> = seen
            .iter()
            .filter(|(s, _, _)| *s != 200 && *s != 503)
            .collect();
        assert!(
            unexpected.is_empty(),
            "{name}: only 200 and 503 expected, got {unexpected:?}"
        );
        let slow: Vec<_> = seen
            .iter()
            .filter(|(_, d, _)| *d >= Duration::from_secs(2))
            .collect();
        assert!(slow.is_empty(), "{name}: requests hung: {slow:?}");
        assert!(
            seen.iter().any(|(s, _, was_down)| *s == 503 && *was_down),
            "{name}: the outage was never seen"
        );
        // The pool recovered without a restart: the last answers are 200 again.
        let last = seen.last().unwrap();
        assert_eq!(
            last.0,
            200,
            "{name}: not recovered; last answers {:?}",
            &seen[seen.len().saturating_sub(5)..]
        );
    }
    assert!(api.rss_kib().is_some(), "the API process is still running");

    // Everything acknowledged is in the log, and the worker folds it all.
    let client = flowmeter_tests::db::connect(&url).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(acknowledged.len() > 50);
    flowmeter_tests::worker::assert_all_stored(&client, project, &acknowledged).await;
    wait_until_caught_up(&client, &[project], Duration::from_secs(60)).await;
    let folded: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_task WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    let logged_tasks: i64 = client
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1 AND event_type = 'task_created'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(folded, logged_tasks);
    assert_verified(&url, project);
}
