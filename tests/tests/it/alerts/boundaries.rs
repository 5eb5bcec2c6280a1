//! Every default rule of SPEC §6, at and just beyond each of its levels, through the real
//! worker: one project per value, built so that the rule's metric takes exactly that value.

use super::*;

/// Builds one project's events.
type Build = Box<dyn Fn(&mut EventBuilder) -> Vec<Value>>;

fn hours(h: f64) -> Duration {
    Duration::seconds((h * 3600.0).round() as i64)
}

/// `n` tasks implemented (not integrated) a day ago.
fn backlog(b: &mut EventBuilder, n: usize) -> Vec<Value> {
    let at = now() - Duration::days(1);
    (0..n)
        .flat_map(|i| {
            let id = format!("t{i}");
            [
                b.task_created(&id, at, json!({})),
                b.transition(&id, "implemented", at),
            ]
        })
        .collect()
}

/// 20 WIP tasks of which `blocked` are blocked: ratio blocked / 20.
fn blocked(b: &mut EventBuilder, blocked: usize) -> Vec<Value> {
    let at = now() - Duration::hours(5);
    (0..20)
        .flat_map(|i| {
            let id = format!("t{i}");
            let state = if i < blocked {
                "blocked"
            } else {
                "in_progress"
            };
            [
                b.task_created(&id, at, json!({})),
                b.transition(&id, state, at),
            ]
        })
        .collect()
}

/// One task integrated an hour ago after a lead time of `lead_hours`: p90 = that time.
fn lead_time(b: &mut EventBuilder, lead_hours: f64) -> Vec<Value> {
    let done = now() - Duration::hours(1);
    vec![
        b.task_created("t", done - hours(lead_hours), json!({})),
        b.transition("t", "integrated", done),
    ]
}

/// One integrated task that spent `active` of 100 minutes in progress and the rest waiting
/// as implemented: FES = active %.
fn flow_efficiency(b: &mut EventBuilder, active: i64) -> Vec<Value> {
    let start = now() - Duration::hours(3);
    vec![
        b.task_created("t", start, json!({})),
        b.transition("t", "in_progress", start),
        b.transition("t", "implemented", start + Duration::minutes(active)),
        b.transition("t", "integrated", start + Duration::minutes(100)),
    ]
}

/// `ok` successful attempts and `failed` failed ones on tasks that were then cancelled (no
/// recovery sample, recovery speed 1): IRS = 60 · ok / (ok + failed) + 40.
fn integration(b: &mut EventBuilder, ok: usize, failed: usize) -> Vec<Value> {
    let at = now() - Duration::hours(2);
    let mut events = Vec::new();
    for i in 0..ok + failed {
        let id = format!("t{i}");
        let result = if i < ok { "success" } else { "failed_checks" };
        events.push(b.task_created(&id, at - Duration::hours(1), json!({})));
        events.push(b.event(
            "integration_attempt",
            &format!("a{i}"),
            "integration_attempt_finished",
            at,
            json!({"task_id": id, "result": result, "attempt_number": 1}),
        ));
        if i >= ok {
            events.push(b.transition(&id, "cancelled", at + Duration::minutes(1)));
        }
    }
    events
}

/// `good` of `total` blocked episodes resolved within 48 h (the rest after 50 h), nothing
/// integrated and no milestone: DPI = 100 · BRR.
fn predictability(b: &mut EventBuilder, good: usize, total: usize) -> Vec<Value> {
    let start = now() - Duration::days(5);
    let mut events = Vec::new();
    for i in 0..total {
        let id = format!("t{i}");
        let length = if i < good {
            Duration::hours(2)
        } else {
            Duration::hours(50)
        };
        events.push(b.task_created(&id, start, json!({})));
        events.push(b.transition(&id, "blocked", start));
        events.push(b.transition(&id, "in_progress", start + length));
    }
    events
}

