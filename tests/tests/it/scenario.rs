//! A hand-built project whose every summary number is worked out by hand below, folded by
//! the real worker. Snapshot time ("now"): 2026-03-14T12:00:00Z (FLOWMETER_TEST_NOW).
//!
//! Tasks (times are March 2026, UTC):
//! - t1 (m1, ana): created 2 09:00, ready 2 10:00, claimed 3 09:00, in_progress 3 10:00,
//!   implemented 4 10:00, integrated 4 18:00. Gate g1 requested 4 10:00 (SLA 24 h), approved
//!   4 16:00. Attempt a1 4 17:00–18:00 success.
//! - t2 (m1, bo): created 2 09:00, claimed 5 09:00, in_progress 5 10:00, blocked 6 10:00,
//!   in_progress 7 10:00, implemented 8 10:00, integrated 10 10:00. Gate g2 requested 8 10:00
//!   (SLA 24 h), approved 9 16:00 (30 h). Attempt a2 finished failed_checks 9 18:00, a3
//!   success 10 10:00.
//! - t6 (no milestone, cy): created 3 09:00, claimed 4 09:00, in_progress 4 10:00,
//!   implemented 5 09:00, conflict 5 11:00 (attempt a4 conflict), in_progress 5 13:00,
//!   implemented 6 13:00, integrated 6 15:00 (attempt a5 success).
//! - t3 (m2, ana): created 6 09:00, claimed 10 09:00, in_progress 10 12:00, implemented
//!   12 12:00; gate g3 requested 12 12:00, pending.
//! - t4 (m2, cy): created 10 09:00, claimed 11 09:00, in_progress 11 09:30, blocked 12 12:00.
//! - t5 (m2, bo): created 13 09:00, still in backlog.
//! - t7 (m2, ana): created 11 09:00, cancelled 12 09:00.
//!
//! Milestones: m1 planned 1 00:00, due 11 00:00 (grace 10 % of 10 d = 1 d); m2 planned 5,
//! due 25.
//!
//! Worked numbers:
//! - cycle times (claimed → integrated): t1 33 h = 1980, t6 54 h = 3240, t2 121 h = 7260 min.
//!   p50 3240; p90 at position 2.8: 3240 + 0.8·4020 = 6456; p95 at 2.9: 3240 + 0.9·4020 = 6858.
//! - lead times: t1 57 h = 3420, t6 78 h = 4680, t2 193 h = 11580 min. p50 4680,
//!   p90 4680 + 0.8·6900 = 10200, p95 4680 + 0.9·6900 = 10890.
//! - throughput over [7 12:00, 14 12:00): only t2 → 1, milestone m1.
//! - WIP: t3 (implemented, age 99 h) and t4 (blocked, age 75 h) → 2, avg 87 h, both in 72h_to_7d.
//! - blocked: 1, ratio 1/2, blocked for 48 h. Backlog: t3, implemented 48 h ago.
//! - gates: queue 1 (g3); decisions in 7 d: g2 only, 1800 min > 24 h → breach rate 1.
//! - outcomes in 7 d: a2 failed_checks, a3 success; retry to success for t2: 9 18:00 → 10 10:00
//!   = 960 min.
//! - DPI: SR = 1 (m1 completed 10 10:00 ≤ due + 1 d); CTS = 1 − σ/μ with μ = 4160,
//!   σ = √5069600 = 2251.5772 → 0.458756; BRR = 1 (t2's 24 h episode). DPI = 100·(0.4 +
//!   0.35·0.458756 + 0.25) = 81.06. Seven days earlier (end of 6 March): only CTS, over t1
//!   and t6: μ 2610, σ 630 → 0.758621 → 75.86. Change (81.06 − 75.86)/75.86 = +6.85 % → up.
//! - FES over t1, t2, t6 (closed stays; backlog time is not counted): active 25 + 49 + 48 =
//!   122 h, waiting 31 + 48 + 6 = 85 h, blocked 24 h → 52.81 / 36.80 / 10.39.
//! - IRS: 5 attempts finished in 30 d, 3 succeeded → 0.6; recoveries 960 and 1680 min → mean
//!   1320 min = 22 h → speed 1 − 22/24 = 0.083333; IRS = 100·(0.36 + 0.033333) = 39.33.
//! - bottleneck over total lead time 328 h: implementation 122, backlog 97, review 60,
//!   blocked 24, queue 23, rework 2 → 37.20, 29.57, 18.29, 7.32, 7.01, 0.61.

