//! `GET /v1/metrics/breakdown`: a metric split by one dimension over a time range, each
//! group with its trend against the previous equal range.
//!
//! Values come from drill-down rows with `ts` in the range (filters on the other dimensions
//! apply): counts with their share of the total, or for cycle and lead time each group's
//! median. Trends compare with the previous range: from the drill-down rows for counts and
//! durations (so filters apply there too), and from the daily breakdown points for the WIP and
//! blocked levels (their value at the end of each range).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use flowmeter_shared::db::read_model::{self, RowFilter};
use flowmeter_shared::db::read_path::{self, BreakdownPeriod, SnapshotPart};
use flowmeter_shared::metrics::stats::round_score;
use flowmeter_shared::metrics::{dora, dora_breakdown};
use flowmeter_shared::read_model::{
    keys, BREAKDOWN_DIMENSIONS, BREAKDOWN_METRICS as TASK_METRICS, BREAKDOWN_RANGES,
};
use serde::Serialize;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::query_names;
use super::{freshness, metrics_request, one_of, rendered, snapshot_identity, Freshness};
use crate::auth::Credentials;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::{BreakdownDimension, BreakdownMetric, TimeRange};
use crate::startup::AppState;

/// Metrics the breakdown accepts: the task metrics (by the task dimensions, precomputed at
/// snapshot time) and the DORA keys (by environment or service).
pub const BREAKDOWN_METRICS: [&str; 10] = [
    TASK_METRICS[0],
    TASK_METRICS[1],
    TASK_METRICS[2],
    TASK_METRICS[3],
    TASK_METRICS[4],
    TASK_METRICS[5],
    dora::TREND_METRICS[0],
    dora::TREND_METRICS[1],
    dora::TREND_METRICS[2],
    dora::TREND_METRICS[3],
];

/// Dimensions the breakdown accepts: the task dimensions, then the DORA ones.
pub const DIMENSIONS: [&str; 7] = [
    BREAKDOWN_DIMENSIONS[0],
    BREAKDOWN_DIMENSIONS[1],
    BREAKDOWN_DIMENSIONS[2],
    BREAKDOWN_DIMENSIONS[3],
    BREAKDOWN_DIMENSIONS[4],
    dora_breakdown::DIMENSIONS[0],
    dora_breakdown::DIMENSIONS[1],
];

/// Time ranges of a breakdown.
pub const TIME_RANGES: [&str; 4] = [
    BREAKDOWN_RANGES[0].0,
    BREAKDOWN_RANGES[1].0,
    BREAKDOWN_RANGES[2].0,
    BREAKDOWN_RANGES[3].0,
];

/// Query parameters of `GET /v1/metrics/breakdown`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BreakdownQuery {
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[param(value_type = BreakdownMetric)]
    pub metric: String,
    /// The dimension to group by.
    #[param(value_type = BreakdownDimension)]
    pub dimension: String,
    /// The range ending at the snapshot time; default `7d`.
    #[param(value_type = Option<TimeRange>)]
    pub time_range: Option<String>,
    /// A JSON object of conditions on the other dimensions, each a string or an array of
    /// strings, e.g. `{"assignee": ["ana", "bo"]}`.
    pub filters: Option<String>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<BreakdownQuery>);

/// The body of `GET /v1/metrics/breakdown`.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[schema(value_type = BreakdownMetric)]
    pub metric: &'static str,
    /// The dimension grouped by.
    #[schema(value_type = BreakdownDimension)]
    pub dimension: &'static str,
    /// The range.
    #[schema(value_type = TimeRange)]
    pub time_range: &'static str,
    /// The filters that were applied, each as a list of values.
    pub filters_applied: BTreeMap<String, Vec<String>>,
    /// Count metrics: the number of rows; cycle and lead time: the overall p50 in minutes.
    #[schema(required = true)]
    pub total: Option<f64>,
    /// One entry per dimension value.
    pub breakdown: Vec<BreakdownGroup>,
    /// How far the read model is behind the event log.
    pub freshness: Freshness,
}

/// One group of a breakdown.
#[derive(Debug, Serialize, ToSchema)]
pub struct BreakdownGroup {
    /// The dimension's value (an id); `null` groups tasks without one.
    #[schema(required = true)]
    pub dimension_value: Option<String>,
    /// The value's name, where one is known (else the id).
    #[schema(required = true)]
    pub dimension_label: Option<String>,
    /// Count metrics: the count; cycle and lead time: the group's p50 in minutes.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Share of all rows, 0–100.
    pub percentage: f64,
    /// Rows (tasks) in the group.
    pub count: i64,
    /// Against the previous equal range.
    pub trend: GroupTrend,
}

