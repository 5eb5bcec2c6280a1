//! `GET /v1/metrics/health`: milestone health with the forecast the worker stored with the
//! snapshot (so reads are cheap and repeatable).

use actix_web::{web, HttpRequest, HttpResponse};
use flowmeter_shared::db::read_path::SnapshotPart;
use flowmeter_shared::metrics::MilestoneHealth;
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

/// The body of `GET /v1/metrics/health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MilestoneHealthResponse {
    /// Always `1.0`.
    pub version: &'static str,
    /// The project.
    pub project_id: Uuid,
    /// Every milestone with its health and forecast, as stored with the snapshot.
    #[schema(value_type = Vec<MilestoneHealth>)]
    pub milestones: Value,
    /// How far the snapshot is behind the event log.
    pub freshness: Freshness,
}

/// Serves milestone health.
#[utoipa::path(
    get,
    path = "/v1/metrics/health",
    tag = "metrics",
    params(ProjectQuery),
    security(("bearer" = []), ("api_key" = [])),
    responses(
        (status = 200, description = "Milestone health with the stored forecast.", body = MilestoneHealthResponse),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`."),
        (status = 400, description = "`bad_request`: a missing or malformed parameter (named in `details.field`).", body = ErrorBody),
        (status = 404, description = "`not_found`: no such project, or no snapshot yet.", body = ErrorBody),
        (status = 503, description = "`service_unavailable`: the database is unavailable, or forecasts are switched off.", body = ErrorBody),
    )
)]
pub async fn get_milestone_health(
    req: HttpRequest,
    credentials: Credentials,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    require_feature(&state, Feature::Forecast)?;
    let request = metrics_request(
        &req,
        &credentials,
        &state,
        &PROJECT_PARAMETERS,
        SnapshotPart::Health,
    )
    .await?;
    let (snapshot, head) = (request.snapshot()?, request.head);
    let body = MilestoneHealthResponse {
        version: flowmeter_shared::API_VERSION,
        project_id: request.project_id,
        milestones: request.part().unwrap_or(Value::Null),
        freshness: freshness(&snapshot, head),
    };
    let identity = snapshot_identity("health", &req, &snapshot, head);
    Ok(cached_json(&req, &state, &identity, &body))
}
