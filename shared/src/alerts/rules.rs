//! The alert rule file (`alerts/thresholds.toml`): parsing and validation.
//!
//! A file that cannot be used stops the worker at start-up with the rule and the field
//! named, so a typo never silently disables an alert.

use std::fmt;

use chrono::TimeDelta;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::metrics::{compute_summary, ProjectFacts};

/// The rules compiled into the binary (the repository's `alerts/thresholds.toml`).
pub const DEFAULT_RULES: &str = include_str!("../../../alerts/thresholds.toml");

/// Short metric names of SPEC §5 and the summary path each maps onto, with a divisor that
/// converts the stored unit into the rule's unit (`lead_time_p90` is in hours).
const SHORT_NAMES: [(&str, &str, f64); 8] = [
    ("DPI", "north_star.delivery_predictability_index.value", 1.0),
    ("FES", "north_star.flow_efficiency_score.value", 1.0),
    ("IRS", "north_star.integration_reliability_score.value", 1.0),
    ("lead_time_p90", "operational.lead_time.p90_minutes", 60.0),
    ("blocked_ratio", "operational.blocked.ratio", 1.0),
    (
        "ini_backlog",
        "operational.backlog.implemented_not_integrated",
        1.0,
    ),
    ("change_failure_rate", "dora.change_failure_rate.rate", 1.0),
    (
        "time_to_restore_hours",
        "dora.time_to_restore.p50_minutes",
        60.0,
    ),
];

/// Metrics anomaly detection accepts: the three scores and daily throughput.
pub const ANOMALY_METRICS: [&str; 4] = ["DPI", "FES", "IRS", "throughput"];

/// Which side of a level is a breach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Breached when the value is above the level.
    Above,
    /// Breached when the value is below the level.
    Below,
}

impl Direction {
    /// True when `value` lies strictly beyond `level` (exactly at the level is no breach).
    pub fn beyond(self, value: f64, level: f64) -> bool {
        match self {
            Direction::Above => value > level,
            Direction::Below => value < level,
        }
    }
}

/// Alert severities, least severe first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// The first level.
    Warning,
    /// The second level.
    Critical,
    /// The third level.
    Emergency,
}

impl Severity {
    /// Every severity, least severe first.
    pub const ALL: [Severity; 3] = [Severity::Warning, Severity::Critical, Severity::Emergency];

    /// The lower-case name used in rows, the API and labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
            Severity::Emergency => "emergency",
        }
    }

    /// Parses a stored or requested name.
    pub fn parse(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a rule reads its value from in the summary's `metrics` object.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSource {
    /// Path segments into the summary JSON.
    pub path: Vec<String>,
    /// The stored value is divided by this (minutes → hours for `lead_time_p90`).
    pub divisor: f64,
}

impl MetricSource {
    /// Resolves a short name or a dotted summary path.
    pub fn resolve(metric_key: &str) -> MetricSource {
        let (path, divisor) = SHORT_NAMES
            .iter()
            .find(|(short, _, _)| *short == metric_key)
            .map_or((metric_key, 1.0), |(_, path, divisor)| (*path, *divisor));
        MetricSource {
            path: path.split('.').map(str::to_owned).collect(),
            divisor,
        }
    }

    /// The value in a summary `metrics` object; `None` when it is null or absent (no data).
    pub fn value_in(&self, summary: &Value) -> Option<f64> {
        let mut node = summary;
        for segment in &self.path {
            node = node.get(segment)?;
        }
        node.as_f64().map(|v| v / self.divisor)
    }
}

/// One threshold rule, validated.
#[derive(Debug, Clone, PartialEq)]
pub struct ThresholdRule {
    /// The metric key alerts carry (a short name or a summary path).
    pub metric_key: String,
    /// Where the value comes from.
    pub source: MetricSource,
    /// Breach side.
    pub direction: Direction,
    /// Configured levels, least severe first.
    pub levels: Vec<(Severity, f64)>,
    /// The value a firing alert must get back past to resolve.
    pub clear: f64,
    /// How long a breach must last (between snapshots) before the alert fires.
    pub pending_for: TimeDelta,
}

impl ThresholdRule {
    /// The most severe level `value` is beyond, with that level.
    pub fn breached(&self, value: f64) -> Option<(Severity, f64)> {
        self.levels
            .iter()
            .rev()
            .find(|(_, level)| self.direction.beyond(value, *level))
            .copied()
    }

