//! Liveness and database health. No key needed (expose on an internal network).

use std::collections::BTreeMap;

use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::error::{ApiError, ErrorBody};
use crate::startup::{resource, AppState};

/// Mounts `/health`, `/health/db` and `/health/all`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/health").route(web::get().to(get_health)))
        .service(resource("/health/db").route(web::get().to(get_health_db)))
        .service(resource("/health/all").route(web::get().to(get_health_all)));
}

/// The body of `GET /health`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Liveness {
    /// Always `ok`.
    pub status: &'static str,
}

/// The body of `GET /health/db`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseHealth {
    /// `ok`.
    pub status: &'static str,
    /// `up`.
    pub database: &'static str,
    /// How long the ping took.
    pub latency_ms: f64,
}

/// The body of `GET /health/all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct FullHealth {
    /// `ok`; `degraded` when projects are stalled or halted; `down` when the database is
    /// unreachable or migrations are pending.
    pub status: &'static str,
    /// The database check.
    pub database: DatabaseCheck,
    /// Migrations (absent when the database is down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrations: Option<MigrationsCheck>,
    /// The fold (absent when the database is down).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker: Option<WorkerCheck>,
    /// Every kill switch: `enabled` or `disabled`.
    pub kill_switches: BTreeMap<String, &'static str>,
    /// The API version, `1.0`.
    pub version: &'static str,
    /// The service's build version.
    pub service_version: &'static str,
    /// When `down`: `service_unavailable`. With `message`, `details`, `request_id` and
    /// `timestamp` these are the error envelope's fields beside the checks, so a client
    /// reading either shape understands the 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<crate::error::ErrorCode>,
    /// When `down`: why, in a sentence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When `down`: `{}`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub details: Option<serde_json::Value>,
    /// When `down`: the request's id (also in `X-Request-ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// When `down`: when the answer was given (RFC 3339, UTC, milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(format = DateTime)]
    pub timestamp: Option<String>,
}

/// `database` of `/health/all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct DatabaseCheck {
    /// `up` or `down`.
    pub status: &'static str,
    /// How long the ping took (when up).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// `timeout` when the check timed out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// `migrations` of `/health/all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MigrationsCheck {
    /// Whether every migration is applied.
    pub current: bool,
    /// Names of the pending migrations.
    pub pending: Vec<String>,
}

/// `worker` of `/health/all`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WorkerCheck {
    /// Projects with events.
    pub projects: usize,
    /// Events appended but not yet folded, over every project.
    pub lag_events: i64,
    /// Projects whose fold is stalled or halted.
    pub stalled_projects: Vec<StalledProject>,
    /// The latest successful fold of any project.
    #[schema(required = true)]
    pub last_success_at: Option<DateTime<Utc>>,
}

/// One stalled or halted project.
#[derive(Debug, Serialize, ToSchema)]
pub struct StalledProject {
    /// The project.
    pub project_id: Uuid,
    /// `stalled` or `halted`.
    pub status: String,
    /// The last fold error.
    #[schema(required = true)]
    pub last_error: Option<String>,
}

/// Liveness: the process answers.
#[utoipa::path(
    get,
    path = "/health",
    tag = "operations",
    responses((status = 200, description = "The process answers.", body = Liveness))
)]
pub async fn get_health() -> HttpResponse {
    HttpResponse::Ok().json(Liveness { status: "ok" })
}

/// Pings the pool; 503 when the database cannot be reached within the timeout.
#[utoipa::path(
    get,
    path = "/health/db",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers.", body = DatabaseHealth),
        (status = 503, description = "`service_unavailable`: the database is unreachable.", body = ErrorBody),
    )
)]
pub async fn get_health_db(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let started = std::time::Instant::now();
    // The primary, and the read replica when one is configured.
    let ping = async {
        let client = state.pool.get().await?;
        client.simple_query("SELECT 1").await?;
        if state.settings.read_database_url.is_some() {
            let client = state.read_pool.get().await?;
            client.simple_query("SELECT 1").await?;
        }
        Ok::<_, ApiError>(())
    };
    let timeout = state.settings.database.timeout;
    match tokio::time::timeout(timeout, ping).await {
        Ok(Ok(())) => Ok(HttpResponse::Ok().json(DatabaseHealth {
            status: "ok",
            database: "up",
            latency_ms: started.elapsed().as_secs_f64() * 1000.0,
        })),
        Ok(Err(ApiError::Internal(e))) => Err(ApiError::Internal(e)),
        Ok(Err(_)) | Err(_) => Err(ApiError::Unavailable("the database is unreachable".into())),
    }
}

