//! Typed configuration read from `FLOWMETER_*` environment variables.
//!
//! Every value is parsed and validated once at start-up; an invalid value stops the
//! process with the variable's name in the message, so operators never chase a silent
//! default.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

/// A configuration error, always naming the offending variable.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A variable is present but its value does not parse or is out of range.
    #[error("{name}: {message} (got {value:?})")]
    Invalid {
        /// The environment variable.
        name: &'static str,
        /// The raw value.
        value: String,
        /// Why it was refused.
        message: String,
    },
    /// A variable that has no default is missing.
    #[error("{name} is required: {message}")]
    Missing {
        /// The environment variable.
        name: &'static str,
        /// What it is for.
        message: &'static str,
    },
}

/// A snapshot of the environment, so settings can be built from the process environment
/// or from a map in tests.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: HashMap<String, String>,
}

impl Env {
    /// The current process environment.
    pub fn from_process() -> Self {
        Self {
            vars: std::env::vars().collect(),
        }
    }

    /// An environment made of the given pairs only.
    pub fn from_pairs<I, K, V>(pairs: I) -> Self
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<String>,
    {
        Self {
            vars: pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }

    /// Sets one variable (builder style, for tests).
    pub fn set(mut self, name: &str, value: impl Into<String>) -> Self {
        self.vars.insert(name.to_owned(), value.into());
        self
    }

    /// The raw value of a variable; empty values count as unset.
    pub fn raw(&self, name: &str) -> Option<&str> {
        self.vars
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.trim().is_empty())
    }

    /// Parses a variable with `FromStr`, falling back to `default` when unset.
    pub fn parse_or<T>(&self, name: &'static str, default: T) -> Result<T, ConfigError>
    where
        T: FromStr,
        T::Err: std::fmt::Display,
    {
        match self.raw(name) {
            None => Ok(default),
            Some(value) => value
                .trim()
                .parse()
                .map_err(|e: T::Err| ConfigError::Invalid {
                    name,
                    value: value.to_owned(),
                    message: e.to_string(),
                }),
        }
    }

    /// Parses an integer variable and checks it lies in `min..=max`.
    pub fn int_in_range(
        &self,
        name: &'static str,
        default: u64,
        min: u64,
        max: u64,
    ) -> Result<u64, ConfigError> {
        let value = self.parse_or(name, default)?;
        if value < min || value > max {
            return Err(ConfigError::Invalid {
                name,
                value: value.to_string(),
                message: format!("must be between {min} and {max}"),
            });
        }
        Ok(value)
    }

    /// Parses a boolean flag: 1/true/yes/on or 0/false/no/off.
    pub fn flag(&self, name: &'static str) -> Result<bool, ConfigError> {
        match self.raw(name).map(|v| v.trim().to_ascii_lowercase()) {
            None => Ok(false),
            Some(v) if matches!(v.as_str(), "1" | "true" | "yes" | "on") => Ok(true),
            Some(v) if matches!(v.as_str(), "0" | "false" | "no" | "off") => Ok(false),
            Some(v) => Err(ConfigError::Invalid {
                name,
                value: v,
                message: "expected one of 1, true, yes, on, 0, false, no, off".into(),
            }),
        }
    }
}

/// Connection settings for PostgreSQL.
#[derive(Debug, Clone)]
pub struct DatabaseSettings {
    /// A libpq-style URL (`postgres://user@host:port/db`).
    pub url: String,
    /// Largest number of pooled connections.
    pub max_connections: usize,
    /// Server-side `statement_timeout` set on every connection.
    pub statement_timeout: Duration,
    /// How long to wait for a new connection or a free pool slot before giving up.
    pub connect_timeout: Duration,
    /// The client-side bound on every database wait (`FLOWMETER_DB_TIMEOUT_MS`): pool wait,
    /// connect and each query. A database that stops answering costs a request at most
    /// this long (SPEC §14).
    pub timeout: Duration,
}

impl DatabaseSettings {
    /// Reads `FLOWMETER_DATABASE_URL` (or `DATABASE_URL`) and the pool variables.
    pub fn from_env(env: &Env, default_pool_size: u64) -> Result<Self, ConfigError> {
        let url = env
            .raw("FLOWMETER_DATABASE_URL")
            .or_else(|| env.raw("DATABASE_URL"))
            .ok_or(ConfigError::Missing {
                name: "FLOWMETER_DATABASE_URL",
                message: "a PostgreSQL URL such as postgres://user@127.0.0.1:5432/flowmeter (DATABASE_URL is accepted as a fallback)",
            })?
            .to_owned();
        if let Err(e) = tokio_postgres::Config::from_str(&url) {
            return Err(ConfigError::Invalid {
                name: "FLOWMETER_DATABASE_URL",
                value: redact_url(&url),
                message: e.to_string(),
            });
        }
        Ok(Self {
            url,
            max_connections: env.int_in_range(
                "FLOWMETER_DB_POOL_SIZE",
                default_pool_size,
                1,
                1000,
            )? as usize,
            statement_timeout: Duration::from_millis(env.int_in_range(
                "FLOWMETER_DB_STATEMENT_TIMEOUT_MS",
                30_000,
                0,
                3_600_000,
            )?),
            connect_timeout: Duration::from_millis(env.int_in_range(
                "FLOWMETER_DB_CONNECT_TIMEOUT_MS",
                2_000,
                100,
                600_000,
            )?),
            timeout: Duration::from_millis(env.int_in_range(
                "FLOWMETER_DB_TIMEOUT_MS",
                3_000,
                100,
                600_000,
            )?),
        })
    }
}

/// Hides the password of a database URL, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.find(':') {
                Some(colon) => format!(
                    "{}{}:***{}",
                    &url[..scheme_end + 3],
                    &userinfo[..colon],
                    &url[at..]
                ),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

/// Parses a socket address variable.
pub fn socket_addr(
    env: &Env,
    name: &'static str,
    default: &str,
) -> Result<SocketAddr, ConfigError> {
    let raw = env.raw(name).unwrap_or(default);
    raw.trim()
        .parse()
        .map_err(|e: std::net::AddrParseError| ConfigError::Invalid {
            name,
            value: raw.to_owned(),
            message: format!("{e}; expected host:port such as 127.0.0.1:8080"),
        })
}

/// Reads an optional directory path.
pub fn optional_path(env: &Env, name: &'static str) -> Option<PathBuf> {
    env.raw(name).map(PathBuf::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_url_falls_back_to_database_url() {
        let env = Env::from_pairs([("DATABASE_URL", "postgres://u@127.0.0.1:5432/x")]);
        let db = DatabaseSettings::from_env(&env, 4).unwrap();
        assert_eq!(db.url, "postgres://u@127.0.0.1:5432/x");
        assert_eq!(db.max_connections, 4);
    }

    #[test]
    fn missing_database_url_names_the_variable() {
        let err = DatabaseSettings::from_env(&Env::default(), 4).unwrap_err();
        assert!(err.to_string().contains("FLOWMETER_DATABASE_URL"));
    }

    #[test]
    fn out_of_range_pool_size_names_the_variable() {
        let env = Env::from_pairs([
            ("FLOWMETER_DATABASE_URL", "postgres://u@127.0.0.1:5432/x"),
            ("FLOWMETER_DB_POOL_SIZE", "0"),
        ]);
        let err = DatabaseSettings::from_env(&env, 4).unwrap_err().to_string();
        assert!(err.contains("FLOWMETER_DB_POOL_SIZE"), "{err}");
    }

    #[test]
    fn bad_flag_is_refused() {
        let env = Env::from_pairs([("FLOWMETER_AUTH_DISABLED", "maybe")]);
        let err = env.flag("FLOWMETER_AUTH_DISABLED").unwrap_err().to_string();
        assert!(err.contains("FLOWMETER_AUTH_DISABLED"));
    }

    #[test]
    fn password_is_redacted() {
        assert_eq!(
            redact_url("postgres://me:secret@db:5432/x"),
            "postgres://me:***@db:5432/x"
        );
        assert_eq!(redact_url("postgres://me@db/x"), "postgres://me@db/x");
    }
}

/// Features that can be switched off at run time (SPEC §5 kill switches).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Feature {
    /// `POST /v1/events`.
    Ingest,
    /// `/v1/metrics/alerts` and acknowledgement.
    Alerts,
    /// `/v1/metrics/actions`.
    Actions,
    /// The milestone forecast (`/v1/metrics/health`).
    Forecast,
    /// `/v1/metrics/drilldown`.
    Drilldown,
}

impl Feature {
    /// Every feature.
    pub const ALL: [Feature; 5] = [
        Feature::Ingest,
        Feature::Alerts,
        Feature::Actions,
        Feature::Forecast,
        Feature::Drilldown,
    ];

