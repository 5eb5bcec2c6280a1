//! Running the real worker binary: one-shot commands and daemons as child processes.

use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use uuid::Uuid;

use crate::bin_path;

/// The fixed clock most fold tests use.
pub const TEST_NOW: &str = "2026-03-20T12:00:00Z";

/// Runs `flowmeter-worker ARGS` against a database; returns the output.
pub fn worker(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(bin_path("flowmeter-worker"));
    command
        .args(args)
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", db_url)
        .env("FLOWMETER_LOG", "warn")
        .env("FLOWMETER_TEST_NOW", TEST_NOW);
    for (name, value) in env {
        command.env(name, value);
    }
    command.output().expect("run flowmeter-worker")
}

/// Runs a worker command that must succeed and print JSON; returns that JSON.
pub fn worker_json(db_url: &str, args: &[&str], env: &[(&str, &str)]) -> Value {
    let out = worker(db_url, args, env);
    assert!(
        out.status.success(),
        "flowmeter-worker {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{args:?} printed no JSON ({e}): {}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// Folds a project until caught up.
pub fn backfill(db_url: &str, project: Uuid, max_events: i64) -> Value {
    worker_json(
        db_url,
        &[
            "backfill",
            "--project",
            &project.to_string(),
            "--max-events",
            &max_events.to_string(),
        ],
        &[],
    )
}

/// Runs `verify` and returns its report (whether or not it passed).
pub fn verify(db_url: &str, project: Uuid) -> (bool, Value) {
    let out = worker(db_url, &["verify", "--project", &project.to_string()], &[]);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or(Value::Null);
    (out.status.success(), report)
}

/// Asserts `verify` passes.
pub fn assert_verified(db_url: &str, project: Uuid) {
    let (ok, report) = verify(db_url, project);
    assert!(ok, "verify failed for {project}: {report:#}");
}

/// A worker daemon; killed when dropped.
pub struct WorkerProcess {
    /// The child process.
    pub child: Child,
    /// Its metrics address.
    pub metrics_addr: String,
}

impl WorkerProcess {
    /// Starts `flowmeter-worker run` with extra environment.
    pub fn spawn(db_url: &str, env: &[(&str, &str)]) -> Self {
        let port = crate::free_port();
        let metrics_addr = format!("127.0.0.1:{port}");
        let mut command = Command::new(bin_path("flowmeter-worker"));
        command
            .arg("run")
            .env_clear()
            .env("FLOWMETER_DATABASE_URL", db_url)
            .env("FLOWMETER_WORKER_METRICS_ADDR", &metrics_addr)
            .env(
                "FLOWMETER_LOG",
                std::env::var("TEST_WORKER_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .env("FLOWMETER_NRT_SCHEDULE", "* * * * * *")
            .stdout(Stdio::null())
            .stderr(crate::child_stderr());
        for (name, value) in env {
            command.env(name, value);
        }
        Self {
            child: command.spawn().expect("spawn flowmeter-worker run"),
            metrics_addr,
        }
    }

    /// Sends SIGKILL and reaps the process.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM.
    pub fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The worker's /metrics text.
    pub async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .expect("worker /metrics")
            .text()
            .await
            .expect("metrics text")
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The value of a sample line such as `flowmeter_jobs_recovered_total 1`.
pub fn metric_value(text: &str, sample: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(sample) && line[sample.len()..].starts_with(' '))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Every metrics_* row of a project as JSON, ordered, without bookkeeping columns: two
/// dumps are equal exactly when the read models are byte for byte the same.
pub async fn dump_read_model(client: &tokio_postgres::Client, project: Uuid) -> Value {
    let tables = [
        ("metrics_task", "task_id"),
        ("metrics_gate", "gate_id"),
        ("metrics_integration_attempt", "attempt_id"),
        ("metrics_milestone", "milestone_id"),
        ("metrics_phase", "phase_id"),
        ("metrics_state_transition_counter", "task_state"),
        ("metrics_data_quality_counter", "issue"),
        (
            "metrics_trend_point",
            "metric_key, time_grain, time_bucket, dimensions",
        ),
        (
            "metrics_breakdown_point",
            "metric_key, dimension, dimension_value, day",
        ),
        ("metrics_drilldown", "metric_key, task_id"),
        ("metrics_event_quarantine", "seq"),
        ("metrics_summary", "captured_at"),
    ];
    let mut dump = serde_json::Map::new();
    for (table, order) in tables {
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'last_seq' - 'quarantined_at' ORDER BY {order}), '[]'::jsonb)::text
               FROM {table} t WHERE project_id = $1"
        );
        let text: String = client.query_one(&sql, &[&project]).await.unwrap().get(0);
        dump.insert(table.to_owned(), serde_json::from_str(&text).unwrap());
    }
    // The DORA facts keep each event's seq (canonical order's tie-break), which two
    // projects given the same events in another order number differently.
    let dora = [
        ("metrics_change", "change_id", "t.facts - 'seq'"),
        (
            "metrics_deployment",
            "deployment_id",
            "t.facts #- '{started,seq}' #- '{finished,seq}'",
        ),
        (
            "metrics_incident",
            "incident_id",
            "t.facts #- '{opened,seq}' #- '{resolved,seq}'",
        ),
    ];
    for (table, order, facts) in dora {
        let sql = format!(
            "SELECT coalesce(jsonb_agg(to_jsonb(t) - 'last_seq' || jsonb_build_object('facts', {facts})
                     ORDER BY {order}), '[]'::jsonb)::text
               FROM {table} t WHERE project_id = $1"
        );
        let text: String = client.query_one(&sql, &[&project]).await.unwrap().get(0);
        dump.insert(table.to_owned(), serde_json::from_str(&text).unwrap());
    }
    Value::Object(dump)
}

/// Asserts that every event id the API acknowledged with 200 is in the log (each at most
/// once: the log's key is unique).
pub async fn assert_all_stored(
    client: &tokio_postgres::Client,
    project: Uuid,
    acknowledged: &[String],
) {
    let stored: i64 = client
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1 AND event_id = ANY($2)",
            &[&project, &acknowledged],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        stored as usize,
        acknowledged.len(),
        "an acknowledged event was lost"
    );
}

/// Waits until every project's checkpoint reached its log head and a snapshot exists;
/// panics after `within`.
pub async fn wait_until_caught_up(
    client: &tokio_postgres::Client,
    projects: &[Uuid],
    within: std::time::Duration,
) {
    let started = std::time::Instant::now();
    loop {
        let mut done = true;
        for project in projects {
            let row = client
                .query_opt(
                    "SELECT c.last_seq = h.last_seq AND c.last_snapshot_at IS NOT NULL
                       FROM event_stream_head h LEFT JOIN metrics_job_checkpoint c USING (project_id)
                      WHERE h.project_id = $1",
                    &[project],
                )
                .await
                .unwrap();
            if !row
                .and_then(|r| r.get::<_, Option<bool>>(0))
                .unwrap_or(false)
            {
                done = false;
            }
        }
        if done {
            return;
        }
        assert!(
            started.elapsed() < within,
            "workers did not catch up within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// Waits until a worker of this database is inside a run's transaction (with
/// `FLOWMETER_TEST_FOLD_DELAY_MS`, sleeping before its commit); panics after `within`.
pub async fn wait_until_in_run(client: &tokio_postgres::Client, within: std::time::Duration) {
    let started = std::time::Instant::now();
    loop {
        let in_run: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()
                   AND state = 'idle in transaction' AND application_name = 'flowmeter-worker'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if in_run > 0 {
            return;
        }
        assert!(
            started.elapsed() < within,
            "no fold run started within {within:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}