use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::{assert_verified, backfill, worker_json};
use flowmeter_tests::TestApp;
use serde_json::{json, Value};

pub fn hand_built_events(b: &mut EventBuilder) -> Vec<Value> {
    let mut events: Vec<Value> = Vec::new();
    let m = |d: u32, hm: &str| t(&format!("2026-03-{d:02}T{hm}:00Z"));
    let tr = |b: &mut EventBuilder, task: &str, to: &str, at| b.transition(task, to, at);
    events.push(b.event(
        "project",
        "p",
        "project_upserted",
        m(1, "00:00"),
        json!({"name": "Hand"}),
    ));
    events.push(b.event("milestone", "m1", "milestone_upserted", m(1, "00:00"),
        json!({"name": "Alpha", "planned_start_at": "2026-03-01T00:00:00Z", "due_at": "2026-03-11T00:00:00Z"})));
    events.push(b.event("milestone", "m2", "milestone_upserted", m(5, "00:00"),
        json!({"name": "Beta", "planned_start_at": "2026-03-05T00:00:00Z", "due_at": "2026-03-25T00:00:00Z"})));
    let created = |b: &mut EventBuilder, task: &str, at, milestone: Option<&str>, who: &str| {
        b.task_created(
            task,
            at,
            json!({"milestone_id": milestone, "assignee": who, "task_class": "feature"}),
        )
    };
    let gate = |b: &mut EventBuilder, id: &str, task: &str, at, payload: Value| {
        let mut p = payload;
        p["task_id"] = json!(task);
        b.event(
            "gate",
            id,
            if p.get("outcome").is_some() {
                "gate_decision_recorded"
            } else {
                "gate_requested"
            },
            at,
            p,
        )
    };
    let attempt =
        |b: &mut EventBuilder, id: &str, task: &str, at, result: Option<&str>| match result {
            None => b.event(
                "integration_attempt",
                id,
                "integration_attempt_started",
                at,
                json!({"task_id": task}),
            ),
            Some(r) => b.event(
                "integration_attempt",
                id,
                "integration_attempt_finished",
                at,
                json!({"task_id": task, "result": r}),
            ),
        };
    // t1
    events.push(created(b, "t1", m(2, "09:00"), Some("m1"), "ana"));
    events.push(tr(b, "t1", "ready", m(2, "10:00")));
    events.push(tr(b, "t1", "claimed", m(3, "09:00")));
    events.push(tr(b, "t1", "in_progress", m(3, "10:00")));
    events.push(tr(b, "t1", "implemented", m(4, "10:00")));
    events.push(gate(
        b,
        "g1",
        "t1",
        m(4, "10:00"),
        json!({"reviewer": "rev1", "sla_hours": 24}),
    ));
    events.push(gate(
        b,
        "g1",
        "t1",
        m(4, "16:00"),
        json!({"outcome": "approved"}),
    ));
    events.push(attempt(b, "a1", "t1", m(4, "17:00"), None));
    events.push(attempt(b, "a1", "t1", m(4, "18:00"), Some("success")));
    events.push(tr(b, "t1", "integrated", m(4, "18:00")));
    // t2
    events.push(created(b, "t2", m(2, "09:00"), Some("m1"), "bo"));
    events.push(tr(b, "t2", "claimed", m(5, "09:00")));
    events.push(tr(b, "t2", "in_progress", m(5, "10:00")));
    events.push(tr(b, "t2", "blocked", m(6, "10:00")));
    events.push(tr(b, "t2", "in_progress", m(7, "10:00")));
    events.push(tr(b, "t2", "implemented", m(8, "10:00")));
    events.push(gate(
        b,
        "g2",
        "t2",
        m(8, "10:00"),
        json!({"reviewer": "rev1", "sla_hours": 24}),
    ));
    events.push(gate(
        b,
        "g2",
        "t2",
        m(9, "16:00"),
        json!({"outcome": "approved"}),
    ));
    events.push(attempt(b, "a2", "t2", m(9, "17:00"), None));
    events.push(attempt(b, "a2", "t2", m(9, "18:00"), Some("failed_checks")));
    events.push(attempt(b, "a3", "t2", m(10, "09:00"), None));
    events.push(attempt(b, "a3", "t2", m(10, "10:00"), Some("success")));
    events.push(tr(b, "t2", "integrated", m(10, "10:00")));
    // t6
    events.push(created(b, "t6", m(3, "09:00"), None, "cy"));
    events.push(tr(b, "t6", "claimed", m(4, "09:00")));
    events.push(tr(b, "t6", "in_progress", m(4, "10:00")));
    events.push(tr(b, "t6", "implemented", m(5, "09:00")));
    events.push(attempt(b, "a4", "t6", m(5, "10:00"), None));
    events.push(attempt(b, "a4", "t6", m(5, "11:00"), Some("conflict")));
    events.push(tr(b, "t6", "conflict", m(5, "11:00")));
    events.push(tr(b, "t6", "in_progress", m(5, "13:00")));
    events.push(tr(b, "t6", "implemented", m(6, "13:00")));
    events.push(attempt(b, "a5", "t6", m(6, "14:00"), None));
    events.push(attempt(b, "a5", "t6", m(6, "15:00"), Some("success")));
    events.push(tr(b, "t6", "integrated", m(6, "15:00")));
    // t3
    events.push(created(b, "t3", m(6, "09:00"), Some("m2"), "ana"));
    events.push(tr(b, "t3", "claimed", m(10, "09:00")));
    events.push(tr(b, "t3", "in_progress", m(10, "12:00")));
    events.push(tr(b, "t3", "implemented", m(12, "12:00")));
    events.push(gate(
        b,
        "g3",
        "t3",
        m(12, "12:00"),
        json!({"reviewer": "rev2"}),
    ));
    // t4
    events.push(created(b, "t4", m(10, "09:00"), Some("m2"), "cy"));
    events.push(tr(b, "t4", "claimed", m(11, "09:00")));
    events.push(tr(b, "t4", "in_progress", m(11, "09:30")));
    events.push(tr(b, "t4", "blocked", m(12, "12:00")));
    // t5, t7
    events.push(created(b, "t5", m(13, "09:00"), Some("m2"), "bo"));
    events.push(created(b, "t7", m(11, "09:00"), Some("m2"), "ana"));
    events.push(tr(b, "t7", "cancelled", m(12, "09:00")));
    // Producers append in time order.
    events.sort_by_key(|e| e["occurred_at"].as_str().unwrap().to_owned());
    events
}

