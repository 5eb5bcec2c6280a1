//! Flowmeter's shared library: what both the API and the worker need. It knows nothing
//! of HTTP and nothing of folding; it holds configuration, telemetry, the database pool
//! and migration runner, the event catalogue, API key primitives, repositories and the
//! metric formulas.

pub mod alerts;
pub mod auth;
pub mod config;
pub mod db;
pub mod events;
pub mod metrics;
pub mod read_model;
pub mod telemetry;

/// The API version every response announces (`X-API-Version`, `"version"`).
pub const API_VERSION: &str = "1.0";
