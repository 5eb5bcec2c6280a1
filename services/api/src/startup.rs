//! Builds the application: pool, migrations, bootstrap key, metrics and every route in
//! one place.

use std::net::TcpListener;
use std::sync::Arc;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use deadpool_postgres::Pool;
use flowmeter_shared::db::{self, api_keys, migrations};
use prometheus_client::registry::Registry;

use crate::context::{method_not_allowed, not_found, request_context};
use crate::error::ApiError;
use crate::observability::ApiMetrics;
use crate::routes;
use crate::settings::ApiSettings;

/// What every handler can reach.
pub struct AppState {
    /// The database pool (the primary: writes, keys, health).
    pub pool: Pool,
    /// The pool metrics reads use: a replica's with `FLOWMETER_READ_DATABASE_URL`, else the
    /// primary's.
    pub read_pool: Pool,
    /// Validated settings.
    pub settings: ApiSettings,
    /// The process's metrics.
    pub metrics: Arc<ApiMetrics>,
    /// The registry `/metrics` encodes.
    pub registry: Arc<Registry>,
    /// The last rendered summary per project.
    pub summaries: routes::metrics::summary::SummaryCache,
    /// Rendered bodies of the other snapshot responses.
    pub rendered: routes::metrics::rendered::RenderedCache,
}

/// A path whose other methods answer 405 in our envelope.
pub fn resource(path: &str) -> actix_web::Resource {
    web::resource(path).default_service(web::to(method_not_allowed))
}

/// CORS for the configured browser origins (none: no cross-origin access).
fn cors(origins: &[String]) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "OPTIONS"])
        .allowed_headers([
            "authorization",
            "x-api-key",
            "content-type",
            "if-none-match",
            "x-request-id",
        ])
        .expose_headers([
            "etag",
            "x-api-version",
            "x-request-id",
            "x-ratelimit-limit",
            "x-ratelimit-remaining",
            "x-ratelimit-reset",
            "x-ratelimit-policy",
            "retry-after",
        ])
        .max_age(3600);
    for origin in origins {
        cors = if origin == "*" {
            cors.allow_any_origin()
        } else {
            cors.allowed_origin(origin)
        };
    }
    cors
}

/// Every route of the API.
///
/// Each route is also documented in `/v1/openapi.json`: annotate a new handler with
/// `#[utoipa::path(get, path = "/v1/…", params(…), responses(…))]` and add it to the
/// `paths(…)` list of `openapi::ApiDoc`. The `openapi` integration test fails for a route
/// registered here that the document lacks.
pub fn configure_routes(cfg: &mut web::ServiceConfig) {
    routes::health::configure(cfg);
    routes::prometheus::configure(cfg);
    routes::dashboard::configure(cfg);
    cfg.service(
        web::scope("/v1")
            .configure(routes::events::configure)
            .configure(routes::integrations::configure)
            .configure(routes::metrics::configure)
            .configure(routes::projects::configure)
            .service(resource("/session").route(web::get().to(routes::session::get_session)))
            .configure(crate::openapi::configure),
    );
}

fn extractor_error(err: impl std::fmt::Display, field: &str) -> actix_web::Error {
    ApiError::bad_field(field, format!("invalid {field}: {err}")).into()
}

/// Applies migrations (see `flowmeter_shared::db::migrations::apply`).
pub async fn migrate(
    settings: &flowmeter_shared::config::DatabaseSettings,
    migrations_dir: Option<&std::path::Path>,
) -> anyhow::Result<migrations::MigrationReport> {
    migrations::apply(&settings.url, migrations_dir).await
}

/// A built, bound, not yet running API server.
pub struct Application {
    port: u16,
    server: Server,
}

impl Application {
    /// Connects, migrates, registers the bootstrap key and binds the listener.
    pub async fn build(settings: ApiSettings) -> anyhow::Result<Self> {
        if settings.auth_disabled {
            if !settings.http_addr.ip().is_loopback() && !settings.allow_insecure {
                anyhow::bail!(
                    "FLOWMETER_AUTH_DISABLED is set but FLOWMETER_HTTP_ADDR {} is not a loopback address; \
                     refusing to serve without authentication (set FLOWMETER_ALLOW_INSECURE=1 to override)",
                    settings.http_addr
                );
            }
            tracing::warn!(
                "AUTHENTICATION IS DISABLED (FLOWMETER_AUTH_DISABLED): every request acts as admin. \
                 Use this for tests and local demos only."
            );
        }
        let report = migrate(&settings.database, settings.migrations_dir.as_deref()).await?;
        tracing::info!(applied = report.applied.len(), "Migrations are current.");
        // Every request's database work is bounded by the database timeout, so the server
        // may cancel a statement at the same point (the worker keeps its own, longer one).
        let database = flowmeter_shared::config::DatabaseSettings {
            statement_timeout: match settings.database.statement_timeout {
                std::time::Duration::ZERO => settings.database.timeout,
                configured => configured.min(settings.database.timeout),
            },
            ..settings.database.clone()
        };
        let pool = db::create_pool(&database, "flowmeter-api")?;
        if let Some(secret) = &settings.bootstrap_api_key {
            let client = pool.get().await?;
            api_keys::ensure_bootstrap(&client, secret).await?;
        }

        let read_pool = match &settings.read_database_url {
            Some(url) => db::create_pool(
                &flowmeter_shared::config::DatabaseSettings {
                    url: url.clone(),
                    ..database.clone()
                },
                "flowmeter-api-read",
            )?,
            None => pool.clone(),
        };

        let mut registry = Registry::default();
        let metrics = Arc::new(ApiMetrics::register(&mut registry));
        let state = web::Data::new(AppState {
            pool,
            read_pool,
            settings: settings.clone(),
            metrics,
            registry: Arc::new(registry),
            summaries: Default::default(),
            rendered: Default::default(),
        });

        let limiter = web::Data::new(crate::rate_limit::RateLimiter::new(&settings.rate_limits));
        let failed_auth = web::Data::new(crate::failed_auth::FailedAuthLimiter::new(
            settings.rate_limits.unauthenticated,
        ));
        let (pruned, pruned_failures) = (limiter.clone(), failed_auth.clone());
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                pruned.retain_recent();
                pruned_failures.prune();
            }
        });
        let listener = TcpListener::bind(settings.http_addr)
            .with_context(|| format!("binding FLOWMETER_HTTP_ADDR {}", settings.http_addr))?;
        let port = listener.local_addr()?.port();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(limiter.clone())
                .app_data(failed_auth.clone())
                .app_data(
                    web::QueryConfig::default().error_handler(|e, _| extractor_error(e, "query")),
                )
                .app_data(
                    web::PathConfig::default().error_handler(|e, _| extractor_error(e, "path")),
                )
                .app_data(
                    web::JsonConfig::default()
                        .limit(64 * 1024)
                        .error_handler(|e, _| extractor_error(e, "body")),
                )
                .configure(configure_routes)
                .default_service(web::to(not_found))
                .wrap(from_fn(crate::deadline::bound_requests))
                .wrap(from_fn(crate::rate_limit::limit_headers))
                .wrap(cors(&state.settings.cors_origins))
                .wrap(from_fn(request_context))
        })
        .workers(settings.http_workers)
        .shutdown_timeout(settings.shutdown_timeout.as_secs())
        .listen(listener)?
        .run();
        tracing::info!(
            address = %format!("{}:{port}", settings.http_addr.ip()),
            "Flowmeter API listening."
        );
        Ok(Self { port, server })
    }

    /// The bound port (useful with port 0).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }

    /// A handle to stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }
}
