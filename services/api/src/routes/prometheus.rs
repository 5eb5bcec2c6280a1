//! `GET /metrics`: OpenMetrics text for Prometheus.

use actix_web::{web, HttpResponse};
use prometheus_client::encoding::text::encode;

use crate::error::ApiError;
use crate::startup::{resource, AppState};

/// Mounts `/metrics`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/metrics").route(web::get().to(get_metrics)));
}

/// Encodes every registered metric, refreshing the pool gauge first.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "OpenMetrics text for Prometheus (SPEC §9).", content_type = "application/openmetrics-text; version=1.0.0; charset=utf-8", body = String))
)]
pub async fn get_metrics(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.metrics.observe_pool(&state.pool);
    let mut text = String::new();
    encode(&mut text, &state.registry)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("encoding metrics: {e}")))?;
    Ok(HttpResponse::Ok()
        .content_type("application/openmetrics-text; version=1.0.0; charset=utf-8")
        .body(text))
}
