//! One module per endpoint family; each exposes `configure`, mounted by `startup`.

pub mod body;
pub mod dashboard;
pub mod events;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod projects;
pub mod prometheus;
pub mod session;
