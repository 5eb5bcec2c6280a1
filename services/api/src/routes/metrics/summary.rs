//! `GET /v1/metrics/summary`: the latest snapshot (or the latest at or before `timestamp`).
//! The hottest endpoint: one statement finds the caller's key, the project, the snapshot
//! and the log head; the stored payload is written into the response as it is, without
//! parsing it again; and the rendered response is kept per project until the snapshot row
//! or the log head changes (see [`SummaryCache`]).

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

use actix_web::http::header;
use actix_web::web::Bytes;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::read_model;
use flowmeter_shared::metrics::SummaryMetrics;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::params::{query_names, Params};
use super::Freshness;
use crate::auth::Credentials;
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
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &PARAMETERS)?;
    let project_id = params.uuid("project_id")?;
    let at = params.instant("timestamp", false)?;
    let held = state.summaries.get(project_id);
    let client = state.read_pool.get().await?;
    // The key, the project, the snapshot and the log head in one statement; the key is
    // checked before anything else is revealed.
    let read = read_model::summary_lookup(
        &client,
        project_id,
        at,
        credentials.key_hash(),
        held.as_deref()
            .map(|h| (h.captured_at, h.row_version.as_str())),
    )
    .await?;
    // Back to the pool before the key check, which may take a primary connection.
    drop(client);
    let verified = credentials.verify(&state.pool, read.key).await;
    let principal = crate::failed_auth::observe(&req, verified)?;
    crate::rate_limit::admit(&req, &principal)?;
    principal.require(Role::Viewer, project_id)?;
    if !read.project_exists {
        return Err(ApiError::NotFound(format!("no project {project_id}")));
    }
    let snapshot = read.snapshot.ok_or_else(|| match at {
        Some(at) => ApiError::NotFound(format!(
            "project {project_id} has no snapshot at or before {}",
            at.to_rfc3339_opts(SecondsFormat::Secs, true)
        )),
        None => ApiError::NotFound(format!(
            "project {project_id} has not been folded yet; its first snapshot appears once the worker has run"
        )),
    })?;
    let head = read.head;
    let query = req.query_string();
    let rendered = match held {
        Some(held) if held.is_row(&snapshot) && held.head == head && held.query == query => held,
        _ => {
            let payload = match (snapshot.payload, &held) {
                (Some(payload), _) => Arc::<str>::from(payload),
                // PostgreSQL leaves the payload out only when it is the row we hold.
                (None, Some(held)) => held.payload.clone(),
                (None, None) => {
                    return Err(ApiError::Internal(anyhow::anyhow!(
                        "the summary lookup left out a payload that is not cached"
                    )))
                }
            };
            let rendered = Arc::new(RenderedSummary::new(
                project_id,
                snapshot.captured_at,
                snapshot.row_version,
                snapshot.as_of_seq,
                payload,
                head,
                query,
            ));
            state.summaries.put(project_id, rendered.clone());
            rendered
        }
    };
    let (mut response, not_modified) = super::validated_response(&req, &state, &rendered.etag);
    if not_modified {
        return Ok(response.finish());
    }
    Ok(response
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(rendered.body.clone()))
}

/// The most projects whose rendered summary is kept; past it the cache starts over.
const MAX_CACHED_PROJECTS: usize = 10_000;

/// The last summary served per project: the snapshot row's payload (so PostgreSQL does not
/// send it again while the row is unchanged) and the rendered response (body and ETag) for
/// one log head and query string, so a repeated request is neither formatted nor hashed
/// again. Entries are checked against the row's identity on every request, so a new or
/// rewritten snapshot is never served from here.
#[derive(Debug, Default)]
pub struct SummaryCache {
    entries: Mutex<HashMap<Uuid, Arc<RenderedSummary>>>,
}

impl SummaryCache {
    fn get(&self, project_id: Uuid) -> Option<Arc<RenderedSummary>> {
        self.entries
            .lock()
            .ok()
            .and_then(|entries| entries.get(&project_id).cloned())
    }

