//! Timing of the in-memory fold on a demo project (run explicitly in release:
//! `cargo test --release -p flowmeter-worker --lib fold::timing -- --ignored --nocapture`).

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{LoggedEvent, ProjectState};
use crate::demo::{generate_project, DemoOptions};

#[test]
#[ignore = "timing, run explicitly in release"]
fn fold_one_demo_project() {
    let end: DateTime<Utc> = "2026-11-23T12:00:00Z".parse().unwrap();
    let project = generate_project(
        &DemoOptions {
            projects: 1,
            tasks_per_project: 9000,
            days: 90,
            seed: 1,
            end,
        },
        0,
    );
    let events: Vec<LoggedEvent> = project
        .events
        .iter()
        .enumerate()
        .map(|(i, e)| LoggedEvent {
            seq: i as i64 + 1,
            event_id: e["event_id"].as_str().unwrap().to_owned(),
            entity_id: e["entity_id"].as_str().unwrap().to_owned(),
            event_type: e["event_type"].as_str().unwrap().to_owned(),
            payload: e["payload"].to_string().into(),
            occurred_at: e["occurred_at"].as_str().unwrap().parse().unwrap(),
        })
        .collect();
    let mut state = ProjectState::new(project.project_id);
    let started = Instant::now();
    let mut deltas = 0;
    for chunk in events.chunks(10_000) {
        let delta = state.fold_batch(chunk, None);
        deltas += delta.trend_set.len() + delta.trend_add.len() + delta.tasks.len();
    }
    let fold = started.elapsed();
    let started = Instant::now();
    let snapshot = state.snapshot(end, events.len() as i64, true, None);
    let snap = started.elapsed();
    println!(
        "{} events: fold {:?} ({:.0} events/s, {deltas} delta rows), snapshot {:?} ({} trend rows)",
        events.len(),
        fold,
        events.len() as f64 / fold.as_secs_f64(),
        snap,
        snapshot.trend_set.len()
    );
}
