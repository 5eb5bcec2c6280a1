use super::*;

fn rule_file(body: &str) -> Result<AlertRules, RulesError> {
    AlertRules::parse(body)
}

#[test]
fn the_bundled_defaults_are_the_rules_of_the_specification() {
    let rules = AlertRules::defaults();
    let table: Vec<(&str, Direction, Vec<f64>)> = rules
        .thresholds
        .iter()
        .map(|r| {
            (
                r.metric_key.as_str(),
                r.direction,
                r.levels.iter().map(|(_, l)| *l).collect(),
            )
        })
        .collect();
    assert_eq!(
        table,
        vec![
            ("DPI", Direction::Below, vec![65.0, 50.0, 35.0]),
            ("FES", Direction::Below, vec![30.0, 20.0, 10.0]),
            ("IRS", Direction::Below, vec![75.0, 60.0, 45.0]),
            ("lead_time_p90", Direction::Above, vec![240.0, 336.0, 504.0]),
            ("blocked_ratio", Direction::Above, vec![0.15, 0.25, 0.40]),
            ("ini_backlog", Direction::Above, vec![10.0, 20.0, 40.0]),
            // SPEC §19: the DORA keys' defaults, at the edges of the DORA bands.
            (
                "change_failure_rate",
                Direction::Above,
                vec![0.15, 0.30, 0.45]
            ),
            (
                "time_to_restore_hours",
                Direction::Above,
                vec![24.0, 168.0, 720.0]
            ),
        ]
    );
    for rule in &rules.thresholds {
        assert_eq!(rule.clear, rule.levels[0].1, "clear defaults to warning");
        assert_eq!(rule.pending_for, TimeDelta::zero());
    }
    assert_eq!(rules.anomaly, AnomalySettings::default());
}

#[test]
fn short_names_read_their_summary_fields_in_the_rule_units() {
    let summary = serde_json::json!({
        "north_star": {"delivery_predictability_index": {"value": 61.5}},
        "operational": {"lead_time": {"p90_minutes": 15_120.0}, "blocked": {"ratio": null},
                        "wip": {"total_count": 7}}
    });
    assert_eq!(MetricSource::resolve("DPI").value_in(&summary), Some(61.5));
    assert_eq!(
        MetricSource::resolve("lead_time_p90").value_in(&summary),
        Some(252.0),
        "minutes → hours"
    );
    assert_eq!(
        MetricSource::resolve("blocked_ratio").value_in(&summary),
        None
    );
    assert_eq!(MetricSource::resolve("FES").value_in(&summary), None);
    assert_eq!(
        MetricSource::resolve("operational.wip.total_count").value_in(&summary),
        Some(7.0)
    );
}

#[test]
fn a_summary_path_is_accepted_when_it_names_a_number() {
    let rules = rule_file(
        r#"
[[rule]]
metric_key = "operational.wip.total_count"
direction = "above"
warning = 20
clear = 15
for = "15m"
"#,
    )
    .unwrap();
    let rule = &rules.thresholds[0];
    assert_eq!(rule.levels, vec![(Severity::Warning, 20.0)]);
    assert_eq!(rule.clear, 15.0);
    assert_eq!(rule.pending_for, TimeDelta::minutes(15));
}

fn error_of(body: &str) -> String {
    rule_file(body).unwrap_err().to_string()
}

#[test]
fn invalid_rules_name_the_rule_and_the_field() {
    let ok = "[[rule]]\nmetric_key = \"DPI\"\ndirection = \"below\"\nwarning = 65\n";
    let cases = [
        (
            format!("{ok}[[rule]]\nmetric_key = \"DPX\"\ndirection = \"below\"\nwarning = 1\n"),
            "alert rule #2 (DPX): field `metric_key`",
        ),
        (
            "[[rule]]\nmetric_key = \"operational.wip\"\ndirection = \"above\"\nwarning = 1\n".into(),
            "field `metric_key`: names an object",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"up\"\nwarning = 1\n".into(),
            "alert rule #1 (FES): field `direction`",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\n".into(),
            "field `warning`: a rule needs at least one",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\nwarning = 30\ncritical = 40\n"
                .into(),
            "(FES): field `critical`",
        ),
        (
            "[[rule]]\nmetric_key = \"ini_backlog\"\ndirection = \"above\"\nwarning = 10\ncritical = 20\nemergency = 15\n"
                .into(),
            "(ini_backlog): field `emergency`",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\nwarning = 30\nclear = 25\n".into(),
            "(FES): field `clear`",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\nwarning = 30\nfor = \"soon\"\n"
                .into(),
            "(FES): field `for`",
        ),
        (format!("{ok}{ok}"), "alert rule #2 (DPI): field `metric_key`: a rule for this metric"),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\nwarning = \"high\"\n".into(),
            "warning",
        ),
        (
            "[[rule]]\nmetric_key = \"FES\"\ndirection = \"below\"\nwarning = 3\nwarnign = 4\n"
                .into(),
            "warnign",
        ),
        ("[anomaly]\nmetrics = [\"wip\"]\n".into(), "[anomaly] field `metrics`"),
        ("[anomaly]\nmin_points = 20\n".into(), "[anomaly] field `min_points`"),
        ("[anomaly]\nz_threshold = 0\n".into(), "[anomaly] field `z_threshold`"),
    ];
    for (body, expected) in cases {
        let message = error_of(&body);
        assert!(
            message.contains(expected),
            "{body}\n→ {message}\n(expected {expected:?})"
        );
    }
}

#[test]
fn durations_parse_in_seconds_minutes_hours_and_days() {
    assert_eq!(parse_duration("0"), Some(TimeDelta::zero()));
    assert_eq!(parse_duration("90s"), Some(TimeDelta::seconds(90)));
    assert_eq!(parse_duration("15m"), Some(TimeDelta::minutes(15)));
    assert_eq!(parse_duration("2h"), Some(TimeDelta::hours(2)));
    assert_eq!(parse_duration("1d"), Some(TimeDelta::days(1)));
    for bad in ["", "m", "15", "1.5h", "-1m", "3w"] {
        assert_eq!(parse_duration(bad), None, "{bad:?}");
    }
}
