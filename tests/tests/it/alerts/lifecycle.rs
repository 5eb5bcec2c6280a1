//! The lifecycle through the real worker: boundaries, escalation, hysteresis, pending,
//! missing data, history, and anomaly detection on daily throughput.

use super::*;

#[tokio::test]
async fn the_backlog_rule_fires_escalates_deescalates_and_resolves_on_strict_boundaries() {
    let app = TestApp::spawn().await;
    let mut backlog = Backlog::new();
    let project = backlog.project();
    let key = "ini_backlog";

    // Exactly at the warning level (10) is no breach.
    backlog.set(&app, 10, &[]).await;
    assert_eq!(alerts_for(&app, project, key).await, vec![]);
    let steps = [
        (11, "warning"),
        (20, "warning"),
        (21, "critical"),
        (40, "critical"),
        (41, "emergency"),
        (15, "warning"),
    ];
    for (n, severity) in steps {
        backlog.set(&app, n, &[]).await;
        let alerts = alerts_for(&app, project, key).await;
        assert_eq!(alerts.len(), 1, "backlog {n}: one open alert");
        assert_eq!(
            alerts[0].1,
            line(key, "threshold", severity, "firing"),
            "backlog {n}"
        );
    }
    // Back at the warning level (the default clear level) resolves.
    backlog.set(&app, 10, &[]).await;
    let alerts = alerts_for(&app, project, key).await;
    assert_eq!(alerts[0].1, line(key, "threshold", "warning", "resolved"));
    let first = alerts[0].0;
    assert_eq!(
        history(&app, project, first).await,
        pairs(&[
            ("firing", "warning"),
            ("escalated", "critical"),
            ("escalated", "emergency"),
            ("deescalated", "warning"),
            ("resolved", "warning"),
        ])
    );
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT value, threshold, resolved_at FROM metrics_alert WHERE project_id = $1 AND id = $2",
            &[&project, &first],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<f64>>(0), Some(10.0));
    assert_eq!(row.get::<_, Option<f64>>(1), Some(10.0));
    assert_eq!(row.get::<_, Option<DateTime<Utc>>>(2), Some(now()));

    // A later breach opens a new alert; the resolved one stays as it was.
    backlog.set(&app, 11, &[]).await;
    let alerts = alerts_for(&app, project, key).await;
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[0].1, line(key, "threshold", "warning", "resolved"));
    assert_eq!(alerts[1].1, line(key, "threshold", "warning", "firing"));
    assert_eq!(
        history(&app, project, alerts[1].0).await,
        pairs(&[("firing", "warning")])
    );
}

#[tokio::test]
async fn with_a_clear_level_a_backlog_oscillating_around_warning_fires_once() {
    let app = TestApp::spawn().await;
    let rules = rule_file(
        "clear",
        "[[rule]]\nmetric_key = \"ini_backlog\"\ndirection = \"above\"\nwarning = 10\nclear = 8\n",
    );
    let env = [("FLOWMETER_ALERT_RULES", rules.as_str())];
    let mut backlog = Backlog::new();
    let project = backlog.project();
    for n in [11, 10, 11, 9, 11, 10, 11] {
        backlog.set(&app, n, &env).await;
    }
    let alerts = alerts_of(&app, project).await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].1,
        line("ini_backlog", "threshold", "warning", "firing")
    );
    assert_eq!(
        history(&app, project, alerts[0].0).await,
        pairs(&[("firing", "warning")])
    );
    backlog.set(&app, 8, &env).await;
    assert_eq!(
        alerts_of(&app, project).await[0].1,
        line("ini_backlog", "threshold", "warning", "resolved")
    );
}

#[tokio::test]
async fn a_breach_waits_out_its_for_duration_between_snapshots() {
    let app = TestApp::spawn().await;
    let rules = rule_file(
        "for",
        "[[rule]]\nmetric_key = \"ini_backlog\"\ndirection = \"above\"\nwarning = 2\nfor = \"30m\"\n",
    );
    let mut backlog = Backlog::new();
    let project = backlog.project();
    let at = |minutes: i64| (now() + Duration::minutes(minutes)).to_rfc3339();
    let (t0, t10, t30) = (at(0), at(10), at(30));
    backlog
        .set(
            &app,
            3,
            &[
                ("FLOWMETER_ALERT_RULES", &rules),
                ("FLOWMETER_TEST_NOW", &t0),
            ],
        )
        .await;
    backlog
        .set(
            &app,
            3,
            &[
                ("FLOWMETER_ALERT_RULES", &rules),
                ("FLOWMETER_TEST_NOW", &t10),
            ],
        )
        .await;
    assert_eq!(alerts_of(&app, project).await, vec![], "pending for 10 min");
    let client = app.db.client().await;
    let pending: Option<DateTime<Utc>> = client
        .query_one(
            "SELECT pending_since FROM metrics_alert_rule_state WHERE project_id = $1 AND rule_key = 'ini_backlog'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(pending, Some(now()));
    backlog
        .set(
            &app,
            3,
            &[
                ("FLOWMETER_ALERT_RULES", &rules),
                ("FLOWMETER_TEST_NOW", &t30),
            ],
        )
        .await;
    let alerts = alerts_of(&app, project).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].1,
        line("ini_backlog", "threshold", "warning", "firing")
    );
}

