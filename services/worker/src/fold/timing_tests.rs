//! Timing of the in-memory fold on a demo project (run explicitly in release:
//! `cargo test --release -p flowmeter-worker --lib fold::timing -- --ignored --nocapture`).

use std::time::Instant;

use chrono::{DateTime, Utc};

use super::{LoggedEvent, ProjectState};
use crate::demo::{generate_project, DemoOptions};

/// A demo project's events as the log holds them, seq in stream order.
fn logged(project: &crate::demo::DemoProject) -> Vec<LoggedEvent> {
    project
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
        .collect()
}

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
    let events = logged(&project);
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

/// The fold's IRS, DPI and FES, gathered from the indexes it keeps, equal the formulas over the
/// facts at every hour of a demo project's history (and after entities are taken out, as a
/// late event does).
#[test]
fn the_folds_scores_equal_the_formulas_at_every_hour() {
    use chrono::Duration;
    use flowmeter_shared::metrics::efficiency::flow_efficiency_score;
    use flowmeter_shared::metrics::integration::integration_reliability_score;
    use flowmeter_shared::metrics::predictability::delivery_predictability_index;

    let end: DateTime<Utc> = "2026-03-20T12:00:00Z".parse().unwrap();
    let project = generate_project(
        &DemoOptions {
            projects: 1,
            tasks_per_project: 60,
            days: 40,
            seed: 9,
            end,
        },
        0,
    );
    let events = logged(&project);
    let mut state = ProjectState::new(project.project_id);
    let (first, rest) = events.split_at(events.len() / 2);
    state.fold_batch(first, None);
    let mut compared = 0;
    let mut check = |state: &mut ProjectState| {
        let mut at = end - Duration::days(45);
        while at <= end + Duration::days(31) {
            assert_eq!(
                state.integration_reliability(at),
                integration_reliability_score(&state.facts, at),
                "at {at}"
            );
            let window = state.duration_window(at);
            let fast = state.delivery_predictability(at, &window.cycle);
            drop(window);
            let formula = delivery_predictability_index(&state.facts, at, None).value;
            // Equal to the bit: CTS sums the cycle times in ascending order, whatever order
            // they come in (the sorted window here, arrival order in the formula).
            assert_eq!(fast, formula, "DPI at {at}");
            let fast = state.flow_efficiency(at);
            let formula = flow_efficiency_score(&state.facts, at).value;
            assert_eq!(fast.is_some(), formula.is_some(), "FES at {at}");
            if let (Some(fast), Some(formula)) = (fast, formula) {
                assert!(
                    (fast - formula).abs() < 0.011,
                    "FES at {at}: {fast} vs {formula}"
                );
            }
            compared += 1;
            at += Duration::hours(1);
        }
    };
    check(&mut state);
    state.fold_batch(rest, None);
    check(&mut state);
    // Attempts taken out and folded again (a late event) leave the order consistent.
    let ids: Vec<String> = state
        .facts
        .attempts
        .iter()
        .take(5)
        .map(|a| a.attempt_id.clone())
        .collect();
    for id in &ids {
        state.remove_attempt(id);
    }
    let tasks: Vec<String> = state
        .facts
        .tasks
        .iter()
        .step_by(7)
        .map(|t| t.task_id.clone())
        .collect();
    for id in &tasks {
        state.remove_task(id);
    }
    check(&mut state);
    assert!(compared > 5000);
    assert!(
        state.facts.attempts.iter().any(|a| a.result.is_some()),
        "the demo project has finished attempts"
    );
    assert!(
        state
            .milestone_tallies
            .values()
            .any(|m| m.completed_at().is_some()),
        "and completed milestones"
    );
    assert!(
        !state.resolved_blocked.is_empty(),
        "and resolved blocked stays"
    );
}
