//! `GET /v1/metrics/actions`: the suggestions computed by the worker with the latest
//! snapshot (the same objects as the summary's `actionability.suggested_actions`).

use actix_web::{web, HttpRequest, HttpResponse};
use flowmeter_shared::db::read_path::SnapshotPart;
use flowmeter_shared::metrics::summary::SuggestedAction;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::{
    cached_json, freshness, metrics_request, require_feature, snapshot_identity, Freshness,
    ProjectQuery, PROJECT_PARAMETERS,
};
use crate::auth::Credentials;
use crate::error::{ApiError, ErrorBody};
use crate::settings::Feature;
use crate::startup::AppState;

/// The body of `GET /v1/metrics/actions`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ActionsResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// The suggestions stored with the latest snapshot (the summary's
    /// `actionability.suggested_actions`).
    #[schema(value_type = Vec<SuggestedAction>)]
    pub suggestions: Value,
    /// How far the snapshot is behind the event log.
    pub freshness: Freshness,
}

/// Serves the suggested actions.
#[utoipa::path(
    get,
    path = "/v1/metrics/actions",
    tag = "metrics",
    params(ProjectQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "The suggested actions of the latest snapshot.", body = ActionsResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project, or no snapshot yet.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or actions are switched off.", body = ErrorBody),
    )
)]
pub async fn get_actions(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Actions)?;
    let request = metrics_request(
        &req,
        &credentials,
        &state,
        &PROJECT_PARAMETERS,
        SnapshotPart::Actions,
    )
    .await?;
    let (snapshot, head) = (request.snapshot()?, request.head);
    let suggestions = request.part().unwrap_or_else(|| Value::Array(Vec::new()));
    let body = ActionsResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: request.project_id,
        suggestions,
        freshness: freshness(&snapshot, head),
    };
    let identity = snapshot_identity("actions", &req, &snapshot, head);
    Ok(cached_json(&req, &state, &identity, &body))
}
