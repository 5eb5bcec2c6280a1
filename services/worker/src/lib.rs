//! Flowmeter's worker as a library: it folds the event log into the metrics read model.

pub mod alerting;
pub mod alertmanager;
pub mod allocator;
pub mod cli;
pub mod daemon;
pub mod demo;
pub mod fold;
pub mod maintenance;
pub mod observability;
pub mod runner;
pub mod settings;
pub mod store;
pub mod webhook;
