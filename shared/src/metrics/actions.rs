//! Suggested actions (SPEC §6): `escalate`, `reroute_reviewer`, `unblock` and `swarm`,
//! derived from the snapshot's summary and the task and gate projections as of `now`,
//! with the firing alerts of the metrics they use named as evidence.
//!
//! Affected tasks always come from the projections (the facts), oldest first, at most 10.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::facts::ProjectFacts;
use super::state::TaskState;
use super::stats::{percentile_cont, round_to};
use super::summary::{ActionType, SuggestedAction, SummaryMetrics};
use super::time::{hours_between, SECONDS_PER_HOUR};

/// Most affected tasks listed per suggestion.
pub const MAX_AFFECTED_TASKS: usize = 10;
/// `escalate` when more tasks than this wait implemented but not integrated.
pub const ESCALATE_BACKLOG_ABOVE: u64 = 10;
/// `escalate` when DPI (0–100) is below this.
pub const ESCALATE_DPI_BELOW: f64 = 50.0;
/// `reroute_reviewer` when the mean gate latency exceeds this many minutes (48 h).
pub const REROUTE_LATENCY_ABOVE_MINUTES: f64 = 48.0 * 60.0;
/// `unblock` tasks blocked for more than this many hours.
pub const UNBLOCK_AFTER_HOURS: f64 = 48.0;
/// `swarm` WIP tasks older than this many hours (7 d).
pub const SWARM_AFTER_HOURS: f64 = 7.0 * 24.0;

/// A firing alert the evidence may name.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertRef {
    /// The alert's metric key (a short name such as `ini_backlog`).
    pub metric_key: String,
    /// The alert's id.
    pub id: Uuid,
}

/// Every suggestion for the snapshot at `now`, most confident first (ties in the fixed
/// order escalate, reroute_reviewer, unblock, swarm). A healthy project gets none.
pub fn suggest_actions(
    facts: &ProjectFacts,
    summary: &SummaryMetrics,
    now: DateTime<Utc>,
    firing: &[AlertRef],
) -> Vec<SuggestedAction> {
    let mut actions: Vec<SuggestedAction> = [
        escalate(facts, summary, firing),
        reroute_reviewer(facts, summary),
        unblock(facts, now, firing),
        swarm(facts, now),
    ]
    .into_iter()
    .flatten()
    .collect();
    actions.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
    actions
}

fn confidence(value: f64) -> f64 {
    round_to(value.min(1.0), 2)
}

fn alert_refs(firing: &[AlertRef], metric_keys: &[&str]) -> Vec<String> {
    let mut refs = Vec::new();
    for key in metric_keys {
        let mut ids: Vec<Uuid> = firing
            .iter()
            .filter(|a| a.metric_key == *key)
            .map(|a| a.id)
            .collect();
        ids.sort();
        refs.extend(ids.into_iter().map(|id| format!("alert:{id}")));
    }
    refs
}

/// Task ids ordered by `(since, task_id)`, oldest first, at most [`MAX_AFFECTED_TASKS`].
fn oldest_first(mut tasks: Vec<(DateTime<Utc>, &str)>) -> Vec<String> {
    tasks.sort();
    tasks
        .into_iter()
        .take(MAX_AFFECTED_TASKS)
        .map(|(_, id)| id.to_owned())
        .collect()
}

fn format_number(value: f64) -> String {
    let rounded = round_to(value, 2);
    if rounded.fract() == 0.0 {
        format!("{rounded:.0}")
    } else {
        format!("{rounded}")
    }
}

