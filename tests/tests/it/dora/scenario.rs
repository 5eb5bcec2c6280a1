//! A hand-built DORA history whose every `metrics.dora` number is worked out by hand below,
//! folded by the real worker. Snapshot time ("now"): 2026-03-20T12:00:00Z, so the 30-day
//! window is [2026-02-18T12:00Z, 2026-03-20T12:00Z). Production is `production,prod`.
//!
//! Changes (committed): c0 1 Feb 00:00, c1 1 Mar 10:00, c2 2 Mar 08:00, c3 5 Mar 12:00,
//! c4 10 Mar 09:00, c5 12 Mar 00:00.
//!
//! Deployments (finished; started where given):
//! - d0 prod, 10 Feb 10:00 success [c0]: before the window.
//! - d1 staging, 1 Mar 12:00 success [c1]: not production.
//! - d2 production, started 2 Mar 09:00, finished 2 Mar 10:00 success [c1, c2] (the finish
//!   names only c2; the start names c1 and c2).
//! - d3 prod, 6 Mar 12:00 failure [c3].
//! - d4 prod, 7 Mar 12:00 success [c3].
//! - d5 prod, 11 Mar 09:00 success [c4]; incident i1 names it.
//! - d6 prod, 12 Mar 06:00 failure [c5].
//! - d7 prod, 13 Mar 10:00 cancelled: left out.
//! - d8 prod, started 15 Mar 10:00, never finished: left out.
//! - d9 staging, 14 Mar 10:00 failure; incident i2 names it (not production: no effect).
//!
//! Incidents: i1 opened 11 Mar 10:00 (caused by d5), resolved 11 Mar 12:30 = 150 min;
//! i2 opened 13 Mar 00:00, resolved 14 Mar 06:00 = 1800 min; i3 opened 16 Mar, unresolved;
//! i4 1 Feb → 2 Feb, resolved before the window.
//!
//! Worked numbers:
//! - deployment frequency: successful production deployments in the window d2, d4, d5 = 3;
//!   3/30 = 0.1 per day: at least monthly (1/30), below weekly (1/7) → medium.
//! - lead time: c1 1 Mar 10:00 → d2 = 1440 min; c2 → d2 = 120; c3 → d4 (d3 failed) = 2880;
//!   c4 → d5 = 1440; c0's deployment is outside the window, c5 was never deployed
//!   successfully. Sorted 120, 1440, 1440, 2880: p50 at position 2.5 = 1440; p90 at 3.7 =
//!   1440 + 0.7·1440 = 2448. 1440 min is between an hour and a week → high.
//! - change failure rate: finished production deployments d2, d3, d4, d5, d6 = 5; failed d3,
//!   d6, and d5 named by i1 = 3 → 0.6 → low.
//! - time to restore: i1 150, i2 1800 → p50 975 min, under a day → high.

use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::{assert_verified, backfill};
use flowmeter_tests::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

