//! Flowmeter's HTTP API as a library, so tests start the real server in-process.

pub mod auth;
pub mod cli;
pub mod context;
pub mod deadline;
pub mod error;
pub mod event_schemas;
pub mod failed_auth;
pub mod integrations;
pub mod observability;
pub mod openapi;
pub mod rate_limit;
pub mod routes;
pub mod settings;
pub mod startup;
