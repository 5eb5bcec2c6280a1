//! Flowmeter's worker as a library: it folds the event log into the metrics read model.

pub mod cli;
pub mod settings;