/// Direction of a group against the previous equal range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// More than 5 % above (or anything above 0).
    Up,
    /// More than 5 % below.
    Down,
    /// Within ±5 %.
    Stable,
}

/// `trend` of a breakdown group.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct GroupTrend {
    /// `null` when the current value is `null`.
    #[schema(required = true)]
    pub direction: Option<Direction>,
    /// Relative change in percent; `null` when the previous value was 0 or unknown.
    #[schema(required = true)]
    pub change_pct: Option<f64>,
}

pub(super) fn range_length(range: &str) -> Duration {
    let hours = BREAKDOWN_RANGES
        .iter()
        .find(|(name, _)| *name == range)
        .map_or(168, |(_, hours)| *hours);
    Duration::hours(hours)
}

/// `{direction, change_pct}`: ±5 % relative is stable; from 0, any rise is up.
pub(super) fn trend(current: Option<f64>, previous: Option<f64>) -> GroupTrend {
    let (direction, change_pct) = match (current, previous) {
        (Some(c), Some(p)) if p != 0.0 => {
            let change = round_score((c - p) / p.abs() * 100.0);
            let direction = if change > 5.0 {
                Direction::Up
            } else if change < -5.0 {
                Direction::Down
            } else {
                Direction::Stable
            };
            (Some(direction), Some(change))
        }
        (Some(c), Some(_)) | (Some(c), None) if c > 0.0 => (Some(Direction::Up), None),
        (Some(_), _) => (Some(Direction::Stable), Some(0.0)),
        (None, _) => (None, None),
    };
    GroupTrend {
        direction,
        change_pct,
    }
}

/// Serves a breakdown.
#[utoipa::path(
    get,
    path = "/v1/metrics/breakdown",
    tag = "metrics",
    params(BreakdownQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The metric per dimension value over the range.", body = BreakdownResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project, or no snapshot yet.", body = ErrorBody),
        (status = 422, description = "`validation_error`: an unknown metric, dimension, range or filter (`details.allowed_values`).", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable.", body = ErrorBody),
    )
)]
pub async fn get_breakdown(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request =
        metrics_request(&req, &credentials, &state, &PARAMETERS, SnapshotPart::None).await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &BREAKDOWN_METRICS, None)?;
    let dimension = one_of(p, "dimension", &DIMENSIONS, None)?;
    let range = one_of(p, "time_range", &TIME_RANGES, Some("7d"))?;
    let dora_metric = dora::TREND_METRICS.contains(&metric);
    if dora_metric != dora_breakdown::DIMENSIONS.contains(&dimension) {
        let allowed: &[&str] = if dora_metric {
            &dora_breakdown::DIMENSIONS
        } else {
            &BREAKDOWN_DIMENSIONS
        };
        return Err(ApiError::invalid_field(
            "dimension",
            format!("{metric} cannot be broken down by {dimension}"),
            allowed,
        ));
    }
    if dora_metric {
        return super::dora_breakdown::serve(&req, &state, &request, metric, dimension, range)
            .await;
    }
    let others: Vec<&str> = BREAKDOWN_DIMENSIONS
        .iter()
        .copied()
        .filter(|d| *d != dimension)
        .collect();
    let filters = p.filters("filters", &others)?;
    let filter = RowFilter::from_map(&filters);
    let (snapshot, head) = (request.snapshot()?, request.head);
    let identity = snapshot_identity("breakdown", &req, &snapshot, head);
    if let Some(response) = rendered::kept(&req, &state, &request, &identity) {
        return Ok(response);
    }
    let now = snapshot.captured_at;
    let length = range_length(range);
    let client = state.read_pool.get().await?;
    let project = request.project_id;
    // Without filters, both ranges come from what the worker precomputed for this snapshot.
    let from_rows = |from, to| groups_in(&client, project, metric, dimension, &filter, from, to);
    let precomputed = if filter.is_empty() {
        read_path::breakdown(&client, project, metric, dimension, range, now).await?
    } else {
        None
    };
    let (current, before) = match precomputed {
        Some([current, before]) => (current, Some(before)),
        None => (from_rows(now - length, now).await?, None),
    };
    let BreakdownPeriod {
        groups,
        total_count,
        total_p50,
    } = current;
    let is_duration = metric == keys::CYCLE_TIME || metric == keys::LEAD_TIME;
    let is_level = metric == keys::WIP || metric == keys::BLOCKED;

    // The previous range's value per group.
    let previous: BTreeMap<Option<String>, f64> = if is_level {
        level_at_range_ends(&client, project, metric, dimension, now, length).await?
    } else {
        let before = match before {
            Some(before) => before,
            None => from_rows(now - length - length, now - length).await?,
        };
        before
            .groups
            .into_iter()
            .map(|g| {
                (
                    g.value,
                    if is_duration {
                        g.p50.unwrap_or(0.0)
                    } else {
                        g.count as f64
                    },
                )
            })
            .collect()
    };
    let labels = read_model::labels(&client, project, dimension).await?;
    let breakdown: Vec<BreakdownGroup> = groups
        .iter()
        .map(|g| {
            let value = if is_duration {
                g.p50.map(round_score)
            } else {
                Some(g.count as f64)
            };
            let share = if total_count > 0 {
                round_score(g.count as f64 / total_count as f64 * 100.0)
            } else {
                0.0
            };
            let label = g
                .value
                .as_ref()
                .map(|v| labels.get(v).cloned().unwrap_or_else(|| v.clone()));
            let previous = previous.get(&g.value).copied().or(Some(0.0));
            BreakdownGroup {
                dimension_value: g.value.clone(),
                dimension_label: label,
                value,
                percentage: share,
                count: g.count,
                trend: trend(value, previous),
            }
        })
        .collect();
    let total = if is_duration {
        total_p50.map(round_score)
    } else {
        Some(total_count as f64)
    };
    let body = BreakdownResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: project,
        metric,
        dimension,
        time_range: range,
        filters_applied: filters,
        total,
        breakdown,
        freshness: freshness(&snapshot, head),
    };
    rendered::keep_json(&req, &state, &request, &identity, &body)
}

