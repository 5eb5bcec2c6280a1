//! Metric formulas of SPEC §4 as pure functions over plain inputs.
//!
//! The fold engine turns events into [`facts::ProjectFacts`]; everything here computes from
//! those facts and an explicit `now` (no I/O, no clock, no database), so the worker's
//! snapshots, `verify`'s recomputation and the API produce identical numbers.
//! [`compute_summary`] fills the summary's `metrics` object ([`summary::SummaryMetrics`]);
//! [`milestones::milestone_health`] fills `/v1/metrics/health`.
//!
//! Conventions: windows are rolling and half-open, `[now − W, now)`; durations never go
//! negative; a value without data is `None` (JSON `null`), never a fake 0; rounding happens
//! only when a number is placed into an output struct, through [`stats::round_to`].

pub mod actions;
pub mod compute;
pub mod dora;
pub mod dora_breakdown;
pub mod efficiency;
pub mod factors;
pub mod facts;
pub mod flow;
pub mod forecast;
pub mod gates;
pub mod integration;
pub mod milestones;
pub mod predictability;
pub mod state;
pub mod stats;
pub mod summary;
pub mod time;
pub mod wip;

pub use compute::compute_summary;
pub use facts::{
    AttemptFacts, AttemptResult, BlockedEpisode, GateFacts, GateOutcome, MilestoneFacts,
    ProjectFacts, TaskFacts,
};
pub use milestones::{milestone_health, MilestoneHealth};
pub use state::{PerState, TaskState};
pub use summary::SummaryMetrics;