#[tokio::test]
async fn missing_data_keeps_an_alert_firing_and_recovery_resolves_it() {
    let app = TestApp::spawn().await;
    // The mean age of the implemented backlog is null while the backlog is empty.
    let rules = rule_file(
        "age",
        "[[rule]]\nmetric_key = \"operational.backlog.avg_age_hours\"\ndirection = \"above\"\nwarning = 48\n",
    );
    let env = [("FLOWMETER_ALERT_RULES", rules.as_str())];
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let key = "operational.backlog.avg_age_hours";
    let old = now() - Duration::days(5);
    app.ingest(&[
        b.task_created("a", old, json!({})),
        b.transition("a", "implemented", old),
    ])
    .await;
    fold(&app, project, &env);
    assert_eq!(
        alerts_of(&app, project).await[0].1,
        line(key, "threshold", "warning", "firing")
    );

    // The only implemented task integrates: no backlog, no age, no data.
    app.ingest(&[b.transition("a", "integrated", now() - Duration::hours(1))])
        .await;
    fold(&app, project, &env);
    let summary: Value = app
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
    assert_eq!(
        summary["operational"]["backlog"]["avg_age_hours"],
        Value::Null
    );
    let alerts = alerts_of(&app, project).await;
    assert_eq!(alerts.len(), 1);
    assert_eq!(
        alerts[0].1,
        line(key, "threshold", "warning", "firing"),
        "missing data never resolves"
    );

    // A fresh implemented task: 2 h old, healthy → resolved.
    let fresh = now() - Duration::hours(2);
    app.ingest(&[
        b.task_created("b", fresh, json!({})),
        b.transition("b", "implemented", fresh),
    ])
    .await;
    fold(&app, project, &env);
    assert_eq!(
        alerts_of(&app, project).await[0].1,
        line(key, "threshold", "warning", "resolved")
    );

    // An old one again: a new alert.
    app.ingest(&[
        b.task_created("c", old, json!({})),
        b.transition("c", "implemented", old),
    ])
    .await;
    fold(&app, project, &env);
    let alerts = alerts_of(&app, project).await;
    assert_eq!(alerts.len(), 2);
    assert_eq!(alerts[1].1, line(key, "threshold", "warning", "firing"));
    assert_eq!(
        history(&app, project, alerts[0].0).await,
        pairs(&[("firing", "warning"), ("resolved", "warning")])
    );
}

/// A project whose tasks integrate `per_day[i]` times on each of the days before today
/// (at 08:00), plus `today` integrations this morning.
async fn throughput_history(app: &TestApp, per_day: &[usize], today: usize) -> Uuid {
    let mut b = EventBuilder::new();
    let day0 = now().date_naive().and_hms_opt(8, 0, 0).unwrap().and_utc();
    let mut events = Vec::new();
    let mut n = 0;
    let days = per_day.len() as i64;
    let mut integrate = |at: DateTime<Utc>, events: &mut Vec<Value>| {
        let id = format!("t{n}");
        n += 1;
        events.push(b.task_created(&id, at - Duration::hours(6), json!({})));
        events.push(b.transition(&id, "in_progress", at - Duration::hours(5)));
        events.push(b.transition(&id, "integrated", at));
    };
    for (i, count) in per_day.iter().enumerate() {
        let at = day0 - Duration::days(days - i as i64);
        for _ in 0..*count {
            integrate(at, &mut events);
        }
    }
    for k in 0..today {
        integrate(
            day0 - Duration::hours(2) + Duration::minutes(k as i64),
            &mut events,
        );
    }
    let project = b.project_id;
    app.ingest(&events).await;
    fold(app, project, &[]);
    project
}

#[tokio::test]
async fn a_throughput_spike_over_a_steady_series_fires_an_anomaly() {
    let app = TestApp::spawn().await;
    // 14 days alternating 2 and 3 (mean 2.5, σ 0.5), then 12 today: z = 19.
    let steady: Vec<usize> = (0..14).map(|i| 2 + i % 2).collect();
    let spiking = throughput_history(&app, &steady, 12).await;
    let alerts = alerts_for(&app, spiking, "throughput").await;
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!(
        alerts[0].1,
        line("throughput", "anomaly", "warning", "firing")
    );
    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT value, threshold, context FROM metrics_alert WHERE project_id = $1 AND id = $2",
            &[&spiking, &alerts[0].0],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, Option<f64>>(0), Some(12.0));
    assert_eq!(row.get::<_, Option<f64>>(1), Some(3.0));
    let context: Value = row.get(2);
    assert_eq!(
        (
            &context["mean"],
            &context["sigma"],
            &context["points"],
            &context["z"]
        ),
        (&json!(2.5), &json!(0.5), &json!(14), &json!(19.0))
    );

    // The same series without a spike: no anomaly.
    let calm = throughput_history(&app, &steady, 3).await;
    assert_eq!(alerts_for(&app, calm, "throughput").await, vec![]);
    // A perfectly flat series (σ = 0) is not evaluated, spike or not.
    let flat = throughput_history(&app, &[2; 14], 12).await;
    assert_eq!(alerts_for(&app, flat, "throughput").await, vec![]);
    // Six days of history are too few to judge.
    let young = throughput_history(&app, &[2, 3, 2, 3, 2, 3], 12).await;
    assert_eq!(alerts_for(&app, young, "throughput").await, vec![]);
    // Seven are enough.
    let seven = throughput_history(&app, &[2, 3, 2, 3, 2, 3, 2], 12).await;
    assert_eq!(alerts_for(&app, seven, "throughput").await.len(), 1);
}