#[tokio::test]
async fn each_default_rule_fires_each_severity_just_beyond_its_levels_and_not_at_them() {
    let app = TestApp::spawn().await;
    // (metric key, the metric's value, events producing it, expected severity)
    let cases: Vec<(&str, f64, Build, Option<&str>)> = vec![
        ("ini_backlog", 10.0, Box::new(|b| backlog(b, 10)), None),
        (
            "ini_backlog",
            11.0,
            Box::new(|b| backlog(b, 11)),
            Some("warning"),
        ),
        (
            "ini_backlog",
            20.0,
            Box::new(|b| backlog(b, 20)),
            Some("warning"),
        ),
        (
            "ini_backlog",
            21.0,
            Box::new(|b| backlog(b, 21)),
            Some("critical"),
        ),
        (
            "ini_backlog",
            40.0,
            Box::new(|b| backlog(b, 40)),
            Some("critical"),
        ),
        (
            "ini_backlog",
            41.0,
            Box::new(|b| backlog(b, 41)),
            Some("emergency"),
        ),
        ("blocked_ratio", 0.15, Box::new(|b| blocked(b, 3)), None),
        (
            "blocked_ratio",
            0.20,
            Box::new(|b| blocked(b, 4)),
            Some("warning"),
        ),
        (
            "blocked_ratio",
            0.25,
            Box::new(|b| blocked(b, 5)),
            Some("warning"),
        ),
        (
            "blocked_ratio",
            0.30,
            Box::new(|b| blocked(b, 6)),
            Some("critical"),
        ),
        (
            "blocked_ratio",
            0.40,
            Box::new(|b| blocked(b, 8)),
            Some("critical"),
        ),
        (
            "blocked_ratio",
            0.45,
            Box::new(|b| blocked(b, 9)),
            Some("emergency"),
        ),
        (
            "lead_time_p90",
            240.0,
            Box::new(|b| lead_time(b, 240.0)),
            None,
        ),
        (
            "lead_time_p90",
            240.5,
            Box::new(|b| lead_time(b, 240.5)),
            Some("warning"),
        ),
        (
            "lead_time_p90",
            336.0,
            Box::new(|b| lead_time(b, 336.0)),
            Some("warning"),
        ),
        (
            "lead_time_p90",
            336.5,
            Box::new(|b| lead_time(b, 336.5)),
            Some("critical"),
        ),
        (
            "lead_time_p90",
            504.0,
            Box::new(|b| lead_time(b, 504.0)),
            Some("critical"),
        ),
        (
            "lead_time_p90",
            504.5,
            Box::new(|b| lead_time(b, 504.5)),
            Some("emergency"),
        ),
        ("FES", 30.0, Box::new(|b| flow_efficiency(b, 30)), None),
        (
            "FES",
            29.0,
            Box::new(|b| flow_efficiency(b, 29)),
            Some("warning"),
        ),
        (
            "FES",
            20.0,
            Box::new(|b| flow_efficiency(b, 20)),
            Some("warning"),
        ),
        (
            "FES",
            19.0,
            Box::new(|b| flow_efficiency(b, 19)),
            Some("critical"),
        ),
        (
            "FES",
            10.0,
            Box::new(|b| flow_efficiency(b, 10)),
            Some("critical"),
        ),
        (
            "FES",
            9.0,
            Box::new(|b| flow_efficiency(b, 9)),
            Some("emergency"),
        ),
        ("IRS", 75.0, Box::new(|b| integration(b, 7, 5)), None),
        (
            "IRS",
            74.8,
            Box::new(|b| integration(b, 29, 21)),
            Some("warning"),
        ),
        (
            "IRS",
            60.0,
            Box::new(|b| integration(b, 1, 2)),
            Some("warning"),
        ),
        (
            "IRS",
            59.8,
            Box::new(|b| integration(b, 33, 67)),
            Some("critical"),
        ),
        (
            "IRS",
            45.0,
            Box::new(|b| integration(b, 1, 11)),
            Some("critical"),
        ),
        (
            "IRS",
            44.8,
            Box::new(|b| integration(b, 2, 23)),
            Some("emergency"),
        ),
        ("DPI", 65.0, Box::new(|b| predictability(b, 13, 20)), None),
        (
            "DPI",
            64.29,
            Box::new(|b| predictability(b, 9, 14)),
            Some("warning"),
        ),
        (
            "DPI",
            50.0,
            Box::new(|b| predictability(b, 1, 2)),
            Some("warning"),
        ),
        (
            "DPI",
            49.25,
            Box::new(|b| predictability(b, 33, 67)),
            Some("critical"),
        ),
        (
            "DPI",
            35.0,
            Box::new(|b| predictability(b, 7, 20)),
            Some("critical"),
        ),
        (
            "DPI",
            34.29,
            Box::new(|b| predictability(b, 12, 35)),
            Some("emergency"),
        ),
    ];
    let source = |key: &str| flowmeter_shared::alerts::MetricSource::resolve(key);
    let mut failures = Vec::new();
    for (key, value, build, expected) in cases {
        let mut b = EventBuilder::new();
        let project = b.project_id;
        app.seed(&build(&mut b)).await;
        fold(&app, project, &[]);
        let payload: Value = app
            .db
            .client()
            .await
            .query_one(
                "SELECT payload FROM metrics_summary WHERE project_id = $1",
                &[&project],
            )
            .await
            .unwrap()
            .get(0);
        let actual_value = source(key).value_in(&payload);
        let alerts = alerts_for(&app, project, key).await;
        let severity = alerts.first().map(|(_, l)| l.2.clone());
        if actual_value != Some(value) || severity.as_deref() != expected || alerts.len() > 1 {
            failures.push(format!(
                "{key} = {actual_value:?} (built for {value}): alerts {alerts:?}, expected {expected:?}"
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
