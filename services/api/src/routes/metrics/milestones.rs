//! `GET /v1/metrics/health`: milestone health with the forecast the worker stored with the
//! snapshot (so reads are cheap and repeatable).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;

use super::{
    cached_json, freshness, load_snapshot, metrics_request, require_feature, snapshot_identity,
};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings::Feature;
use crate::startup::AppState;

/// Serves milestone health.
pub async fn get_milestone_health(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Forecast)?;
    let request = metrics_request(&req, &principal, &state, &["project_id"]).await?;
    let (snapshot, head) = load_snapshot(&state, request.project_id, None).await?;
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": request.project_id,
        "milestones": snapshot.health,
        "freshness": freshness(&snapshot, head),
    });
    let identity = snapshot_identity("health", &req, &snapshot, head);
    Ok(cached_json(&req, &state, &identity, body))
}
