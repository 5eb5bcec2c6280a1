//! `GET /v1/metrics/summary`: the latest snapshot (or the latest at or before `timestamp`).
//! The hottest endpoint: one query finds the project, the snapshot and the log head, and the
//! stored payload is written into the response as it is, without parsing it again.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use flowmeter_shared::auth::Role;
use flowmeter_shared::db::read_model;

use super::params::Params;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;

/// Serves the summary.
pub async fn get_summary(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let params = Params::parse(req.query_string(), &["project_id", "timestamp"])?;
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
    // Every piece is either a fixed key, a formatted number or timestamp, a UUID, or the
    // stored JSON payload, so the concatenation is valid JSON.
    let body = format!(
        "{{\"version\":\"{}\",\"project_id\":\"{project_id}\",\"timestamp\":\"{captured_at}\",\"metrics\":{},\
         \"freshness\":{{\"as_of_seq\":{},\"log_head_seq\":{head},\"lag_events\":{},\"captured_at\":\"{captured_at}\"}}}}",
        flowmeter_shared::API_VERSION,
        snapshot.payload,
        snapshot.as_of_seq,
        (head - snapshot.as_of_seq).max(0),
    );
    Ok(response
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .body(body))
}
