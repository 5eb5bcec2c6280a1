//! Changes, deployments and incidents (SPEC §19) in the fold. Each event fills its slot of
//! the entity (`change_committed`; a deployment's start or finish; an incident's opening or
//! resolution) unless the slot holds an event later in canonical order, so applying the
//! same events in any order, again after a rewind, or twice gives the same facts. The DORA
//! keys are computed from these facts at snapshot time (`flowmeter_shared::metrics::dora`).

use std::collections::BTreeSet;
use std::sync::OnceLock;

use flowmeter_shared::config::{production_environments, Env};
use flowmeter_shared::metrics::dora::{
    keep_latest, ChangeFacts, DeploymentEvent, DoraFacts, IncidentEvent,
};
use serde::Deserialize;

use super::apply::{forced_poison, quarantine, Apply, LoggedEvent};
use super::model::Delta;
use super::state::ProjectState;

/// Which DORA entity an event is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DoraKind {
    /// `change_committed`.
    Change,
    /// `deployment_started`, `deployment_finished`.
    Deployment,
    /// `incident_opened`, `incident_resolved`.
    Incident,
}

impl DoraKind {
    /// The kind of a DORA event type; `None` for the task-flow events.
    pub fn of(event_type: &str) -> Option<Self> {
        match event_type {
            "change_committed" => Some(Self::Change),
            "deployment_started" | "deployment_finished" => Some(Self::Deployment),
            "incident_opened" | "incident_resolved" => Some(Self::Incident),
            _ => None,
        }
    }
}

/// The environments counted as production (`FLOWMETER_PRODUCTION_ENVIRONMENTS`), read once;
/// the worker's settings refuse a bad value at start-up, so the fallback is never used there.
pub fn production() -> &'static [String] {
    static NAMES: OnceLock<Vec<String>> = OnceLock::new();
    NAMES.get_or_init(|| {
        production_environments(&Env::from_process()).unwrap_or_else(|_| {
            flowmeter_shared::metrics::dora::DEFAULT_PRODUCTION_ENVIRONMENTS
                .map(str::to_owned)
                .to_vec()
        })
    })
}

/// The payload fields of every DORA event (the validator has checked their types).
#[derive(Debug, Default, Deserialize)]
struct DoraPayload {
    task_id: Option<String>,
    author: Option<String>,
    service: Option<String>,
    environment: Option<String>,
    version: Option<String>,
    status: Option<String>,
    change_ids: Option<Vec<String>>,
    task_ids: Option<Vec<String>>,
    severity: Option<String>,
    caused_by_deployment_id: Option<String>,
}

fn parse(event: &LoggedEvent) -> Result<DoraPayload, String> {
    if forced_poison(&event.event_type) {
        return Err(format!(
            "{} events are refused by FLOWMETER_TEST_POISON_EVENT_TYPES",
            event.event_type
        ));
    }
    serde_json::from_str(&event.payload).map_err(|e| format!("payload: {e}"))
}

fn sorted(ids: Option<Vec<String>>) -> Vec<String> {
    let set: BTreeSet<String> = ids.unwrap_or_default().into_iter().collect();
    set.into_iter().collect()
}

impl ProjectState {
    /// Applies one DORA event; a payload the fold cannot read is quarantined.
    pub(super) fn apply_dora(
        &mut self,
        kind: DoraKind,
        event: &LoggedEvent,
        delta: &mut Delta,
        how: Apply,
    ) {
        let p = match parse(event) {
            Ok(p) => p,
            Err(error) => return quarantine(event, error, delta),
        };
        let status = match p.status.as_deref().map(str::parse).transpose() {
            Ok(status) => status,
            Err(error) => return quarantine(event, error, delta),
        };
        let at = event.occurred_at;
        if how.advance {
            self.advance_to(at, delta);
        }
        let id = event.entity_id.clone();
        let seq = event.seq;
        match (kind, event.event_type.as_str()) {
            (DoraKind::Change, _) => {
                let change = ChangeFacts {
                    committed_at: at,
                    seq,
                    task_id: p.task_id,
                    author: p.author,
                    service: p.service,
                };
                let mut slot = self.dora.changes.remove(&id);
                keep_latest(&mut slot, change, |c| (c.committed_at, c.seq));
                self.dora.changes.extend(slot.map(|c| (id.clone(), c)));
            }
            (DoraKind::Deployment, event_type) => {
                let Some(environment) = p.environment else {
                    return quarantine(event, "payload.environment is required".into(), delta);
                };
                let part = DeploymentEvent {
                    at,
                    seq,
                    environment,
                    service: p.service,
                    version: p.version,
                    status,
                    change_ids: sorted(p.change_ids),
                    task_ids: sorted(p.task_ids),
                };
                let deployment = self.dora.deployments.entry(id.clone()).or_default();
                let slot = if event_type == "deployment_started" {
                    &mut deployment.started
                } else {
                    &mut deployment.finished
                };
                keep_latest(slot, part, |e| (e.at, e.seq));
            }
            (DoraKind::Incident, event_type) => {
                let part = IncidentEvent {
                    at,
                    seq,
                    severity: p.severity,
                    service: p.service,
                    caused_by_deployment_id: p.caused_by_deployment_id,
                };
                let incident = self.dora.incidents.entry(id.clone()).or_default();
                let slot = if event_type == "incident_opened" {
                    &mut incident.opened
                } else {
                    &mut incident.resolved
                };
                keep_latest(slot, part, |e| (e.at, e.seq));
            }
        }
        delta.dora.insert((kind, id));
    }
}

/// Copies the rows a delta names from the state into a model (what the sink writes).
pub fn copy_rows(state: &DoraFacts, rows: &BTreeSet<(DoraKind, String)>, into: &mut DoraFacts) {
    for (kind, id) in rows {
        match kind {
            DoraKind::Change => {
                if let Some(change) = state.changes.get(id) {
                    into.changes.insert(id.clone(), change.clone());
                }
            }
            DoraKind::Deployment => {
                if let Some(deployment) = state.deployments.get(id) {
                    into.deployments.insert(id.clone(), deployment.clone());
                }
            }
            DoraKind::Incident => {
                if let Some(incident) = state.incidents.get(id) {
                    into.incidents.insert(id.clone(), incident.clone());
                }
            }
        }
    }
}