/// The scenario's events for `b`'s project.
pub fn dora_events(b: &mut EventBuilder) -> Vec<Value> {
    let mut events = Vec::new();
    for (id, at) in [
        ("c0", "2026-02-01T00:00:00Z"),
        ("c1", "2026-03-01T10:00:00Z"),
        ("c2", "2026-03-02T08:00:00Z"),
        ("c3", "2026-03-05T12:00:00Z"),
        ("c4", "2026-03-10T09:00:00Z"),
        ("c5", "2026-03-12T00:00:00Z"),
    ] {
        events.push(b.event(
            "change",
            id,
            "change_committed",
            t(at),
            json!({"author": "ana", "service": "api"}),
        ));
    }
    let started = |b: &mut EventBuilder, id: &str, env: &str, at: &str, changes: &[&str]| {
        b.event(
            "deployment",
            id,
            "deployment_started",
            t(at),
            json!({"environment": env, "service": "api", "change_ids": changes}),
        )
    };
    events.push(started(
        b,
        "d2",
        "production",
        "2026-03-02T09:00:00Z",
        &["c1", "c2"],
    ));
    events.push(started(b, "d8", "prod", "2026-03-15T10:00:00Z", &[]));
    for (id, env, at, status, changes) in [
        ("d0", "prod", "2026-02-10T10:00:00Z", "success", &["c0"][..]),
        ("d1", "staging", "2026-03-01T12:00:00Z", "success", &["c1"]),
        (
            "d2",
            "production",
            "2026-03-02T10:00:00Z",
            "success",
            &["c2"],
        ),
        ("d3", "prod", "2026-03-06T12:00:00Z", "failure", &["c3"]),
        ("d4", "prod", "2026-03-07T12:00:00Z", "success", &["c3"]),
        ("d5", "prod", "2026-03-11T09:00:00Z", "success", &["c4"]),
        ("d6", "prod", "2026-03-12T06:00:00Z", "failure", &["c5"]),
        ("d7", "prod", "2026-03-13T10:00:00Z", "cancelled", &[]),
        ("d9", "staging", "2026-03-14T10:00:00Z", "failure", &[]),
    ] {
        events.push(b.event(
            "deployment",
            id,
            "deployment_finished",
            t(at),
            json!({"environment": env, "status": status, "service": "api", "change_ids": changes}),
        ));
    }
    for (id, kind, at, cause) in [
        ("i1", "incident_opened", "2026-03-11T10:00:00Z", Some("d5")),
        ("i1", "incident_resolved", "2026-03-11T12:30:00Z", None),
        ("i2", "incident_opened", "2026-03-13T00:00:00Z", None),
        (
            "i2",
            "incident_resolved",
            "2026-03-14T06:00:00Z",
            Some("d9"),
        ),
        ("i3", "incident_opened", "2026-03-16T08:00:00Z", None),
        ("i4", "incident_opened", "2026-02-01T00:00:00Z", None),
        ("i4", "incident_resolved", "2026-02-02T00:00:00Z", None),
    ] {
        events.push(b.event(
            "incident",
            id,
            kind,
            t(at),
            json!({"severity": "sev2", "caused_by_deployment_id": cause}),
        ));
    }
    events
}

/// The `metrics.dora` object worked out in the module's comment.
pub fn expected_dora() -> Value {
    json!({
        "deployment_frequency": {"per_day": 0.1, "count_30d": 3, "performance_level": "medium"},
        "lead_time_for_changes": {"p50_minutes": 1440.0, "p90_minutes": 2448.0, "sample_size": 4,
                                  "performance_level": "high"},
        "change_failure_rate": {"rate": 0.6, "failures": 3, "deployments": 5,
                                "performance_level": "low"},
        "time_to_restore": {"p50_minutes": 975.0, "sample_size": 2, "performance_level": "high"}
    })
}

/// `metrics.dora` without data: every value null, no level.
pub fn no_dora() -> Value {
    json!({
        "deployment_frequency": {"per_day": null, "count_30d": null, "performance_level": null},
        "lead_time_for_changes": {"p50_minutes": null, "p90_minutes": null, "sample_size": 0,
                                  "performance_level": null},
        "change_failure_rate": {"rate": null, "failures": 0, "deployments": 0,
                                "performance_level": null},
        "time_to_restore": {"p50_minutes": null, "sample_size": 0, "performance_level": null}
    })
}

async fn stored_dora(app: &TestApp, project: Uuid) -> Value {
    app.latest_summary_payload(project).await["dora"].clone()
}