    /// The configured name.
    pub fn as_str(self) -> &'static str {
        match self {
            Feature::Ingest => "ingest",
            Feature::Alerts => "alerts",
            Feature::Actions => "actions",
            Feature::Forecast => "forecast",
            Feature::Drilldown => "drilldown",
        }
    }
}

/// The switched-off features of `FLOWMETER_DISABLED_FEATURES` (the API answers 503 for
/// them; the worker skips their work).
pub fn disabled_features(env: &Env) -> Result<Vec<Feature>, ConfigError> {
    let Some(raw) = env.raw("FLOWMETER_DISABLED_FEATURES") else {
        return Ok(Vec::new());
    };
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|name| {
            Feature::ALL
                .into_iter()
                .find(|f| f.as_str() == name)
                .ok_or_else(|| ConfigError::Invalid {
                    name: "FLOWMETER_DISABLED_FEATURES",
                    value: raw.to_owned(),
                    message: format!(
                        "unknown feature {name:?}; expected a comma list of ingest, alerts, actions, forecast, drilldown"
                    ),
                })
        })
        .collect()
}

/// The environments whose deployments count as production in the DORA metrics
/// (`FLOWMETER_PRODUCTION_ENVIRONMENTS`, comma-separated, default `production,prod`).
pub fn production_environments(env: &Env) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.raw("FLOWMETER_PRODUCTION_ENVIRONMENTS") else {
        return Ok(crate::metrics::dora::DEFAULT_PRODUCTION_ENVIRONMENTS
            .map(str::to_owned)
            .to_vec());
    };
    let names: Vec<String> = raw
        .split(',')
        .map(|name| name.trim().to_owned())
        .filter(|name| !name.is_empty())
        .collect();
    if names
        .iter()
        .any(|name| name.len() > crate::events::MAX_ID_LEN)
    {
        return Err(ConfigError::Invalid {
            name: "FLOWMETER_PRODUCTION_ENVIRONMENTS",
            value: raw.to_owned(),
            message: format!(
                "each name must be at most {} characters",
                crate::events::MAX_ID_LEN
            ),
        });
    }
    Ok(names)
}