/// Backlog above 10 (+0.5) and/or DPI below 50 (+0.5): the oldest implemented tasks.
fn escalate(
    facts: &ProjectFacts,
    summary: &SummaryMetrics,
    firing: &[AlertRef],
) -> Option<SuggestedAction> {
    let backlog = summary.operational.backlog.implemented_not_integrated;
    let dpi = summary.north_star.delivery_predictability_index.value;
    let backlog_high = backlog > ESCALATE_BACKLOG_ABOVE;
    let dpi_low = dpi.is_some_and(|v| v < ESCALATE_DPI_BELOW);
    if !backlog_high && !dpi_low {
        return None;
    }
    let mut evidence = Vec::new();
    let mut reasons = Vec::new();
    let mut score = 0.0;
    if backlog_high {
        score += 0.5;
        evidence.push(format!("metric:ini_backlog:{backlog}"));
        reasons.push(format!(
            "{backlog} tasks wait implemented but not integrated (more than {ESCALATE_BACKLOG_ABOVE})"
        ));
    }
    if let (true, Some(dpi)) = (dpi_low, dpi) {
        score += 0.5;
        evidence.push(format!("metric:DPI:{}", format_number(dpi)));
        reasons.push(format!(
            "delivery predictability is {} (below {ESCALATE_DPI_BELOW})",
            format_number(dpi)
        ));
    }
    evidence.extend(alert_refs(firing, &["ini_backlog", "DPI"]));
    let waiting = facts
        .tasks
        .iter()
        .filter(|t| t.state == TaskState::Implemented)
        .map(|t| {
            (
                t.implemented_at.unwrap_or(t.state_entered_at),
                t.task_id.as_str(),
            )
        })
        .collect();
    Some(SuggestedAction {
        action_type: ActionType::Escalate,
        confidence: confidence(score),
        affected_tasks: oldest_first(waiting),
        rationale: format!("Escalate integration: {}.", reasons.join(", and ")),
        evidence_refs: evidence,
    })
}

/// Mean gate latency above 48 h (+0.6) and/or one reviewer holding more than twice the
/// median number of pending gates (+0.4): that reviewer's pending gates' tasks, or every
/// pending gate's task when no reviewer stands out.
fn reroute_reviewer(facts: &ProjectFacts, summary: &SummaryMetrics) -> Option<SuggestedAction> {
    let latency = summary
        .operational
        .gates
        .avg_latency_minutes
        .filter(|m| *m > REROUTE_LATENCY_ABOVE_MINUTES);
    let mut pending_by_reviewer: BTreeMap<&str, usize> = BTreeMap::new();
    for gate in facts.gates.iter().filter(|g| g.is_pending()) {
        if let Some(reviewer) = gate.reviewer.as_deref() {
            *pending_by_reviewer.entry(reviewer).or_default() += 1;
        }
    }
    let counts: Vec<f64> = pending_by_reviewer.values().map(|n| *n as f64).collect();
    let overloaded = percentile_cont(&counts, 0.5).and_then(|median| {
        pending_by_reviewer
            .iter()
            .filter(|(_, n)| **n as f64 > 2.0 * median)
            // Most pending gates first; ties by name.
            .max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)))
            .map(|(reviewer, n)| (*reviewer, *n, median))
    });
    if latency.is_none() && overloaded.is_none() {
        return None;
    }
    let mut score = 0.0;
    let mut evidence = Vec::new();
    let mut reasons = Vec::new();
    if let Some(minutes) = latency {
        score += 0.6;
        evidence.push(format!(
            "metric:gates.avg_latency_minutes:{}",
            format_number(minutes)
        ));
        reasons.push(format!(
            "reviews take {} h on average (more than 48 h)",
            format_number(minutes / 60.0)
        ));
    }
    if let Some((reviewer, n, median)) = overloaded {
        score += 0.4;
        evidence.push(format!("metric:gates.pending_by_reviewer:{reviewer}:{n}"));
        reasons.push(format!(
            "{reviewer} holds {n} pending reviews, more than twice the median of {}",
            format_number(median)
        ));
    }
    let pending = facts
        .gates
        .iter()
        .filter(|g| g.is_pending())
        .filter(|g| overloaded.is_none_or(|(r, _, _)| g.reviewer.as_deref() == Some(r)))
        .filter_map(|g| Some((g.requested_at?, g.task_id.as_str())));
    let mut tasks: Vec<(DateTime<Utc>, &str)> = Vec::new();
    for (at, task) in pending {
        match tasks.iter_mut().find(|(_, t)| *t == task) {
            Some(entry) => entry.0 = entry.0.min(at),
            None => tasks.push((at, task)),
        }
    }
    Some(SuggestedAction {
        action_type: ActionType::RerouteReviewer,
        confidence: confidence(score),
        affected_tasks: oldest_first(tasks),
        rationale: format!("Reroute reviews: {}.", reasons.join(", and ")),
        evidence_refs: evidence,
    })
}

