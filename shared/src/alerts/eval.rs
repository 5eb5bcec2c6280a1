//! The alert lifecycle as pure functions: given a rule, the value a snapshot produced and
//! what was known before, decide what changes. The worker stores the outcome in the same
//! transaction as the snapshot.

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use super::rules::{AnomalySettings, Severity, ThresholdRule};
use crate::metrics::stats::{mean, population_std_dev};

/// The open (firing) alert of a rule, if any.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OpenAlert {
    /// The alert's id.
    pub id: Uuid,
    /// Its current severity.
    pub severity: Severity,
}

/// What is known about one (project, rule) before an evaluation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Prior {
    /// Start of the current breach while it waits out the rule's `for`.
    pub pending_since: Option<DateTime<Utc>>,
    /// The firing alert.
    pub open: Option<OpenAlert>,
}

/// What an evaluation changes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Change {
    /// Nothing (the open alert, if any, only gets the new value).
    Nothing,
    /// A new alert fires.
    Open {
        /// Its severity.
        severity: Severity,
        /// The level breached.
        threshold: f64,
    },
    /// The open alert changes severity.
    Severity {
        /// The new severity.
        severity: Severity,
        /// The level that goes with it.
        threshold: f64,
    },
    /// The open alert resolves.
    Resolve,
}

/// The outcome of one evaluation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// The pending state to keep.
    pub pending_since: Option<DateTime<Utc>>,
    /// The change to the alert.
    pub change: Change,
}

/// Evaluates a threshold rule against the value of the snapshot taken at `now`.
///
/// - Missing data (`None`) changes nothing: it never resolves, fires or advances pending.
/// - Without an open alert, a breach waits `for` (since the first breaching snapshot)
///   before it fires at the most severe level breached.
/// - An open alert resolves once the value is no longer beyond the clear level; until
///   then its severity follows the most severe level breached (the least severe level
///   while the value sits between that level and the clear level).
pub fn evaluate_threshold(
    rule: &ThresholdRule,
    value: Option<f64>,
    now: DateTime<Utc>,
    prior: Prior,
) -> Verdict {
    let Some(value) = value else {
        return Verdict {
            pending_since: prior.pending_since,
            change: Change::Nothing,
        };
    };
    if let Some(open) = prior.open {
        if !rule.still_beyond_clear(value) {
            return Verdict {
                pending_since: None,
                change: Change::Resolve,
            };
        }
        let (severity, threshold) = rule.breached(value).unwrap_or_else(|| rule.first_level());
        let change = if severity == open.severity {
            Change::Nothing
        } else {
            Change::Severity {
                severity,
                threshold,
            }
        };
        return Verdict {
            pending_since: None,
            change,
        };
    }
    match rule.breached(value) {
        None => Verdict {
            pending_since: None,
            change: Change::Nothing,
        },
        Some((severity, threshold)) => {
            let since = prior.pending_since.unwrap_or(now);
            if now - since >= rule.pending_for {
                Verdict {
                    pending_since: None,
                    change: Change::Open {
                        severity,
                        threshold,
                    },
                }
            } else {
                Verdict {
                    pending_since: Some(since),
                    change: Change::Nothing,
                }
            }
        }
    }
}

/// How far the current value lies from its baseline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AnomalyReading {
    /// |current − mean| / σ.
    pub z: f64,
    /// Mean of the baseline.
    pub mean: f64,
    /// Population standard deviation of the baseline.
    pub sigma: f64,
    /// Baseline values used.
    pub points: usize,
}

/// The z-score of `current` against `baseline`; `None` (no evaluation) with fewer than
/// `min_points` values or σ = 0.
pub fn anomaly_reading(
    current: f64,
    baseline: &[f64],
    min_points: usize,
) -> Option<AnomalyReading> {
    if baseline.len() < min_points {
        return None;
    }
    let mean = mean(baseline)?;
    let sigma = population_std_dev(baseline)?;
    if sigma == 0.0 || !sigma.is_finite() {
        return None;
    }
    Some(AnomalyReading {
        z: (current - mean).abs() / sigma,
        mean,
        sigma,
        points: baseline.len(),
    })
}

/// Evaluates an anomaly rule: z above the threshold fires a warning, back at or below it
/// resolves; no evaluation (missing current value, too few points, σ = 0) changes nothing.
pub fn evaluate_anomaly(
    settings: &AnomalySettings,
    current: Option<f64>,
    baseline: &[f64],
    open: Option<OpenAlert>,
) -> (Change, Option<AnomalyReading>) {
    let Some(reading) = current.and_then(|c| anomaly_reading(c, baseline, settings.min_points))
    else {
        return (Change::Nothing, None);
    };
    let anomalous = reading.z > settings.z_threshold;
    let change = match (anomalous, open) {
        (true, None) => Change::Open {
            severity: Severity::Warning,
            threshold: settings.z_threshold,
        },
        (false, Some(_)) => Change::Resolve,
        _ => Change::Nothing,
    };
    (change, Some(reading))
}

#[cfg(test)]
#[path = "eval_tests.rs"]
mod tests;
