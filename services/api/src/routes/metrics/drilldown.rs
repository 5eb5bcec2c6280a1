//! `GET /v1/metrics/drilldown`: the tasks behind a number, filtered, sorted, paginated, with
//! aggregates over every matching task.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::db::read_model::{self, RowFilter, SortBy};
use flowmeter_shared::db::read_path::{self, SnapshotPart};
use flowmeter_shared::read_model::DRILLDOWN_METRICS;
use serde::Serialize;
use serde_json::Value;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::query_names;
use super::{metrics_request, one_of, rendered, require_feature, Freshness};
use crate::auth::Credentials;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::{DrilldownMetric, SortField, SortOrder};
use crate::settings::Feature;
use crate::startup::AppState;

/// Filter keys of the drill-down.
pub const FILTER_KEYS: [&str; 5] = ["phase", "milestone", "assignee", "state", "task_class"];

/// Fields drill-down items can be sorted by.
pub const SORT_FIELDS: [&str; 3] = ["value", "timestamp", "task_id"];

/// Sort orders.
pub const SORT_ORDERS: [&str; 2] = ["asc", "desc"];

/// Query parameters of `GET /v1/metrics/drilldown`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DrilldownQuery {
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[param(value_type = DrilldownMetric)]
    pub metric: String,
    /// A JSON object of conditions on phase, milestone, assignee, state and task_class, each
    /// a string or an array of strings, e.g. `{"state": "blocked"}`.
    pub filters: Option<String>,
    /// Default `value`.
    #[param(value_type = Option<SortField>)]
    pub sort_by: Option<String>,
    /// Default `desc`.
    #[param(value_type = Option<SortOrder>)]
    pub sort_order: Option<String>,
    /// Items per page, 1–500; default 50.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Items to skip, ≥ 0; default 0.
    #[param(minimum = 0, maximum = 10_000_000)]
    pub offset: Option<i64>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<DrilldownQuery>);

/// The body of `GET /v1/metrics/drilldown`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrilldownResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[schema(value_type = DrilldownMetric)]
    pub metric: &'static str,
    /// The filters that were applied, each as a list of values.
    pub filters_applied: BTreeMap<String, Vec<String>>,
    /// One page of tasks.
    pub items: Vec<DrilldownItem>,
    /// Where the page sits among every matching task.
    pub pagination: Pagination,
    /// Aggregates over every matching task (not just this page).
    pub aggregation: Aggregation,
    /// How far the read model is behind the event log.
    pub freshness: Freshness,
}

/// One task behind a number.
#[derive(Debug, Serialize, ToSchema)]
pub struct DrilldownItem {
    /// Task id.
    pub task_id: String,
    /// Task title.
    #[schema(required = true)]
    pub task_title: Option<String>,
    /// Minutes (cycle and lead time), hours (ages of wip, blocked and backlog) or 1 (counts).
    pub value: f64,
    /// Integration, creation or entry into the measured state (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The task's attributes.
    pub context: TaskContext,
    /// What made the value what it is.
    #[schema(value_type = Vec<ContributingFactor>)]
    pub contributing_factors: Value,
}

/// `context` of a drill-down item.
#[derive(Debug, Serialize, ToSchema)]
pub struct TaskContext {
    /// Phase id.
    #[schema(required = true)]
    pub phase: Option<String>,
    /// Milestone id.
    #[schema(required = true)]
    pub milestone: Option<String>,
    /// Assignee.
    #[schema(required = true)]
    pub assignee: Option<String>,
    /// Current state.
    pub state: String,
    /// Task title.
    #[schema(required = true)]
    pub title: Option<String>,
    /// Task class.
    #[schema(required = true)]
    pub task_class: Option<String>,
}

/// One contributing factor of a drill-down item.
#[derive(Debug, Serialize, ToSchema)]
pub struct ContributingFactor {
    /// e.g. `stage:review`, `blocked_episodes`, `integration_retries`.
    pub factor: String,
    /// 0–1.
    pub impact: f64,
    /// A sentence.
    pub description: String,
}

/// `pagination` of a drill-down.
#[derive(Debug, Serialize, ToSchema)]
pub struct Pagination {
    /// Matching tasks.
    pub total: i64,
    /// The page size asked for.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
    /// Whether more items follow this page.
    pub has_more: bool,
}

