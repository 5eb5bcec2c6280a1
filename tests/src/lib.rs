//! Test support for the black-box integration tests: a fresh database per test (cloned
// Test support panics on setup failures by design: a failed setup must fail the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
//! from a migrated template), the real API server on 127.0.0.1:0, and typed helpers so
//! tests read as sentences.

pub mod alertmanager;
pub mod app;
pub mod cluster;
pub mod db;
pub mod events;
pub mod openapi;
pub mod process;
pub mod worker;

pub use app::{TestApp, TestAppOptions};
pub use db::TestDb;

use std::sync::Once;

/// Turns on logs when `TEST_LOG=1`; silent otherwise.
pub fn init_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        if std::env::var("TEST_LOG").is_ok_and(|v| v == "1") {
            flowmeter_shared::telemetry::init(flowmeter_shared::telemetry::LogFormat::Text);
        }
    });
}

/// The directory holding the workspace's built binaries (target/debug).
pub fn bin_dir() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/debug/deps/it-<hash> → target/debug
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("target directory")
        .to_path_buf()
}

/// The path of a workspace binary; panics with the command to build it when missing.
pub fn bin_path(name: &str) -> std::path::PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.exists(),
        "{} is not built; run `make test` (or cargo build --workspace --bins --features flowmeter-worker/test-hooks)",
        path.display()
    );
    path
}

/// A free port on 127.0.0.1 (bound, read and released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Where a child process's logs go: the test's stderr with `TEST_LOG` set, nowhere otherwise.
pub fn child_stderr() -> std::process::Stdio {
    if std::env::var("TEST_LOG").is_ok() {
        std::process::Stdio::inherit()
    } else {
        std::process::Stdio::null()
    }
}
