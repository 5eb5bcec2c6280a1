//! The first hour (SPEC §16): `make run`'s banner is pasted as printed. scripts/run starts
//! its private PostgreSQL, the demo projects, the worker and the API; every project it lists
//! answers the summary, its smoke command and curls pass when pasted into a fresh shell, and
//! `source .data/flowmeter.env` makes `flowmeter-api keys list` and the smoke script work.

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::mpsc;

use super::*;

/// scripts/run, stopped (SIGTERM, as Ctrl-C) when dropped.
struct Run {
    child: Child,
    data: PathBuf,
}

impl Drop for Run {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Runs a command line in bash with an environment as bare as a new login's.
fn pasted(line: &str, dir: &Path) -> Output {
    Command::new("bash")
        .args(["-c", line])
        .current_dir(dir)
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", std::env::temp_dir())
        .stdin(Stdio::null())
        .output()
        .expect("bash")
}

#[tokio::test]
async fn make_runs_banner_works_when_pasted_and_its_env_file_works_from_a_new_shell() {
    let data = std::env::temp_dir().join(format!("flowmeter-run-{}", Uuid::new_v4()));
    let bin_dir = flowmeter_tests::bin_dir();
    let port = flowmeter_tests::free_port();
    let mut child = Command::new(script("run"))
        .args(["--no-build", "--data-dir", data.to_str().unwrap()])
        .current_dir(workspace_root())
        .env_remove("FLOWMETER_DATABASE_URL")
        .env_remove("DATABASE_URL")
        .env_remove("FLOWMETER_API_KEY")
        .env("CARGO_TARGET_DIR", bin_dir.parent().unwrap())
        .env("FLOWMETER_HTTP_ADDR", format!("127.0.0.1:{port}"))
        .env(
            "FLOWMETER_WORKER_METRICS_ADDR",
            format!("127.0.0.1:{}", flowmeter_tests::free_port()),
        )
        .env("FLOWMETER_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(flowmeter_tests::child_stderr())
        .spawn()
        .expect("start scripts/run");
    let stdout = child.stdout.take().unwrap();
    let run = Run {
        child,
        data: data.clone(),
    };

    let (lines_tx, lines_rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut banner = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = lines_rx.recv_timeout(left).unwrap_or_else(|_| {
            panic!(
                "no banner within 240 s; printed so far:\n{}",
                banner.join("\n")
            )
        });
        let done = line.starts_with("Press Ctrl-C");
        banner.push(line);
        if done {
            break;
        }
    }
    let text = banner.join("\n");

    // The projects it lists are real: each answers the summary with the printed key.
    let key = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("Admin key"))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or_else(|| panic!("no admin key in the banner:\n{text}"))
        .to_owned();
    let projects: Vec<(String, Uuid)> = banner
        .iter()
        .skip_while(|l| !l.starts_with("Projects"))
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .map(|l| {
            let (name, id) = l.trim().rsplit_once(' ').unwrap();
            (name.trim().to_owned(), id.parse().unwrap())
        })
        .collect();
    let names: Vec<&str> = projects.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names.len(), 3, "{text}");
    assert!(
        names.iter().all(|n| !n.is_empty() && *n != "(unnamed)"),
        "{text}"
    );
    let base = format!("http://127.0.0.1:{port}");
    for (_, id) in &projects {
        get_json(&base, &format!("/v1/metrics/summary?project_id={id}"), &key).await;
    }
    // The dashboard's URL is printed exactly when the API serves one.
    let root = reqwest::get(format!("{base}/")).await.unwrap();
    let serves_dashboard = root.status() == 200
        && root
            .headers()
            .get("content-type")
            .is_some_and(|v| v.to_str().unwrap_or("").starts_with("text/html"));
    assert_eq!(
        banner.iter().any(|l| l.trim().starts_with("Dashboard")),
        serves_dashboard,
        "{text}"
    );

    // Every command it prints passes when pasted into a new shell elsewhere.
    let commands: Vec<&str> = banner
        .iter()
        .map(|l| l.trim())
        .filter(|l| l.starts_with("curl ") || l.contains("scripts/smoke_test_metrics"))
        .collect();
    assert!(
        commands
            .iter()
            .filter(|c| c.contains("/v1/metrics/"))
            .count()
            >= 7,
        "a curl for every metrics endpoint:\n{text}"
    );
    assert!(
        commands.iter().any(|c| c.contains("smoke_test_metrics")),
        "{text}"
    );
    for endpoint in [
        "summary",
        "trends",
        "breakdown",
        "drilldown",
        "health",
        "alerts",
        "actions",
    ] {
        assert!(
            commands
                .iter()
                .any(|c| c.contains(&format!("/v1/metrics/{endpoint}?"))),
            "no curl for {endpoint}:\n{text}"
        );
    }
    let elsewhere = std::env::temp_dir();
    for command in &commands {
        let out = pasted(command, &elsewhere);
        assert!(
            out.status.success(),
            "pasted as printed, `{command}` failed: {}",
            output_text(&out)
        );
    }

    // A new shell that sources the env file can use the key tooling and the smoke script.
    let source = banner
        .iter()
        .find_map(|l| l.trim().strip_prefix("source "))
        .unwrap_or_else(|| panic!("no `source` line:\n{text}"))
        .to_owned();
    assert_eq!(Path::new(&source), data.join("flowmeter.env"));
    let keys = pasted(
        &format!("source {source} && flowmeter-api keys list"),
        &elsewhere,
    );
    assert!(keys.status.success(), "{}", output_text(&keys));
    let listed: Value = serde_json::from_slice(&keys.stdout).unwrap();
    assert!(
        listed["keys"]
            .as_array()
            .unwrap()
            .iter()
            .any(|k| key.starts_with(k["key_prefix"].as_str().unwrap())),
        "{listed}"
    );
    let smoke = pasted(
        &format!("source {source} && scripts/smoke_test_metrics"),
        workspace_root(),
    );
    assert!(smoke.status.success(), "{}", output_text(&smoke));

    drop(run);
    assert!(!data.exists());
}
