use chrono::{TimeZone, Utc};

use super::levels::*;
use super::PerformanceLevel::*;
use super::*;

#[test]
fn deployment_frequency_levels_at_their_boundaries() {
    assert_eq!(deployment_frequency(3.0), Elite);
    assert_eq!(deployment_frequency(1.0), Elite);
    assert_eq!(deployment_frequency(0.999), High);
    assert_eq!(deployment_frequency(1.0 / 7.0), High);
    assert_eq!(deployment_frequency(1.0 / 7.0 - 1e-9), Medium);
    assert_eq!(deployment_frequency(1.0 / 30.0), Medium);
    assert_eq!(deployment_frequency(1.0 / 30.0 - 1e-9), Low);
    assert_eq!(deployment_frequency(0.0), Low);
}

#[test]
fn lead_time_levels_at_their_boundaries() {
    assert_eq!(lead_time(0.0), Elite);
    assert_eq!(lead_time(59.99), Elite);
    assert_eq!(lead_time(60.0), High);
    assert_eq!(lead_time(10_080.0), High);
    assert_eq!(lead_time(10_080.01), Medium);
    assert_eq!(lead_time(259_200.0), Medium);
    assert_eq!(lead_time(259_200.01), Low);
}

#[test]
fn change_failure_rate_levels_at_their_boundaries() {
    assert_eq!(change_failure_rate(0.0), Elite);
    assert_eq!(change_failure_rate(0.15), Elite);
    assert_eq!(change_failure_rate(0.1501), High);
    assert_eq!(change_failure_rate(0.30), High);
    assert_eq!(change_failure_rate(0.3001), Medium);
    assert_eq!(change_failure_rate(0.45), Medium);
    assert_eq!(change_failure_rate(0.4501), Low);
    assert_eq!(change_failure_rate(1.0), Low);
}

#[test]
fn time_to_restore_levels_at_their_boundaries() {
    assert_eq!(time_to_restore(59.99), Elite);
    assert_eq!(time_to_restore(60.0), High);
    assert_eq!(time_to_restore(1439.99), High);
    assert_eq!(time_to_restore(1440.0), Medium);
    assert_eq!(time_to_restore(10_080.0), Medium);
    assert_eq!(time_to_restore(10_080.01), Low);
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, hour, 0, 0).unwrap()
}

fn deployment(env: &str, at: DateTime<Utc>, seq: i64, status: DeploymentStatus) -> DeploymentEvent {
    DeploymentEvent {
        at,
        seq,
        environment: env.to_owned(),
        service: None,
        version: None,
        status: Some(status),
        change_ids: vec!["c1".to_owned()],
        task_ids: Vec::new(),
    }
}

#[test]
fn the_latest_event_in_canonical_order_wins_whatever_the_order_applied() {
    let early = deployment("prod", at(2, 0), 9, DeploymentStatus::Failure);
    let late = deployment("prod", at(3, 0), 1, DeploymentStatus::Success);
    let stamp = |e: &DeploymentEvent| (e.at, e.seq);
    let (mut a, mut b) = (None, None);
    keep_latest(&mut a, early.clone(), stamp);
    keep_latest(&mut a, late.clone(), stamp);
    keep_latest(&mut b, late.clone(), stamp);
    keep_latest(&mut b, early, stamp);
    keep_latest(&mut b, late.clone(), stamp);
    assert_eq!(a, Some(late.clone()));
    assert_eq!(b, Some(late));
}

#[test]
fn no_data_gives_nulls_and_no_levels() {
    let dora = compute_dora(&DoraFacts::default(), at(20, 0), &["prod".to_owned()]);
    assert_eq!(dora, DoraMetrics::default());
    assert_eq!(dora.deployment_frequency.per_day, None);
    assert_eq!(dora.change_failure_rate.rate, None);
}

#[test]
fn a_change_counts_from_its_first_successful_production_deployment() {
    let mut facts = DoraFacts::default();
    facts.changes.insert(
        "c1".into(),
        ChangeFacts {
            committed_at: at(1, 0),
            seq: 1,
            task_id: None,
            author: None,
            service: None,
        },
    );
    for (id, env, day, status) in [
        ("d-staging", "staging", 1, DeploymentStatus::Success),
        ("d-failed", "prod", 2, DeploymentStatus::Failure),
        ("d-ok", "prod", 3, DeploymentStatus::Success),
        ("d-again", "prod", 4, DeploymentStatus::Success),
    ] {
        facts.deployments.insert(
            id.into(),
            DeploymentFacts {
                started: None,
                finished: Some(deployment(env, at(day, 0), 1, status)),
            },
        );
    }
    let dora = compute_dora(&facts, at(10, 0), &["prod".to_owned()]);
    assert_eq!(dora.lead_time_for_changes.p50_minutes, Some(2880.0));
    assert_eq!(dora.lead_time_for_changes.sample_size, 1);
    assert_eq!(dora.deployment_frequency.count_30d, Some(2));
    assert_eq!(dora.change_failure_rate.rate, Some(0.3333));
    assert_eq!(dora.change_failure_rate.performance_level, Some(Medium));
}
