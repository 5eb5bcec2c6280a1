//! Metric formulas of SPEC §4 as pure functions over plain inputs.
