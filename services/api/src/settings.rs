//! The API's configuration, read from `FLOWMETER_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use flowmeter_shared::config::{self, ConfigError, DatabaseSettings, Env};
use flowmeter_shared::telemetry::LogFormat;

/// Everything the API server needs to start.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Database connection and pool.
    pub database: DatabaseSettings,
    /// A read replica for the metrics reads (`FLOWMETER_READ_DATABASE_URL`); `None`: the
    /// primary serves them.
    pub read_database_url: Option<String>,
    /// Listen address (`FLOWMETER_HTTP_ADDR`); port 0 picks a free port.
    pub http_addr: SocketAddr,
    /// Most events in one ingest request (`FLOWMETER_INGEST_MAX_EVENTS`).
    pub ingest_max_events: usize,
    /// Largest ingest body in bytes (`FLOWMETER_INGEST_MAX_BYTES`).
    pub ingest_max_bytes: usize,
    /// Accepted range of `occurred_at` (`FLOWMETER_EARLIEST_EVENT_TIME`,
    /// `FLOWMETER_MAX_FUTURE_SECONDS`).
    pub event_time_bounds: flowmeter_shared::events::TimeBounds,
    /// An admin key registered at start-up (`FLOWMETER_API_KEY`).
    pub bootstrap_api_key: Option<String>,
    /// Environments counted as production in the DORA trends
    /// (`FLOWMETER_PRODUCTION_ENVIRONMENTS`, the worker's list for the summary).
    pub production_environments: Vec<String>,
    /// The key that encrypts webhook secrets (`FLOWMETER_SECRET_KEY`, 32 bytes in base64).
    pub secret_key: Option<crate::integrations::secrets::SecretKey>,
    /// Every request acts as admin (`FLOWMETER_AUTH_DISABLED`); tests and demos only.
    pub auth_disabled: bool,
    /// Allows `auth_disabled` on a non-loopback address (`FLOWMETER_ALLOW_INSECURE`).
    pub allow_insecure: bool,
    /// Migrations from a directory instead of the embedded set (`FLOWMETER_MIGRATIONS_DIR`).
    pub migrations_dir: Option<PathBuf>,
    /// Log format (`FLOWMETER_LOG_FORMAT`).
    pub log_format: LogFormat,
    /// How long in-flight requests may take to finish at shutdown (`FLOWMETER_SHUTDOWN_TIMEOUT_SECS`).
    pub shutdown_timeout: Duration,
    /// HTTP worker threads (`FLOWMETER_HTTP_WORKERS`, default: one per core).
    pub http_workers: usize,
    /// Browser origins allowed by CORS (`FLOWMETER_CORS_ORIGINS`, comma list; `*` for any).
    pub cors_origins: Vec<String>,
    /// Switched-off features (`FLOWMETER_DISABLED_FEATURES`).
    pub disabled_features: Vec<Feature>,
    /// `Cache-Control: private, max-age` of metrics responses (`FLOWMETER_HTTP_CACHE_MAX_AGE_SECONDS`).
    pub cache_max_age_seconds: u64,
    /// Per-minute budgets of the metrics endpoints (`FLOWMETER_RATE_LIMIT_*`).
    pub rate_limits: crate::rate_limit::RateLimits,
    /// How long a request body may take to arrive before the answer is 408
    /// (`FLOWMETER_HTTP_BODY_TIMEOUT_MS`).
    pub http_body_timeout: Duration,
}

pub use flowmeter_shared::config::Feature;

/// Origins such as `https://dash.example.com` (scheme and host, optional port, no path), or `*`.
fn cors_origins(env: &Env) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.raw("FLOWMETER_CORS_ORIGINS") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(|origin| {
            let rest = origin
                .strip_prefix("https://")
                .or_else(|| origin.strip_prefix("http://"));
            let valid = origin == "*"
                || rest.is_some_and(|host| {
                    !host.is_empty()
                        && host
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
                });
            if valid {
                Ok(origin.to_owned())
            } else {
                Err(ConfigError::Invalid {
                    name: "FLOWMETER_CORS_ORIGINS",
                    value: raw.to_owned(),
                    message: format!(
                        "{origin:?} is not an origin such as https://dash.example.com or *"
                    ),
                })
            }
        })
        .collect()
}

fn read_database_url(env: &Env) -> Result<Option<String>, ConfigError> {
    let Some(url) = env.raw("FLOWMETER_READ_DATABASE_URL").map(str::trim) else {
        return Ok(None);
    };
    if url.is_empty() {
        return Ok(None);
    }
    match url.parse::<tokio_postgres::Config>() {
        Ok(_) => Ok(Some(url.to_owned())),
        Err(e) => Err(ConfigError::Invalid {
            name: "FLOWMETER_READ_DATABASE_URL",
            value: config::redact_url(url),
            message: e.to_string(),
        }),
    }
}

