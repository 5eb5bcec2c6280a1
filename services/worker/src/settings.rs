//! The worker's configuration, read from `FLOWMETER_*` variables.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use flowmeter_shared::alerts::AlertRules;
use flowmeter_shared::config::{self, ConfigError, DatabaseSettings, Env, Feature};
use flowmeter_shared::telemetry::LogFormat;

/// What to do with an event the fold cannot apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnPoison {
    /// Set it aside in `metrics_event_quarantine` and move on (the default).
    Quarantine,
    /// Stop folding the project until an operator acts.
    Halt,
}

impl FromStr for OnPoison {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "quarantine" => Ok(Self::Quarantine),
            "halt" => Ok(Self::Halt),
            other => Err(format!(
                "unknown policy {other:?}; expected quarantine or halt"
            )),
        }
    }
}

/// Where "now" comes from. Snapshots are taken as of this clock.
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    /// The system clock.
    System,
    /// A fixed instant (tests; `FLOWMETER_TEST_NOW` in builds with the `test-hooks` feature).
    Fixed(DateTime<Utc>),
}

impl Clock {
    /// The current instant, truncated to microseconds (PostgreSQL's precision), so a stored
    /// `captured_at` reads back equal.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => {
                let now = Utc::now();
                DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now)
            }
            Clock::Fixed(at) => *at,
        }
    }
}

/// A validated cron schedule (6 or 7 fields, seconds first).
#[derive(Debug, Clone)]
pub struct CronSchedule {
    /// The expression as configured.
    pub expression: String,
    /// The parsed schedule.
    pub schedule: cron::Schedule,
}

fn cron_schedule(
    env: &Env,
    name: &'static str,
    default: &str,
) -> Result<CronSchedule, ConfigError> {
    let expression = env.raw(name).unwrap_or(default).trim().to_owned();
    let fields = expression.split_whitespace().count();
    let invalid = |message: String| ConfigError::Invalid {
        name,
        value: expression.clone(),
        message,
    };
    if !(6..=7).contains(&fields) {
        return Err(invalid(format!(
            "a cron expression needs 6 or 7 fields with seconds first (e.g. \"*/30 * * * * *\"); got {fields}"
        )));
    }
    let schedule = cron::Schedule::from_str(&expression).map_err(|e| invalid(e.to_string()))?;
    Ok(CronSchedule {
        expression,
        schedule,
    })
}

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
    /// Near-real-time schedule (`FLOWMETER_NRT_SCHEDULE`).
    pub nrt_schedule: CronSchedule,
    /// Batch schedule (`FLOWMETER_BATCH_SCHEDULE`).
    pub batch_schedule: CronSchedule,
    /// Lease length (`FLOWMETER_LEASE_SECONDS`).
    pub lease_seconds: i64,
    /// Poison policy (`FLOWMETER_ON_POISON`).
    pub on_poison: OnPoison,
    /// Days of trend, breakdown and drill-down history kept (`FLOWMETER_RETENTION_DAYS`).
    pub retention_days: i64,
    /// Most events per near-real-time run (`FLOWMETER_NRT_MAX_EVENTS`).
    pub nrt_max_events: i64,
    /// Most events per batch or catch-up run (`FLOWMETER_BATCH_MAX_EVENTS`).
    pub batch_max_events: i64,
    /// While catching up, a snapshot at least this often (`FLOWMETER_SNAPSHOT_INTERVAL_MS`).
    pub snapshot_interval: Duration,
    /// Projects folded at the same time by one worker (`FLOWMETER_WORKER_CONCURRENCY`).
    pub concurrency: usize,
    /// Projects whose fold state stays in memory between runs (`FLOWMETER_WORKER_STATE_CACHE`).
    pub state_cache: usize,
    /// Where "now" comes from.
    pub clock: Clock,
    /// Accepted range of `occurred_at` for `import` (`FLOWMETER_EARLIEST_EVENT_TIME`,
    /// `FLOWMETER_MAX_FUTURE_SECONDS`), the same as ingest's.
    pub event_time_bounds: flowmeter_shared::events::TimeBounds,
    /// Sleep before each fold commit (`FLOWMETER_TEST_FOLD_DELAY_MS`, `test-hooks` builds only).
    pub test_fold_delay: Duration,
    /// Alert rules (`FLOWMETER_ALERT_RULES`, else the bundled `alerts/thresholds.toml`).
    pub alert_rules: AlertRules,
    /// Where firing and resolved notifications go (`FLOWMETER_ALERT_WEBHOOK_URL`).
    pub alert_webhook_url: Option<String>,
    /// Alertmanagers' base URLs (`FLOWMETER_ALERTMANAGER_URLS`), without trailing slashes.
    pub alertmanager_urls: Vec<String>,
    /// How often firing alerts are posted again (`FLOWMETER_ALERTMANAGER_RESEND_SECONDS`).
    pub alertmanager_resend: Duration,
    /// Base of the links to alerts and runbook sections in Alertmanager annotations
    /// (`FLOWMETER_PUBLIC_URL`, `FLOWMETER_RUNBOOK_URL`).
    pub alert_links: flowmeter_shared::db::alerts::alertmanager::Links,
    /// Switched-off features (`FLOWMETER_DISABLED_FEATURES`): alerts and actions are not
    /// evaluated while off.
    pub disabled_features: Vec<Feature>,
    /// Projects with their own `flowmeter_project_metric` labels
    /// (`FLOWMETER_METRICS_MAX_PROJECTS`); the rest share `project="other"`.
    pub metrics_max_projects: usize,
    /// Environments counted as production in the DORA keys
    /// (`FLOWMETER_PRODUCTION_ENVIRONMENTS`), checked here at start-up; the fold reads the
    /// same variable through `fold::dora::production`.
    pub production_environments: Vec<String>,
}

