//! The fold: events → project state → deltas of the projections and read model. Pure and
//! synchronous; the runner (database) and `verify` (memory) both drive it.
//!
//! Events are applied in canonical order, `(occurred_at, seq)` (SPEC §13). A batch whose
//! events all lie at or after the event-time horizon extends history; a batch with an
//! older event is late: the entities with events at or after its time are taken out and
//! rebuilt from their earlier events, event time is wound back to it, and every event from
//! there on is applied again in canonical order, so the state and every bucket from that
//! time on are what an in-order fold would have produced.

pub mod apply;
pub mod closes;
pub mod contrib;
pub mod dora;
pub mod drilldown;
mod durations;
mod entities;
pub mod model;
pub mod payload;
mod reliability;
pub mod snapshot;
pub mod state;

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};

pub use apply::{Apply, LoggedEvent};
pub use flowmeter_shared::read_model::Grain;
pub use model::{Delta, ReadModel};
pub use state::ProjectState;

/// What a late batch needs from the log besides its own events: the events already folded
/// at or after `from` (`suffix`), and the earlier events of the entities those touch
/// (`prefix`), both in canonical order.
#[derive(Debug, Default)]
pub struct LateInput {
    /// The earliest `occurred_at` of the batch.
    pub from: DateTime<Utc>,
    /// Folded events of the suffix's entities before `from`.
    pub prefix: Vec<LoggedEvent>,
    /// Folded events at or after `from`.
    pub suffix: Vec<LoggedEvent>,
}

/// The canonical order of events (SPEC §13).
pub fn canonical_key(event: &LoggedEvent) -> (DateTime<Utc>, i64) {
    (event.occurred_at, event.seq)
}

impl ProjectState {
    /// The earliest time of `events` when it is older than the horizon: such a batch needs
    /// a [`LateInput`] from that time.
    pub fn late_from(&self, events: &[LoggedEvent]) -> Option<DateTime<Utc>> {
        let earliest = events.iter().map(|e| e.occurred_at).min()?;
        self.cursors
            .horizon
            .is_some_and(|horizon| earliest < horizon)
            .then_some(earliest)
    }

    /// Folds a batch of new events (any order) into one delta; `late` is required when
    /// [`ProjectState::late_from`] names a time. The tasks it changed are remembered for the
    /// drill-down rows of the next snapshot.
    pub fn fold_batch(&mut self, events: &[LoggedEvent], late: Option<&LateInput>) -> Delta {
        let mut delta = Delta::default();
        let mut stream: Vec<(&LoggedEvent, bool)> = events.iter().map(|e| (e, false)).collect();
        if let Some(late) = late {
            self.rewind(late, &mut delta);
            stream.extend(late.suffix.iter().map(|e| (e, true)));
        }
        stream.sort_by_key(|(event, _)| canonical_key(event));
        for (event, replayed) in &stream {
            let how = Apply {
                replayed: *replayed,
                advance: true,
            };
            self.apply(event, &mut delta, how);
        }
        if let Some(latest) = events.iter().map(|e| e.occurred_at).max() {
            self.cursors.horizon = Some(self.cursors.horizon.map_or(latest, |h| h.max(latest)));
        }
        delta.last_seq = events.iter().map(|e| e.seq).max();

        let mut recount: BTreeSet<String> = std::mem::take(&mut delta.attempt_tasks);
        recount.extend(delta.contributions_before.keys().cloned());
        for id in &recount {
            delta.note_task(id, self.task(id));
        }
        self.recount_attempts(&recount, &mut delta);
        let before = std::mem::take(&mut delta.contributions_before);
        contrib::settle(
            before,
            |id| self.task(id).map(contrib::Contribution::of),
            &mut delta,
        );

        self.drilldown_pending.extend(delta.tasks.iter().cloned());
        self.mark_fresh_projections(&mut delta);
        self.mark_fresh_trend(&mut delta, false);
        if delta.rewound {
            // Cleared buckets are written again: upsert them all.
            delta.trend_written = None;
        }
        delta
    }

    /// Winds the state back to `late.from`: takes out every entity with a folded event at
    /// or after it, rebuilds those from their earlier events, moves the open buckets back
    /// and clears the level points from there on (the re-fold writes them again).
    fn rewind(&mut self, late: &LateInput, delta: &mut Delta) {
        delta.rewound = true;
        self.stored.rewound_since_drilldown = true;
        let ids: BTreeSet<&str> = late.suffix.iter().map(|e| e.entity_id.as_str()).collect();
        for id in &ids {
            let task = self.task(id).cloned();
            delta.note_task(id, task.as_ref());
            if self.remove_task(id) {
                delta.tasks.insert((*id).to_owned());
            }
            if self.remove_gate(id) {
                delta.gates.insert((*id).to_owned());
            }
            if self.remove_attempt(id) {
                delta.attempts.insert((*id).to_owned());
            }
            if self.remove_milestone(id) {
                delta.milestones.insert((*id).to_owned());
            }
            if self.phases.remove(*id).is_some() {
                delta.phases.insert((*id).to_owned());
            }
        }
        let rebuild = Apply {
            replayed: true,
            advance: false,
        };
        for event in &late.prefix {
            self.apply(event, delta, rebuild);
        }
        for grain in Grain::ALL {
            let bucket = grain.bucket(late.from);
            if self
                .cursors
                .open
                .get(&grain)
                .is_some_and(|open| *open > bucket)
            {
                self.cursors.open.insert(grain, bucket);
            }
            delta.level_clear.push((grain, bucket, None));
        }
    }
}

#[cfg(test)]
mod timing_tests;
