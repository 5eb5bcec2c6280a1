//! The task state machine's vocabulary (SPEC §2.3) and [`PerState`], a fixed-size table keyed
//! by state. Time-in-state and the state distribution both need "one number per state, every
//! state present", so a dense array beats a map that could silently miss a key.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A string did not name a member of one of the closed vocabularies of SPEC §2.3.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{value}`; allowed values: {allowed}")]
pub struct ParseEnumError {
    /// Which vocabulary was parsed, e.g. `task state`.
    pub kind: &'static str,
    /// The rejected input.
    pub value: String,
    /// The allowed values, comma-separated, for the error message.
    pub allowed: String,
}

/// The 11 task states of SPEC §2.3, in catalogue order (the order of every per-state output).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Not yet ready to be worked on.
    Backlog,
    /// Ready to be picked up.
    Ready,
    /// Reserved for someone, not yet claimed.
    Reserved,
    /// Claimed by an assignee (WIP).
    Claimed,
    /// Being worked on (WIP).
    InProgress,
    /// Work done, waiting to be integrated (WIP; the "backlog" of SPEC §4 `backlog`).
    Implemented,
    /// Merged; terminal.
    Integrated,
    /// Integration hit a conflict (WIP).
    Conflict,
    /// Blocked (WIP).
    Blocked,
    /// Given up; terminal.
    Abandoned,
    /// Cancelled; terminal.
    Cancelled,
}

impl TaskState {
    /// Every state in catalogue order.
    pub const ALL: [TaskState; 11] = [
        TaskState::Backlog,
        TaskState::Ready,
        TaskState::Reserved,
        TaskState::Claimed,
        TaskState::InProgress,
        TaskState::Implemented,
        TaskState::Integrated,
        TaskState::Conflict,
        TaskState::Blocked,
        TaskState::Abandoned,
        TaskState::Cancelled,
    ];

    /// The snake_case name used in events and payloads.
    pub const fn as_str(self) -> &'static str {
        match self {
            TaskState::Backlog => "backlog",
            TaskState::Ready => "ready",
            TaskState::Reserved => "reserved",
            TaskState::Claimed => "claimed",
            TaskState::InProgress => "in_progress",
            TaskState::Implemented => "implemented",
            TaskState::Integrated => "integrated",
            TaskState::Conflict => "conflict",
            TaskState::Blocked => "blocked",
            TaskState::Abandoned => "abandoned",
            TaskState::Cancelled => "cancelled",
        }
    }

    /// Position in [`TaskState::ALL`], used to index [`PerState`].
    pub fn index(self) -> usize {
        self as usize
    }

    /// Terminal states: integrated, abandoned, cancelled.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::Integrated | TaskState::Abandoned | TaskState::Cancelled
        )
    }

    /// WIP states: claimed, in_progress, blocked, implemented, conflict.
    pub fn is_wip(self) -> bool {
        matches!(
            self,
            TaskState::Claimed
                | TaskState::InProgress
                | TaskState::Blocked
                | TaskState::Implemented
                | TaskState::Conflict
        )
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for TaskState {
    type Err = ParseEnumError;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        TaskState::ALL
            .into_iter()
            .find(|state| state.as_str() == value)
            .ok_or_else(|| ParseEnumError {
                kind: "task state",
                value: value.to_owned(),
                allowed: TaskState::ALL.map(TaskState::as_str).join(", "),
            })
    }
}

/// One value per task state, every state always present. Serializes as a JSON object with
/// the states as keys in catalogue order; deserializing fills absent states with the default.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct PerState<T>(pub [T; 11]);

impl<T: Copy> PerState<T> {
    /// The value for `state`.
    pub fn get(&self, state: TaskState) -> T {
        self.0[state.index()]
    }

    /// Replaces the value for `state`.
    pub fn set(&mut self, state: TaskState, value: T) {
        self.0[state.index()] = value;
    }

    /// `(state, value)` pairs in catalogue order.
    pub fn iter(&self) -> impl Iterator<Item = (TaskState, T)> + '_ {
        TaskState::ALL
            .into_iter()
            .map(|state| (state, self.get(state)))
    }
}

impl<T: Copy + std::ops::AddAssign> PerState<T> {
    /// Adds `amount` to the value for `state`.
    pub fn add(&mut self, state: TaskState, amount: T) {
        self.0[state.index()] += amount;
    }
}

impl<T: Serialize> Serialize for PerState<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            TaskState::ALL
                .iter()
                .map(|state| (state.as_str(), &self.0[state.index()])),
        )
    }
}

/// The OpenAPI schema of the serialized form: an object with every state as a required key.
impl<T: utoipa::PartialSchema> utoipa::PartialSchema for PerState<T> {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        let mut object = utoipa::openapi::schema::ObjectBuilder::new()
            .description(Some("One value per task state; every state is present."));
        for state in TaskState::ALL {
            object = object
                .property(state.as_str(), T::schema())
                .required(state.as_str());
        }
        object.into()
    }
}

impl<T: utoipa::PartialSchema> utoipa::ToSchema for PerState<T> {}

impl<'de, T: Deserialize<'de> + Default + Copy> Deserialize<'de> for PerState<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<TaskState, T>::deserialize(deserializer)?;
        let mut table = PerState([T::default(); 11]);
        for (state, value) in map {
            table.set(state, value);
        }
        Ok(table)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_round_trips_through_its_name() {
        for (index, state) in TaskState::ALL.into_iter().enumerate() {
            assert_eq!(state.index(), index);
            assert_eq!(state.as_str().parse::<TaskState>().unwrap(), state);
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
        }
    }

    #[test]
    fn unknown_state_is_rejected_with_the_allowed_values() {
        let error = "done".parse::<TaskState>().unwrap_err();
        assert_eq!(error.value, "done");
        assert!(error.to_string().contains("in_progress"));
    }

    #[test]
    fn terminal_and_wip_sets_match_the_catalogue() {
        let terminal: Vec<_> = TaskState::ALL
            .into_iter()
            .filter(|s| s.is_terminal())
            .collect();
        assert_eq!(
            terminal,
            [
                TaskState::Integrated,
                TaskState::Abandoned,
                TaskState::Cancelled
            ]
        );
        let wip: Vec<_> = TaskState::ALL.into_iter().filter(|s| s.is_wip()).collect();
        assert_eq!(
            wip,
            [
                TaskState::Claimed,
                TaskState::InProgress,
                TaskState::Implemented,
                TaskState::Conflict,
                TaskState::Blocked
            ]
        );
    }

    #[test]
    fn per_state_serializes_every_state_in_order() {
        let mut counts = PerState::<u64>::default();
        counts.add(TaskState::Blocked, 2);
        let json = serde_json::to_string(&counts).unwrap();
        assert_eq!(
            json,
            r#"{"backlog":0,"ready":0,"reserved":0,"claimed":0,"in_progress":0,"implemented":0,"integrated":0,"conflict":0,"blocked":2,"abandoned":0,"cancelled":0}"#
        );
        let back: PerState<u64> = serde_json::from_str(r#"{"blocked":2}"#).unwrap();
        assert_eq!(back, counts);
        assert!(serde_json::from_str::<PerState<u64>>(r#"{"done":1}"#).is_err());
    }
}
