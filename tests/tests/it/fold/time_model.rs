//! The fold's time model (SPEC §13): the read model is a function of the set of events, not
//! of their arrival order or batch sizes; late events revise history; work is bounded by
//! the events, never by empty stretches of time.
//!
//! Most tests fold the same events twice, into two projects: A receives them in canonical
//! order (occurred_at), B in an order with late deliveries, each in several rounds with a
//! fold after every round (so B's late events arrive after their time has been folded).
//! Every stored row of A and B must then be equal, and `verify` must pass for both.

use super::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// Every stored row of a project, without the columns that name the project or record when
/// it was written.
async fn rows_of(client: &tokio_postgres::Client, project: Uuid) -> Value {
    let mut dump = dump_read_model(client, project).await;
    strip(&mut dump);
    dump
}

/// Removes what differs between two projects by design: the project id, alert ids (random)
/// in the actions' evidence, and the forecast's dates (its Monte Carlo draws are seeded by
/// the project, so two projects with the same history draw differently).
fn strip(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.remove("project_id");
            if let Some(forecast) = map.get_mut("forecast").and_then(Value::as_object_mut) {
                for field in ["p50", "p85", "p95"] {
                    forecast.remove(field);
                }
            }
            map.remove("breach_probability");
            map.remove("health_score");
            map.remove("health_status");
            if let Some(Value::Array(refs)) = map.get_mut("evidence_refs") {
                refs.retain(|r| !r.as_str().is_some_and(|r| r.starts_with("alert:")));
            }
            for v in map.values_mut() {
                strip(v);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(strip),
        _ => {}
    }
}

/// Lists the first differing rows of two dumps, for a readable failure.
fn differences(a: &Value, b: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for (table, rows_a) in a.as_object().unwrap() {
        let rows_b = &b[table];
        if rows_a == rows_b {
            continue;
        }
        let (ra, rb) = (rows_a.as_array().unwrap(), rows_b.as_array().unwrap());
        out.push(format!("{table}: {} rows vs {} rows", ra.len(), rb.len()));
        for (x, y) in ra.iter().zip(rb) {
            if x != y {
                let mut paths = Vec::new();
                leaf_differences(x, y, String::new(), &mut paths);
                out.push(format!("  first differing row: {}", paths.join("; ")));
                break;
            }
        }
        let extra: Vec<_> = ra.iter().filter(|r| !rb.contains(r)).take(3).collect();
        let missing: Vec<_> = rb.iter().filter(|r| !ra.contains(r)).take(3).collect();
        out.push(format!("  only in A: {extra:?}\n  only in B: {missing:?}"));
    }
    out
}

fn leaf_differences(a: &Value, b: &Value, at: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for key in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                let (va, vb) = (
                    &x.get(key).cloned().unwrap_or(Value::Null),
                    &y.get(key).cloned().unwrap_or(Value::Null),
                );
                if va != vb {
                    leaf_differences(va, vb, format!("{at}.{key}"), out);
                }
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                if va != vb {
                    leaf_differences(va, vb, format!("{at}[{i}]"), out);
                }
            }
        }
        _ => out.push(format!("{at}: {a} vs {b}")),
    }
}

/// Re-targets events at another project (same event ids and times).
fn for_project(events: &[Value], project: Uuid) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["project_id"] = json!(project);
            e
        })
        .collect()
}

fn occurred(event: &Value) -> chrono::DateTime<chrono::Utc> {
    t(event["occurred_at"].as_str().unwrap())
}

/// Delivers `rounds` (each a list of events) to the API, folding after each round with
/// runs of at most `max_events` events.
async fn deliver(app: &TestApp, project: Uuid, rounds: &[Vec<Value>], max_events: i64) {
    for round in rounds {
        for chunk in round.chunks(400) {
            app.ingest(chunk).await;
        }
        let outcome = backfill(&app.db.url, project, max_events);
        assert_eq!(outcome["caught_up"], true, "{outcome}");
    }
}

/// A's rounds: the events sorted by time, cut into `rounds` consecutive parts.
fn in_order_rounds(events: &[Value], rounds: usize) -> Vec<Vec<Value>> {
    let mut sorted = events.to_vec();
    sorted.sort_by_key(occurred);
    let size = sorted.len().div_ceil(rounds.max(1)).max(1);
    sorted.chunks(size).map(<[Value]>::to_vec).collect()
}

