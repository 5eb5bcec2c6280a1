//! Shape tests: the serialized summary must have exactly the keys of the SPEC §5 example,
//! with `null` (not a missing key) for every value that cannot be computed.

use super::*;
use crate::metrics::facts::{AttemptFacts, AttemptResult, GateFacts, TaskFacts};
use crate::metrics::state::TaskState;
use crate::metrics::summary::{ActionType, SuggestedAction};
use chrono::{TimeDelta, TimeZone};
use serde_json::{json, Value};

/// The `metrics` example of SPEC §5, verbatim.
fn spec_example() -> Value {
    json!({
      "north_star": {
        "delivery_predictability_index": {"value": 78.5, "trend": "up", "change_pct": 5.2,
          "components": {"schedule_reliability": 0.8, "cycle_time_stability": 0.71, "blocker_resolution_rate": 0.9}},
        "flow_efficiency_score": {"value": 41.0, "active_time_pct": 41.0, "waiting_time_pct": 52.0, "blocked_time_pct": 7.0},
        "integration_reliability_score": {"value": 88.0, "success_rate": 0.9, "avg_recovery_minutes": 95.0}
      },
      "operational": {
        "throughput": {"tasks_integrated_week": 24, "tasks_by_milestone": [{"milestone_id": "m1", "count": 16}]},
        "cycle_time": {"p50_minutes": 1440.0, "p90_minutes": 4320.0, "p95_minutes": 7200.0},
        "lead_time": {"p50_minutes": 2880.0, "p90_minutes": 8640.0, "p95_minutes": 10080.0},
        "wip": {"total_count": 12, "avg_age_hours": 36.5,
                "aging_buckets": {"lt_24h": 5, "24h_to_72h": 4, "72h_to_7d": 2, "gt_7d": 1}},
        "blocked": {"ratio": 0.08, "avg_blocked_hours": 12.5, "count": 1},
        "backlog": {"implemented_not_integrated": 5, "avg_age_hours": 18.2},
        "gates": {"queue_length": 3, "avg_latency_minutes": 120.0, "sla_breach_rate": 0.05},
        "integration_outcomes": {"success": 22, "conflict": 1, "failed_checks": 1, "aborted": 0,
                                 "avg_retry_to_success_minutes": 30.0},
        "state_distribution": {"by_state": {"backlog": 3, "ready": 4, "reserved": 0, "claimed": 1, "in_progress": 6,
          "implemented": 5, "integrated": 40, "conflict": 0, "blocked": 1, "abandoned": 0, "cancelled": 2}, "wip_count": 12}
      },
      "actionability": {
        "bottleneck_contribution": [{"stage": "review", "delay_contribution_pct": 45.0}],
        "suggested_actions": [{"action_type": "escalate", "confidence": 0.5, "affected_tasks": ["t7"],
          "rationale": "...", "evidence_refs": ["metric:ini_backlog:12"]}]
      },
      // SPEC §19 (docs/DORA.md).
      "dora": {
        "deployment_frequency": {"per_day": 0.1, "count_30d": 3, "performance_level": "medium"},
        "lead_time_for_changes": {"p50_minutes": 1440.0, "p90_minutes": 2448.0, "sample_size": 4,
                                  "performance_level": "high"},
        "change_failure_rate": {"rate": 0.6, "failures": 3, "deployments": 5, "performance_level": "low"},
        "time_to_restore": {"p50_minutes": 975.0, "sample_size": 2, "performance_level": "high"}
      }
    })
}

