//! Taking entities out of a project's state and recounting what depends on several of them:
//! what a late event's rewind (`ProjectState::fold_batch`) and the end of every batch need.

use std::collections::{BTreeSet, HashMap};

use super::model::Delta;
use super::state::ProjectState;

impl ProjectState {
    /// Takes a task out of the state (a late event re-folds it); false when unknown.
    pub fn remove_task(&mut self, id: &str) -> bool {
        let Some(&i) = self.task_index.get(id) else {
            return false;
        };
        self.index_task(i, -1);
        self.task_index.remove(id);
        self.facts.tasks.swap_remove(i);
        if let Some(moved) = self.facts.tasks.get(i) {
            self.task_index.insert(moved.task_id.clone(), i);
        }
        true
    }

    /// Takes a gate out of the state; false when unknown.
    pub fn remove_gate(&mut self, id: &str) -> bool {
        let Some(i) = self.gate_index.remove(id) else {
            return false;
        };
        self.facts.gates.swap_remove(i);
        if let Some(moved) = self.facts.gates.get(i) {
            self.gate_index.insert(moved.gate_id.clone(), i);
        }
        true
    }

    /// Takes an attempt out of the state; false when unknown.
    pub fn remove_attempt(&mut self, id: &str) -> bool {
        let Some(&i) = self.attempt_index.get(id) else {
            return false;
        };
        self.index_attempt(i, -1);
        self.attempt_index.remove(id);
        self.facts.attempts.swap_remove(i);
        if let Some(moved) = self.facts.attempts.get(i) {
            self.attempt_index.insert(moved.attempt_id.clone(), i);
        }
        true
    }

    /// Takes a milestone out of the state; false when unknown.
    pub fn remove_milestone(&mut self, id: &str) -> bool {
        let Some(i) = self.milestone_index.remove(id) else {
            return false;
        };
        self.facts.milestones.swap_remove(i);
        if let Some(moved) = self.facts.milestones.get(i) {
            self.milestone_index.insert(moved.milestone_id.clone(), i);
        }
        true
    }

    /// Recounts the integration attempts and failures of `task_ids` from the attempts (a
    /// failure is a finished attempt whose result is not a success).
    pub fn recount_attempts(&mut self, task_ids: &BTreeSet<String>, delta: &mut Delta) {
        if task_ids.is_empty() {
            return;
        }
        let mut counts: HashMap<&str, (u32, u32)> = HashMap::new();
        for attempt in &self.facts.attempts {
            if task_ids.contains(&attempt.task_id) {
                let entry = counts.entry(attempt.task_id.as_str()).or_default();
                entry.0 += 1;
                if attempt.result.is_some_and(|r| r.is_failure()) {
                    entry.1 += 1;
                }
            }
        }
        let counts: Vec<(String, (u32, u32))> = task_ids
            .iter()
            .map(|id| {
                (
                    id.clone(),
                    counts.get(id.as_str()).copied().unwrap_or_default(),
                )
            })
            .collect();
        for (id, (attempts, failures)) in counts {
            let unchanged = self.task(&id).is_none_or(|t| {
                t.integration_attempts == attempts && t.integration_failures == failures
            });
            if unchanged {
                continue;
            }
            self.update_task(&id, |task| {
                task.integration_attempts = attempts;
                task.integration_failures = failures;
            });
            delta.tasks.insert(id);
        }
    }
}