impl WorkerSettings {
    /// True unless `feature` is switched off.
    pub fn enabled(&self, feature: Feature) -> bool {
        !self.disabled_features.contains(&feature)
    }
}

fn alert_rules(env: &Env) -> Result<AlertRules, ConfigError> {
    let Some(path) = env.raw("FLOWMETER_ALERT_RULES") else {
        return Ok(AlertRules::defaults());
    };
    let invalid = |message: String| ConfigError::Invalid {
        name: "FLOWMETER_ALERT_RULES",
        value: path.to_owned(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| invalid(format!("cannot read: {e}")))?;
    AlertRules::parse(&text).map_err(|e| invalid(e.to_string()))
}

fn webhook_url(env: &Env) -> Result<Option<String>, ConfigError> {
    let Some(url) = env.raw("FLOWMETER_ALERT_WEBHOOK_URL").map(str::trim) else {
        return Ok(None);
    };
    if url.is_empty() {
        return Ok(None);
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "http" && parsed.host().is_some() => Ok(Some(url.to_owned())),
        Ok(_) => Err(ConfigError::Invalid {
            name: "FLOWMETER_ALERT_WEBHOOK_URL",
            value: url.to_owned(),
            message: "expected an http:// URL of a receiver on the internal network (terminate TLS in a relay in front of remote receivers)".into(),
        }),
        Err(e) => Err(ConfigError::Invalid {
            name: "FLOWMETER_ALERT_WEBHOOK_URL",
            value: url.to_owned(),
            message: e.to_string(),
        }),
    }
}

/// An `http://` URL (the worker's HTTP client has no TLS: remote receivers sit behind a
/// relay on the internal network), without a trailing slash.
fn http_url(name: &'static str, url: &str) -> Result<String, ConfigError> {
    let invalid = |message: String| ConfigError::Invalid {
        name,
        value: url.to_owned(),
        message,
    };
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "http" && parsed.host().is_some() => {
            Ok(url.trim_end_matches('/').to_owned())
        }
        Ok(_) => Err(invalid(
            "expected an http:// URL on the internal network (terminate TLS in a relay in front of remote services)".into(),
        )),
        Err(e) => Err(invalid(e.to_string())),
    }
}

