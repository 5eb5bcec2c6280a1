//! What leaves the worker: webhook notifications (a local receiver that fails for a while)
//! and the alert and business gauges on its /metrics.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use flowmeter_tests::worker::{metric_value, WorkerProcess};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use super::*;

/// A minimal HTTP receiver: answers 500 to the first `failures` requests, then 200; keeps
/// the JSON bodies of the requests it accepted.
struct Receiver {
    url: String,
    accepted: Arc<Mutex<Vec<Value>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    async fn start(failures: usize) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let accepted = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (acc, req) = (accepted.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    continue;
                };
                let body = read_request(&mut socket).await;
                let n = {
                    let mut count = req.lock().unwrap();
                    *count += 1;
                    *count
                };
                let status = if n <= failures {
                    "500 Internal Server Error"
                } else {
                    acc.lock()
                        .unwrap()
                        .push(serde_json::from_slice(&body).unwrap_or(Value::Null));
                    "200 OK"
                };
                let response =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = socket.write_all(response.as_bytes()).await;
            }
        });
        Receiver {
            url,
            accepted,
            requests,
        }
    }

    fn accepted(&self) -> Vec<Value> {
        self.accepted.lock().unwrap().clone()
    }
}

async fn read_request(socket: &mut tokio::net::TcpStream) -> Vec<u8> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        let Ok(n) = socket.read(&mut buf).await else {
            return Vec::new();
        };
        if n == 0 {
            return Vec::new();
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            while data.len() < end + 4 + length {
                let Ok(n) = socket.read(&mut buf).await else {
                    break;
                };
                if n == 0 {
                    break;
                }
                data.extend_from_slice(&buf[..n]);
            }
            return data[end + 4..].to_vec();
        }
    }
}

