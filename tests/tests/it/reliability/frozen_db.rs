//! A database that stops answering (SIGSTOP: sockets stay open, nothing replies). This test
//! freezes its own cluster, never the shared one. While frozen, summary, trends, ingest and
//! /health/all answer 503 in the envelope within `FLOWMETER_DB_TIMEOUT_MS` + 1 s; after
//! SIGCONT everything answers 200 without a restart, and every event acknowledged with 200
//! is stored once and folded.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::worker::{assert_verified, wait_until_caught_up, WorkerProcess};

use super::restart::Cluster;
use super::*;

const DB_TIMEOUT_MS: u64 = 2000;

/// Every process of a cluster (the postmaster and its children) stopped with SIGSTOP;
/// continued with SIGCONT when dropped, so a failing test never leaves it frozen.
struct Frozen {
    pids: Vec<String>,
}

impl Frozen {
    fn freeze(data_dir: &Path) -> Self {
        let postmaster = std::fs::read_to_string(data_dir.join("postmaster.pid")).unwrap();
        let postmaster = postmaster.lines().next().unwrap().trim().to_owned();
        let mut pids = vec![postmaster.clone()];
        for entry in std::fs::read_dir("/proc").unwrap().flatten() {
            let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            // pid (comm) state ppid …: the fields after the command's closing parenthesis.
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            if after.split_whitespace().nth(1) == Some(postmaster.as_str()) {
                pids.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
        signal("-STOP", &pids);
        Frozen { pids }
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", &self.pids);
    }
}

fn signal(which: &str, pids: &[String]) {
    let status = Command::new("kill").arg(which).args(pids).status().unwrap();
    assert!(status.success(), "kill {which} {pids:?}");
}

/// One request's outcome: status, latency, body.
async fn call(request: reqwest::RequestBuilder) -> (u16, Duration, Value, bool) {
    let started = Instant::now();
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers_ok = response
        .headers()
        .get("x-api-version")
        .is_some_and(|v| v == "1.0")
        && response.headers().contains_key("x-request-id");
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, started.elapsed(), body, headers_ok)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_frozen_database_costs_a_request_at_most_the_timeout_and_recovers_losing_nothing() {
    let (cluster, url) = Cluster::start();
    let timeout = DB_TIMEOUT_MS.to_string();
    let api = ApiProcess::spawn(
        &url,
        &[
            ("FLOWMETER_DB_TIMEOUT_MS", timeout.as_str()),
            ("FLOWMETER_RATE_LIMIT_SUMMARY", "0"),
            ("FLOWMETER_RATE_LIMIT_TRENDS", "0"),
        ],
    )
    .await;
    let project = Uuid::new_v4();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let base = api.base_url.clone();
    let first = task_events(project, "seed", 5);
    let status = http
        .post(format!("{base}/v1/events"))
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
            ("FLOWMETER_DB_TIMEOUT_MS", timeout.as_str()),
        ],
    );
    let client = flowmeter_tests::db::connect(&url).await;
    wait_until_caught_up(&client, &[project], Duration::from_secs(60)).await;
    drop(client);

