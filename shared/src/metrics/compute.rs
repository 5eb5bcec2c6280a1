//! One entry point that fills the whole summary `metrics` object from a project's facts, so
//! the fold's snapshot, `verify`'s recomputation and any API-side recomputation run exactly
//! the same code in the same order.

use chrono::{DateTime, Utc};

use super::efficiency::{bottleneck_contribution, flow_efficiency_score};
use super::facts::ProjectFacts;
use super::flow::{cycle_time, lead_time, throughput};
use super::gates::gates;
use super::integration::{integration_outcomes, integration_reliability_score};
use super::predictability::delivery_predictability_index;
use super::summary::{Actionability, NorthStar, Operational, SummaryMetrics};
use super::time::THROUGHPUT_WINDOW;
use super::wip::{backlog, blocked, state_distribution, wip};

/// Computes every metric of SPEC §4 as of `now` (the snapshot's `captured_at`).
/// `dpi_7d_ago` is the DPI value (0–100) of the snapshot taken 7 d before `now`, if any; it
/// only feeds DPI's `trend` and `change_pct`. `suggested_actions` is left empty for the
/// action engine to fill.
pub fn compute_summary(
    facts: &ProjectFacts,
    now: DateTime<Utc>,
    dpi_7d_ago: Option<f64>,
) -> SummaryMetrics {
    SummaryMetrics {
        north_star: NorthStar {
            delivery_predictability_index: delivery_predictability_index(facts, now, dpi_7d_ago),
            flow_efficiency_score: flow_efficiency_score(facts, now),
            integration_reliability_score: integration_reliability_score(facts, now),
        },
        operational: Operational {
            throughput: throughput(facts, now, THROUGHPUT_WINDOW),
            cycle_time: cycle_time(facts, now),
            lead_time: lead_time(facts, now),
            wip: wip(facts, now),
            blocked: blocked(facts, now),
            backlog: backlog(facts, now),
            gates: gates(facts, now),
            integration_outcomes: integration_outcomes(facts, now),
            state_distribution: state_distribution(facts),
        },
        actionability: Actionability {
            bottleneck_contribution: bottleneck_contribution(facts, now),
            suggested_actions: Vec::new(),
        },
        // Filled by the snapshot from the project's changes, deployments and incidents.
        dora: Default::default(),
    }
}

#[cfg(test)]
#[path = "compute_tests.rs"]
mod tests;
