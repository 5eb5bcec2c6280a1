//! Liveness and database health. No key needed (expose on an internal network).

use std::time::Duration;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::error::ApiError;
use crate::startup::{resource, AppState};

/// Mounts `/health`, `/health/db` and `/health/all`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(get_health)))
        .service(resource("/health/db").route(web::get().to(get_health_db)))
        .service(resource("/health/all").route(web::get().to(get_health_all)));
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

/// Everything an operator checks first: database, migrations, fold lag and stalled
/// projects, kill switches and version. 503 when the database is down or migrations are
/// not current; `degraded` (still 200) when projects are stalled or halted.
pub async fn get_health_all(state: web::Data<AppState>) -> HttpResponse {
    use flowmeter_shared::db::{checkpoints, migrations};
    let started = std::time::Instant::now();
    let switches: serde_json::Map<String, serde_json::Value> = crate::settings::Feature::ALL
        .iter()
        .map(|f| {
            let on = !state.settings.disabled_features.contains(f);
            (
                f.as_str().to_owned(),
                json!(if on { "enabled" } else { "disabled" }),
            )
        })
        .collect();
    let checks = async {
        let client = state.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        let latency = started.elapsed().as_secs_f64() * 1000.0;
        let files = migrations::load(state.settings.migrations_dir.as_deref())?;
        let pending = migrations::pending(&client, &files).await?;
        let progress = checkpoints::progress(&client).await?;
        Ok::<_, anyhow::Error>((latency, pending, progress))
    };
    let timeout = state.settings.database.connect_timeout + Duration::from_millis(500);
    let (status_code, body) = match tokio::time::timeout(timeout, checks).await {
        Ok(Ok((latency, pending, progress))) => {
            let lag: i64 = progress
                .iter()
                .map(|p| (p.head_seq - p.last_seq).max(0))
                .sum();
            let stalled: Vec<_> = progress
                .iter()
                .filter(|p| p.status == "stalled" || p.status == "halted")
                .map(|p| json!({"project_id": p.project_id, "status": p.status, "last_error": p.last_error}))
                .collect();
            let last_success = progress.iter().filter_map(|p| p.last_success_at).max();
            let status = if !pending.is_empty() {
                "down"
            } else if stalled.is_empty() {
                "ok"
            } else {
                "degraded"
            };
            let code = if pending.is_empty() { 200 } else { 503 };
            (
                code,
                json!({
                    "status": status,
                    "database": {"status": "up", "latency_ms": latency},
                    "migrations": {"current": pending.is_empty(), "pending": pending},
                    "worker": {"projects": progress.len(), "lag_events": lag, "stalled_projects": stalled,
                               "last_success_at": last_success},
                    "kill_switches": switches,
                }),
            )
        }
        Ok(Err(error)) => {
            tracing::warn!(error = format!("{error:#}"), "Health check failed.");
            (
                503,
                json!({"status": "down", "database": {"status": "down"}, "kill_switches": switches}),
            )
        }
        Err(_) => (
            503,
            json!({"status": "down", "database": {"status": "down", "reason": "timeout"}, "kill_switches": switches}),
        ),
    };
    let mut body = body;
    body["version"] = json!(flowmeter_shared::API_VERSION);
    body["service_version"] = json!(env!("CARGO_PKG_VERSION"));
    HttpResponse::build(
        actix_web::http::StatusCode::from_u16(status_code)
            .unwrap_or(actix_web::http::StatusCode::SERVICE_UNAVAILABLE),
    )
    .json(body)
}
