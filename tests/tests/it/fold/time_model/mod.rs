//! The fold's time model (SPEC §13): the read model is a function of the set of events, not
//! of their arrival order or batch sizes; late events revise history; work is bounded by
//! the events, never by empty stretches of time.
//!
//! Most tests fold the same events twice, into two projects: A receives them in canonical
//! order (occurred_at), B in an order with late deliveries, each in several rounds with a
//! fold after every round (so B's late events arrive after their time has been folded).
//! Every stored row of A and B must then be equal, and `verify` must pass for both.

mod bounded;
mod generated;
mod late;

use super::*;

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

/// The JSON body of a GET with no key.
async fn json_at(app: &TestApp, path: &str) -> Value {
    app.get(path, None).await.json().await.unwrap()
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