pub fn expected_metrics() -> Value {
    json!({
        "north_star": {
            "delivery_predictability_index": {
                "value": 81.06, "trend": "up", "change_pct": 6.85,
                "components": {"schedule_reliability": 1.0, "cycle_time_stability": 0.4588, "blocker_resolution_rate": 1.0}
            },
            "flow_efficiency_score": {"value": 52.81, "active_time_pct": 52.81, "waiting_time_pct": 36.8, "blocked_time_pct": 10.39},
            "integration_reliability_score": {"value": 39.33, "success_rate": 0.6, "avg_recovery_minutes": 1320.0}
        },
        "operational": {
            "throughput": {"tasks_integrated_week": 1, "tasks_by_milestone": [{"milestone_id": "m1", "count": 1}]},
            "cycle_time": {"p50_minutes": 3240.0, "p90_minutes": 6456.0, "p95_minutes": 6858.0},
            "lead_time": {"p50_minutes": 4680.0, "p90_minutes": 10200.0, "p95_minutes": 10890.0},
            "wip": {"total_count": 2, "avg_age_hours": 87.0,
                    "aging_buckets": {"lt_24h": 0, "24h_to_72h": 0, "72h_to_7d": 2, "gt_7d": 0}},
            "blocked": {"ratio": 0.5, "avg_blocked_hours": 48.0, "count": 1},
            "backlog": {"implemented_not_integrated": 1, "avg_age_hours": 48.0},
            "gates": {"queue_length": 1, "avg_latency_minutes": 1800.0, "sla_breach_rate": 1.0},
            "integration_outcomes": {"success": 1, "conflict": 0, "failed_checks": 1, "aborted": 0,
                                     "avg_retry_to_success_minutes": 960.0},
            "state_distribution": {"by_state": {"backlog": 1, "ready": 0, "reserved": 0, "claimed": 0, "in_progress": 0,
                "implemented": 1, "integrated": 3, "conflict": 0, "blocked": 1, "abandoned": 0, "cancelled": 1}, "wip_count": 2}
        },
        "actionability": {
            "bottleneck_contribution": [
                {"stage": "implementation", "delay_contribution_pct": 37.2},
                {"stage": "backlog", "delay_contribution_pct": 29.57},
                {"stage": "review", "delay_contribution_pct": 18.29},
                {"stage": "blocked", "delay_contribution_pct": 7.32},
                {"stage": "queue", "delay_contribution_pct": 7.01},
                {"stage": "rework", "delay_contribution_pct": 0.61}
            ],
            "suggested_actions": []
        },
        // No changes, deployments or incidents.
        "dora": crate::dora::scenario::no_dora()
    })
}