/// The shortest key accepted from `FLOWMETER_API_KEY`.
const MIN_BOOTSTRAP_KEY_LEN: usize = 16;

impl ApiSettings {
    /// Reads and validates the API's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let bootstrap_api_key = env.raw("FLOWMETER_API_KEY").map(str::to_owned);
        if let Some(key) = &bootstrap_api_key {
            if key.len() < MIN_BOOTSTRAP_KEY_LEN {
                return Err(ConfigError::Invalid {
                    name: "FLOWMETER_API_KEY",
                    value: "<hidden>".into(),
                    message: format!("must be at least {MIN_BOOTSTRAP_KEY_LEN} characters"),
                });
            }
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get()) as u64;
        Ok(Self {
            database: DatabaseSettings::from_env(env, 16)?,
            read_database_url: read_database_url(env)?,
            http_addr: config::socket_addr(env, "FLOWMETER_HTTP_ADDR", "127.0.0.1:8080")?,
            ingest_max_events: env.int_in_range(
                "FLOWMETER_INGEST_MAX_EVENTS",
                5000,
                1,
                1_000_000,
            )? as usize,
            event_time_bounds: flowmeter_shared::events::TimeBounds::from_env(env)?,
            ingest_max_bytes: env.int_in_range(
                "FLOWMETER_INGEST_MAX_BYTES",
                8 * 1024 * 1024,
                1024,
                1024 * 1024 * 1024,
            )? as usize,
            bootstrap_api_key,
            production_environments: config::production_environments(env)?,
            secret_key: env
                .raw("FLOWMETER_SECRET_KEY")
                .map(|text| {
                    crate::integrations::secrets::SecretKey::parse(text).map_err(|message| {
                        ConfigError::Invalid {
                            name: "FLOWMETER_SECRET_KEY",
                            value: "<hidden>".into(),
                            message,
                        }
                    })
                })
                .transpose()?,
            auth_disabled: env.flag("FLOWMETER_AUTH_DISABLED")?,
            allow_insecure: env.flag("FLOWMETER_ALLOW_INSECURE")?,
            migrations_dir: config::optional_path(env, "FLOWMETER_MIGRATIONS_DIR"),
            log_format: env.parse_or("FLOWMETER_LOG_FORMAT", LogFormat::Text)?,
            shutdown_timeout: Duration::from_secs(env.int_in_range(
                "FLOWMETER_SHUTDOWN_TIMEOUT_SECS",
                30,
                0,
                3600,
            )?),
            http_workers: env.int_in_range("FLOWMETER_HTTP_WORKERS", cores, 1, 256)? as usize,
            cors_origins: cors_origins(env)?,
            disabled_features: config::disabled_features(env)?,
            rate_limits: crate::rate_limit::RateLimits::from_env(env)?,
            http_body_timeout: Duration::from_millis(env.int_in_range(
                "FLOWMETER_HTTP_BODY_TIMEOUT_MS",
                30_000,
                100,
                3_600_000,
            )?),
            cache_max_age_seconds: env.int_in_range(
                "FLOWMETER_HTTP_CACHE_MAX_AGE_SECONDS",
                30,
                0,
                86_400,
            )?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Env {
        Env::from_pairs([("FLOWMETER_DATABASE_URL", "postgres://u@127.0.0.1:5432/x")])
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = ApiSettings::from_env(&base()).unwrap();
        assert_eq!(s.http_addr.to_string(), "127.0.0.1:8080");
        assert_eq!(s.ingest_max_events, 5000);
        assert_eq!(s.ingest_max_bytes, 8 * 1024 * 1024);
        assert!(!s.auth_disabled);
        assert_eq!(s.http_body_timeout, Duration::from_secs(30));
        assert_eq!(s.database.timeout, Duration::from_secs(3));
        assert_eq!(s.rate_limits.unauthenticated, 300);
    }

    #[test]
    fn kill_switches_parse_and_refuse_unknown_features() {
        let s =
            ApiSettings::from_env(&base().set("FLOWMETER_DISABLED_FEATURES", "ingest, drilldown"))
                .unwrap();
        assert_eq!(
            s.disabled_features,
            vec![Feature::Ingest, Feature::Drilldown]
        );
        let err =
            ApiSettings::from_env(&base().set("FLOWMETER_DISABLED_FEATURES", "ingest,emails"))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("FLOWMETER_DISABLED_FEATURES") && err.contains("emails"),
            "{err}"
        );
    }

    #[test]
    fn a_bad_address_names_the_variable() {
        let err = ApiSettings::from_env(&base().set("FLOWMETER_HTTP_ADDR", "localhost"))
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("FLOWMETER_HTTP_ADDR"), "{err}");
    }

    #[test]
    fn a_short_bootstrap_key_is_refused_without_echoing_it() {
        let err = ApiSettings::from_env(&base().set("FLOWMETER_API_KEY", "short"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLOWMETER_API_KEY") && !err.contains("short\""),
            "{err}"
        );
    }
}
