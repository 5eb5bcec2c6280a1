//! The property test: generated streams in time order and with late deliveries, in random
//! run sizes, give the same rows.

use super::*;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

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
    let dora = dora_events(&mut r, &mut b, start);
    events.extend(dora.iter().cloned());
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
    // Changes, deployments and incidents reach B latest first, spread over the rounds:
    // finishes before starts, incidents before the deployments they name, changes after
    // the deployments that contain them.
    let mut latest_first = dora;
    latest_first.sort_by_key(|e| std::cmp::Reverse(occurred(e)));
    let n = latest_first.len();
    for (i, event) in latest_first.into_iter().enumerate() {
        rounds[i * 5 / n].push(event);
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

/// Deployments every two and a half days or so to production or staging, each with the
/// changes committed since the last successful one, some failing or cancelled, some
/// finished twice (a failed first attempt, then the final one), some followed by an
/// incident that names it (most of them resolved).
fn dora_events(
    r: &mut Lcg,
    b: &mut EventBuilder,
    start: chrono::DateTime<chrono::Utc>,
) -> Vec<Value> {
    let mut out = Vec::new();
    let mut pending: Vec<String> = Vec::new();
    let services = ["api", "web"];
    for k in 0..4 + r.next(6) {
        let at = start + Span::hours(12 + 60 * k as i64 + r.next(30) as i64);
        let service = services[r.next(2) as usize];
        for c in 0..1 + r.next(3) {
            let id = format!("c{k}-{c}");
            let committed = at - Span::minutes(30 + r.next(600) as i64);
            out.push(b.event(
                "change",
                &id,
                "change_committed",
                committed,
                json!({"service": service, "author": "ana"}),
            ));
            pending.push(id);
        }
        let environment = if r.chance(70) { "prod" } else { "staging" };
        let status = ["success", "success", "failure", "cancelled"][r.next(4) as usize];
        let deployment = format!("d{k}");
        let changes = pending.clone();
        if status == "success" && environment == "prod" {
            pending.clear();
        }
        let listed: &[String] = if r.chance(50) { &changes } else { &[] };
        out.push(b.event(
            "deployment",
            &deployment,
            "deployment_started",
            at - Span::minutes(10),
            json!({"environment": environment, "service": service, "change_ids": listed}),
        ));
        if r.chance(25) {
            // A first attempt of the same deployment that failed; the later finish wins.
            out.push(b.event(
                "deployment",
                &deployment,
                "deployment_finished",
                at - Span::minutes(5),
                json!({"environment": environment, "service": service, "status": "failure",
                       "change_ids": changes}),
            ));
        }
        out.push(b.event(
            "deployment",
            &deployment,
            "deployment_finished",
            at,
            json!({"environment": environment, "service": service, "status": status,
                   "change_ids": changes}),
        ));
        if r.chance(40) {
            let incident = format!("i{k}");
            let opened = at + Span::minutes(20 + r.next(180) as i64);
            out.push(b.event(
                "incident",
                &incident,
                "incident_opened",
                opened,
                json!({"service": service, "caused_by_deployment_id": deployment}),
            ));
            if r.chance(75) {
                let resolved = opened + Span::minutes(5 + r.next(2000) as i64);
                out.push(b.event(
                    "incident",
                    &incident,
                    "incident_resolved",
                    resolved,
                    json!({"service": service}),
                ));
            }
        }
    }
    out
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
                let body: Value =
                    json_at(app, &format!("/v1/metrics/summary?project_id={p}")).await;
                let mut metrics = body["metrics"].clone();
                strip(&mut metrics);
                metrics
            }
        };
        assert_eq!(summary(a).await, summary(b).await, "case {case}");
    }
}
