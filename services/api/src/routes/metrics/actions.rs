//! `GET /v1/metrics/actions`: the suggestions computed by the worker with the latest
//! snapshot (the same objects as the summary's `actionability.suggested_actions`).

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Value};

use super::{
    cached_json, freshness, load_snapshot, metrics_request, require_feature, snapshot_identity,
};
use crate::auth::Principal;
use crate::error::ApiError;
use crate::settings::Feature;
use crate::startup::AppState;

/// Serves the suggested actions.
pub async fn get_actions(
    req: HttpRequest,
    principal: Principal,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Actions)?;
    let request = metrics_request(&req, &principal, &state, &["project_id"]).await?;
    let (snapshot, head) = load_snapshot(&state, request.project_id, None).await?;
    let suggestions = snapshot
        .payload
        .pointer("/actionability/suggested_actions")
        .cloned()
        .unwrap_or_else(|| Value::Array(Vec::new()));
    let body = json!({
        "version": flowmeter_shared::API_VERSION,
        "project_id": request.project_id,
        "suggestions": suggestions,
        "freshness": freshness(&snapshot, head),
    });
    let identity = snapshot_identity("actions", &req, &snapshot, head);
    Ok(cached_json(&req, &state, &identity, body))
}
