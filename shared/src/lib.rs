//! Flowmeter's shared library.
pub mod metrics;
