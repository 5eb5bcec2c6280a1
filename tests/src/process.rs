//! The API binary as a child process (for signals, restarts and memory figures), and the
//! resident memory of any child.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::bin_path;

/// `flowmeter-api serve` on a free loopback port; killed when dropped.
pub struct ApiProcess {
    /// The child process.
    pub child: Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
}

impl ApiProcess {
    /// Starts the API against `db_url` (authentication disabled unless `env` says
    /// otherwise) and waits until `/health` answers.
    pub async fn spawn(db_url: &str, env: &[(&str, &str)]) -> Self {
        let port = crate::free_port();
        let mut command = Command::new(bin_path("flowmeter-api"));
        command
            .env_clear()
            .env("FLOWMETER_DATABASE_URL", db_url)
            .env("FLOWMETER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("FLOWMETER_AUTH_DISABLED", "1")
            .env("FLOWMETER_HTTP_WORKERS", "2")
            .env("FLOWMETER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(crate::child_stderr());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut api = ApiProcess {
            child: command.spawn().expect("spawn flowmeter-api"),
            base_url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            if let Ok(response) = http.get(format!("{}/health", api.base_url)).send().await {
                if response.status().is_success() {
                    return api;
                }
            }
            if let Ok(Some(status)) = api.child.try_wait() {
                panic!("flowmeter-api exited at start-up: {status}");
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "flowmeter-api did not answer /health within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Resident memory in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Resident memory (`VmRSS`) of a process in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// The largest peak resident set of the child processes this process has waited for, in
/// KiB (`getrusage(RUSAGE_CHILDREN)`): a way to measure a short-lived command's memory.
pub fn children_peak_rss_kib() -> u64 {
    nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)
        .map(|usage| u64::try_from(usage.max_rss()).unwrap_or(0))
        .unwrap_or(0)
}
