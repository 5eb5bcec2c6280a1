//! `GET /v1/metrics/summary`: the latest snapshot (or the latest at or before `timestamp`).
//! The hottest endpoint: one query finds the project, the snapshot and the log head, and the
//! stored payload is written into the response as it is, without parsing it again.

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::read_model;
use flowmeter_shared::metrics::SummaryMetrics;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::{query_names, Params};
use super::Freshness;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::startup::AppState;

/// Query parameters of `GET /v1/metrics/summary`.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SummaryQuery {
    /// The project.
    pub project_id: Uuid,
    /// Serve the latest snapshot at or before this instant instead of the latest one: a
    /// date (`2026-03-01`, its start) or an RFC 3339 date-time.
    pub timestamp: Option<String>,
}

static PARAMETERS: LazyLock<Vec<String>> = LazyLock::new(query_names::<SummaryQuery>);

/// The body of `GET /v1/metrics/summary`. The handler writes it by hand around the stored
/// payload (see [`summary_body`]); a unit test pins that the two agree.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SummaryResponse {
    /// Always `1.0`.
    pub version: String,
    /// The project.
    pub project_id: Uuid,
    /// The snapshot's time (RFC 3339, UTC, microseconds).
    #[schema(format = DateTime)]
    pub timestamp: String,
    /// The metrics of SPEC §5 as of `timestamp`.
    pub metrics: SummaryMetrics,
    /// How far the snapshot is behind the event log.
    pub freshness: Freshness,
}

/// Serves the summary.
#[utoipa::path(
    get,
    path = "/v1/metrics/summary",
    tag = "metrics",
    params(SummaryQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The latest snapshot (or the latest at or before `timestamp`).", body = SummaryResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project, or no snapshot (yet, or at or before `timestamp`).", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable.", body = ErrorBody),
    )
)]
pub async fn get_summary(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &PARAMETERS)?;
    let project_id = params.uuid("project_id")?;
    principal.require(Role::Viewer, project_id)?;
    let at = params.instant("timestamp", false)?;
    let client = state.pool.get().await?;
    let (snapshot, head) = read_model::summary_lookup(&client, project_id, at)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no project {project_id}")))?;
    let snapshot = snapshot.ok_or_else(|| match at {
        Some(at) => ApiError::NotFound(format!(
            "project {project_id} has no snapshot at or before {}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )),
        None => ApiError::NotFound(format!(
            "project {project_id} has not been folded yet; its first snapshot appears once the worker has run"
        )),
    })?;
    let identity = format!(
        "summary?{}|{}|{}|{head}",
        req.query_string(),
        snapshot.captured_at.timestamp_micros(),
        snapshot.as_of_seq
    );
    let etag = super::etag(&identity);
    let captured_at = snapshot
        .captured_at
        .to_rfc3339_opts(SecondsFormat::Micros, true);
    let (mut response, not_modified) = super::validated_response(&req, &state, &etag);
    if not_modified {
        return Ok(response.finish());
    }
    let body = summary_body(
        project_id,
        &captured_at,
        &snapshot.payload,
        snapshot.as_of_seq,
        head,
    );
    Ok(response
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body))
}

/// The summary body around the stored payload, without parsing the payload again. Every
/// piece is either a fixed key, a formatted number or timestamp, a UUID, or the stored JSON
/// payload, so the concatenation is valid JSON of the [`SummaryResponse`] shape.
pub fn summary_body(
    project_id: Uuid,
    captured_at: &str,
    payload: &str,
    as_of_seq: i64,
    head: i64,
) -> String {
    format!(
        "{{\"version\":\"{}\",\"project_id\":\"{project_id}\",\"timestamp\":\"{captured_at}\",\"metrics\":{payload},\
         \"freshness\":{{\"as_of_seq\":{as_of_seq},\"log_head_seq\":{head},\"lag_events\":{},\"captured_at\":\"{captured_at}\"}}}}",
        flowmeter_shared::API_VERSION,
        (head - as_of_seq).max(0),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hand_written_body_has_exactly_the_documented_shape() {
        let payload = r#"{"north_star":{"delivery_predictability_index":{"value":null,"trend":null,"change_pct":null,"components":{"schedule_reliability":null,"cycle_time_stability":null,"blocker_resolution_rate":null},"reason":"no_dpi_components"},"flow_efficiency_score":{"value":41.0,"active_time_pct":41.0,"waiting_time_pct":52.0,"blocked_time_pct":7.0},"integration_reliability_score":{"value":88.0,"success_rate":0.9,"avg_recovery_minutes":95.0}},"operational":{"throughput":{"tasks_integrated_week":2,"tasks_by_milestone":[{"milestone_id":"m1","count":2}]},"cycle_time":{"p50_minutes":1440.0,"p90_minutes":4320.0,"p95_minutes":7200.0},"lead_time":{"p50_minutes":2880.0,"p90_minutes":8640.0,"p95_minutes":10080.0},"wip":{"total_count":1,"avg_age_hours":36.5,"aging_buckets":{"lt_24h":0,"24h_to_72h":1,"72h_to_7d":0,"gt_7d":0}},"blocked":{"ratio":0.0,"avg_blocked_hours":null,"count":0,"reason":"no_blocked_tasks"},"backlog":{"implemented_not_integrated":0,"avg_age_hours":null,"reason":"no_backlog_tasks"},"gates":{"queue_length":0,"avg_latency_minutes":null,"sla_breach_rate":null,"reason":"no_gate_decisions"},"integration_outcomes":{"success":2,"conflict":0,"failed_checks":0,"aborted":0,"avg_retry_to_success_minutes":null,"reason":"no_retried_successes"},"state_distribution":{"by_state":{"backlog":0,"ready":0,"reserved":0,"claimed":0,"in_progress":1,"implemented":0,"integrated":2,"conflict":0,"blocked":0,"abandoned":0,"cancelled":0},"wip_count":1}},"actionability":{"bottleneck_contribution":[{"stage":"review","delay_contribution_pct":100.0}],"suggested_actions":[]}}"#;
        let project_id = Uuid::new_v4();
        let body = summary_body(project_id, "2026-03-14T12:00:00.000000Z", payload, 7, 9);
        let parsed: SummaryResponse = serde_json::from_str(&body).unwrap();
        assert_eq!(parsed.version, "1.0");
        assert_eq!(parsed.project_id, project_id);
        assert_eq!(parsed.freshness.lag_events, 2);
        // Nothing is lost or added between the wire JSON and the documented type.
        let wire: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(serde_json::to_value(&parsed).unwrap(), wire);
    }
}
