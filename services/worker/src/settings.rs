//! The worker's configuration, read from `FLOWMETER_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;

use flowmeter_shared::config::{self, ConfigError, DatabaseSettings, Env};
use flowmeter_shared::telemetry::LogFormat;

/// Everything the worker needs to start.
#[derive(Debug, Clone)]
pub struct WorkerSettings {
    /// Database connection and pool (a smaller pool than the API's).
    pub database: DatabaseSettings,
    /// Where the worker serves `/metrics` (`FLOWMETER_WORKER_METRICS_ADDR`).
    pub metrics_addr: SocketAddr,
    /// Migrations from a directory instead of the embedded set (`FLOWMETER_MIGRATIONS_DIR`).
    pub migrations_dir: Option<PathBuf>,
    /// Log format (`FLOWMETER_LOG_FORMAT`).
    pub log_format: LogFormat,
}

impl WorkerSettings {
    /// Reads and validates the worker's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Self {
            database: DatabaseSettings::from_env(env, 4)?,
            metrics_addr: config::socket_addr(
                env,
                "FLOWMETER_WORKER_METRICS_ADDR",
                "127.0.0.1:9108",
            )?,
            migrations_dir: config::optional_path(env, "FLOWMETER_MIGRATIONS_DIR"),
            log_format: env.parse_or("FLOWMETER_LOG_FORMAT", LogFormat::Text)?,
        })
    }
}
