//! `GET /v1/metrics/trends`: a metric's points over a date range at a granularity, for the
//! project total or grouped by dimensions (additive metrics only).

use std::sync::LazyLock;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, SecondsFormat};
use flowmeter_shared::db::read_model;
use flowmeter_shared::db::read_path::SnapshotPart;
use flowmeter_shared::metrics::dora;
use flowmeter_shared::read_model::{
    Grain, ADDITIVE_METRICS, LEVEL_METRICS, TREND_DIMENSIONS, TREND_METRICS,
};
use serde::Serialize;
use serde_json::{json, Value};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::query_names;
use super::{metrics_request, one_of, rendered, series, Freshness};
use crate::auth::Credentials;
use crate::error::{ApiError, ErrorBody};
use crate::openapi::{Granularity, TrendDimensions, TrendMetric};
use crate::startup::AppState;

/// The most points one request may return.
pub const MAX_POINTS: i64 = 2000;

/// Granularities of trend points.
pub const GRANULARITIES: [&str; 4] = ["hour", "day", "week", "month"];

/// Query parameters of `GET /v1/metrics/trends`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrendsQuery {
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[param(value_type = TrendMetric)]
    pub metric: String,
    /// First day (`2026-03-01`) or instant (RFC 3339) of the range.
    pub start_date: String,
    /// Last day of the range, inclusive of its whole day, or an RFC 3339 instant.
    pub end_date: String,
    /// Bucket size; default `day`. At most 2 000 points per request.
    #[param(value_type = Option<Granularity>)]
    pub granularity: Option<String>,
    /// Comma-separated dimensions to group by (additive metrics only: throughput, arrivals,
    /// wip, blocked; not at `hour` granularity).
    #[param(value_type = Option<TrendDimensions>)]
    pub dimensions: Option<String>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<TrendsQuery>);

/// The body of `GET /v1/metrics/trends`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendsResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// The metric.
    #[schema(value_type = TrendMetric)]
    pub metric: &'static str,
    /// The bucket size.
    #[schema(value_type = Granularity)]
    pub granularity: &'static str,
    /// Start of the range (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub start_date: String,
    /// End of the range, exclusive (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub end_date: String,
    /// One point per bucket of the range, in time order (per group when grouped), up to
    /// the latest snapshot: a count metric is 0 in a bucket without events; a level metric
    /// (wip, blocked, cycle_time, lead_time, the scores) carries its latest value before the
    /// bucket forward, and has no points before its first value. The DORA metrics are per
    /// bucket (docs/DORA.md): `deployments` counts successful production deployments
    /// finished in it; `lead_time_for_changes` and `time_to_restore` are the p50 minutes of
    /// the changes first deployed and the incidents resolved in it, and
    /// `change_failure_rate` the rate of its finished production deployments (`null` when
    /// the bucket has none).
    pub data: Vec<TrendPoint>,
    /// How far the read model is behind the event log.
    pub freshness: Freshness,
}

/// One point of a trend.
#[derive(Debug, Serialize, ToSchema)]
pub struct TrendPoint {
    /// Start of the bucket (RFC 3339, UTC).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The number (count, level, p50 minutes or 0–100 score); `null` when it cannot be
    /// computed.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// The group's dimension values (`{}` for the project total; `null` groups tasks
    /// without that attribute).
    #[schema(value_type = HashMap<String, Option<String>>)]
    pub dimensions: Value,
    /// How the value was obtained.
    pub metadata: PointMetadata,
}

/// `metadata` of a trend point.
#[derive(Debug, Serialize, ToSchema)]
pub struct PointMetadata {
    /// Events counted, or samples behind a percentile.
    pub sample_size: i64,
    /// For percentile metrics, the confidence interval of the value; else `null`.
    #[schema(required = true, value_type = Option<ConfidenceInterval>)]
    pub confidence_interval: Value,
}

/// A confidence interval.
#[derive(Debug, Serialize, ToSchema)]
pub struct ConfidenceInterval {
    /// Lower bound.
    #[schema(required = true)]
    pub lower: Option<f64>,
    /// Upper bound.
    #[schema(required = true)]
    pub upper: Option<f64>,
}