/// Lists every path where two JSON values differ.
pub fn json_diff(path: &str, expected: &Value, actual: &Value, out: &mut Vec<String>) {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for (k, v) in e {
                json_diff(
                    &format!("{path}.{k}"),
                    v,
                    a.get(k).unwrap_or(&Value::Null),
                    out,
                );
            }
            for k in a.keys().filter(|k| !e.contains_key(*k)) {
                out.push(format!("{path}.{k}: unexpected {}", a[k]));
            }
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                json_diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => {}
        _ if expected == actual => {}
        _ => out.push(format!("{path}: expected {expected}, got {actual}")),
    }
}

#[tokio::test]
async fn the_hand_built_scenario_produces_the_hand_computed_summary() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&hand_built_events(&mut b)).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-14T12:00:00Z")],
    );
    assert_verified(&app.db.url, b.project_id);

    let client = app.db.client().await;
    let row = client
        .query_one(
            "SELECT payload, health, captured_at, as_of_seq FROM metrics_summary WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap();
    let payload: Value = row.get(0);
    let mut differences = Vec::new();
    json_diff("metrics", &expected_metrics(), &payload, &mut differences);
    assert!(
        differences.is_empty(),
        "summary differs:\n{}",
        differences.join("\n")
    );
    assert_eq!(
        row.get::<_, chrono::DateTime<chrono::Utc>>(2),
        t("2026-03-14T12:00:00Z")
    );

    // Milestone health: m1 done; m2 has 1 of 4 tasks terminal and only 3 days with
    // completions in 30 d (4, 6 and 10 March), so no forecast: score 100·1/4.
    let health: Value = row.get(1);
    let m2 = health
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone_id"] == "m2")
        .unwrap();
    assert_eq!(m2["forecast"]["status"], "insufficient_data");
    assert_eq!(m2["breach_probability"], Value::Null);
    assert_eq!(m2["health_score"], 25.0);
    assert_eq!(m2["health_status"], "red");
    assert_eq!(
        m2["task_summary"],
        json!({"total": 4, "completed": 1, "remaining": 3, "avg_cycle_time_hours": null})
    );

    // State transition counters count task_state_transitioned events only.
    let counts: Vec<(String, i64)> = client
        .query(
            "SELECT task_state, transition_count FROM metrics_state_transition_counter
              WHERE project_id = $1 ORDER BY task_state",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(String, i64)> = [
        ("blocked", 2),
        ("cancelled", 1),
        ("claimed", 5),
        ("conflict", 1),
        ("implemented", 5),
        ("in_progress", 7),
        ("integrated", 3),
        ("ready", 1),
    ]
    .iter()
    .map(|(s, n)| (s.to_string(), *n))
    .collect();
    assert_eq!(counts, expected);
}

#[tokio::test]
async fn a_project_without_data_reports_nulls_with_reasons_not_zeros() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&[b.task_created("t1", t("2026-03-13T09:00:00Z"), json!({}))])
        .await;
    backfill(&app.db.url, b.project_id, 10_000);
    let payload: Value = app
        .db
        .client()
        .await
        .query_one(
            "SELECT payload FROM metrics_summary WHERE project_id = $1",
            &[&b.project_id],
        )
        .await
        .unwrap()
        .get(0);
    let ns = &payload["north_star"];
    assert_eq!(ns["delivery_predictability_index"]["value"], Value::Null);
    assert!(ns["delivery_predictability_index"]["reason"].is_string());
    assert_eq!(ns["flow_efficiency_score"]["value"], Value::Null);
    assert_eq!(ns["integration_reliability_score"]["value"], Value::Null);
    let op = &payload["operational"];
    assert_eq!(op["cycle_time"]["p50_minutes"], Value::Null);
    assert_eq!(op["wip"]["avg_age_hours"], Value::Null);
    assert_eq!(op["wip"]["total_count"], 0);
    assert_eq!(
        op["blocked"]["ratio"], 0.0,
        "ratio is 0 when WIP is 0 (SPEC §4)"
    );
    assert_eq!(op["state_distribution"]["by_state"]["backlog"], 1);
}
