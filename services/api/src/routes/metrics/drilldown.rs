//! `GET /v1/metrics/drilldown`: the tasks behind a number, filtered, sorted, paginated, with
//! aggregates over every matching task.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::db::events;
use flowmeter_shared::db::read_model::{self, RowFilter, SortBy};
use flowmeter_shared::read_model::keys;
use serde_json::{json, Value};

use super::{cached_json, metrics_request, one_of, require_feature};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings::Feature;
use crate::startup::AppState;

/// Metrics with drill-down rows.
pub const DRILLDOWN_METRICS: [&str; 7] = [
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::WIP,
    keys::BLOCKED,
    keys::BACKLOG,
    keys::THROUGHPUT,
    keys::ARRIVALS,
];

/// Filter keys of the drill-down.
pub const FILTER_KEYS: [&str; 5] = ["phase", "milestone", "assignee", "state", "task_class"];

/// Serves a drill-down.
pub async fn get_drilldown(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Drilldown)?;
    let request = metrics_request(
        &req,
        &principal,
        &state,
        &[
            "project_id",
            "metric",
            "filters",
            "sort_by",
            "sort_order",
            "limit",
            "offset",
        ],
    )
    .await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &DRILLDOWN_METRICS, None)?;
    let sort_by = match one_of(
        p,
        "sort_by",
        &["value", "timestamp", "task_id"],
        Some("value"),
    )? {
        "timestamp" => SortBy::Timestamp,
        "task_id" => SortBy::TaskId,
        _ => SortBy::Value,
    };
    let descending = one_of(p, "sort_order", &["asc", "desc"], Some("desc"))? == "desc";
    let limit = p.integer("limit", 50, 1, 500)?;
    let offset = p.integer("offset", 0, 0, 10_000_000)?;
    let filters = p.filters("filters", &FILTER_KEYS)?;
    let filter = RowFilter {
        phase: filters.get("phase").cloned(),
        milestone: filters.get("milestone").cloned(),
        assignee: filters.get("assignee").cloned(),
        state: filters.get("state").cloned(),
        task_class: filters.get("task_class").cloned(),
    };

    let client = state.pool.get().await?;
    let (items, aggregation) = read_model::drilldown(
        &client,
        request.project_id,
        metric,
        &filter,
        sort_by,
        descending,
        limit,
        offset,
    )
    .await?;
    let head = events::head_seq(&client, request.project_id).await?;
    let snapshot = read_model::snapshot(&client, request.project_id, None).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|item| {
            json!({
                "task_id": item.task_id,
                "task_title": item.title,
                "value": item.value,
                "timestamp": item.ts.to_rfc3339_opts(SecondsFormat::Secs, true),
                "context": {
                    "phase": item.phase_id, "milestone": item.milestone_id, "assignee": item.assignee,
                    "state": item.state, "title": item.title, "task_class": item.task_class,
                },
                "contributing_factors": item.contributing_factors,
            })
        })
        .collect();
    let (as_of_seq, captured_at) = snapshot.as_ref().map_or((0, None), |s| {
        (
            s.as_of_seq,
            Some(s.captured_at.to_rfc3339_opts(SecondsFormat::Micros, true)),
        )
    });
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": request.project_id,
        "metric": metric,
        "filters_applied": filters,
        "items": items,
        "pagination": {
            "total": aggregation.count, "limit": limit, "offset": offset,
            "has_more": offset + (items.len() as i64) < aggregation.count,
        },
        "aggregation": {
            "sum": aggregation.sum, "avg": aggregation.avg, "min": aggregation.min, "max": aggregation.max,
            "p50": aggregation.p50, "p90": aggregation.p90, "p95": aggregation.p95,
        },
        "freshness": {
            "as_of_seq": as_of_seq, "log_head_seq": head, "lag_events": (head - as_of_seq).max(0),
            "captured_at": captured_at,
        },
    });
    let identity = format!(
        "drilldown?{}|{as_of_seq}|{head}|{captured_at:?}",
        req.query_string()
    );
    Ok(cached_json(&req, &state, &identity, body))
}