/// Two new projects: A gets `first` and `later` in time order in `rounds` folded rounds; B
/// gets only `first`, folded (the test delivers `later` to B itself).
async fn start_pair(
    app: &TestApp,
    first: &[Value],
    later: &[Value],
    rounds: usize,
) -> (Uuid, Uuid) {
    let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
    let all: Vec<Value> = first.iter().chain(later).cloned().collect();
    deliver(
        app,
        a,
        &in_order_rounds(&for_project(&all, a), rounds),
        10_000,
    )
    .await;
    deliver(app, b, &[for_project(first, b)], 10_000).await;
    (a, b)
}

/// Asserts that A and B hold the same rows and both verify.
async fn assert_same_read_model(app: &TestApp, a: Uuid, b: Uuid) {
    let client = app.db.client().await;
    let (rows_a, rows_b) = (rows_of(&client, a).await, rows_of(&client, b).await);
    assert!(
        rows_a == rows_b,
        "read models differ:\n{}",
        differences(&rows_a, &rows_b).join("\n")
    );
    assert_verified(&app.db.url, a);
    assert_verified(&app.db.url, b);
}

/// One generated stream and how B receives it.
#[derive(Debug, Clone)]
struct Generated {
    events: Vec<Value>,
    /// B's delivery: rounds of events.
    late_rounds: Vec<Vec<Value>>,
    /// Largest run of each of A's and B's folds.
    runs: (i64, i64),
}

/// A small deterministic generator (the seed comes from proptest).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n.max(1)
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next(100) < percent
    }
}