/// Asserts that `ours` has exactly the keys of `spec` at every level (ignoring our optional
/// `reason` fields), and that a value the spec shows as a number is a number or `null`.
fn assert_same_shape(ours: &Value, spec: &Value, path: &str) {
    match (ours, spec) {
        (Value::Object(ours), Value::Object(spec)) => {
            let mut our_keys: Vec<&String> = ours.keys().filter(|k| *k != "reason").collect();
            let mut spec_keys: Vec<&String> = spec.keys().collect();
            our_keys.sort();
            spec_keys.sort();
            assert_eq!(our_keys, spec_keys, "keys of {path}");
            for (key, spec_value) in spec {
                assert_same_shape(&ours[key], spec_value, &format!("{path}.{key}"));
            }
        }
        (Value::Array(ours), Value::Array(spec)) => {
            if let (Some(first), Some(spec_first)) = (ours.first(), spec.first()) {
                assert_same_shape(first, spec_first, &format!("{path}[0]"));
            }
        }
        (Value::Null, _) => {}
        (ours, spec) => assert_eq!(
            std::mem::discriminant(ours),
            std::mem::discriminant(spec),
            "type of {path}: {ours} vs {spec}"
        ),
    }
}

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2025, 3, 31, 12, 0, 0).unwrap()
}

/// A small but complete project: integrated, WIP, blocked and implemented tasks, a pending
/// and a decided gate, a failed then successful integration.
fn busy_project() -> ProjectFacts {
    let ago = |h: i64| now() - TimeDelta::hours(h);
    let mut done = TaskFacts {
        milestone_id: Some("m1".into()),
        state: TaskState::Integrated,
        claimed_at: Some(ago(30)),
        integrated_at: Some(ago(2)),
        terminal_at: Some(ago(2)),
        state_entered_at: ago(2),
        ..TaskFacts::new("t1", ago(50))
    };
    done.time_in_state_seconds
        .set(TaskState::InProgress, 20.0 * 3600.0);
    done.time_in_state_seconds
        .set(TaskState::Implemented, 8.0 * 3600.0);
    let mut done2 = done.clone();
    done2.task_id = "t2".into();
    done2.claimed_at = Some(ago(12));
    let blocked = TaskFacts {
        state: TaskState::Blocked,
        claimed_at: Some(ago(40)),
        state_entered_at: ago(5),
        blocked_since: Some(ago(5)),
        ..TaskFacts::new("t3", ago(60))
    };
    let implemented = TaskFacts {
        state: TaskState::Implemented,
        claimed_at: Some(ago(10)),
        implemented_at: Some(ago(3)),
        state_entered_at: ago(3),
        ..TaskFacts::new("t4", ago(20))
    };
    let attempt = |id: &str, h: i64, result| AttemptFacts {
        attempt_id: id.into(),
        task_id: "t1".into(),
        attempt_number: None,
        started_at: None,
        finished_at: Some(ago(h)),
        result: Some(result),
    };
    ProjectFacts {
        tasks: vec![done, done2, blocked, implemented],
        gates: vec![
            GateFacts {
                gate_id: "g1".into(),
                task_id: "t4".into(),
                gate_type: None,
                reviewer: Some("r".into()),
                requested_at: Some(ago(3)),
                decided_at: None,
                outcome: None,
                sla_hours: None,
            },
            GateFacts {
                gate_id: "g0".into(),
                task_id: "t1".into(),
                gate_type: None,
                reviewer: Some("r".into()),
                requested_at: Some(ago(6)),
                decided_at: Some(ago(4)),
                outcome: Some(crate::metrics::facts::GateOutcome::Approved),
                sla_hours: Some(24.0),
            },
        ],
        attempts: vec![
            attempt("a1", 3, AttemptResult::Conflict),
            attempt("a2", 2, AttemptResult::Success),
        ],
        milestones: Vec::new(),
    }
}

#[test]
fn summary_has_exactly_the_spec_shape() {
    let mut summary = compute_summary(&busy_project(), now(), Some(50.0));
    summary
        .actionability
        .suggested_actions
        .push(SuggestedAction {
            action_type: ActionType::Escalate,
            confidence: 0.5,
            affected_tasks: vec!["t4".into()],
            rationale: "Backlog is high.".into(),
            evidence_refs: vec!["metric:ini_backlog:1".into()],
        });
    let json = serde_json::to_value(&summary).unwrap();
    assert_same_shape(&json, &spec_example(), "metrics");
    assert!(!json["operational"]["throughput"]["tasks_by_milestone"]
        .as_array()
        .unwrap()
        .is_empty());
    assert!(!json["actionability"]["bottleneck_contribution"]
        .as_array()
        .unwrap()
        .is_empty());
}

