//! The DORA keys split by `environment` or `service` (SPEC §19 breakdown dimensions): each
//! group is a subset of the facts, computed with the same window as the summary.
//!
//! - `environment`: one group per environment a deployment went to, each taken as that
//!   group's production (so staging has its own frequency and failure rate); incidents
//!   count in the group of the deployment they name.
//! - `service`: production deployments per service (their finish's, else their start's);
//!   an incident counts in its own service's group and in that of the deployment it names.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use super::dora::{DoraFacts, Window};
use super::stats::{percentile_cont, round_duration, round_ratio};

/// Dimensions the DORA metrics can be broken down by.
pub const DIMENSIONS: [&str; 2] = ["environment", "service"];

/// One group: its dimension value (`None`: deployments without a service) and its window.
pub type Group = (Option<String>, Window);

fn subset(
    facts: &DoraFacts,
    keep_deployment: impl Fn(&str) -> bool,
    keep_incident: impl Fn(&str, &super::dora::IncidentFacts) -> bool,
) -> DoraFacts {
    let deployments: BTreeMap<_, _> = facts
        .deployments
        .iter()
        .filter(|(id, _)| keep_deployment(id))
        .map(|(id, d)| (id.clone(), d.clone()))
        .collect();
    let incidents = facts
        .incidents
        .iter()
        .filter(|(id, i)| keep_incident(id, i))
        .map(|(id, i)| (id.clone(), i.clone()))
        .collect();
    DoraFacts {
        changes: facts.changes.clone(),
        deployments,
        incidents,
    }
}

/// The groups of `dimension` over `[from, to)`, ordered by dimension value; `None` for a
/// dimension that is not one of [`DIMENSIONS`].
pub fn groups(
    facts: &DoraFacts,
    production: &[String],
    dimension: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<Vec<Group>> {
    let names_one_of = |incident: &super::dora::IncidentFacts, ids: &BTreeSet<&String>| {
        incident
            .causes()
            .any(|cause| ids.iter().any(|id| id.as_str() == cause))
    };
    match dimension {
        "environment" => {
            let environments: BTreeSet<&str> = facts
                .deployments
                .values()
                .filter_map(|d| d.environment())
                .collect();
            Some(
                environments
                    .into_iter()
                    .map(|environment| {
                        let ids: BTreeSet<&String> = facts
                            .deployments
                            .iter()
                            .filter(|(_, d)| d.environment() == Some(environment))
                            .map(|(id, _)| id)
                            .collect();
                        let sub = subset(
                            facts,
                            |id| ids.iter().any(|d| d.as_str() == id),
                            |_, i| names_one_of(i, &ids),
                        );
                        let window = Window::of(&sub, &[environment.to_owned()], from, to);
                        (Some(environment.to_owned()), window)
                    })
                    .collect(),
            )
        }
        "service" => {
            let services: BTreeSet<Option<&str>> =
                facts.deployments.values().map(|d| d.service()).collect();
            Some(
                services
                    .into_iter()
                    .map(|service| {
                        let ids: BTreeSet<&String> = facts
                            .deployments
                            .iter()
                            .filter(|(_, d)| d.service() == service)
                            .map(|(id, _)| id)
                            .collect();
                        let sub = subset(
                            facts,
                            |id| ids.iter().any(|d| d.as_str() == id),
                            |_, i| {
                                (service.is_some() && i.service() == service)
                                    || names_one_of(i, &ids)
                            },
                        );
                        (
                            service.map(str::to_owned),
                            Window::of(&sub, production, from, to),
                        )
                    })
                    .collect(),
            )
        }
        _ => None,
    }
}

/// A DORA metric of a window as a breakdown shows it: the value (rounded as in the summary)
/// and the count it rests on (deployments, changes or incidents); `None` for a metric that
/// is not a DORA trend metric.
pub fn value_of(metric: &str, window: &Window) -> Option<(Option<f64>, i64)> {
    Some(match metric {
        "deployments" => (Some(window.successes as f64), window.successes),
        "lead_time_for_changes" => (
            percentile_cont(&window.lead_minutes, 0.5).map(round_duration),
            window.lead_minutes.len() as i64,
        ),
        "change_failure_rate" => (window.failure_rate().map(round_ratio), window.finished),
        "time_to_restore" => (
            percentile_cont(&window.restore_minutes, 0.5).map(round_duration),
            window.restore_minutes.len() as i64,
        ),
        _ => return None,
    })
}
