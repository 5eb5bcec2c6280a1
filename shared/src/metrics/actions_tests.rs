use chrono::{Duration, TimeZone};

use super::*;
use crate::metrics::compute_summary;
use crate::metrics::facts::{GateFacts, TaskFacts};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 20, 12, 0, 0).unwrap()
}

fn hours_ago(h: i64) -> DateTime<Utc> {
    now() - Duration::hours(h)
}

fn task(id: &str, state: TaskState, since: DateTime<Utc>) -> TaskFacts {
    let mut t = TaskFacts::new(id, since - Duration::hours(1));
    t.state = state;
    t.state_entered_at = since;
    t.claimed_at = Some(since);
    match state {
        TaskState::Implemented => t.implemented_at = Some(since),
        TaskState::Blocked => t.blocked_since = Some(since),
        _ => {}
    }
    t
}

fn suggestions(facts: &ProjectFacts, firing: &[AlertRef]) -> Vec<SuggestedAction> {
    let summary = compute_summary(facts, now(), None);
    suggest_actions(facts, &summary, now(), firing)
}

#[test]
fn a_healthy_project_gets_no_suggestion() {
    let facts = ProjectFacts {
        tasks: vec![
            task("a", TaskState::InProgress, hours_ago(20)),
            task("b", TaskState::Implemented, hours_ago(3)),
            task("c", TaskState::Blocked, hours_ago(48)),
            task("d", TaskState::Claimed, hours_ago(7 * 24)),
        ],
        ..ProjectFacts::default()
    };
    assert_eq!(
        suggestions(&facts, &[]),
        vec![],
        "exactly 48 h and 7 d are not beyond"
    );
    assert_eq!(suggestions(&ProjectFacts::default(), &[]), vec![]);
}

#[test]
fn a_large_backlog_escalates_with_the_oldest_implemented_tasks() {
    let tasks: Vec<TaskFacts> = (0..12)
        .map(|i| {
            task(
                &format!("t{i:02}"),
                TaskState::Implemented,
                hours_ago(100 - i),
            )
        })
        .collect();
    let facts = ProjectFacts {
        tasks,
        ..ProjectFacts::default()
    };
    let alert = AlertRef {
        metric_key: "ini_backlog".into(),
        id: Uuid::from_u128(7),
    };
    let other = AlertRef {
        metric_key: "FES".into(),
        id: Uuid::from_u128(8),
    };
    let actions = suggestions(&facts, &[alert, other]);
    assert_eq!(actions.len(), 1);
    let a = &actions[0];
    assert_eq!(a.action_type, ActionType::Escalate);
    assert_eq!(a.confidence, 0.5, "backlog alone; DPI is null without data");
    assert_eq!(
        a.affected_tasks,
        (0..10).map(|i| format!("t{i:02}")).collect::<Vec<_>>(),
        "the ten oldest, oldest first"
    );
    assert_eq!(
        a.evidence_refs,
        vec![
            "metric:ini_backlog:12".to_owned(),
            format!("alert:{}", Uuid::from_u128(7))
        ]
    );
    assert!(a.rationale.contains("12 tasks"), "{}", a.rationale);
}

#[test]
fn escalate_adds_half_for_a_low_dpi_and_needs_more_than_ten() {
    let facts = ProjectFacts {
        tasks: (0..10)
            .map(|i| task(&format!("t{i}"), TaskState::Implemented, hours_ago(5)))
            .collect(),
        ..ProjectFacts::default()
    };
    let mut summary = compute_summary(&facts, now(), None);
    assert_eq!(
        suggest_actions(&facts, &summary, now(), &[]),
        vec![],
        "10 is not > 10"
    );
    summary.north_star.delivery_predictability_index.value = Some(49.99);
    let actions = suggest_actions(&facts, &summary, now(), &[]);
    assert_eq!(actions[0].confidence, 0.5);
    assert_eq!(actions[0].evidence_refs, vec!["metric:DPI:49.99"]);
    summary.operational.backlog.implemented_not_integrated = 11;
    let actions = suggest_actions(&facts, &summary, now(), &[]);
    assert_eq!(actions[0].confidence, 1.0);
    assert_eq!(
        actions[0].evidence_refs,
        vec!["metric:ini_backlog:11", "metric:DPI:49.99"]
    );
    summary.north_star.delivery_predictability_index.value = Some(50.0);
    assert_eq!(
        suggest_actions(&facts, &summary, now(), &[])[0].confidence,
        0.5
    );
}

fn gate(id: &str, task: &str, reviewer: &str, requested: DateTime<Utc>) -> GateFacts {
    GateFacts {
        gate_id: id.into(),
        task_id: task.into(),
        gate_type: Some("review_gate".into()),
        reviewer: Some(reviewer.into()),
        requested_at: Some(requested),
        decided_at: None,
        outcome: None,
        sla_hours: None,
    }
}

