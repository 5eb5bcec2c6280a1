//! The operations kit: the smoke script, the rollback script and its rehearsal, the
//! Grafana dashboards and the Prometheus rules, run the way an operator runs them.

mod delivery_rules;
mod first_hour;
mod observability;
mod rehearsal;
mod rollback;
mod runbook;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use flowmeter_tests::worker::{worker_json, WorkerProcess, TEST_NOW};
use serde_json::Value;
use uuid::Uuid;

/// The repository's root directory.
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// A script under scripts/.
pub fn script(name: &str) -> PathBuf {
    workspace_root().join("scripts").join(name)
}

/// Runs a repository script with extra environment and stdin closed; returns its output.
pub fn run_script(name: &str, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(script(name));
    command
        .args(args)
        .current_dir(workspace_root())
        .env_remove("FLOWMETER_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FLOWMETER_API_KEY")
        .stdin(Stdio::null());
    for (name, value) in env {
        command.env(name, value);
    }
    command
        .output()
        .unwrap_or_else(|e| panic!("running scripts/{name}: {e}"))
}

/// stdout and stderr of a finished process, for assertion messages.
pub fn output_text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs the smoke script against a server for one project.
pub fn smoke(base_url: &str, project: Uuid, api_key: Option<&str>) -> Output {
    let project = project.to_string();
    let mut env = Vec::new();
    if let Some(key) = api_key {
        env.push(("FLOWMETER_API_KEY", key));
    }
    run_script(
        "smoke_test_metrics",
        &["--base-url", base_url, "--project-id", &project],
        &env,
    )
}

/// Loads deterministic demo projects through the worker's ingest path; returns their ids.
pub fn load_demo(db_url: &str, projects: u32, tasks: u32) -> Vec<Uuid> {
    let report = worker_json(
        db_url,
        &[
            "demo-data",
            "--projects",
            &projects.to_string(),
            "--tasks",
            &tasks.to_string(),
            "--days",
            "30",
            "--seed",
            "11",
        ],
        &[],
    );
    report["projects"]
        .as_array()
        .expect("demo-data lists its projects")
        .iter()
        .map(|p| p["project_id"].as_str().unwrap().parse().unwrap())
        .collect()
}

/// Starts the worker daemon (on the tests' fixed clock) and waits until every project's
/// log is folded and snapshotted; returns the running worker.
pub async fn fold_everything(db_url: &str) -> WorkerProcess {
    let worker = WorkerProcess::spawn(db_url, &[("FLOWMETER_TEST_NOW", TEST_NOW)]);
    let client = flowmeter_tests::db::connect(db_url).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let behind: i64 = client
            .query_one(
                "SELECT count(*) FROM event_stream_head h
                   LEFT JOIN metrics_job_checkpoint c USING (project_id)
                  WHERE c.last_seq IS DISTINCT FROM h.last_seq OR c.last_snapshot_at IS NULL",
                &[],
            )
            .await
            .map(|row| row.get(0))
            // The worker creates the metrics tables when it starts on a rolled-back database.
            .unwrap_or(i64::MAX);
        if behind == 0 {
            return worker;
        }
        assert!(
            Instant::now() < deadline,
            "the worker did not fold every project within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GET a JSON body with a key, asserting 200.
pub async fn get_json(base_url: &str, path: &str, key: &str) -> Value {
    let response = reqwest::Client::new()
        .get(format!("{base_url}{path}"))
        .bearer_auth(key)
        .send()
        .await
        .expect("GET");
    assert_eq!(response.status(), 200, "GET {path}");
    response.json().await.expect("JSON body")
}
