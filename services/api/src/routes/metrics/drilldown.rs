//! `GET /v1/metrics/drilldown`: the tasks behind a number, filtered, sorted, paginated, with
//! aggregates over every matching task.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::db::events;
use flowmeter_shared::db::read_model::{self, RowFilter, SortBy};
use flowmeter_shared::read_model::DRILLDOWN_METRICS;
use serde_json::{json, Value};

use super::{cached_json, metrics_request, one_of, require_feature};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings::Feature;
use crate::startup::AppState;

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
    let filter = RowFilter::from_map(&filters);

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
    let (freshness, fresh_identity) = super::optional_freshness(snapshot.as_ref(), head);
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
        "freshness": freshness,
    });
    let identity = format!("drilldown?{}|{fresh_identity}", req.query_string());
    Ok(cached_json(&req, &state, &identity, body))
}
