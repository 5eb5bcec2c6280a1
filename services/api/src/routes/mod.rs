//! One module per endpoint family; each exposes `configure`, mounted by `startup`.

pub mod body;
pub mod events;
pub mod health;
pub mod integrations;
pub mod metrics;
pub mod prometheus;
