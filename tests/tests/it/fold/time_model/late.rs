//! Named late deliveries: a history 8 days late, a creation after its task's integration,
//! the DPI reference after a late delivery, hourly scores over imported history, and demo
//! data partly late in runs of several sizes.

use super::*;

/// A stream of steady work over two weeks with one task whose history began 8 days ago.
fn steady_with_one_old_task(b: &mut EventBuilder) -> (Vec<Value>, Vec<Value>) {
    let start = t("2026-03-01T08:00:00Z");
    let mut steady = Vec::new();
    for i in 0..12 {
        let id = format!("s{i}");
        let at = start + Span::hours(26 * i);
        steady.push(b.task_created(&id, at, json!({"assignee": "ana"})));
        steady.push(b.transition(&id, "in_progress", at + Span::hours(1)));
        steady.push(b.transition(&id, "implemented", at + Span::hours(20)));
        steady.push(b.transition(&id, "integrated", at + Span::hours(30)));
    }
    let old_start = t("2026-03-06T10:00:00Z");
    let old = vec![
        b.task_created("late", old_start, json!({"assignee": "bo"})),
        b.transition("late", "in_progress", old_start + Span::hours(2)),
        b.transition("late", "blocked", old_start + Span::hours(30)),
        b.transition("late", "in_progress", old_start + Span::hours(50)),
        b.transition("late", "implemented", old_start + Span::hours(70)),
        b.transition("late", "integrated", old_start + Span::hours(75)),
    ];
    (steady, old)
}

#[tokio::test]
async fn a_task_history_delivered_eight_days_late_revises_every_bucket_it_touches() {
    let app = TestApp::spawn().await;
    let mut builder = EventBuilder::new();
    let (steady, old) = steady_with_one_old_task(&mut builder);
    // B: everything else first, folded; the old task's history arrives 8 days after it began.
    let (a, b) = start_pair(&app, &steady, &old, 2).await;
    let client = app.db.client().await;
    let wip_at = |project: Uuid, bucket: &'static str| {
        let client = &client;
        async move {
            client
                .query_opt(
                    "SELECT value_numeric FROM metrics_trend_point
                      WHERE project_id = $1 AND metric_key = 'wip' AND time_grain = 'hour'
                        AND dimensions = '{}' AND time_bucket <= $2
                      ORDER BY time_bucket DESC LIMIT 1",
                    &[&project, &t(bucket)],
                )
                .await
                .unwrap()
                .map(|r| r.get::<_, Option<f64>>(0))
        }
    };
    let before = wip_at(b, "2026-03-07T12:00:00Z").await;
    deliver(&app, b, &[for_project(&old, b)], 10_000).await;
    let after = wip_at(b, "2026-03-07T12:00:00Z").await;
    // The late task was in progress then: the hour's WIP level went up by one.
    assert_eq!(
        after.flatten(),
        before.flatten().map(|v| v + 1.0),
        "WIP at 2026-03-07T12 before {before:?}, after {after:?}"
    );
    assert_same_read_model(&app, a, b).await;
}

#[tokio::test]
async fn a_task_created_after_its_integration_measures_lead_time_from_the_creation() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let created = t("2026-03-02T09:00:00Z");
    let created_event = b.task_created("x", created, json!({"assignee": "ana"}));
    let history = vec![
        b.transition("x", "claimed", created + Span::hours(5)),
        b.transition("x", "in_progress", created + Span::hours(6)),
        b.transition("x", "implemented", created + Span::hours(30)),
        b.transition("x", "integrated", created + Span::hours(48)),
    ];
    app.ingest(&history).await;
    backfill(&app.db.url, b.project_id, 10_000);
    app.ingest(std::slice::from_ref(&created_event)).await;
    backfill(&app.db.url, b.project_id, 10_000);

    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT created_at, inferred, inferred_start, value FROM metrics_task
               JOIN metrics_drilldown USING (project_id, task_id)
              WHERE project_id = $1 AND task_id = 'x' AND metric_key = 'lead_time'",
            &[&b.project_id],
        )
        .await
        .unwrap();
    assert_eq!(row.get::<_, chrono::DateTime<chrono::Utc>>(0), created);
    assert!(
        !row.get::<_, bool>(1),
        "the creation makes the task a known one"
    );
    // In event time the history starts with the creation: no inferred-task finding.
    assert!(!row.get::<_, bool>(2));
    assert_eq!(row.get::<_, f64>(3), 48.0 * 60.0, "lead time in minutes");
    let arrivals: i64 = client
        .query_one(
            "SELECT sample_size FROM metrics_trend_point WHERE project_id = $1
                AND metric_key = 'arrivals' AND time_grain = 'hour' AND dimensions = '{}'",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(arrivals, 1);
    assert_verified(&app.db.url, b.project_id);
}