    fn put(&self, project_id: Uuid, rendered: Arc<RenderedSummary>) {
        if let Ok(mut entries) = self.entries.lock() {
            if entries.len() >= MAX_CACHED_PROJECTS && !entries.contains_key(&project_id) {
                entries.clear();
            }
            entries.insert(project_id, rendered);
        }
    }
}

/// One rendered summary response.
#[derive(Debug)]
pub struct RenderedSummary {
    captured_at: DateTime<Utc>,
    row_version: String,
    payload: Arc<str>,
    head: i64,
    query: String,
    etag: String,
    body: Bytes,
}

impl RenderedSummary {
    fn new(
        project_id: Uuid,
        captured_at: DateTime<Utc>,
        row_version: String,
        as_of_seq: i64,
        payload: Arc<str>,
        head: i64,
        query: &str,
    ) -> Self {
        // The row version is part of the identity: a snapshot rewritten in place (a
        // rebuild) gets a new tag even with the same time and sequence number.
        let identity = format!(
            "summary?{query}|{}|{as_of_seq}|{row_version}|{head}",
            captured_at.timestamp_micros(),
        );
        let body = summary_body(
            project_id,
            &captured_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            &payload,
            as_of_seq,
            head,
        );
        Self {
            captured_at,
            row_version,
            payload,
            head,
            query: query.to_owned(),
            etag: super::etag(&identity),
            body: Bytes::from(body),
        }
    }

    fn is_row(&self, snapshot: &read_model::RawSnapshot) -> bool {
        self.captured_at == snapshot.captured_at && self.row_version == snapshot.row_version
    }
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
        let payload = r#"{"north_star":{"delivery_predictability_index":{"value":null,"trend":null,"change_pct":null,"components":{"schedule_reliability":null,"cycle_time_stability":null,"blocker_resolution_rate":null},"reason":"no_dpi_components"},"flow_efficiency_score":{"value":41.0,"active_time_pct":41.0,"waiting_time_pct":52.0,"blocked_time_pct":7.0},"integration_reliability_score":{"value":88.0,"success_rate":0.9,"avg_recovery_minutes":95.0}},"operational":{"throughput":{"tasks_integrated_week":2,"tasks_by_milestone":[{"milestone_id":"m1","count":2}]},"cycle_time":{"p50_minutes":1440.0,"p90_minutes":4320.0,"p95_minutes":7200.0},"lead_time":{"p50_minutes":2880.0,"p90_minutes":8640.0,"p95_minutes":10080.0},"wip":{"total_count":1,"avg_age_hours":36.5,"aging_buckets":{"lt_24h":0,"24h_to_72h":1,"72h_to_7d":0,"gt_7d":0}},"blocked":{"ratio":0.0,"avg_blocked_hours":null,"count":0,"reason":"no_blocked_tasks"},"backlog":{"implemented_not_integrated":0,"avg_age_hours":null,"reason":"no_backlog_tasks"},"gates":{"queue_length":0,"avg_latency_minutes":null,"sla_breach_rate":null,"reason":"no_gate_decisions"},"integration_outcomes":{"success":2,"conflict":0,"failed_checks":0,"aborted":0,"avg_retry_to_success_minutes":null,"reason":"no_retried_successes"},"state_distribution":{"by_state":{"backlog":0,"ready":0,"reserved":0,"claimed":0,"in_progress":1,"implemented":0,"integrated":2,"conflict":0,"blocked":0,"abandoned":0,"cancelled":0},"wip_count":1}},"actionability":{"bottleneck_contribution":[{"stage":"review","delay_contribution_pct":100.0}],"suggested_actions":[]},"dora":{"deployment_frequency":{"per_day":null,"count_30d":null,"performance_level":null},"lead_time_for_changes":{"p50_minutes":null,"p90_minutes":null,"sample_size":0,"performance_level":null},"change_failure_rate":{"rate":null,"failures":0,"deployments":0,"performance_level":null},"time_to_restore":{"p50_minutes":0.5,"sample_size":1,"performance_level":"elite"}}}"#;
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
