//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by
//! scripts/install-deps) on a free loopback port with a temporary storage directory; killed
//! when dropped. It can be stopped and started again on the same port and storage.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The test configuration: everything to a receiver nobody listens on (the tests read the
/// API, not notifications), with short timings.
const CONFIG: &str = "route:\n  receiver: sink\n  group_by: [alertname, project_id]\n  \
     group_wait: 1s\n  group_interval: 1s\n  repeat_interval: 1h\nreceivers:\n  - name: sink\n";

/// `prometheus-alertmanager` (or `alertmanager`) from PATH; its absence fails the test:
/// `make test` installs it.
pub fn binary() -> PathBuf {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths).find_map(|dir| {
            ["prometheus-alertmanager", "alertmanager"]
                .iter()
                .map(|name| dir.join(name))
                .find(|candidate| candidate.is_file())
        })
    });
    found.expect(
        "Alertmanager is missing: scripts/install-deps (run by `make test`) installs Debian's prometheus-alertmanager",
    )
}

/// A running (or stopped) Alertmanager.
pub struct Alertmanager {
    child: Option<Child>,
    dir: PathBuf,
    port: u16,
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    http: reqwest::Client,
}

impl Alertmanager {
    /// Starts one and waits until it is ready.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "flowmeter-alertmanager-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("alertmanager.yml"), CONFIG).unwrap();
        let port = crate::free_port();
        let mut am = Alertmanager {
            child: None,
            dir,
            port,
            url: format!("http://127.0.0.1:{port}"),
            http: reqwest::Client::new(),
        };
        am.resume().await;
        am
    }

    /// Kills it (alerts live in memory only: a restarted Alertmanager has none).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and storage and waits until it is ready.
    pub async fn resume(&mut self) {
        self.stop();
        let child = Command::new(binary())
            .arg(format!(
                "--config.file={}",
                self.dir.join("alertmanager.yml").display()
            ))
            .arg(format!(
                "--storage.path={}",
                self.dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .arg("--cluster.listen-address=")
            .arg("--log.level=warn")
            .stdout(Stdio::null())
            .stderr(crate::child_stderr())
            .spawn()
            .expect("spawn prometheus-alertmanager");
        self.child = Some(child);
        let started = Instant::now();
        loop {
            if let Ok(response) = self.http.get(format!("{}/-/ready", self.url)).send().await {
                if response.status().is_success() {
                    return;
                }
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("Alertmanager exited at start-up: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "Alertmanager did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn get(&self, path: &str) -> Vec<Value> {
        let response = self
            .http
            .get(format!("{}{path}", self.url))
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    /// Its active alerts (`GET /api/v2/alerts`: silenced ones included, resolved ones not).
    pub async fn alerts(&self) -> Vec<Value> {
        self.get("/api/v2/alerts").await
    }

    /// Its silences (`GET /api/v2/silences`).
    pub async fn silences(&self) -> Vec<Value> {
        self.get("/api/v2/silences").await
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