    // An ingest client throughout; what it was told is recorded.
    let stop = Arc::new(AtomicBool::new(false));
    let acknowledged: Arc<Mutex<Vec<String>>> = Arc::default();
    let writes: Arc<Mutex<Vec<(u16, Duration)>>> = Arc::default();
    let writer = {
        let (http, base, stop, acknowledged, writes) = (
            http.clone(),
            base.clone(),
            stop.clone(),
            acknowledged.clone(),
            writes.clone(),
        );
        tokio::spawn(async move {
            let mut round = 0;
            while !stop.load(Ordering::Relaxed) {
                round += 1;
                let batch = task_events(project, &format!("load{round}"), 3);
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
                writes.lock().unwrap().push((status, started.elapsed()));
                if status == 200 {
                    acknowledged.lock().unwrap().extend(
                        batch
                            .iter()
                            .map(|e| e["event_id"].as_str().unwrap().to_owned()),
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    let summary = format!("{base}/v1/metrics/summary?project_id={project}");
    let trends = format!(
        "{base}/v1/metrics/trends?project_id={project}&metric=throughput&start_date=2026-01-01&end_date=2027-12-31"
    );
    let health = format!("{base}/health/all");
    let requests = |round: usize| {
        let batch = task_events(project, &format!("frozen{round}"), 2);
        vec![
            ("summary", http.get(&summary)),
            ("trends", http.get(&trends)),
            (
                "ingest",
                http.post(format!("{base}/v1/events")).json(&batch),
            ),
            ("health/all", http.get(&health)),
        ]
    };

    let budget = Duration::from_millis(DB_TIMEOUT_MS + 1000);
    let mut worst = Duration::ZERO;
    {
        let _frozen = Frozen::freeze(&cluster.dir().join("data"));
        let frozen_at = Instant::now();
        // Three rounds while frozen: on fresh, on timed-out and on waiting connections.
        for round in 0..3 {
            let answers = futures_util::future::join_all(
                requests(round)
                    .into_iter()
                    .map(|(name, request)| async move { (name, call(request).await) }),
            )
            .await;
            for (name, (status, took, body, headers_ok)) in answers {
                assert_eq!(status, 503, "{name} round {round}: {body}");
                assert!(took < budget, "{name} round {round} took {took:?}");
                assert!(headers_ok, "{name}: X-API-Version / X-Request-ID");
                assert_eq!(body["error"], "service_unavailable", "{name}: {body}");
                for key in ["message", "details", "request_id", "timestamp"] {
                    assert!(body.get(key).is_some(), "{name}: no {key} in {body}");
                }
                worst = worst.max(took);
            }
        }
        // Keep it frozen for a while longer so the ingest client sees it too.
        let held = Duration::from_secs(8);
        tokio::time::sleep(held.saturating_sub(frozen_at.elapsed())).await;
    }
    eprintln!("frozen database: slowest 503 {worst:?} (budget {budget:?})");
    let thawed = Instant::now();

    // After SIGCONT, without a restart, every route answers 200 again.
    for (name, target) in [
        ("summary", &summary),
        ("trends", &trends),
        ("health/all", &health),
    ] {
        loop {
            let (status, _, body, _) = call(http.get(target.as_str())).await;
            if status == 200 {
                break;
            }
            assert!(
                thawed.elapsed() < Duration::from_secs(20),
                "{name} not recovered: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();
    eprintln!(
        "frozen database: everything answered 200 again {:?} after SIGCONT",
        thawed.elapsed()
    );

    let writes = writes.lock().unwrap().clone();
    let unexpected: Vec<_> = writes
        .iter()
        .filter(|(s, _)| *s != 200 && *s != 503)
        .collect();
    assert!(
        unexpected.is_empty(),
        "ingest: only 200 and 503 expected: {unexpected:?}"
    );
    let slow: Vec<_> = writes.iter().filter(|(_, d)| *d >= budget).collect();
    assert!(slow.is_empty(), "ingest requests over budget: {slow:?}");
    assert!(
        writes.iter().any(|(s, _)| *s == 503),
        "the ingest client never saw the freeze"
    );
    assert_eq!(writes.last().unwrap().0, 200, "ingest recovered");
    assert!(api.rss_kib().is_some(), "the API process is still running");

    // Everything acknowledged is stored once, and the worker folds it all.
    let client = flowmeter_tests::db::connect(&url).await;
    let acknowledged = acknowledged.lock().unwrap().clone();
    flowmeter_tests::worker::assert_all_stored(&client, project, &acknowledged).await;
    wait_until_caught_up(&client, &[project], Duration::from_secs(60)).await;
    let (folded, logged): (i64, i64) = {
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM metrics_task WHERE project_id = $1),
                        (SELECT count(*) FROM event_log WHERE project_id = $1
                            AND event_type = 'task_created')",
                &[&project],
            )
            .await
            .unwrap();
        (row.get(0), row.get(1))
    };
    assert_eq!(folded, logged);
    assert_verified(&url, project);
}
