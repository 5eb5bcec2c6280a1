//! Liveness and database health. No key needed (expose on an internal network).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::{resource, AppState};

/// Mounts `/health` and `/health/db`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(get_health)))
        .service(resource("/health/db").route(web::get().to(get_health_db)));
}

/// Liveness: the process answers.
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

/// Pings the pool; 503 when the database cannot be reached within the timeout.
pub async fn get_health_db(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    let ping = async {
        let client = state.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        Ok::<_, ApiError>(())
    };
    let timeout = state.settings.database.connect_timeout + Duration::from_millis(500);
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(json!({
            "status": "ok",
            "database": "up",
            "latency_ms": started.elapsed().as_secs_f64() * 1000.0,
        }))),
        Ok(Err(ApiError::Internal(e))) => Err(ApiError::Internal(e)),
        Ok(Err(_)) | Err(_) => Err(ApiError::Unavailable("the database is unreachable".into())),
    }
}