#[test]
fn an_overloaded_reviewer_gets_a_reroute_with_their_pending_tasks() {
    // ana 5 pending, bo 1, cy 2: median 2, ana holds more than 4.
    let mut gates = Vec::new();
    for i in 0..5 {
        gates.push(gate(
            &format!("ga{i}"),
            &format!("ta{i}"),
            "ana",
            hours_ago(10 + i),
        ));
    }
    gates.push(gate("gb", "tb", "bo", hours_ago(30)));
    gates.push(gate("gc1", "tc1", "cy", hours_ago(31)));
    gates.push(gate("gc2", "tc2", "cy", hours_ago(32)));
    let facts = ProjectFacts {
        gates,
        ..ProjectFacts::default()
    };
    let actions = suggestions(&facts, &[]);
    assert_eq!(actions.len(), 1);
    let a = &actions[0];
    assert_eq!(a.action_type, ActionType::RerouteReviewer);
    assert_eq!(a.confidence, 0.4);
    assert_eq!(a.affected_tasks, vec!["ta4", "ta3", "ta2", "ta1", "ta0"]);
    assert_eq!(
        a.evidence_refs,
        vec!["metric:gates.pending_by_reviewer:ana:5"]
    );

    // 4 is not more than twice the median of 2.
    let mut facts = facts;
    facts.gates.remove(0);
    assert_eq!(suggestions(&facts, &[]), vec![]);
}

#[test]
fn slow_reviews_alone_reroute_with_every_pending_task() {
    let mut decided = gate("g1", "t1", "ana", hours_ago(60));
    decided.decided_at = Some(hours_ago(10)); // 50 h
    let facts = ProjectFacts {
        gates: vec![
            decided,
            gate("g2", "t2", "bo", hours_ago(5)),
            gate("g3", "t3", "cy", hours_ago(9)),
        ],
        ..ProjectFacts::default()
    };
    let actions = suggestions(&facts, &[]);
    assert_eq!(actions.len(), 1);
    assert_eq!(actions[0].confidence, 0.6);
    assert_eq!(actions[0].affected_tasks, vec!["t3", "t2"]);
    assert_eq!(
        actions[0].evidence_refs,
        vec!["metric:gates.avg_latency_minutes:3000"]
    );
}

#[test]
fn long_blocked_tasks_get_unblock_with_a_day_by_day_confidence() {
    let facts = ProjectFacts {
        tasks: vec![
            task("b1", TaskState::Blocked, hours_ago(49)),
            task("b2", TaskState::Blocked, hours_ago(48 + 24 * 3 + 5)),
            task("b3", TaskState::Blocked, hours_ago(47)),
        ],
        ..ProjectFacts::default()
    };
    let actions = suggestions(&facts, &[]);
    let unblock = actions
        .iter()
        .find(|a| a.action_type == ActionType::Unblock)
        .unwrap();
    // The longest is 3 whole days beyond 48 h: 0.5 + 0.3.
    assert_eq!(unblock.confidence, 0.8);
    assert_eq!(unblock.affected_tasks, vec!["b2", "b1"]);
    assert_eq!(
        unblock.evidence_refs,
        vec![
            "metric:blocked.over_48h_count:2",
            "metric:blocked.longest_hours:125"
        ]
    );
    // Six whole days or more beyond 48 h caps at 1.
    let facts = ProjectFacts {
        tasks: vec![task("b", TaskState::Blocked, hours_ago(48 + 24 * 9))],
        ..ProjectFacts::default()
    };
    let capped = suggestions(&facts, &[]);
    assert!(capped
        .iter()
        .any(|a| a.action_type == ActionType::Unblock && a.confidence == 1.0));
}

#[test]
fn old_wip_gets_swarm_and_suggestions_sort_by_confidence() {
    let facts = ProjectFacts {
        tasks: vec![
            task("w1", TaskState::InProgress, hours_ago(7 * 24 + 2 * 24 + 1)),
            task("w2", TaskState::Claimed, hours_ago(7 * 24 + 1)),
            task("b1", TaskState::Blocked, hours_ago(50)),
        ],
        ..ProjectFacts::default()
    };
    let actions = suggestions(&facts, &[]);
    let kinds: Vec<(ActionType, f64)> = actions
        .iter()
        .map(|a| (a.action_type, a.confidence))
        .collect();
    // swarm: oldest is 2 whole days beyond 7 d → 0.6; unblock: 0 days beyond 48 h → 0.5.
    assert_eq!(
        kinds,
        vec![(ActionType::Swarm, 0.6), (ActionType::Unblock, 0.5)]
    );
    assert_eq!(actions[0].affected_tasks, vec!["w1", "w2"]);
}
