//! `GET /v1/metrics/summary`: the latest snapshot (or the latest at or before `timestamp`).

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::SecondsFormat;
use serde_json::json;

use super::{cached_json, freshness, load_snapshot, metrics_request, snapshot_identity};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::startup::AppState;

/// Serves the summary.
pub async fn get_summary(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let request = metrics_request(&req, &principal, &state, &["project_id", "timestamp"]).await?;
    let at = request.params.instant("timestamp", false)?;
    let (snapshot, head) = load_snapshot(&state, request.project_id, at).await?;
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": request.project_id,
        "timestamp": snapshot.captured_at.to_rfc3339_opts(SecondsFormat::Micros, true),
        "metrics": snapshot.payload,
        "freshness": freshness(&snapshot, head),
    });
    let identity = snapshot_identity("summary", &req, &snapshot, head);
    Ok(cached_json(&req, &state, &identity, body))
}