#[test]
fn busy_project_numbers() {
    let summary = compute_summary(&busy_project(), now(), None);
    let op = &summary.operational;
    assert_eq!(op.throughput.tasks_integrated_week, 2);
    // Cycle times 28 h and 10 h = 1680 and 600 min: p50 = 1140.
    assert_eq!(op.cycle_time.p50_minutes, Some(1140.0));
    // WIP: blocked t3 (age 40 h) and implemented t4 (age 10 h) → mean 25 h.
    assert_eq!(op.wip.total_count, 2);
    assert_eq!(op.wip.avg_age_hours, Some(25.0));
    assert_eq!(op.blocked.ratio, 0.5);
    assert_eq!(op.blocked.avg_blocked_hours, Some(5.0));
    assert_eq!(op.backlog.avg_age_hours, Some(3.0));
    assert_eq!(op.gates.queue_length, 1);
    assert_eq!(op.gates.avg_latency_minutes, Some(120.0));
    assert_eq!(op.gates.sla_breach_rate, Some(0.0));
    assert_eq!(
        op.integration_outcomes.avg_retry_to_success_minutes,
        Some(60.0)
    );
    // FES: active 20 + 20 h, waiting 8 + 8 h → 40/56 = 71.43 %.
    let fes = &summary.north_star.flow_efficiency_score;
    assert_eq!(fes.value, Some(71.43));
    // IRS: success 1/2; recovery 60 min → speed 1 − 60/1440 = 0.958333;
    // 0.6·0.5 + 0.4·0.958333 = 0.683333 → 68.33.
    let irs = &summary.north_star.integration_reliability_score;
    assert_eq!(irs.value, Some(68.33));
    // DPI: CTS only: μ 1140, σ 540 → 1 − 0.473684 = 0.526316 → 52.63; no trend without history.
    let dpi = &summary.north_star.delivery_predictability_index;
    assert_eq!(dpi.components.cycle_time_stability, Some(0.5263));
    assert_eq!(dpi.value, Some(52.63));
    assert_eq!(dpi.trend, None);
    assert!(summary.actionability.suggested_actions.is_empty());
}

#[test]
fn empty_project_serializes_nulls_not_missing_keys() {
    let summary = compute_summary(&ProjectFacts::default(), now(), Some(70.0));
    let json = serde_json::to_value(&summary).unwrap();
    assert_same_shape(&json, &spec_example(), "metrics");
    let dpi = &json["north_star"]["delivery_predictability_index"];
    assert!(dpi["value"].is_null());
    assert!(dpi["trend"].is_null());
    assert!(dpi["components"]["schedule_reliability"].is_null());
    assert_eq!(dpi["reason"], "no_dpi_components");
    let irs = &json["north_star"]["integration_reliability_score"];
    assert!(irs["value"].is_null());
    assert_eq!(irs["reason"], "no_finished_attempts");
    assert_eq!(
        json["operational"]["cycle_time"]["reason"],
        "no_integrated_tasks"
    );
    assert!(json["operational"]["cycle_time"]["p50_minutes"].is_null());
    assert_eq!(json["operational"]["wip"]["total_count"], 0);
    assert_eq!(json["operational"]["blocked"]["ratio"], 0.0);
    assert!(json["operational"]["gates"]["sla_breach_rate"].is_null());
    assert_eq!(
        json["actionability"],
        json!({"bottleneck_contribution": [], "suggested_actions": []})
    );
}

#[test]
fn summary_round_trips_through_json() {
    let summary = compute_summary(&busy_project(), now(), Some(40.0));
    let json = serde_json::to_string(&summary).unwrap();
    let back: SummaryMetrics = serde_json::from_str(&json).unwrap();
    assert_eq!(back, summary);
}

#[test]
fn spec_example_deserializes() {
    let parsed: SummaryMetrics = serde_json::from_value(spec_example()).unwrap();
    assert_eq!(parsed.operational.wip.aging_buckets.from_24h_to_72h, 4);
    assert_eq!(
        parsed.north_star.delivery_predictability_index.trend,
        Some(crate::metrics::summary::Trend::Up)
    );
}