async fn wait_for<T>(
    what: &str,
    timeout: std::time::Duration,
    mut check: impl FnMut() -> Option<T>,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn the_webhook_gets_each_firing_and_resolution_after_the_receiver_recovers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start(3).await;
    let rules = rule_file(
        "hook",
        "[[rule]]\nmetric_key = \"ini_backlog\"\ndirection = \"above\"\nwarning = 2\n",
    );
    let worker = WorkerProcess::spawn(
        &app.db.url,
        &[
            ("FLOWMETER_ALERT_WEBHOOK_URL", receiver.url.as_str()),
            ("FLOWMETER_ALERT_RULES", rules.as_str()),
        ],
    );
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let at = Utc::now() - Duration::hours(3);
    let mut events = Vec::new();
    for i in 0..3 {
        let id = format!("t{i}");
        events.push(b.task_created(&id, at, json!({})));
        events.push(b.transition(&id, "implemented", at));
    }
    app.ingest(&events).await;
    // Fires (backlog 3 > 2) once the worker folded; the receiver refuses 3 deliveries.
    let fired = wait_for(
        "the firing notification",
        std::time::Duration::from_secs(30),
        || receiver.accepted().first().cloned(),
    )
    .await;
    assert!(
        *receiver.requests.lock().unwrap() >= 4,
        "three refusals, then accepted"
    );
    assert_eq!(fired["version"], "4");
    assert_eq!(fired["status"], "firing");
    let alert = &fired["alerts"][0];
    assert_eq!(alert["status"], "firing");
    assert_eq!(alert["labels"]["alertname"], "FlowmeterIniBacklog");
    assert_eq!(alert["labels"]["project_id"], json!(project));
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["endsAt"], "0001-01-01T00:00:00Z");
    let alert_id = alerts_of(&app, project).await[0].0;
    // The firing gauge follows (it refreshes after each drain).
    let start = Instant::now();
    while metric_value(
        &worker.metrics().await,
        "flowmeter_alerts_firing{severity=\"warning\"}",
    ) != Some(1.0)
    {
        assert!(
            start.elapsed().as_secs() < 20,
            "flowmeter_alerts_firing never showed the alert"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(alert["annotations"]["alert_id"], json!(alert_id));

    // Integrate two: backlog 1, resolved.
    app.ingest(&[
        b.transition("t0", "integrated", Utc::now() - Duration::minutes(5)),
        b.transition("t1", "integrated", Utc::now() - Duration::minutes(5)),
    ])
    .await;
    let accepted = wait_for("the resolution", std::time::Duration::from_secs(30), || {
        let all = receiver.accepted();
        (all.len() >= 2).then_some(all)
    })
    .await;
    assert_eq!(
        accepted.len(),
        2,
        "each notification delivered once: {accepted:#?}"
    );
    assert_eq!(accepted[1]["status"], "resolved");
    assert_eq!(
        accepted[1]["alerts"][0]["fingerprint"],
        alert["fingerprint"]
    );
    assert_ne!(accepted[1]["alerts"][0]["endsAt"], "0001-01-01T00:00:00Z");

    let client = app.db.client().await;
    // The worker marks a row delivered in the transaction it commits after the answer.
    let start = Instant::now();
    loop {
        let pending: i64 = client
            .query_one(
                "SELECT count(*) FROM metrics_alert_outbox
                  WHERE project_id = $1 AND delivered_at IS NULL",
                &[&project],
            )
            .await
            .unwrap()
            .get(0);
        if pending == 0 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 20,
            "rows never marked delivered"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rows = client
        .query(
            "SELECT status, attempts, delivered_at IS NOT NULL FROM metrics_alert_outbox
              WHERE project_id = $1 ORDER BY id",
            &[&project],
        )
        .await
        .unwrap();
    let rows: Vec<(String, i32, bool)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    assert_eq!(
        rows,
        vec![("firing".into(), 4, true), ("resolved".into(), 1, true)]
    );

    // The worker's alert counters saw the firing, and nothing fires any more.
    let start = Instant::now();
    while metric_value(
        &worker.metrics().await,
        "flowmeter_alerts_firing{severity=\"warning\"}",
    ) != Some(0.0)
    {
        assert!(
            start.elapsed().as_secs() < 20,
            "flowmeter_alerts_firing stayed up"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let text = worker.metrics().await;
    assert_eq!(
        metric_value(
            &text,
            "flowmeter_alerts_fired_total{severity=\"warning\",alert_type=\"threshold\"}"
        ),
        Some(1.0),
        "{text}"
    );
}

#[tokio::test]
async fn business_gauges_keep_to_the_top_projects_plus_other() {
    let app = TestApp::spawn().await;
    // 200 projects; project i gets i + 1 tasks, so the busiest are the last ones.
    let mut events = Vec::new();
    let mut projects = Vec::new();
    for i in 0..200 {
        let mut b = EventBuilder::new();
        projects.push(b.project_id);
        for k in 0..=(i % 7) {
            let id = format!("t{k}");
            events.push(b.task_created(&id, Utc::now() - Duration::hours(5), json!({})));
            events.push(b.transition(&id, "in_progress", Utc::now() - Duration::hours(4)));
        }
    }
    for chunk in events.chunks(2000) {
        app.ingest(chunk).await;
    }
    let worker = WorkerProcess::spawn(
        &app.db.url,
        &[
            ("FLOWMETER_METRICS_MAX_PROJECTS", "10"),
            ("FLOWMETER_WORKER_CONCURRENCY", "2"),
        ],
    );
    let client = app.db.client().await;
    let start = Instant::now();
    loop {
        let folded: i64 = client
            .query_one(
                "SELECT count(DISTINCT project_id) FROM metrics_summary",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if folded == 200 {
            break;
        }
        assert!(
            start.elapsed().as_secs() < 120,
            "only {folded} projects folded"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    // The gauges refresh after each drain (the per-second schedule drains again soon); wait
    // for a refresh that saw every project.
    let total_wip: f64 = (0..200).map(|i| (i % 7 + 1) as f64).sum();
    let wip_of = |text: &str, project: &str| {
        metric_value(
            text,
            &format!("flowmeter_project_metric{{project=\"{project}\",metric=\"wip\"}}"),
        )
    };
    let start = Instant::now();
    let (labels, summed) = loop {
        let text = worker.metrics().await;
        let labels: std::collections::BTreeSet<String> = text
            .lines()
            .filter(|l| l.starts_with("flowmeter_project_metric{"))
            .filter_map(|l| l.split("project=\"").nth(1))
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect();
        // WIP is a count: "other" sums the remaining projects' WIP.
        let summed: f64 = labels.iter().filter_map(|p| wip_of(&text, p)).sum();
        if summed == total_wip || start.elapsed().as_secs() > 30 {
            break (labels, summed);
        }
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    };
    assert_eq!(summed, total_wip, "every project counted once");
    assert_eq!(labels.len(), 11, "10 projects plus other: {labels:?}");
    assert!(labels.contains("other"));
}