/// Random lifecycles, gates, attempts, milestones and duplicates over about three weeks,
/// and B's delivery: whole task histories 1–10 days late, gate decisions before their
/// requests, attempt finishes before their starts, the milestones after their tasks.
fn generate(seed: u64, tasks: usize) -> Generated {
    let mut r = Lcg(seed);
    let mut b = EventBuilder::new();
    let start = t("2026-02-20T06:00:00Z");
    let mut events = vec![b.event(
        "phase",
        "ph",
        "phase_upserted",
        start,
        json!({"name": "Build", "sequence": 1}),
    )];
    let mut milestones = Vec::new();
    for m in 0..2 {
        let due = start + Span::days(8 + 6 * m);
        milestones.push(b.event(
            "milestone",
            &format!("m{m}"),
            "milestone_upserted",
            start + Span::hours(m),
            json!({"name": format!("M{m}"), "phase_id": "ph",
                   "planned_start_at": start.to_rfc3339(), "due_at": due.to_rfc3339()}),
        ));
    }
    events.extend(milestones.iter().cloned());
    let people = ["ana", "bo", "cy", "dee"];
    let mut histories: Vec<Vec<Value>> = Vec::new();
    let mut swapped_pairs = Vec::new();
    for i in 0..tasks {
        let id = format!("t{i}");
        let mut at = start + Span::hours(r.next(24 * 12) as i64);
        let mut step = |r: &mut Lcg| {
            at += Span::minutes(20 + r.next(60 * 30) as i64);
            at
        };
        let mut h = Vec::new();
        let created = step(&mut r);
        h.push(b.task_created(
            &id,
            created,
            json!({"milestone_id": format!("m{}", i % 2), "phase_id": "ph",
                   "assignee": people[r.next(4) as usize],
                   "task_class": if r.chance(50) { "feature" } else { "bug" }}),
        ));
        h.push(b.transition(&id, "ready", step(&mut r)));
        if r.chance(10) {
            h.push(b.transition(&id, "abandoned", step(&mut r)));
            histories.push(h);
            continue;
        }
        h.push(b.transition(&id, "claimed", step(&mut r)));
        h.push(b.transition(&id, "in_progress", step(&mut r)));
        if r.chance(35) {
            h.push(b.transition(&id, "blocked", step(&mut r)));
            if r.chance(80) {
                h.push(b.transition(&id, "in_progress", step(&mut r)));
            } else {
                histories.push(h);
                continue;
            }
        }
        if r.chance(20) {
            let mut update = b.event(
                "task",
                &id,
                "task_updated",
                step(&mut r),
                json!({"assignee": people[r.next(4) as usize]}),
            );
            if r.chance(50) {
                update["payload"]["priority"] = json!(r.next(5));
            }
            h.push(update);
        }
        if r.chance(15) {
            histories.push(h);
            continue; // still in progress
        }
        h.push(b.transition(&id, "implemented", step(&mut r)));
        let gate = format!("g{i}");
        h.push(b.event(
            "gate",
            &gate,
            "gate_requested",
            step(&mut r),
            json!({"task_id": id, "reviewer": people[r.next(4) as usize], "sla_hours": 24}),
        ));
        if r.chance(15) {
            histories.push(h);
            continue; // waiting for review
        }
        let outcome =
            ["approved", "approved", "rejected", "approved_with_risk"][r.next(4) as usize];
        h.push(b.event(
            "gate",
            &gate,
            "gate_decision_recorded",
            step(&mut r),
            json!({"task_id": id, "outcome": outcome}),
        ));
        swapped_pairs.push((h.len() - 2, h.len() - 1, histories.len()));
        let failures = r.next(3);
        for k in 0..=failures {
            let attempt = format!("a{i}-{k}");
            h.push(b.event(
                "integration_attempt",
                &attempt,
                "integration_attempt_started",
                step(&mut r),
                json!({"task_id": id, "attempt_number": k + 1}),
            ));
            let result = if k < failures {
                ["conflict", "failed_checks", "aborted"][r.next(3) as usize]
            } else {
                "success"
            };
            h.push(b.event(
                "integration_attempt",
                &attempt,
                "integration_attempt_finished",
                step(&mut r),
                json!({"task_id": id, "result": result, "attempt_number": k + 1}),
            ));
            swapped_pairs.push((h.len() - 2, h.len() - 1, histories.len()));
            if result == "conflict" {
                h.push(b.transition(&id, "conflict", step(&mut r)));
                h.push(b.transition(&id, "implemented", step(&mut r)));
            }
        }
        h.push(b.transition(&id, "integrated", step(&mut r)));
        histories.push(h);
    }
    // An inconsistent from_state and an inferred task (a transition for a task never created).
    let mut odd = b.transition("ghost", "in_progress", start + Span::days(5));
    odd["payload"]["from_state"] = json!("ready");
    events.push(odd);
    for h in &histories {
        events.extend(h.iter().cloned());
    }
    // Duplicates: identical resends of some events.
    let resends: Vec<Value> = events.iter().filter(|_| r.chance(5)).cloned().collect();

    // B: whole histories of some tasks arrive 1–10 days after their time; within others,
    // decisions arrive before requests and finishes before starts; milestones come last.
    let mut late = Vec::new();
    let mut on_time = vec![events[0].clone(), events[3].clone()];
    for (index, h) in histories.iter().enumerate() {
        let mut h = h.clone();
        for (x, y, of) in &swapped_pairs {
            if *of == index && r.chance(60) {
                h.swap(*x, *y);
            }
        }
        if r.chance(30) {
            let delay = Span::days(1 + r.next(10) as i64);
            late.push((occurred(&h[0]) + delay, h));
        } else {
            on_time.extend(h);
        }
    }
    on_time.sort_by_key(occurred);
    // Rounds of B: the on-time events cut at three instants; a late history joins the first
    // round at or after its delivery time; milestones and resends arrive in the last.
    let first = occurred(&on_time[0]);
    let last = occurred(on_time.last().unwrap());
    let cuts: Vec<_> = (1..4).map(|k| first + (last - first) * k / 4).collect();
    let mut rounds: Vec<Vec<Value>> = vec![Vec::new(); 5];
    for event in on_time {
        let k = cuts.iter().filter(|c| occurred(&event) >= **c).count();
        rounds[k].push(event);
    }
    for (delivered, h) in late {
        let k = cuts.iter().filter(|c| delivered >= **c).count().min(3) + 1;
        rounds[k].extend(h);
    }
    rounds[4].extend(milestones);
    rounds[4].extend(resends.iter().cloned());
    rounds.retain(|r| !r.is_empty());
    let runs = (1 + r.next(60) as i64, 1 + r.next(60) as i64);
    Generated {
        events: events.into_iter().chain(resends).collect(),
        late_rounds: rounds,
        runs,
    }
}