/// Tasks integrated from mid-February to the day before the snapshot (2026-03-20T12:00Z),
/// some of them blocked; the ones before the DPI reference day (2026-03-12) that `late`
/// holds are delivered late.
fn delivery_history(b: &mut EventBuilder) -> (Vec<Value>, Vec<Value>) {
    let start = t("2026-02-16T08:00:00Z");
    let mut early = Vec::new();
    let mut late = Vec::new();
    for i in 0..12 {
        let id = format!("d{i}");
        let at = start + Span::hours(60 * i);
        let target = if i % 3 == 0 && i < 9 {
            &mut late
        } else {
            &mut early
        };
        target.push(b.task_created(&id, at, json!({})));
        target.push(b.transition(&id, "in_progress", at + Span::hours(2)));
        if i % 4 == 1 {
            target.push(b.transition(&id, "blocked", at + Span::hours(3)));
            target.push(b.transition(&id, "in_progress", at + Span::hours(3 + 10 * i)));
        }
        // Cycle times vary widely among the late ones, so they move CTS.
        let cycle = if i % 3 == 0 { 4 + 30 * (i % 2) } else { 8 };
        target.push(b.transition(&id, "integrated", at + Span::hours(2 + cycle + i)));
    }
    (early, late)
}

#[tokio::test]
async fn the_dpi_seven_days_earlier_follows_a_late_delivery() {
    let app = TestApp::spawn().await;
    let mut builder = EventBuilder::new();
    let (early, late) = delivery_history(&mut builder);
    let (a, b) = start_pair(&app, &early, &late, 1).await;
    let summary_dpi = |project: Uuid| {
        let app = &app;
        async move {
            let body: Value =
                json_at(app, &format!("/v1/metrics/summary?project_id={project}")).await;
            body["metrics"]["north_star"]["delivery_predictability_index"].clone()
        }
    };
    // DPI as of the end of the reference day (the latest day ended a week before now).
    let reference_dpi = |project: Uuid| {
        let app = &app;
        async move {
            let body: Value = json_at(
                app,
                &format!(
                    "/v1/metrics/trends?project_id={project}&metric=delivery_predictability_index\
                         &granularity=day&start_date=2026-03-12&end_date=2026-03-12"
                ),
            )
            .await;
            body["data"][0]["value"].as_f64().unwrap()
        }
    };
    let reference_before = reference_dpi(b).await;
    deliver(&app, b, &[for_project(&late, b)], 10_000).await;
    let reference_after = reference_dpi(b).await;
    assert_ne!(
        reference_before, reference_after,
        "the late tasks lie before the reference day"
    );
    assert_eq!(reference_after, reference_dpi(a).await);
    let after = summary_dpi(b).await;
    assert_eq!(
        after,
        summary_dpi(a).await,
        "B after the late delivery equals A"
    );
    let value = after["value"].as_f64().unwrap();
    let expected_change = (value - reference_after) / reference_after * 100.0;
    let change = after["change_pct"].as_f64().unwrap();
    // The summary rounds the value it shows, not the one it compares.
    assert!(
        (change - expected_change).abs() < 0.05,
        "{after} against {reference_after}"
    );
    assert_same_read_model(&app, a, b).await;
}