/// Everything an operator checks first: database, migrations, fold lag and stalled
/// projects, kill switches and version. 503 when the database is down or migrations are
/// not current; `degraded` (still 200) when projects are stalled or halted.
#[utoipa::path(
    get,
    path = "/health/all",
    tag = "operations",
    responses(
        (status = 200, description = "`ok` or `degraded`.", body = FullHealth),
        (status = 503, description = "`down`: the database is unreachable or migrations are pending (the same shape).", body = FullHealth),
    )
)]
pub async fn get_health_all(state: web::Data<AppState>) -> HttpResponse {
    use flowmeter_shared::db::{checkpoints, migrations};
    let started = std::time::Instant::now();
    let kill_switches: BTreeMap<String, &'static str> = crate::settings::Feature::ALL
        .iter()
        .map(|f| {
            let on = !state.settings.disabled_features.contains(f);
            (
                f.as_str().to_owned(),
                if on { "enabled" } else { "disabled" },
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
    let timeout = state.settings.database.timeout;
    let mut health = FullHealth {
        status: "down",
        database: DatabaseCheck {
            status: "down",
            latency_ms: None,
            reason: None,
        },
        migrations: None,
        worker: None,
        kill_switches,
        version: flowmeter_shared::API_VERSION,
        service_version: env!("CARGO_PKG_VERSION"),
        error: None,
        message: None,
        details: None,
        request_id: None,
        timestamp: None,
    };
    match tokio::time::timeout(timeout, checks).await {
        Ok(Ok((latency, pending, progress))) => {
            let lag: i64 = progress
                .iter()
                .map(|p| (p.head_seq - p.last_seq).max(0))
                .sum();
            let stalled: Vec<_> = progress
                .iter()
                .filter(|p| p.status == "stalled" || p.status == "halted")
                .map(|p| StalledProject {
                    project_id: p.project_id,
                    status: p.status.clone(),
                    last_error: p.last_error.clone(),
                })
                .collect();
            let last_success = progress.iter().filter_map(|p| p.last_success_at).max();
            health.status = if !pending.is_empty() {
                "down"
            } else if stalled.is_empty() {
                "ok"
            } else {
                "degraded"
            };
            health.database = DatabaseCheck {
                status: "up",
                latency_ms: Some(latency),
                reason: None,
            };
            health.migrations = Some(MigrationsCheck {
                current: pending.is_empty(),
                pending,
            });
            health.worker = Some(WorkerCheck {
                projects: progress.len(),
                lag_events: lag,
                stalled_projects: stalled,
                last_success_at: last_success,
            });
        }
        Ok(Err(error)) => {
            tracing::warn!(error = format!("{error:#}"), "Health check failed.");
        }
        Err(_) => health.database.reason = Some("timeout"),
    }
    let status = if health.status == "down" {
        let message = match (health.database.status, health.database.reason) {
            ("up", _) => "migrations are pending",
            (_, Some("timeout")) => "the database did not answer in time",
            _ => "the database is unreachable",
        };
        health.error = Some(crate::error::ErrorCode::ServiceUnavailable);
        health.message = Some(message.to_owned());
        health.details = Some(serde_json::json!({}));
        health.request_id = Some(crate::context::current_request_id());
        health.timestamp = Some(Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true));
        actix_web::http::StatusCode::SERVICE_UNAVAILABLE
    } else {
        actix_web::http::StatusCode::OK
    };
    HttpResponse::build(status).json(health)
}
