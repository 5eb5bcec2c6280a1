//! The worker's database access: reading events, loading a project's fold state and read
//! model from the projections, and writing deltas with bulk statements (UNNEST arrays, one
//! statement per table). Callers own the transaction.

mod dora;
mod history;
mod load;
mod precompute;
mod write;

pub use history::{apply_retention, stored_dpi};

pub use load::{
    late_input, latest_summary, load_model, load_state, read_events, read_events_canonical,
};
pub use write::write_delta;

/// The canonical JSON text stored in `dimensions` (part of the key) for a dimensioned or
/// total trend point: `{}`, or every dimension in `Dims` order, compact, null when missing.
pub fn dims_json(dims: Option<&flowmeter_shared::read_model::Dims>) -> String {
    match dims {
        Some(dims) => serde_json::to_string(dims).unwrap_or_else(|_| "{}".to_owned()),
        None => "{}".to_owned(),
    }
}