#[tokio::test]
async fn the_same_events_in_any_arrival_order_and_batch_sizes_give_the_same_read_model() {
    let cases = std::env::var("FLOWMETER_TIME_MODEL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    let mut runner = TestRunner::new_with_rng(
        Config {
            cases,
            ..Config::default()
        },
        TestRng::from_seed(RngAlgorithm::ChaCha, &[12; 32]),
    );
    let strategy = (any::<u64>(), 6usize..16);
    let app = TestApp::spawn().await;
    for case in 0..cases {
        let (seed, tasks) = strategy.new_tree(&mut runner).unwrap().current();
        let generated = generate(seed, tasks);
        let (a, b) = (Uuid::new_v4(), Uuid::new_v4());
        let a_rounds: Vec<Vec<Value>> = in_order_rounds(&generated.events, 3)
            .iter()
            .map(|r| for_project(r, a))
            .collect();
        let b_rounds: Vec<Vec<Value>> = generated
            .late_rounds
            .iter()
            .map(|r| for_project(r, b))
            .collect();
        deliver(&app, a, &a_rounds, generated.runs.0).await;
        deliver(&app, b, &b_rounds, generated.runs.1).await;
        let client = app.db.client().await;
        let (rows_a, rows_b) = (rows_of(&client, a).await, rows_of(&client, b).await);
        assert!(
            rows_a == rows_b,
            "case {case} (seed {seed}, {tasks} tasks, runs {:?}): read models differ:\n{}",
            generated.runs,
            differences(&rows_a, &rows_b).join("\n")
        );
        for project in [a, b] {
            let (ok, report) = verify(&app.db.url, project);
            assert!(ok, "case {case} (seed {seed}): verify failed: {report}");
        }
        // The summary is served from those rows, so it is equal too; check the API anyway.
        let summary = |p: Uuid| {
            let app = &app;
            async move {
                let body: Value = app
                    .get(&format!("/v1/metrics/summary?project_id={p}"), None)
                    .await
                    .json()
                    .await
                    .unwrap();
                let mut metrics = body["metrics"].clone();
                strip(&mut metrics);
                metrics
            }
        };
        assert_eq!(summary(a).await, summary(b).await, "case {case}");
    }
}

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
            let body: Value = app
                .get(&format!("/v1/metrics/summary?project_id={project}"), None)
                .await
                .json()
                .await
                .unwrap();
            body["metrics"]["north_star"]["delivery_predictability_index"].clone()
        }
    };
    // DPI as of the end of the reference day (the latest day ended a week before now).
    let reference_dpi = |project: Uuid| {
        let app = &app;
        async move {
            let body: Value = app
                .get(
                    &format!(
                        "/v1/metrics/trends?project_id={project}&metric=delivery_predictability_index\
                         &granularity=day&start_date=2026-03-12&end_date=2026-03-12"
                    ),
                    None,
                )
                .await
                .json()
                .await
                .unwrap();
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
        let body: Value = app
            .get(
                &format!(
                    "/v1/metrics/trends?project_id={}&metric={metric}&granularity=hour\
                     &start_date=2026-03-11&end_date=2026-03-17",
                    b.project_id
                ),
                None,
            )
            .await
            .json()
            .await
            .unwrap();
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
async fn events_twenty_six_years_apart_fold_without_walking_the_years_between() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let now = chrono::Utc::now();
    let events = vec![
        b.task_created("old", t("2000-01-01T00:00:00Z"), json!({})),
        b.transition("old", "in_progress", t("2000-01-01T01:00:00Z")),
        b.task_created("new", now - Span::minutes(5), json!({})),
    ];
    app.ingest(&events).await;
    let now_text = now.to_rfc3339();
    let started = Instant::now();
    let child = std::process::Command::new(flowmeter_tests::bin_path("flowmeter-worker"))
        .args(["backfill", "--project", &b.project_id.to_string()])
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", &app.db.url)
        .env("FLOWMETER_LOG", "warn")
        .env("FLOWMETER_TEST_NOW", &now_text)
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert!(
        child.status.success(),
        "{}",
        String::from_utf8_lossy(&child.stderr)
    );
    let peak_kib = flowmeter_tests::process::children_peak_rss_kib();
    // Debug build, shared machine: the bound of SPEC §13 holds with room to spare.
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert!(peak_kib < 100 * 1024, "peak RSS {peak_kib} KiB");
    let client = app.db.client().await;
    let points: i64 = client
        .query_one(
            "SELECT count(*) FROM metrics_trend_point WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(points < 400, "{points} trend points for three events");
    // The old task is still in progress today: the series carries it over the years.
    let body: Value = app
        .get(
            &format!(
                "/v1/metrics/trends?project_id={}&metric=wip&granularity=month\
                 &start_date=2010-01-01&end_date=2010-12-31",
                b.project_id
            ),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let values: Vec<f64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, vec![1.0; 12]);
    eprintln!("fold of 2000 → today: {elapsed:?}, peak RSS of the children {peak_kib} KiB");
}

#[tokio::test]
async fn occurred_at_outside_the_accepted_range_is_refused_at_ingest_and_import() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    for at in [
        "0001-01-01T00:00:00Z",
        "9999-12-31T00:00:00Z",
        "1999-12-31T23:59:59Z",
    ] {
        let event = b.task_created("x", t(at), json!({}));
        let response = app.post_events(&json!([event]), None).await;
        let body = flowmeter_tests::app::assert_error(response, 422, "validation_error").await;
        let error = &body["details"]["errors"][0];
        assert_eq!(error["field"], "occurred_at", "{body}");
        assert_eq!(error["code"], "out_of_range", "{body}");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .contains("2000-01-01T00:00:00Z"),
            "{body}"
        );
    }
    let file = std::env::temp_dir().join(format!("flowmeter-bounds-{}.ndjson", b.project_id));
    let good = b.task_created("ok", t("2026-03-01T00:00:00Z"), json!({}));
    let bad = b.task_created("bad", t("9999-12-31T00:00:00Z"), json!({}));
    std::fs::write(&file, format!("{good}\n{bad}\n")).unwrap();
    let output = worker(&app.db.url, &["import", file.to_str().unwrap()], &[]);
    std::fs::remove_file(&file).ok();
    assert!(!output.status.success());
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["stored"], 0, "{report}");
    assert_eq!(report["errors"][0]["field"], "occurred_at", "{report}");
    assert_eq!(report["errors"][0]["line"], 2, "{report}");
    let stored: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 0);
}