fn alertmanager_urls(env: &Env) -> Result<Vec<String>, ConfigError> {
    let Some(list) = env.raw("FLOWMETER_ALERTMANAGER_URLS") else {
        return Ok(Vec::new());
    };
    let mut urls = Vec::new();
    for url in list.split(',').map(str::trim).filter(|u| !u.is_empty()) {
        let url = http_url("FLOWMETER_ALERTMANAGER_URLS", url)?;
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    Ok(urls)
}

fn alert_links(
    env: &Env,
) -> Result<flowmeter_shared::db::alerts::alertmanager::Links, ConfigError> {
    let public_url = env
        .raw("FLOWMETER_PUBLIC_URL")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or("http://127.0.0.1:8080");
    let public_url = match reqwest::Url::parse(public_url) {
        Ok(parsed) if matches!(parsed.scheme(), "http" | "https") && parsed.host().is_some() => {
            public_url.trim_end_matches('/').to_owned()
        }
        _ => {
            return Err(ConfigError::Invalid {
                name: "FLOWMETER_PUBLIC_URL",
                value: public_url.to_owned(),
                message: "expected the dashboard's http:// or https:// base URL".into(),
            })
        }
    };
    let runbook_url = env
        .raw("FLOWMETER_RUNBOOK_URL")
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .unwrap_or("docs/RUNBOOK.md")
        .split('#')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(flowmeter_shared::db::alerts::alertmanager::Links {
        public_url,
        runbook_url,
    })
}

impl WorkerSettings {
    /// Reads and validates the worker's variables.
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let (clock, test_fold_delay) = test_hooks(env)?;
        Ok(Self {
            database: DatabaseSettings::from_env(env, 6)?,
            metrics_addr: config::socket_addr(
                env,
                "FLOWMETER_WORKER_METRICS_ADDR",
                "127.0.0.1:9108",
            )?,
            migrations_dir: config::optional_path(env, "FLOWMETER_MIGRATIONS_DIR"),
            log_format: env.parse_or("FLOWMETER_LOG_FORMAT", LogFormat::Text)?,
            nrt_schedule: cron_schedule(env, "FLOWMETER_NRT_SCHEDULE", "*/30 * * * * *")?,
            batch_schedule: cron_schedule(env, "FLOWMETER_BATCH_SCHEDULE", "0 */15 * * * *")?,
            lease_seconds: env.int_in_range("FLOWMETER_LEASE_SECONDS", 60, 1, 3600)? as i64,
            on_poison: env.parse_or("FLOWMETER_ON_POISON", OnPoison::Quarantine)?,
            retention_days: env.int_in_range("FLOWMETER_RETENTION_DAYS", 90, 1, 36_500)? as i64,
            nrt_max_events: env.int_in_range("FLOWMETER_NRT_MAX_EVENTS", 500, 1, 1_000_000)? as i64,
            batch_max_events: env.int_in_range(
                "FLOWMETER_BATCH_MAX_EVENTS",
                10_000,
                1,
                1_000_000,
            )? as i64,
            snapshot_interval: Duration::from_millis(env.int_in_range(
                "FLOWMETER_SNAPSHOT_INTERVAL_MS",
                5_000,
                0,
                3_600_000,
            )?),
            concurrency: env.int_in_range("FLOWMETER_WORKER_CONCURRENCY", 2, 1, 64)? as usize,
            state_cache: env.int_in_range("FLOWMETER_WORKER_STATE_CACHE", 2, 0, 10_000)? as usize,
            clock,
            event_time_bounds: flowmeter_shared::events::TimeBounds::from_env(env)?,
            test_fold_delay,
            alert_rules: alert_rules(env)?,
            alert_webhook_url: webhook_url(env)?,
            alertmanager_urls: alertmanager_urls(env)?,
            alertmanager_resend: Duration::from_secs(env.int_in_range(
                "FLOWMETER_ALERTMANAGER_RESEND_SECONDS",
                60,
                1,
                86_400,
            )?),
            alert_links: alert_links(env)?,
            disabled_features: config::disabled_features(env)?,
            metrics_max_projects: env.int_in_range(
                "FLOWMETER_METRICS_MAX_PROJECTS",
                50,
                1,
                10_000,
            )? as usize,
            production_environments: config::production_environments(env)?,
        })
    }
}

#[cfg(feature = "test-hooks")]
fn test_hooks(env: &Env) -> Result<(Clock, Duration), ConfigError> {
    let clock = match env.raw("FLOWMETER_TEST_NOW") {
        None => Clock::System,
        Some(text) => Clock::Fixed(
            DateTime::parse_from_rfc3339(text)
                .map_err(|e| ConfigError::Invalid {
                    name: "FLOWMETER_TEST_NOW",
                    value: text.to_owned(),
                    message: e.to_string(),
                })?
                .with_timezone(&Utc),
        ),
    };
    let delay = env.int_in_range("FLOWMETER_TEST_FOLD_DELAY_MS", 0, 0, 600_000)?;
    Ok((clock, Duration::from_millis(delay)))
}