    /// True while a firing alert must stay open: the value is still beyond `clear`.
    pub fn still_beyond_clear(&self, value: f64) -> bool {
        self.direction.beyond(value, self.clear)
    }

    /// The least severe configured level (what an open alert between warning and clear
    /// reports).
    pub fn first_level(&self) -> (Severity, f64) {
        self.levels[0]
    }
}

/// Anomaly detection settings.
#[derive(Debug, Clone, PartialEq)]
pub struct AnomalySettings {
    /// Metrics evaluated (subset of [`ANOMALY_METRICS`]).
    pub metrics: Vec<String>,
    /// z above this fires.
    pub z_threshold: f64,
    /// Daily values before the current day that form the baseline.
    pub window_days: i64,
    /// Fewer baseline values than this: no evaluation.
    pub min_points: usize,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        AnomalySettings {
            metrics: ANOMALY_METRICS.iter().map(|m| (*m).to_owned()).collect(),
            z_threshold: 3.0,
            window_days: 14,
            min_points: 7,
        }
    }
}

/// Every rule of a rule file.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRules {
    /// Threshold rules, in file order; metric keys are unique.
    pub thresholds: Vec<ThresholdRule>,
    /// Anomaly detection.
    pub anomaly: AnomalySettings,
}

/// Why a rule file cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RulesError {
    /// Not valid TOML, or a value of the wrong type.
    #[error("alert rules: {0}")]
    Syntax(String),
    /// A rule breaks a rule of its own.
    #[error("alert rule #{index} ({metric_key}): field `{field}`: {message}")]
    Rule {
        /// 1-based position in the file.
        index: usize,
        /// The rule's metric key as written.
        metric_key: String,
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The `[anomaly]` table is wrong.
    #[error("alert rules: [anomaly] field `{field}`: {message}")]
    Anomaly {
        /// The offending field.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    rule: Vec<RawRule>,
    anomaly: Option<RawAnomaly>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    metric_key: String,
    direction: String,
    warning: Option<f64>,
    critical: Option<f64>,
    emergency: Option<f64>,
    clear: Option<f64>,
    #[serde(rename = "for")]
    pending_for: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAnomaly {
    metrics: Option<Vec<String>>,
    z_threshold: Option<f64>,
    window_days: Option<i64>,
    min_points: Option<usize>,
}

/// Parses a duration such as `0`, `90s`, `15m`, `2h` or `1d`.
pub fn parse_duration(text: &str) -> Option<TimeDelta> {
    let text = text.trim();
    if text == "0" {
        return Some(TimeDelta::zero());
    }
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(unit_at);
    let n: i64 = number.parse().ok()?;
    match unit {
        "s" => TimeDelta::try_seconds(n),
        "m" => TimeDelta::try_minutes(n),
        "h" => TimeDelta::try_hours(n),
        "d" => TimeDelta::try_days(n),
        _ => None,
    }
}

impl AlertRules {
    /// Parses and validates a rule file's text.
    pub fn parse(text: &str) -> Result<AlertRules, RulesError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| RulesError::Syntax(e.to_string()))?;
        // Every summary path a rule may name, taken from the summary's real shape.
        let shape = serde_json::to_value(compute_summary(
            &ProjectFacts::default(),
            chrono::DateTime::UNIX_EPOCH,
            None,
        ))
        .map_err(|e| RulesError::Syntax(e.to_string()))?;

        let mut thresholds: Vec<ThresholdRule> = Vec::new();
        for (i, rule) in raw.rule.into_iter().enumerate() {
            let fail = |field: &'static str, message: String| RulesError::Rule {
                index: i + 1,
                metric_key: rule.metric_key.clone(),
                field,
                message,
            };
            let source = MetricSource::resolve(&rule.metric_key);
            let mut node = &shape;
            for segment in &source.path {
                node = node.get(segment).ok_or_else(|| {
                    fail(
                        "metric_key",
                        format!(
                            "unknown metric; use one of {} or a path to a number in the summary (e.g. operational.wip.total_count)",
                            SHORT_NAMES.map(|(s, _, _)| s).join(", ")
                        ),
                    )
                })?;
            }
            if node.is_object() || node.is_array() || node.is_string() {
                return Err(fail(
                    "metric_key",
                    "names an object, list or text, not a number".into(),
                ));
            }
            if thresholds.iter().any(|r| r.metric_key == rule.metric_key) {
                return Err(fail(
                    "metric_key",
                    "a rule for this metric already exists".into(),
                ));
            }
            let direction = match rule.direction.as_str() {
                "above" => Direction::Above,
                "below" => Direction::Below,
                other => {
                    return Err(fail(
                        "direction",
                        format!("expected \"above\" or \"below\", got {other:?}"),
                    ))
                }
            };
            let levels: Vec<(Severity, f64)> = [
                (Severity::Warning, rule.warning),
                (Severity::Critical, rule.critical),
                (Severity::Emergency, rule.emergency),
            ]
            .into_iter()
            .filter_map(|(s, level)| level.map(|l| (s, l)))
            .collect();
            if levels.is_empty() {
                return Err(fail(
                    "warning",
                    "a rule needs at least one of warning, critical, emergency".into(),
                ));
            }
            for (s, level) in &levels {
                if !level.is_finite() {
                    return Err(fail(field_of(*s), "must be a finite number".into()));
                }
            }
            for pair in levels.windows(2) {
                let ((_, milder), (severe, level)) = (pair[0], pair[1]);
                if !direction.beyond(level, milder) {
                    let side = if direction == Direction::Below {
                        "below"
                    } else {
                        "above"
                    };
                    return Err(fail(
                        field_of(severe),
                        format!(
                            "{level} must lie {side} the less severe level {milder} for direction {side}"
                        ),
                    ));
                }
            }
            let first = levels[0].1;
            let clear = match rule.clear {
                None => first,
                Some(clear) if !clear.is_finite() => {
                    return Err(fail("clear", "must be a finite number".into()))
                }
                Some(clear) if direction.beyond(clear, first) => {
                    return Err(fail(
                        "clear",
                        format!("{clear} is itself a breach of the level {first}; a clear level lies on the healthy side of it"),
                    ))
                }
                Some(clear) => clear,
            };
            let pending_for = match rule.pending_for.as_deref() {
                None => TimeDelta::zero(),
                Some(text) => parse_duration(text).ok_or_else(|| {
                    fail(
                        "for",
                        format!(
                            "{text:?} is not a duration such as \"0s\", \"15m\", \"2h\", \"1d\""
                        ),
                    )
                })?,
            };
            thresholds.push(ThresholdRule {
                metric_key: rule.metric_key.clone(),
                source,
                direction,
                levels,
                clear,
                pending_for,
            });
        }

        let mut anomaly = AnomalySettings::default();
        if let Some(raw) = raw.anomaly {
            let fail = |field, message| RulesError::Anomaly { field, message };
            if let Some(metrics) = raw.metrics {
                for metric in &metrics {
                    if !ANOMALY_METRICS.contains(&metric.as_str()) {
                        return Err(fail(
                            "metrics",
                            format!(
                                "unknown metric {metric:?}; allowed: {}",
                                ANOMALY_METRICS.join(", ")
                            ),
                        ));
                    }
                }
                anomaly.metrics = metrics;
            }
            if let Some(z) = raw.z_threshold {
                if !(z.is_finite() && z > 0.0) {
                    return Err(fail("z_threshold", format!("must be above 0, got {z}")));
                }
                anomaly.z_threshold = z;
            }
            if let Some(days) = raw.window_days {
                if !(2..=90).contains(&days) {
                    return Err(fail("window_days", format!("must be 2–90, got {days}")));
                }
                anomaly.window_days = days;
            }
            if let Some(points) = raw.min_points {
                if points < 2 {
                    return Err(fail(
                        "min_points",
                        format!("must be at least 2, got {points}"),
                    ));
                }
                anomaly.min_points = points;
            }
            if anomaly.min_points as i64 > anomaly.window_days {
                return Err(fail(
                    "min_points",
                    format!(
                        "{} exceeds window_days {}",
                        anomaly.min_points, anomaly.window_days
                    ),
                ));
            }
        }
        Ok(AlertRules {
            thresholds,
            anomaly,
        })
    }

    /// The rules compiled into the binary.
    pub fn defaults() -> AlertRules {
        #[allow(clippy::expect_used)]
        AlertRules::parse(DEFAULT_RULES).expect("the bundled alerts/thresholds.toml is valid")
    }
}

fn field_of(severity: Severity) -> &'static str {
    severity.as_str()
}

#[cfg(test)]
#[path = "rules_tests.rs"]
mod tests;
