//! Black-box integration tests: one binary, a module per area. Each test gets a fresh
//! database and the real server on 127.0.0.1:0 (see `flowmeter_tests`).

// Tests fail by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod auth;
mod dashboard;
mod docs;
mod dora;
mod fold;
mod http_common;
mod ingest;
mod metrics_api;
mod migrations;
mod openapi;
mod ops;
mod projects;
mod query_plans;
mod read_replica;
mod readme;
mod reliability;
mod scale_out;
mod scenario;
mod sequence;