/// Whole days by which `hours` exceeds `limit_hours`.
fn whole_days_beyond(hours: f64, limit_hours: f64) -> f64 {
    ((hours - limit_hours) / 24.0).floor().max(0.0)
}

/// Tasks blocked for more than 48 h: confidence 0.5 + 0.1 per whole day beyond 48 h of the
/// longest-blocked task.
fn unblock(
    facts: &ProjectFacts,
    now: DateTime<Utc>,
    firing: &[AlertRef],
) -> Option<SuggestedAction> {
    let stuck: Vec<(DateTime<Utc>, &str)> = facts
        .tasks
        .iter()
        .filter(|t| t.state == TaskState::Blocked)
        .map(|t| (t.blocked_start(), t.task_id.as_str()))
        .filter(|(since, _)| hours_between(*since, now) > UNBLOCK_AFTER_HOURS)
        .collect();
    let longest = stuck
        .iter()
        .map(|(since, _)| hours_between(*since, now))
        .fold(0.0, f64::max);
    if stuck.is_empty() {
        return None;
    }
    let mut evidence = vec![
        format!("metric:blocked.over_48h_count:{}", stuck.len()),
        format!("metric:blocked.longest_hours:{}", format_number(longest)),
    ];
    evidence.extend(alert_refs(firing, &["blocked_ratio"]));
    Some(SuggestedAction {
        action_type: ActionType::Unblock,
        confidence: confidence(0.5 + 0.1 * whole_days_beyond(longest, UNBLOCK_AFTER_HOURS)),
        rationale: format!(
            "Unblock {} task{} blocked for more than 48 h; the longest has been blocked for {} h.",
            stuck.len(),
            if stuck.len() == 1 { "" } else { "s" },
            format_number(longest)
        ),
        affected_tasks: oldest_first(stuck),
        evidence_refs: evidence,
    })
}

/// WIP tasks older than 7 d: confidence 0.4 + 0.1 per whole day beyond 7 d of the oldest.
fn swarm(facts: &ProjectFacts, now: DateTime<Utc>) -> Option<SuggestedAction> {
    let old: Vec<(DateTime<Utc>, &str)> = facts
        .tasks
        .iter()
        .filter(|t| t.state.is_wip())
        .map(|t| (t.wip_since(), t.task_id.as_str()))
        .filter(|(since, _)| hours_between(*since, now) > SWARM_AFTER_HOURS)
        .collect();
    if old.is_empty() {
        return None;
    }
    let oldest = old
        .iter()
        .map(|(since, _)| hours_between(*since, now))
        .fold(0.0, f64::max);
    let oldest_days = oldest * SECONDS_PER_HOUR / 86_400.0;
    Some(SuggestedAction {
        action_type: ActionType::Swarm,
        confidence: confidence(0.4 + 0.1 * whole_days_beyond(oldest, SWARM_AFTER_HOURS)),
        rationale: format!(
            "Swarm on {} work-in-progress task{} older than 7 days; the oldest is {} days old.",
            old.len(),
            if old.len() == 1 { "" } else { "s" },
            format_number(oldest_days)
        ),
        evidence_refs: vec![
            format!("metric:wip.older_than_7d_count:{}", old.len()),
            format!("metric:wip.oldest_age_hours:{}", format_number(oldest)),
        ],
        affected_tasks: oldest_first(old),
    })
}

#[cfg(test)]
#[path = "actions_tests.rs"]
mod tests;