#[tokio::test]
async fn the_hand_built_dora_history_gives_the_hand_computed_keys() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let events = dora_events(&mut b);
    app.ingest(&events).await;
    backfill(&app.db.url, b.project_id, 10_000);
    assert_verified(&app.db.url, b.project_id);
    assert_eq!(stored_dora(&app, b.project_id).await, expected_dora());

    // The API serves the snapshot's object unchanged.
    let body: Value = app
        .get(
            &format!("/v1/metrics/summary?project_id={}", b.project_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["metrics"]["dora"], expected_dora());

    // One row per entity, whatever the number of events about it.
    let client = app.db.client().await;
    let count = |table: &'static str| {
        let client = &client;
        async move {
            let sql = format!("SELECT count(*) FROM {table} WHERE project_id = $1");
            client
                .query_one(&sql, &[&b.project_id])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(count("metrics_change").await, 6);
    assert_eq!(count("metrics_deployment").await, 10);
    assert_eq!(count("metrics_incident").await, 4);
    let d2: (Option<String>, Vec<String>) = client
        .query_one(
            "SELECT status, change_ids FROM metrics_deployment WHERE project_id = $1 AND deployment_id = 'd2'",
            &[&b.project_id],
        )
        .await
        .map(|r| (r.get(0), r.get(1)))
        .unwrap();
    assert_eq!(d2, (Some("success".into()), vec!["c1".into(), "c2".into()]));
}

#[tokio::test]
async fn dora_events_delivered_backwards_in_several_runs_give_the_same_keys() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let mut events = dora_events(&mut b);
    // Latest first: finishes before starts, incidents before the deployments they name,
    // changes after the deployments that contain them; each third folded on its own,
    // then everything resent (duplicates).
    events.sort_by_key(|e| std::cmp::Reverse(t(e["occurred_at"].as_str().unwrap())));
    for chunk in events.chunks(events.len().div_ceil(3)) {
        app.ingest(chunk).await;
        backfill(&app.db.url, b.project_id, 4);
    }
    app.ingest(&events).await;
    backfill(&app.db.url, b.project_id, 10_000);
    assert_verified(&app.db.url, b.project_id);
    assert_eq!(stored_dora(&app, b.project_id).await, expected_dora());
}

#[tokio::test]
async fn keys_without_data_are_null_with_no_level() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let events = vec![
        b.task_created("t1", t("2026-03-13T09:00:00Z"), json!({})),
        b.event(
            "deployment",
            "s1",
            "deployment_finished",
            t("2026-03-14T09:00:00Z"),
            json!({"environment": "staging", "status": "success", "change_ids": ["x"]}),
        ),
        b.event(
            "change",
            "x",
            "change_committed",
            t("2026-03-13T09:00:00Z"),
            json!({}),
        ),
        b.event(
            "incident",
            "open",
            "incident_opened",
            t("2026-03-15T09:00:00Z"),
            json!({}),
        ),
    ];
    app.ingest(&events).await;
    backfill(&app.db.url, b.project_id, 10_000);
    assert_eq!(stored_dora(&app, b.project_id).await, no_dora());
}

#[tokio::test]
async fn a_configured_production_environment_replaces_the_default() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&dora_events(&mut b)).await;
    flowmeter_tests::worker::worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[("FLOWMETER_PRODUCTION_ENVIRONMENTS", "staging")],
    );
    let dora = stored_dora(&app, b.project_id).await;
    // Staging: d1 success (c1 → 1 Mar 12:00 = 120 min) and d9 failure, named by i2.
    assert_eq!(dora["deployment_frequency"]["count_30d"], 1);
    assert_eq!(dora["lead_time_for_changes"]["p50_minutes"], 120.0);
    assert_eq!(dora["change_failure_rate"]["rate"], 0.5);
}

