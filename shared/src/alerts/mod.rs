//! Alerts (SPEC §6): the rule file, and the lifecycle of threshold and anomaly alerts as
//! pure functions. Storage lives in [`crate::db::alerts`]; the worker evaluates after each
//! summary snapshot.

pub mod eval;
pub mod rules;

pub use eval::{evaluate_anomaly, evaluate_threshold, AnomalyReading, Change, OpenAlert, Prior};
pub use rules::{AlertRules, AnomalySettings, Direction, MetricSource, Severity, ThresholdRule};
