//! `GET /v1/metrics/trends`: a metric's points over a date range at a granularity, for the
//! project total or grouped by dimensions (additive metrics only).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{Duration, SecondsFormat};
use flowmeter_shared::db::{events, read_model};
use flowmeter_shared::read_model::{Grain, ADDITIVE_METRICS, TREND_DIMENSIONS, TREND_METRICS};
use serde_json::{json, Map, Value};

use super::{cached_json, metrics_request, one_of};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;

/// The most points one request may return.
pub const MAX_POINTS: i64 = 2000;

const GRAINS: [&str; 4] = ["hour", "day", "week", "month"];

/// Serves a trend.
pub async fn get_trends(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = metrics_request(
        &req,
        &principal,
        &state,
        &[
            "project_id",
            "metric",
            "start_date",
            "end_date",
            "granularity",
            "dimensions",
        ],
    )
    .await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &TREND_METRICS, None)?;
    let granularity = one_of(p, "granularity", &GRAINS, Some("day"))?;
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

    let client = state.pool.get().await?;
    let from = grain.bucket(start);
    let rows = read_model::trend_points(
        &client,
        request.project_id,
        metric,
        grain.as_str(),
        from,
        end,
        !dimensions.is_empty(),
    )
    .await?;
    let head = events::head_seq(&client, request.project_id).await?;
    let snapshot = read_model::snapshot(&client, request.project_id, None).await?;

    let data: Vec<Value> = if dimensions.is_empty() {
        rows.iter()
            .map(|r| point(r.bucket, r.value, r.sample_size, &r.detail, json!({})))
            .collect()
    } else {
        // Sum the stored tuples into the requested grouping.
        let mut groups: BTreeMap<(chrono::DateTime<chrono::Utc>, String), Group> = BTreeMap::new();
        for row in &rows {
            let mut key = Map::new();
            for dim in &dimensions {
                key.insert(
                    (*dim).to_owned(),
                    row.dimensions.get(*dim).cloned().unwrap_or(Value::Null),
                );
            }
            let entry = groups
                .entry((row.bucket, Value::Object(key.clone()).to_string()))
                .or_insert((key, 0.0, 0));
            entry.1 += row.value.unwrap_or(0.0);
            entry.2 += row.sample_size;
        }
        groups
            .into_iter()
            .map(|((bucket, _), (dims, value, samples))| {
                point(
                    bucket,
                    Some(value),
                    samples,
                    &json!({}),
                    Value::Object(dims),
                )
            })
            .collect()
    };

    let (freshness, fresh_identity) = super::optional_freshness(snapshot.as_ref(), head);
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": request.project_id,
        "metric": metric,
        "granularity": granularity,
        "start_date": start.to_rfc3339_opts(SecondsFormat::Secs, true),
        "end_date": end.to_rfc3339_opts(SecondsFormat::Secs, true),
        "data": data,
        "freshness": freshness,
    });
    let identity = format!("trends?{}|{fresh_identity}", req.query_string());
    Ok(cached_json(&req, &state, &identity, body))
}

/// A group of summed points: its dimensions, value and samples.
type Group = (Map<String, Value>, f64, i64);

fn point(
    bucket: chrono::DateTime<chrono::Utc>,
    value: Option<f64>,
    sample_size: i64,
    detail: &Value,
    dimensions: Value,
) -> Value {
    let interval = detail
        .get("confidence_interval")
        .map(|ci| json!({"lower": ci["lower"], "upper": ci["upper"]}))
        .unwrap_or(Value::Null);
    json!({
        "timestamp": bucket.to_rfc3339_opts(SecondsFormat::Secs, true),
        "value": value,
        "dimensions": dimensions,
        "metadata": {"sample_size": sample_size, "confidence_interval": interval},
    })
}