/// Serves a trend.
#[utoipa::path(
    get,
    path = "/v1/metrics/trends",
    tag = "metrics",
    params(TrendsQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The metric's points over the range.", body = TrendsResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project.", body = ErrorBody),
        (status = 422, description = "`validation_error`: an unknown metric, granularity or dimension (`details.allowed_values`), or a range that is empty or too long.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable.", body = ErrorBody),
    )
)]
pub async fn get_trends(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request =
        metrics_request(&req, &credentials, &state, &PARAMETERS, SnapshotPart::None).await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &TREND_METRICS, None)?;
    let granularity = one_of(p, "granularity", &GRANULARITIES, Some("day"))?;
    let grain = Grain::parse(granularity).unwrap_or(Grain::Day);
    let start = p
        .instant("start_date", false)?
        .ok_or_else(|| ApiError::bad_field("start_date", "start_date is required"))?;
    let end = p
        .instant("end_date", true)?
        .ok_or_else(|| ApiError::bad_field("end_date", "end_date is required"))?;
    if end <= start {
        return Err(ApiError::invalid_field(
            "end_date",
            "end_date must be after start_date",
            &[],
        ));
    }
    let bucket_len = match grain {
        Grain::Hour => Duration::hours(1),
        Grain::Day => Duration::days(1),
        Grain::Week => Duration::days(7),
        Grain::Month => Duration::days(28),
    };
    if (end - start).num_seconds() / bucket_len.num_seconds() > MAX_POINTS {
        return Err(ApiError::invalid_field(
            "start_date",
            format!("the range holds more than {MAX_POINTS} {granularity} points; use a coarser granularity or a shorter range"),
            &[],
        ));
    }
    let dimensions: Vec<&str> = match p.get("dimensions").map(str::trim).filter(|d| !d.is_empty()) {
        None => Vec::new(),
        Some(list) => {
            let mut dims = Vec::new();
            for name in list.split(',').map(str::trim) {
                let known = TREND_DIMENSIONS
                    .iter()
                    .find(|d| **d == name)
                    .ok_or_else(|| {
                        ApiError::invalid_field(
                            "dimensions",
                            format!("unknown dimension {name:?}"),
                            &TREND_DIMENSIONS,
                        )
                    })?;
                if !dims.contains(known) {
                    dims.push(*known);
                }
            }
            if !ADDITIVE_METRICS.contains(&metric) {
                return Err(ApiError::invalid_field(
                    "dimensions",
                    format!("{metric} cannot be split by dimensions (percentiles and scores do not add up); these metrics can"),
                    &ADDITIVE_METRICS,
                ));
            }
            if grain == Grain::Hour {
                return Err(ApiError::invalid_field(
                    "granularity",
                    "dimensions are kept at day, week and month granularity",
                    &["day", "week", "month"],
                ));
            }
            dims
        }
    };

    let (head, snapshot) = (request.head, request.latest());
    let (freshness, fresh_identity) = super::optional_freshness(snapshot.as_ref(), head);
    let identity = format!("trends?{}|{fresh_identity}", req.query_string());
    if let Some(response) = rendered::kept(&req, &state, &request, &identity) {
        return Ok(response);
    }
    let client = state.read_pool.get().await?;
    let from = grain.bucket(start);
    let now = snapshot
        .as_ref()
        .map_or_else(chrono::Utc::now, |s| s.captured_at);
    let data: Vec<TrendPoint> = if dora::TREND_METRICS.contains(&metric) {
        let last = grain
            .bucket(end - Duration::microseconds(1))
            .min(grain.bucket(now));
        let facts = flowmeter_shared::db::dora::load_facts(&client, request.project_id).await?;
        let prepared = dora::Prepared::new(&facts, &state.settings.production_environments);
        series::buckets(grain, from, last)
            .into_iter()
            .filter_map(|bucket| {
                let to = grain.next(bucket).min(now);
                let (value, samples) = dora::trend_value(&prepared, metric, bucket, to)?;
                Some(point(bucket, value, samples, &Value::Null, json!({})))
            })
            .collect()
    } else {
        let level = LEVEL_METRICS.contains(&metric);
        let grouped = !dimensions.is_empty();
        let grain_name = grain.as_str();
        let points = |dimensioned: bool| {
            read_model::trend_points(
                &client,
                request.project_id,
                metric,
                grain_name,
                from,
                end,
                dimensioned,
            )
        };
        let rows = points(grouped).await?;
        // Levels need the totals too when grouped (they say which buckets are closed), and the
        // value carried into the range.
        let (totals, (baseline, baseline_tuples)) = if level {
            let totals = if grouped {
                points(false).await?
            } else {
                Vec::new()
            };
            let baseline = read_model::trend_baseline(
                &client,
                request.project_id,
                metric,
                grain_name,
                from,
                grouped,
            )
            .await?;
            (totals, baseline)
        } else {
            (Vec::new(), (None, Vec::new()))
        };

        // Buckets up to the end of the range, but not past the data: the snapshot's time (or
        // the clock when there is none yet) or the latest stored point, whichever is later.
        let latest_row = rows.iter().chain(&totals).map(|r| r.bucket).max();
        let last = grain
            .bucket(end - Duration::microseconds(1))
            .min(latest_row.map_or(grain.bucket(now), |l| l.max(grain.bucket(now))));
        let buckets = series::buckets(grain, from, last);
        let served = if grouped {
            let closed = totals.iter().map(|r| r.bucket).collect();
            series::grouped(
                level,
                &dimensions,
                &baseline_tuples,
                &closed,
                baseline.is_some(),
                &rows,
                &buckets,
            )
        } else {
            series::totals(level, baseline.as_ref(), &rows, &buckets)
        };
        served
            .into_iter()
            .map(|p| {
                point(
                    p.bucket,
                    p.value,
                    p.sample_size,
                    &p.detail,
                    Value::Object(p.dimensions),
                )
            })
            .collect()
    };

    let body = TrendsResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: request.project_id,
        metric,
        granularity,
        start_date: start.to_rfc3339_opts(SecondsFormat::Secs, true),
        end_date: end.to_rfc3339_opts(SecondsFormat::Secs, true),
        data,
        freshness,
    };
    rendered::keep_json(&req, &state, &request, &identity, &body)
}

fn point(
    bucket: chrono::DateTime<chrono::Utc>,
    value: Option<f64>,
    sample_size: i64,
    detail: &Value,
    dimensions: Value,
) -> TrendPoint {
    let interval = detail
        .get("confidence_interval")
        .map(|ci| json!({"lower": ci["lower"], "upper": ci["upper"]}))
        .unwrap_or(Value::Null);
    TrendPoint {
        timestamp: bucket.to_rfc3339_opts(SecondsFormat::Secs, true),
        value,
        dimensions,
        metadata: PointMetadata {
            sample_size,
            confidence_interval: interval,
        },
    }
}
