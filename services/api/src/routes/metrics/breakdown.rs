//! `GET /v1/metrics/breakdown`: a metric split by one dimension over a time range, each
//! group with its trend against the previous equal range.
//!
//! Values come from drill-down rows with `ts` in the range (filters on the other dimensions
//! apply): counts with their share of the total, or for cycle and lead time each group's
//! median. Trends compare with the previous range: from the drill-down rows for counts and
//! durations (so filters apply there too), and from the daily breakdown points for the WIP and
//! blocked levels (their value at the end of each range).

use std::collections::BTreeMap;

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, Duration, Utc};
use flowmeter_shared::db::read_model::{self, RowFilter};
use flowmeter_shared::metrics::stats::round_score;
use flowmeter_shared::read_model::{keys, BREAKDOWN_DIMENSIONS};
use serde_json::{json, Value};

use super::{cached_json, freshness, load_snapshot, metrics_request, one_of};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;

/// Metrics the breakdown accepts.
pub const BREAKDOWN_METRICS: [&str; 6] = [
    keys::THROUGHPUT,
    keys::ARRIVALS,
    keys::CYCLE_TIME,
    keys::LEAD_TIME,
    keys::WIP,
    keys::BLOCKED,
];

const RANGES: [&str; 4] = ["24h", "7d", "30d", "90d"];

fn range_length(range: &str) -> Duration {
    match range {
        "24h" => Duration::hours(24),
        "30d" => Duration::days(30),
        "90d" => Duration::days(90),
        _ => Duration::days(7),
    }
}

/// `{direction, change_pct}`: ±5 % relative is stable; from 0, any rise is up.
fn trend(current: Option<f64>, previous: Option<f64>) -> Value {
    match (current, previous) {
        (Some(c), Some(p)) if p != 0.0 => {
            let change = round_score((c - p) / p.abs() * 100.0);
            let direction = if change > 5.0 {
                "up"
            } else if change < -5.0 {
                "down"
            } else {
                "stable"
            };
            json!({"direction": direction, "change_pct": change})
        }
        (Some(c), Some(_)) | (Some(c), None) if c > 0.0 => {
            json!({"direction": "up", "change_pct": null})
        }
        (Some(_), _) => json!({"direction": "stable", "change_pct": 0.0}),
        (None, _) => json!({"direction": null, "change_pct": null}),
    }
}

/// Serves a breakdown.
pub async fn get_breakdown(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = metrics_request(
        &req,
        &principal,
        &state,
        &["project_id", "metric", "dimension", "time_range", "filters"],
    )
    .await?;
    let p = &request.params;
    let metric = one_of(p, "metric", &BREAKDOWN_METRICS, None)?;
    let dimension = one_of(p, "dimension", &BREAKDOWN_DIMENSIONS, None)?;
    let range = one_of(p, "time_range", &RANGES, Some("7d"))?;
    let others: Vec<&str> = BREAKDOWN_DIMENSIONS
        .iter()
        .copied()
        .filter(|d| *d != dimension)
        .collect();
    let filters = p.filters("filters", &others)?;
    let filter = RowFilter::from_map(&filters);
    let (snapshot, head) = load_snapshot(&state, request.project_id, None).await?;
    let now = snapshot.captured_at;
    let length = range_length(range);
    let client = state.pool.get().await?;
    let project = request.project_id;
    let (groups, total_count, total_p50) = read_model::breakdown_groups(
        &client,
        project,
        metric,
        dimension,
        &filter,
        now - length,
        now,
    )
    .await?;
    let is_duration = metric == keys::CYCLE_TIME || metric == keys::LEAD_TIME;
    let is_level = metric == keys::WIP || metric == keys::BLOCKED;

    // The previous range's value per group.
    let previous: BTreeMap<Option<String>, f64> = if is_level {
        level_at_range_ends(&client, project, metric, dimension, now, length).await?
    } else {
        let (before, _, _) = read_model::breakdown_groups(
            &client,
            project,
            metric,
            dimension,
            &filter,
            now - length - length,
            now - length,
        )
        .await?;
        before
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
    let breakdown: Vec<Value> = groups
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
            json!({
                "dimension_value": g.value,
                "dimension_label": label,
                "value": value,
                "percentage": share,
                "count": g.count,
                "trend": trend(value, previous),
            })
        })
        .collect();
    let total = if is_duration {
        total_p50.map(round_score)
    } else {
        Some(total_count as f64)
    };
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": project,
        "metric": metric,
        "dimension": dimension,
        "time_range": range,
        "filters_applied": filters,
        "total": total,
        "breakdown": breakdown,
        "freshness": freshness(&snapshot, head),
    });
    let identity = format!(
        "breakdown?{}|{}|{}|{head}",
        req.query_string(),
        snapshot.captured_at.timestamp_micros(),
        snapshot.as_of_seq
    );
    Ok(cached_json(&req, &state, &identity, body))
}

/// WIP or blocked per group at the end of the previous range (the last daily point in it).
async fn level_at_range_ends(
    client: &impl deadpool_postgres::GenericClient,
    project: uuid::Uuid,
    metric: &str,
    dimension: &str,
    now: DateTime<Utc>,
    length: Duration,
) -> Result<BTreeMap<Option<String>, f64>, ApiError> {
    let to = (now - length)
        .date_naive()
        .succ_opt()
        .unwrap_or((now - length).date_naive());
    let from = (now - length - length).date_naive();
    let points = read_model::breakdown_points(client, project, metric, dimension, from, to).await?;
    let mut last: BTreeMap<Option<String>, (chrono::NaiveDate, f64)> = BTreeMap::new();
    for (value, day, number, _) in points {
        let key = (!value.is_empty()).then_some(value);
        let entry = last.entry(key).or_insert((day, number));
        if day >= entry.0 {
            *entry = (day, number);
        }
    }
    Ok(last.into_iter().map(|(k, (_, v))| (k, v)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

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
