//! The worker's database access: reading events, loading a project's fold state and read
//! model from the projections, and writing deltas with bulk statements (UNNEST arrays, one
//! statement per table). Callers own the transaction.

mod load;
mod write;

pub use load::{latest_summary, load_model, load_state, read_events};
pub use write::write_delta;

/// The JSON stored in `dimensions` for a dimensioned or total trend point.
pub fn dims_json(dims: Option<&flowmeter_shared::read_model::Dims>) -> serde_json::Value {
    match dims {
        Some(dims) => serde_json::to_value(dims).unwrap_or_default(),
        None => serde_json::json!({}),
    }
}
