use chrono::{Duration, TimeZone};

use super::*;
use crate::alerts::rules::{AlertRules, Direction};

fn at(minutes: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap() + Duration::minutes(minutes)
}

fn rule(key: &str) -> ThresholdRule {
    AlertRules::defaults()
        .thresholds
        .into_iter()
        .find(|r| r.metric_key == key)
        .unwrap()
}

fn open(severity: Severity) -> Prior {
    Prior {
        pending_since: None,
        open: Some(OpenAlert {
            id: Uuid::nil(),
            severity,
        }),
    }
}

/// What a fresh evaluation (nothing open) does with `value`.
fn fires(rule: &ThresholdRule, value: f64) -> Option<Severity> {
    match evaluate_threshold(rule, Some(value), at(0), Prior::default()).change {
        Change::Open { severity, .. } => Some(severity),
        Change::Nothing => None,
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn every_default_rule_fires_each_severity_just_beyond_its_level_and_not_at_it() {
    use Severity::*;
    // (rule, [warning, critical, emergency], a step smaller than any gap)
    let table = [
        ("DPI", [65.0, 50.0, 35.0], 0.01),
        ("FES", [30.0, 20.0, 10.0], 0.01),
        ("IRS", [75.0, 60.0, 45.0], 0.01),
        ("lead_time_p90", [240.0, 336.0, 504.0], 0.01),
        ("blocked_ratio", [0.15, 0.25, 0.40], 0.0001),
        ("ini_backlog", [10.0, 20.0, 40.0], 1.0),
    ];
    for (key, levels, step) in table {
        let rule = rule(key);
        let out = if rule.direction == Direction::Below {
            -step
        } else {
            step
        };
        let [warning, critical, emergency] = levels;
        assert_eq!(fires(&rule, warning), None, "{key} exactly at warning");
        assert_eq!(fires(&rule, warning - out), None, "{key} inside");
        assert_eq!(fires(&rule, warning + out), Some(Warning), "{key}");
        assert_eq!(
            fires(&rule, critical),
            Some(Warning),
            "{key} exactly at critical"
        );
        assert_eq!(fires(&rule, critical + out), Some(Critical), "{key}");
        assert_eq!(
            fires(&rule, emergency),
            Some(Critical),
            "{key} exactly at emergency"
        );
        assert_eq!(fires(&rule, emergency + out), Some(Emergency), "{key}");
        assert_eq!(
            fires(&rule, emergency + 100.0 * out),
            Some(Emergency),
            "{key} far out"
        );
    }
}

#[test]
fn an_open_alert_escalates_and_deescalates_with_the_value_and_resolves_at_clear() {
    let rule = rule("DPI");
    let step = |prior, value| evaluate_threshold(&rule, Some(value), at(0), prior).change;
    assert_eq!(
        step(open(Severity::Warning), 40.0),
        Change::Severity {
            severity: Severity::Critical,
            threshold: 50.0
        }
    );
    assert_eq!(
        step(open(Severity::Critical), 34.0),
        Change::Severity {
            severity: Severity::Emergency,
            threshold: 35.0
        }
    );
    assert_eq!(
        step(open(Severity::Emergency), 60.0),
        Change::Severity {
            severity: Severity::Warning,
            threshold: 65.0
        }
    );
    assert_eq!(step(open(Severity::Warning), 64.9), Change::Nothing);
    assert_eq!(
        step(open(Severity::Warning), 65.0),
        Change::Resolve,
        "at clear"
    );
    assert_eq!(step(open(Severity::Critical), 90.0), Change::Resolve);
}

#[test]
fn with_a_clear_level_a_value_oscillating_around_warning_fires_once() {
    let mut rule = rule("DPI");
    rule.clear = 70.0;
    let mut prior = Prior::default();
    let mut opened = 0;
    let mut resolved = 0;
    for (i, value) in [66.0, 64.0, 66.0, 64.5, 67.0, 63.0, 69.9, 64.0]
        .into_iter()
        .enumerate()
    {
        let verdict = evaluate_threshold(&rule, Some(value), at(i as i64), prior);
        match verdict.change {
            Change::Open { severity, .. } => {
                assert_eq!(severity, Severity::Warning);
                opened += 1;
                prior.open = Some(OpenAlert {
                    id: Uuid::nil(),
                    severity,
                });
            }
            Change::Resolve => {
                resolved += 1;
                prior.open = None;
            }
            Change::Severity { .. } => panic!("stays a warning"),
            Change::Nothing => {}
        }
        prior.pending_since = verdict.pending_since;
    }
    assert_eq!((opened, resolved), (1, 0));
    // Back past the clear level resolves.
    let verdict = evaluate_threshold(&rule, Some(70.0), at(9), prior);
    assert_eq!(verdict.change, Change::Resolve);
}

#[test]
fn without_a_clear_level_each_crossing_fires_and_resolves() {
    let rule = rule("DPI");
    let mut prior = Prior::default();
    let mut changes = Vec::new();
    for (i, value) in [66.0, 64.0, 66.0, 64.0].into_iter().enumerate() {
        let verdict = evaluate_threshold(&rule, Some(value), at(i as i64), prior);
        match verdict.change {
            Change::Open { severity, .. } => {
                prior.open = Some(OpenAlert {
                    id: Uuid::nil(),
                    severity,
                })
            }
            Change::Resolve => prior.open = None,
            _ => {}
        }
        changes.push(verdict.change);
    }
    assert_eq!(
        changes,
        vec![
            Change::Nothing,
            Change::Open {
                severity: Severity::Warning,
                threshold: 65.0
            },
            Change::Resolve,
            Change::Open {
                severity: Severity::Warning,
                threshold: 65.0
            },
        ]
    );
}

#[test]
fn missing_data_never_resolves_fires_or_advances_pending() {
    let rule = rule("IRS");
    for severity in Severity::ALL {
        let verdict = evaluate_threshold(&rule, None, at(0), open(severity));
        assert_eq!(verdict.change, Change::Nothing);
    }
    let pending = Prior {
        pending_since: Some(at(-30)),
        open: None,
    };
    let verdict = evaluate_threshold(&rule, None, at(0), pending);
    assert_eq!(
        verdict,
        Verdict {
            pending_since: Some(at(-30)),
            change: Change::Nothing
        }
    );
}

#[test]
fn a_for_duration_keeps_a_breach_pending_until_it_has_lasted_that_long() {
    let mut rule = rule("ini_backlog");
    rule.pending_for = Duration::minutes(15);
    let first = evaluate_threshold(&rule, Some(25.0), at(0), Prior::default());
    assert_eq!(
        first,
        Verdict {
            pending_since: Some(at(0)),
            change: Change::Nothing
        }
    );
    let prior = Prior {
        pending_since: first.pending_since,
        open: None,
    };
    let still = evaluate_threshold(&rule, Some(12.0), at(14), prior);
    assert_eq!(
        still.pending_since,
        Some(at(0)),
        "a lesser breach keeps the clock"
    );
    assert_eq!(still.change, Change::Nothing);
    let fired = evaluate_threshold(&rule, Some(25.0), at(15), prior);
    assert_eq!(
        fired,
        Verdict {
            pending_since: None,
            change: Change::Open {
                severity: Severity::Critical,
                threshold: 20.0
            }
        }
    );
    // A healthy value in between restarts the wait.
    let healed = evaluate_threshold(&rule, Some(10.0), at(10), prior);
    assert_eq!(
        healed,
        Verdict {
            pending_since: None,
            change: Change::Nothing
        }
    );
}

#[test]
fn anomaly_fires_on_a_spike_over_a_steady_series_and_resolves_when_back() {
    let settings = AnomalySettings::default();
    // Alternating 10 and 12: mean 11, σ 1.
    let baseline: Vec<f64> = (0..14)
        .map(|i| if i % 2 == 0 { 10.0 } else { 12.0 })
        .collect();
    let (change, reading) = evaluate_anomaly(&settings, Some(14.5), &baseline, None);
    let reading = reading.unwrap();
    assert_eq!(
        (reading.mean, reading.sigma, reading.points),
        (11.0, 1.0, 14)
    );
    assert!((reading.z - 3.5).abs() < 1e-12);
    assert_eq!(
        change,
        Change::Open {
            severity: Severity::Warning,
            threshold: 3.0
        }
    );
    // z exactly 3 is no anomaly.
    assert_eq!(
        evaluate_anomaly(&settings, Some(14.0), &baseline, None).0,
        Change::Nothing
    );
    let open = Some(OpenAlert {
        id: Uuid::nil(),
        severity: Severity::Warning,
    });
    assert_eq!(
        evaluate_anomaly(&settings, Some(20.0), &baseline, open).0,
        Change::Nothing
    );
    assert_eq!(
        evaluate_anomaly(&settings, Some(11.0), &baseline, open).0,
        Change::Resolve
    );
}

#[test]
fn anomaly_needs_seven_points_and_a_nonzero_sigma() {
    let settings = AnomalySettings::default();
    let six = [10.0, 12.0, 10.0, 12.0, 10.0, 12.0];
    assert_eq!(
        evaluate_anomaly(&settings, Some(100.0), &six, None),
        (Change::Nothing, None)
    );
    let seven = [10.0, 12.0, 10.0, 12.0, 10.0, 12.0, 11.0];
    assert!(matches!(
        evaluate_anomaly(&settings, Some(100.0), &seven, None).0,
        Change::Open { .. }
    ));
    let flat = [5.0; 14];
    assert_eq!(
        evaluate_anomaly(&settings, Some(100.0), &flat, None),
        (Change::Nothing, None)
    );
    let open = Some(OpenAlert {
        id: Uuid::nil(),
        severity: Severity::Warning,
    });
    assert_eq!(
        evaluate_anomaly(&settings, None, &seven, open),
        (Change::Nothing, None),
        "missing data keeps an anomaly open"
    );
}
