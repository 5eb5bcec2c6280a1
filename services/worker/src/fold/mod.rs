//! The fold: events → project state → deltas of the projections and read model. Pure and
//! synchronous; the runner (database) and `verify` (memory) both drive it.

pub mod apply;
pub mod closes;
pub mod drilldown;
pub mod model;
pub mod payload;
pub mod snapshot;
pub mod state;

pub use apply::LoggedEvent;
pub use flowmeter_shared::read_model::Grain;
pub use model::{Delta, ReadModel};
pub use state::ProjectState;

impl ProjectState {
    /// Folds a batch of events (in seq order) into one delta. The tasks it changed are
    /// remembered for the drill-down rows of the next snapshot.
    pub fn fold_batch(&mut self, events: &[LoggedEvent]) -> Delta {
        let mut delta = Delta::default();
        for event in events {
            self.apply(event, &mut delta);
        }
        self.drilldown_pending.extend(delta.tasks.iter().cloned());
        self.mark_fresh_projections(&mut delta);
        self.mark_fresh_trend(&mut delta, false);
        delta
    }
}

#[cfg(test)]
mod timing_tests;