#[tokio::test]
async fn hourly_scores_over_a_week_of_imported_history_have_a_point_every_hour() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let start = t("2026-03-10T00:00:00Z");
    let mut events = Vec::new();
    for i in 0..24 {
        let id = format!("h{i}");
        let at = start + Span::hours(7 * i);
        let cycle = 9 + (i % 5) * 6;
        events.push(b.task_created(&id, at, json!({})));
        events.push(b.transition(&id, "in_progress", at + Span::hours(1)));
        if i % 3 == 0 {
            events.push(b.transition(&id, "blocked", at + Span::hours(2)));
            events.push(b.transition(&id, "in_progress", at + Span::hours(5)));
        }
        events.push(b.event(
            "integration_attempt",
            &format!("a{i}"),
            "integration_attempt_finished",
            at + Span::hours(cycle - 1),
            json!({"task_id": id, "result": if i % 4 == 0 { "conflict" } else { "success" }}),
        ));
        events.push(b.transition(&id, "integrated", at + Span::hours(cycle)));
    }
    app.ingest(&events).await;
    backfill(&app.db.url, b.project_id, 10_000);
    for metric in [
        "delivery_predictability_index",
        "flow_efficiency_score",
        "integration_reliability_score",
    ] {
        let body: Value = json_at(
            &app,
            &format!(
                "/v1/metrics/trends?project_id={}&metric={metric}&granularity=hour\
                     &start_date=2026-03-11&end_date=2026-03-17",
                b.project_id
            ),
        )
        .await;
        let data = body["data"].as_array().unwrap();
        assert_eq!(data.len(), 7 * 24, "{metric}: one point per hour");
        let distinct: std::collections::BTreeSet<String> =
            data.iter().map(|p| p["value"].to_string()).collect();
        assert!(
            distinct.len() > 3,
            "{metric} changes within the week: {distinct:?}"
        );
    }
    assert_verified(&app.db.url, b.project_id);
}

#[tokio::test]
async fn demo_data_delivered_partly_late_folds_to_the_same_rows_in_runs_of_1_7_500_and_10000() {
    let app = TestApp::spawn().await;
    let url = app.db.url.clone();
    let demo = worker_json(
        &url,
        &[
            "demo-data",
            "--projects",
            "1",
            "--tasks",
            "30",
            "--days",
            "20",
            "--seed",
            "5",
            "--late-percent",
            "20",
            "--end",
            "2026-03-19T00:00:00Z",
        ],
        &[],
    );
    let project: Uuid = demo["projects"][0]["project_id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let client = app.db.client().await;
    // The arrival order really is late in places: seq order is not time order.
    let out_of_order: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT occurred_at < lag(occurred_at) OVER (ORDER BY seq) AS back
                                     FROM event_log WHERE project_id = $1) e WHERE back",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        out_of_order > 5,
        "{out_of_order} events arrive after later ones"
    );
    let mut dumps = Vec::new();
    for run in [10_000, 500, 7, 1] {
        reset_projections(&app.db, project).await;
        let result = backfill(&url, project, run);
        assert_eq!(result["caught_up"], true, "{result}");
        assert_verified(&url, project);
        // Alert ids in the actions' evidence are new each time: `rows_of` leaves them out.
        dumps.push((run, rows_of(&client, project).await));
    }
    let (_, first) = &dumps[0];
    for (run, dump) in &dumps[1..] {
        assert!(
            dump == first,
            "runs of {run} differ from runs of 10000:\n{}",
            differences(first, dump).join("\n")
        );
    }
    let rebuilt = worker_json(&url, &["rebuild", "--project", &project.to_string()], &[]);
    assert_eq!(rebuilt["last_seq"], demo["events"]);
    assert!(
        rows_of(&client, project).await == *first,
        "rebuild gives the same rows"
    );
    assert_verified(&url, project);
}