#[tokio::test]
async fn a_project_that_fails_while_folding_does_not_stop_the_others() {
    let app = TestApp::spawn().await;
    let (broken, healthy) = (Uuid::new_v4(), Uuid::new_v4());
    let at = chrono::Utc::now() - Span::hours(1);
    for project in [broken, healthy] {
        let mut b = EventBuilder::for_project(project);
        app.ingest(&[
            b.task_created("a", at, json!({})),
            b.transition("a", "in_progress", at + Span::minutes(1)),
        ])
        .await;
    }
    let worker = WorkerProcess::spawn(
        &app.db.url,
        &[("FLOWMETER_TEST_PANIC_PROJECTS", &broken.to_string())],
    );
    let client = app.db.client().await;
    wait_until_caught_up(&client, &[healthy], Duration::from_secs(30)).await;
    // The broken project's run failed like any error: recorded, backing off, not folded.
    let started = Instant::now();
    loop {
        let row = client
            .query_opt(
                "SELECT c.status, c.last_seq, r.failure_reason FROM metrics_job_checkpoint c
                   JOIN metrics_job_run r USING (project_id)
                  WHERE c.project_id = $1 AND r.status = 'failed'",
                &[&broken],
            )
            .await
            .unwrap();
        if let Some(row) = row {
            assert_eq!(row.get::<_, String>(0), "failing");
            assert_eq!(row.get::<_, i64>(1), 0);
            let reason: String = row.get(2);
            assert!(reason.contains("panicked"), "{reason}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "no failed run recorded"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Later events of the healthy project are still folded by the same worker.
    let mut b = EventBuilder::for_project(healthy);
    let mut more = b.transition("a", "implemented", at + Span::minutes(2));
    more["event_id"] = json!("after-the-failure");
    app.ingest(&[more]).await;
    wait_until_caught_up(&client, &[healthy], Duration::from_secs(30)).await;
    drop(worker);
    assert_verified(&app.db.url, healthy);
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
