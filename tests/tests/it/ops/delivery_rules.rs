//! The Prometheus delivery rules repeat the levels of the service's own rule file (they act
//! on the business gauges); this keeps the two in step.

use flowmeter_shared::alerts::{AlertRules, Direction};

use super::*;

/// The gauge `metric` label of each default rule.
const GAUGES: [(&str, &str); 8] = [
    ("DPI", "dpi"),
    ("FES", "fes"),
    ("IRS", "irs"),
    ("lead_time_p90", "lead_time_p90_hours"),
    ("blocked_ratio", "blocked_ratio"),
    ("ini_backlog", "ini_backlog"),
    ("change_failure_rate", "change_failure_rate"),
    ("time_to_restore_hours", "time_to_restore_hours"),
];

/// (gauge, severity) → (comparison, level) of each delivery rule: the first comparison of
/// its expression.
fn delivery_bands() -> Vec<(String, String, String, f64)> {
    let text = std::fs::read_to_string(
        workspace_root().join("alerts/prometheus/flowmeter-delivery.rules.yml"),
    )
    .unwrap();
    let mut bands = Vec::new();
    for block in text.split("- alert:").skip(1) {
        let expr = block
            .lines()
            .find(|l| l.contains("flowmeter_project_metric{"))
            .unwrap_or_else(|| panic!("no gauge in {block}"));
        let metric = expr
            .split("metric=\"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap()
            .to_owned();
        let after = expr.split('}').nth(1).unwrap().trim();
        let (op, level) = after.split_once(' ').unwrap();
        let level: f64 = level.split_whitespace().next().unwrap().parse().unwrap();
        let severity = block
            .lines()
            .find_map(|l| l.trim().strip_prefix("severity:"))
            .unwrap()
            .trim()
            .to_owned();
        bands.push((metric, severity, op.to_owned(), level));
    }
    bands
}

#[test]
fn the_delivery_rules_use_the_levels_and_directions_of_thresholds_toml() {
    let bands = delivery_bands();
    let rules = AlertRules::defaults();
    let mut expected = Vec::new();
    for rule in &rules.thresholds {
        let gauge = GAUGES
            .iter()
            .find(|(k, _)| *k == rule.metric_key)
            .unwrap()
            .1;
        let op = if rule.direction == Direction::Below {
            "<"
        } else {
            ">"
        };
        for (severity, level) in &rule.levels {
            expected.push((
                gauge.to_owned(),
                severity.as_str().to_owned(),
                op.to_owned(),
                *level,
            ));
        }
    }
    let mut actual = bands;
    actual.sort_by(|a, b| a.partial_cmp(b).unwrap());
    expected.sort_by(|a, b| a.partial_cmp(b).unwrap());
    assert_eq!(actual, expected);
}