/// The groups of the drill-down rows with `ts` in `[from, to)` and their total.
async fn groups_in(
    client: &impl deadpool_postgres::GenericClient,
    project: Uuid,
    metric: &str,
    dimension: &str,
    filter: &RowFilter,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<BreakdownPeriod, ApiError> {
    let (groups, total_count, total_p50) =
        read_model::breakdown_groups(client, project, metric, dimension, filter, from, to).await?;
    Ok(BreakdownPeriod {
        groups,
        total_count,
        total_p50,
    })
}

/// WIP or blocked per group at the end of the previous range: the groups of the latest day
/// point at or before its last day. Level points are change points, and a day with a point
/// holds every group that is not 0, so groups absent there are 0.
async fn level_at_range_ends(
    client: &impl deadpool_postgres::GenericClient,
    project: uuid::Uuid,
    metric: &str,
    dimension: &str,
    now: DateTime<Utc>,
    length: Duration,
) -> Result<BTreeMap<Option<String>, f64>, ApiError> {
    let last_day = (now - length).date_naive();
    let Some(day) = read_model::latest_level_day(client, project, metric, last_day).await? else {
        return Ok(BTreeMap::new());
    };
    let next = day.succ_opt().unwrap_or(day);
    let points =
        read_model::breakdown_points(client, project, metric, dimension, day, next).await?;
    Ok(points
        .into_iter()
        .map(|(value, _, number, _)| ((!value.is_empty()).then_some(value), number))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn trend(current: Option<f64>, previous: Option<f64>) -> serde_json::Value {
        serde_json::to_value(super::trend(current, previous)).unwrap()
    }

    #[test]
    fn trends_follow_the_five_percent_band() {
        assert_eq!(
            trend(Some(110.0), Some(100.0)),
            json!({"direction": "up", "change_pct": 10.0})
        );
        assert_eq!(
            trend(Some(96.0), Some(100.0)),
            json!({"direction": "stable", "change_pct": -4.0})
        );
        assert_eq!(
            trend(Some(50.0), Some(100.0)),
            json!({"direction": "down", "change_pct": -50.0})
        );
        assert_eq!(
            trend(Some(3.0), Some(0.0)),
            json!({"direction": "up", "change_pct": null})
        );
        assert_eq!(
            trend(Some(0.0), Some(0.0)),
            json!({"direction": "stable", "change_pct": 0.0})
        );
    }

    #[test]
    fn ranges_have_their_lengths() {
        assert_eq!(range_length("24h"), Duration::hours(24));
        assert_eq!(range_length("90d"), Duration::days(90));
    }
}
