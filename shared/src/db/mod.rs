//! PostgreSQL access: the connection pool, the migration runner and one repository
//! module per aggregate. Repository functions take `&impl GenericClient` so callers own
//! transactions; they never commit.

pub mod alerts;
pub mod api_keys;
pub mod checkpoints;
pub mod dora;
pub mod events;
pub mod integrations;
pub mod migrations;
pub mod read_model;
pub mod read_path;
pub mod tasks;

use std::str::FromStr;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime, Timeouts};
use tokio_postgres::NoTls;

use crate::config::DatabaseSettings;

pub use deadpool_postgres::GenericClient;

/// Builds a connection pool. Connections are opened lazily; every connection gets the
/// configured `statement_timeout`, and waiting for a connection is bounded so callers
/// fail fast (and the API answers 503) when the database is unreachable.
///
/// A database that stops answering without closing its sockets (a frozen server, a
/// partition) is bounded too: waiting for a pool slot, opening a connection (socket and
/// start-up handshake) and recycling one each give up after the smaller of
/// `connect_timeout` and `timeout`; TCP keepalive and `tcp_user_timeout` close
/// connections whose peer has vanished. Queries are bounded by their callers (the API
/// wraps every request's database work in `timeout`).
pub fn create_pool(settings: &DatabaseSettings, application_name: &str) -> anyhow::Result<Pool> {
    let mut config = tokio_postgres::Config::from_str(&settings.url)?;
    let wait = settings.connect_timeout.min(settings.timeout);
    config.application_name(application_name);
    config.connect_timeout(wait);
    config.keepalives(true);
    config.keepalives_idle(std::time::Duration::from_secs(10));
    config.keepalives_interval(std::time::Duration::from_secs(2));
    config.keepalives_retries(3);
    config.tcp_user_timeout(settings.timeout.max(std::time::Duration::from_secs(1)));
    config.options(format!(
        "-c statement_timeout={} -c timezone=UTC",
        settings.statement_timeout.as_millis()
    ));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let pool = Pool::builder(manager)
        .max_size(settings.max_connections)
        .runtime(Runtime::Tokio1)
        .timeouts(Timeouts {
            wait: Some(wait),
            create: Some(wait),
            recycle: Some(wait),
        })
        .build()?;
    Ok(pool)
}

/// Whether a pool error means the database could not be reached. Every pool error
/// happens while obtaining a connection (timeout, refused, unknown database, server
/// starting up), so each one is a reason to answer 503 rather than 500.
pub fn is_unavailable(_error: &deadpool_postgres::PoolError) -> bool {
    true
}

/// The SQLSTATE of a database error, if the error came from the server.
pub fn sqlstate(error: &tokio_postgres::Error) -> Option<&str> {
    error.as_db_error().map(|e| e.code().code())
}
