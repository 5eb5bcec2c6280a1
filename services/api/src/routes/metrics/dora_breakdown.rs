//! The DORA branch of `GET /v1/metrics/breakdown`: a DORA key by `environment` or `service`
//! over the range ending at the snapshot, computed from the project's change, deployment
//! and incident rows (`flowmeter_shared::metrics::dora_breakdown`); each group's trend
//! compares with the previous equal range.

use std::collections::BTreeMap;

use actix_web::{HttpRequest, HttpResponse};
use flowmeter_shared::metrics::dora::{DoraFacts, Window};
use flowmeter_shared::metrics::dora_breakdown::{groups, value_of};
use flowmeter_shared::metrics::stats::round_score;

use super::breakdown::{range_length, trend, BreakdownGroup, BreakdownResponse};
use super::{freshness, rendered, snapshot_identity, MetricsRequest};
use crate::error::ApiError;
use crate::startup::AppState;

/// The groups' values over `[from, to)` by dimension value, with their counts.
fn values(
    facts: &DoraFacts,
    production: &[String],
    metric: &str,
    dimension: &str,
    range: (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>),
) -> Vec<(Option<String>, Option<f64>, i64)> {
    groups(facts, production, dimension, range.0, range.1)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(value, window)| {
            let (number, count) = value_of(metric, &window)?;
            Some((value, number, count))
        })
        .collect()
}

/// Serves a DORA breakdown (the caller checked metric, dimension and range).
pub async fn serve(
    req: &HttpRequest,
    state: &AppState,
    request: &MetricsRequest,
    metric: &'static str,
    dimension: &'static str,
    range: &'static str,
) -> Result<HttpResponse, ApiError> {
    if request.params.get("filters").is_some() {
        return Err(ApiError::invalid_field(
            "filters",
            "filters apply to the task dimensions; the DORA breakdowns take none",
            &[],
        ));
    }
    let project = request.project_id;
    let (snapshot, head) = (request.snapshot()?, request.head);
    let identity = snapshot_identity("breakdown", req, &snapshot, head);
    if let Some(response) = rendered::kept(req, state, request, &identity) {
        return Ok(response);
    }
    let now = snapshot.captured_at;
    let length = range_length(range);
    let client = state.read_pool.get().await?;
    let facts = flowmeter_shared::db::dora::load_facts(&client, project).await?;
    let production = &state.settings.production_environments;
    let current = values(&facts, production, metric, dimension, (now - length, now));
    let previous: BTreeMap<Option<String>, Option<f64>> = values(
        &facts,
        production,
        metric,
        dimension,
        (now - length - length, now - length),
    )
    .into_iter()
    .map(|(value, number, _)| (value, number))
    .collect();
    // Groups with nothing in the range are left out, as the task breakdowns leave out
    // values without rows.
    let current: Vec<_> = current
        .into_iter()
        .filter(|(_, _, count)| *count > 0)
        .collect();
    let counted: i64 = current.iter().map(|(_, _, count)| count).sum();
    let breakdown = current
        .into_iter()
        .map(|(value, number, count)| BreakdownGroup {
            dimension_label: value.clone(),
            trend: trend(number, previous.get(&value).copied().flatten()),
            dimension_value: value,
            value: number,
            percentage: if counted > 0 {
                round_score(count as f64 / counted as f64 * 100.0)
            } else {
                0.0
            },
            count,
        })
        .collect();
    // The total: production as configured, or every environment for the environment split.
    let everywhere: Vec<String> = if dimension == "environment" {
        facts
            .deployments
            .values()
            .filter_map(|d| d.environment().map(str::to_owned))
            .collect()
    } else {
        production.clone()
    };
    let total = value_of(metric, &Window::of(&facts, &everywhere, now - length, now))
        .and_then(|(number, _)| number);
    let body = BreakdownResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: project,
        metric,
        dimension,
        time_range: range,
        filters_applied: BTreeMap::new(),
        total,
        breakdown,
        freshness: freshness(&snapshot, head),
    };
    rendered::keep_json(req, state, request, &identity, &body)
}