/// `aggregation` of a drill-down: over every matching task; `null` when none matches.
#[derive(Debug, Serialize, ToSchema)]
pub struct Aggregation {
    /// Sum of values, computed exactly (the values carry two decimals), so it does not depend
    /// on the order the rows are stored or read in.
    #[schema(required = true)]
    pub sum: Option<f64>,
    /// Mean: `sum` divided by the number of matching tasks.
    #[schema(required = true)]
    pub avg: Option<f64>,
    /// Smallest.
    #[schema(required = true)]
    pub min: Option<f64>,
    /// Largest.
    #[schema(required = true)]
    pub max: Option<f64>,
    /// Median (linear interpolation).
    #[schema(required = true)]
    pub p50: Option<f64>,
    /// 90th percentile.
    #[schema(required = true)]
    pub p90: Option<f64>,
    /// 95th percentile.
    #[schema(required = true)]
    pub p95: Option<f64>,
}

/// Serves a drill-down.
#[utoipa::path(
    get,
    path = "/v1/metrics/drilldown",
    tag = "metrics",
    params(DrilldownQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "One page of the tasks behind the metric, with aggregates.", body = DrilldownResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project.", body = ErrorBody),
        (status = 422, description = "`validation_error`: an unknown metric, sort field or filter (`details.allowed_values`), or `limit`/`offset` out of range.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or drill-downs are switched off.", body = ErrorBody),
    )
)]
pub async fn get_drilldown(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Drilldown)?;
    let request =
        metrics_request(&req, &credentials, &state, &PARAMETERS, SnapshotPart::None).await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &DRILLDOWN_METRICS, None)?;
    let sort_by = match one_of(p, "sort_by", &SORT_FIELDS, Some("value"))? {
        "timestamp" => SortBy::Timestamp,
        "task_id" => SortBy::TaskId,
        _ => SortBy::Value,
    };
    let descending = one_of(p, "sort_order", &SORT_ORDERS, Some("desc"))? == "desc";
    let limit = p.integer("limit", 50, 1, 500)?;
    let offset = p.integer("offset", 0, 0, 10_000_000)?;
    let filters = p.filters("filters", &FILTER_KEYS)?;
    let filter = RowFilter::from_map(&filters);

    let (head, snapshot) = (request.head, request.latest());
    let (freshness, fresh_identity) = super::optional_freshness(snapshot.as_ref(), head);
    let identity = format!("drilldown?{}|{fresh_identity}", req.query_string());
    if let Some(response) = rendered::kept(&req, &state, &request, &identity) {
        return Ok(response);
    }
    let client = state.read_pool.get().await?;
    // Without filters, a page within the first rows comes from what the worker precomputed
    // for this snapshot; anything else reads the drill-down rows.
    let precomputed = match &snapshot {
        Some(s) if filter.is_empty() && offset + limit <= read_path::PRECOMPUTED_PAGE_ROWS => {
            read_path::drilldown(
                &client,
                request.project_id,
                metric,
                sort_by,
                descending,
                limit,
                offset,
                s.captured_at,
            )
            .await?
        }
        _ => None,
    };
    let (items, aggregation) = match precomputed {
        Some(found) => found,
        None => {
            read_model::drilldown(
                &client,
                request.project_id,
                metric,
                &filter,
                sort_by,
                descending,
                limit,
                offset,
                snapshot.as_ref().map(|s| s.captured_at),
            )
            .await?
        }
    };
    let items: Vec<DrilldownItem> = items
        .into_iter()
        .map(|item| DrilldownItem {
            task_id: item.task_id,
            task_title: item.title.clone(),
            value: item.value,
            timestamp: item.ts.to_rfc3339_opts(SecondsFormat::Secs, true),
            context: TaskContext {
                phase: item.phase_id,
                milestone: item.milestone_id,
                assignee: item.assignee,
                state: item.state,
                title: item.title,
                task_class: item.task_class,
            },
            contributing_factors: item.contributing_factors,
        })
        .collect();
    let has_more = offset + (items.len() as i64) < aggregation.count;
    let body = DrilldownResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: request.project_id,
        metric,
        filters_applied: filters,
        items,
        pagination: Pagination {
            total: aggregation.count,
            limit,
            offset,
            has_more,
        },
        aggregation: Aggregation {
            sum: aggregation.sum,
            avg: aggregation.avg,
            min: aggregation.min,
            max: aggregation.max,
            p50: aggregation.p50,
            p90: aggregation.p90,
            p95: aggregation.p95,
        },
        freshness,
    };
    rendered::keep_json(&req, &state, &request, &identity, &body)
}