#[cfg(not(feature = "test-hooks"))]
fn test_hooks(_: &Env) -> Result<(Clock, Duration), ConfigError> {
    Ok((Clock::System, Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Env {
        Env::from_pairs([("FLOWMETER_DATABASE_URL", "postgres://u@127.0.0.1:5432/x")])
    }

    #[test]
    fn defaults_match_the_spec() {
        let s = WorkerSettings::from_env(&base()).unwrap();
        assert_eq!(s.nrt_schedule.expression, "*/30 * * * * *");
        assert_eq!(s.batch_schedule.expression, "0 */15 * * * *");
        assert_eq!((s.nrt_max_events, s.batch_max_events), (500, 10_000));
        assert_eq!(s.lease_seconds, 60);
        assert_eq!(s.retention_days, 90);
    }

    #[test]
    fn a_five_field_crontab_line_is_refused_with_the_variable_name() {
        let err = WorkerSettings::from_env(&base().set("FLOWMETER_NRT_SCHEDULE", "*/5 * * * *"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("FLOWMETER_NRT_SCHEDULE") && err.contains("6 or 7 fields"),
            "{err}"
        );
        let err = WorkerSettings::from_env(&base().set("FLOWMETER_BATCH_SCHEDULE", "0 0 25 * * *"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLOWMETER_BATCH_SCHEDULE"), "{err}");
    }

    #[test]
    fn an_invalid_alert_rule_file_is_refused_naming_the_rule_and_field() {
        let dir = std::env::temp_dir().join(format!("flowmeter-rules-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("rules.toml");
        std::fs::write(
            &path,
            "[[rule]]\nmetric_key = \"DPI\"\ndirection = \"sideways\"\nwarning = 65\n",
        )
        .unwrap();
        let err =
            WorkerSettings::from_env(&base().set("FLOWMETER_ALERT_RULES", path.to_str().unwrap()))
                .unwrap_err()
                .to_string();
        assert!(
            err.contains("FLOWMETER_ALERT_RULES")
                && err.contains("alert rule #1 (DPI)")
                && err.contains("`direction`"),
            "{err}"
        );
        let err =
            WorkerSettings::from_env(&base().set("FLOWMETER_ALERT_RULES", "/nonexistent.toml"))
                .unwrap_err()
                .to_string();
        assert!(err.contains("cannot read"), "{err}");
        let defaults = WorkerSettings::from_env(&base()).unwrap();
        assert_eq!(defaults.alert_rules.thresholds.len(), 8);
    }

    #[test]
    fn the_webhook_url_must_be_http() {
        for bad in ["ftp://x", "not a url", "https://hooks.example.com/x"] {
            let err = WorkerSettings::from_env(&base().set("FLOWMETER_ALERT_WEBHOOK_URL", bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains("FLOWMETER_ALERT_WEBHOOK_URL"), "{err}");
        }
        let ok = WorkerSettings::from_env(
            &base().set("FLOWMETER_ALERT_WEBHOOK_URL", "http://127.0.0.1:9093/hook"),
        )
        .unwrap();
        assert_eq!(
            ok.alert_webhook_url.as_deref(),
            Some("http://127.0.0.1:9093/hook")
        );
    }

    #[test]
    fn alertmanager_urls_are_a_comma_list_of_http_urls() {
        let s = WorkerSettings::from_env(&base()).unwrap();
        assert!(s.alertmanager_urls.is_empty());
        assert_eq!(s.alertmanager_resend, Duration::from_secs(60));
        assert_eq!(s.alert_links.public_url, "http://127.0.0.1:8080");
        let s = WorkerSettings::from_env(
            &base()
                .set(
                    "FLOWMETER_ALERTMANAGER_URLS",
                    " http://am1:9093/, http://am2:9093,,http://am1:9093",
                )
                .set("FLOWMETER_ALERTMANAGER_RESEND_SECONDS", "5")
                .set("FLOWMETER_PUBLIC_URL", "https://flowmeter.example.com/"),
        )
        .unwrap();
        assert_eq!(s.alertmanager_urls, ["http://am1:9093", "http://am2:9093"]);
        assert_eq!(s.alertmanager_resend, Duration::from_secs(5));
        assert_eq!(s.alert_links.public_url, "https://flowmeter.example.com");
        for (name, bad) in [
            (
                "FLOWMETER_ALERTMANAGER_URLS",
                "http://ok:9093,https://tls:9093",
            ),
            ("FLOWMETER_ALERTMANAGER_RESEND_SECONDS", "0"),
            ("FLOWMETER_PUBLIC_URL", "not a url"),
        ] {
            let err = WorkerSettings::from_env(&base().set(name, bad))
                .unwrap_err()
                .to_string();
            assert!(err.contains(name), "{err}");
        }
    }

    #[test]
    fn an_unknown_poison_policy_is_refused() {
        let err = WorkerSettings::from_env(&base().set("FLOWMETER_ON_POISON", "ignore"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("FLOWMETER_ON_POISON"));
    }
}