/// The DORA trend metrics are per bucket, from the same rows (worked from the scenario above;
/// weeks start on Monday, 2 and 9 March 2026).
#[tokio::test]
async fn dora_trends_are_computed_per_bucket_from_the_same_rows() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&dora_events(&mut b)).await;
    backfill(&app.db.url, b.project_id, 10_000);
    let trend = |metric: &str, granularity: &str, start: &str, end: &str| {
        let path = format!(
            "/v1/metrics/trends?project_id={}&metric={metric}&granularity={granularity}&start_date={start}&end_date={end}",
            b.project_id
        );
        let app = &app;
        async move {
            let body: Value = app.get(&path, None).await.json().await.unwrap();
            body["data"]
                .as_array()
                .unwrap_or_else(|| panic!("{path}: {body}"))
                .iter()
                .map(|p| {
                    (
                        p["timestamp"].as_str().unwrap()[..10].to_owned(),
                        p["value"].clone(),
                    )
                })
                .collect::<Vec<(String, Value)>>()
        }
    };
    let day = |d: &str, v: Value| (format!("2026-03-{d}"), v);
    // Successful production deployments: d2 on the 2nd, d4 on the 7th, d5 on the 11th.
    let deployments = trend("deployments", "day", "2026-03-01", "2026-03-12").await;
    let expected: Vec<(String, Value)> = (1..=12)
        .map(|d| {
            let n = if [2, 7, 11].contains(&d) { 1.0 } else { 0.0 };
            day(&format!("{d:02}"), json!(n))
        })
        .collect();
    assert_eq!(deployments, expected);
    // Lead time: c1 1440 and c2 120 with d2 (p50 780), c3 2880 with d4, c4 1440 with d5.
    let lead = trend("lead_time_for_changes", "day", "2026-03-02", "2026-03-07").await;
    assert_eq!(lead[0], day("02", json!(780.0)));
    assert_eq!(lead[1], day("03", Value::Null));
    assert_eq!(lead[5], day("07", json!(2880.0)));
    // Week of 2 March: d2, d3 (failure), d4 → 1/3; week of 9 March: d5 (named by i1), d6
    // (failure); d7 was cancelled → 2/2.
    let rate = trend("change_failure_rate", "week", "2026-03-02", "2026-03-15").await;
    assert_eq!(rate, vec![day("02", json!(0.3333)), day("09", json!(1.0))]);
    let restore = trend("time_to_restore", "day", "2026-03-11", "2026-03-14").await;
    assert_eq!(
        restore,
        vec![
            day("11", json!(150.0)),
            day("12", Value::Null),
            day("13", Value::Null),
            day("14", json!(1800.0))
        ]
    );
}

/// The DORA keys by environment and by service over the 30 days before the snapshot
/// (worked from the scenario above; the previous 30 days hold only d0, prod).
#[tokio::test]
async fn dora_breakdowns_split_by_environment_and_service() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&dora_events(&mut b)).await;
    backfill(&app.db.url, b.project_id, 10_000);
    let breakdown = |query: &str| {
        let path = format!(
            "/v1/metrics/breakdown?project_id={}&time_range=30d&{query}",
            b.project_id
        );
        let app = &app;
        async move { app.get(&path, None).await }
    };
    let body: Value = breakdown("metric=deployments&dimension=environment")
        .await
        .json()
        .await
        .unwrap();
    let groups: Vec<Value> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            json!([
                g["dimension_value"],
                g["value"],
                g["count"],
                g["percentage"],
                g["trend"]["direction"]
            ])
        })
        .collect();
    // Successful deployments: prod d4, d5 (d0 before: 1 → 2, up); production d2; staging d1.
    assert_eq!(
        groups,
        vec![
            json!(["prod", 2.0, 2, 50.0, "up"]),
            json!(["production", 1.0, 1, 25.0, "up"]),
            json!(["staging", 1.0, 1, 25.0, "up"]),
        ]
    );
    assert_eq!(body["total"], 4.0);
    assert_eq!(body["breakdown"][0]["trend"]["change_pct"], 100.0);

    let body: Value = breakdown("metric=change_failure_rate&dimension=environment")
        .await
        .json()
        .await
        .unwrap();
    let rates: Vec<(Value, Value)> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| (g["dimension_value"].clone(), g["value"].clone()))
        .collect();
    // prod: d3, d6 failed and d5 named by i1 of d3, d4, d5, d6; production: d2 fine;
    // staging: d9 failed of d1, d9.
    assert_eq!(
        rates,
        vec![
            (json!("prod"), json!(0.75)),
            (json!("production"), json!(0.0)),
            (json!("staging"), json!(0.5))
        ]
    );

    let body: Value = breakdown("metric=change_failure_rate&dimension=service")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["total"], 0.6);
    assert_eq!(body["breakdown"][0]["dimension_value"], "api");
    assert_eq!(body["breakdown"][0]["value"], 0.6);
    assert_eq!(body["breakdown"][0]["count"], 5);

    for query in [
        "metric=deployments&dimension=assignee",
        "metric=wip&dimension=service",
    ] {
        let error =
            flowmeter_tests::app::assert_error(breakdown(query).await, 422, "validation_error")
                .await;
        assert_eq!(error["details"]["field"], "dimension", "{query}");
    }
    let error = flowmeter_tests::app::assert_error(
        breakdown("metric=deployments&dimension=service&filters=%7B%7D").await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(error["details"]["field"], "filters");
}
