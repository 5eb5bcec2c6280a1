//! Rebuild (recompute a project from seq 1 into its projections, in one transaction, so
//! readers see the old read model until it commits) and verify (recompute in memory and
//! compare with what is stored). Both replay the log with the fold's own code and take the
//! snapshot at the same point as the stored one: after `as_of_seq`, as of `captured_at`.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use flowmeter_shared::config::Feature;
use flowmeter_shared::db::{alerts, checkpoints};
use flowmeter_shared::read_model::{keys, Grain};
use serde::Serialize;
use uuid::Uuid;

use crate::alerting::{self, SnapshotKind};
use crate::fold::{Delta, LateInput, ProjectState, ReadModel};
use crate::runner::Worker;
use crate::store;
use crate::store::stored_dpi;

/// Events read per step of a replay.
const REPLAY_CHUNK: i64 = 10_000;

/// Tables a rebuild clears before replaying.
const PROJECTION_TABLES: [&str; 14] = [
    "metrics_task",
    "metrics_gate",
    "metrics_integration_attempt",
    "metrics_milestone",
    "metrics_phase",
    "metrics_state_transition_counter",
    "metrics_data_quality_counter",
    "metrics_trend_point",
    "metrics_breakdown_point",
    "metrics_drilldown",
    "metrics_event_quarantine",
    "metrics_change",
    "metrics_deployment",
    "metrics_incident",
];

/// Result of a rebuild.
#[derive(Debug, Serialize)]
pub struct RebuildOutcome {
    /// The project.
    pub project_id: Uuid,
    /// Events replayed.
    pub replayed_events: i64,
    /// Checkpoint after the rebuild.
    pub last_seq: i64,
    /// Poison events found.
    pub quarantined: usize,
    /// Snapshot time used.
    pub captured_at: Option<DateTime<Utc>>,
}

/// Result of a verification.
#[derive(Debug, Serialize)]
pub struct VerifyReport {
    /// The project.
    pub project_id: Uuid,
    /// True when the stored read model equals the recomputation.
    pub ok: bool,
    /// Folded up to.
    pub last_seq: i64,
    /// Rows compared per table.
    pub compared: std::collections::BTreeMap<&'static str, usize>,
    /// Every difference found.
    pub mismatches: Vec<String>,
}

/// One step of a replay.
enum Step {
    /// New events and, when they are late, what the fold needs with them.
    Events(Vec<crate::fold::LoggedEvent>, Option<LateInput>),
    /// The stored snapshot's point: captured_at, as_of_seq, gap_filled.
    Snapshot(DateTime<Utc>, i64, bool),
}

/// A replay of a project's log the way a fold in canonical order produces it (SPEC §13):
/// the events up to the stored snapshot's `as_of_seq` in canonical order, the snapshot, then
/// the events folded after it in seq order (each chunk late or not, like a worker's runs).
struct Replay {
    project: Uuid,
    upto: i64,
    snapshot: Option<(DateTime<Utc>, i64, bool)>,
    /// Canonical position reached before the snapshot.
    canonical_after: Option<(DateTime<Utc>, i64)>,
    /// Seq reached after the snapshot (`None` while before it).
    seq_after: Option<i64>,
    replayed: i64,
}

impl Replay {
    fn new(project: Uuid, upto: i64, snapshot: Option<(DateTime<Utc>, i64, bool)>) -> Self {
        Self {
            project,
            upto,
            snapshot: snapshot.filter(|(_, at_seq, _)| *at_seq <= upto),
            canonical_after: None,
            seq_after: None,
            replayed: 0,
        }
    }

    async fn next(
        &mut self,
        client: &impl GenericClient,
        state: &ProjectState,
    ) -> anyhow::Result<Option<Step>> {
        if self.seq_after.is_none() {
            let before = self.snapshot.map_or(self.upto, |(_, at_seq, _)| at_seq);
            let events = store::read_events_canonical(
                client,
                self.project,
                before,
                self.canonical_after,
                REPLAY_CHUNK,
            )
            .await?;
            if let Some(last) = events.last() {
                self.canonical_after = Some((last.occurred_at, last.seq));
                self.replayed += events.len() as i64;
                return Ok(Some(Step::Events(events, None)));
            }
            self.seq_after = Some(before);
            if let Some((captured_at, at_seq, gap_filled)) = self.snapshot {
                return Ok(Some(Step::Snapshot(captured_at, at_seq, gap_filled)));
            }
        }
        let after = self.seq_after.unwrap_or(self.upto);
        let limit = REPLAY_CHUNK.min(self.upto - after);
        if limit <= 0 {
            return Ok(None);
        }
        let events = store::read_events(client, self.project, after, limit).await?;
        let Some(last) = events.last().map(|e| e.seq) else {
            return Ok(None);
        };
        let late = match state.late_from(&events) {
            Some(from) => Some(store::late_input(client, self.project, after, from).await?),
            None => None,
        };
        self.seq_after = Some(last);
        self.replayed += events.len() as i64;
        Ok(Some(Step::Events(events, late)))
    }
}

impl Worker {
    /// Recomputes a project from seq 1 into its projections and read model.
    #[tracing::instrument(skip_all, fields(project = %project), err)]
    pub async fn rebuild(&self, project: Uuid) -> anyhow::Result<RebuildOutcome> {
        let mut client = self.pool.get().await?;
        let lease = checkpoints::claim_project(
            &client,
            project,
            &self.worker_id,
            self.settings.lease_seconds,
        )
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!(
                "project {project} is being folded by another worker; retry when its lease expires"
            )
        })?;
        let result = self.rebuild_leased(&mut client, &lease).await;
        checkpoints::release(&client, &lease).await?;
        result
    }

    async fn rebuild_leased(
        &self,
        client: &mut deadpool_postgres::Client,
        lease: &checkpoints::Lease,
    ) -> anyhow::Result<RebuildOutcome> {
        let project = lease.project_id;
        let tx = client.transaction().await?;
        let head = flowmeter_shared::db::events::head_seq(&tx, project).await?;
        let stored = store::latest_summary(&tx, project).await?;
        for table in PROJECTION_TABLES {
            tx.execute(
                &format!("DELETE FROM {table} WHERE project_id = $1"),
                &[&project],
            )
            .await?;
        }
        let snapshot = stored
            .as_ref()
            .map(|s| (s.captured_at, s.as_of_seq, s.gap_filled));
        let mut state = ProjectState::new(project);
        let mut replay = Replay::new(project, head, snapshot);
        let mut quarantined = 0;
        let mut snapshot_taken = false;
        let mut last_seq = 0;
        while let Some(step) = replay.next(&tx, &state).await? {
            let delta = match step {
                Step::Events(events, late) => {
                    let delta = state.fold_batch(&events, late.as_ref());
                    quarantined += delta.quarantine.len();
                    last_seq = last_seq.max(delta.last_seq.unwrap_or(last_seq));
                    delta
                }
                Step::Snapshot(captured_at, at_seq, gap_filled) => {
                    snapshot_taken = at_seq == head;
                    let delta = self
                        .snapshot_delta(&tx, &mut state, captured_at, at_seq, gap_filled)
                        .await?;
                    store::write_delta(&tx, &state, &delta, last_seq).await?;
                    self.after_snapshot(&tx, &state, &delta, SnapshotKind::Reproduced)
                        .await?;
                    continue;
                }
            };
            store::write_delta(&tx, &state, &delta, last_seq).await?;
        }
        let replayed = replay.replayed;
        let mut captured_at = stored.map(|s| s.captured_at);
        if !snapshot_taken {
            let now = self.settings.clock.now();
            let delta = self
                .snapshot_delta(&tx, &mut state, now, last_seq, true)
                .await?;
            store::write_delta(&tx, &state, &delta, last_seq).await?;
            self.after_snapshot(&tx, &state, &delta, SnapshotKind::New)
                .await?;
            captured_at = Some(now);
        }
        let updated = tx
            .execute(
                "UPDATE metrics_job_checkpoint
                    SET last_seq = $3, generation = generation + 1, fold_state = $4, status = 'idle',
                        failure_count = 0, next_attempt_at = NULL, last_error = NULL,
                        last_success_at = now(), last_snapshot_at = $5, updated_at = now()
                  WHERE project_id = $1 AND lease_token = $2",
                &[&project, &lease.token, &last_seq, &serde_json::to_value(&state.cursors)?, &captured_at],
            )
            .await?;
        anyhow::ensure!(
            updated == 1,
            "lost the lease of project {project} during the rebuild"
        );
        tx.commit().await?;
        Ok(RebuildOutcome {
            project_id: project,
            replayed_events: replayed,
            last_seq,
            quarantined,
            captured_at,
        })
    }

    async fn after_snapshot(
        &self,
        client: &impl GenericClient,
        state: &ProjectState,
        delta: &Delta,
        kind: SnapshotKind,
    ) -> anyhow::Result<()> {
        if let Some(summary) = &delta.summary {
            alerting::after_snapshot(
                client,
                &self.settings,
                &state.facts,
                state.project_id,
                summary,
                kind,
            )
            .await?;
        }
        Ok(())
    }

    async fn snapshot_delta(
        &self,
        client: &impl GenericClient,
        state: &mut ProjectState,
        now: DateTime<Utc>,
        as_of_seq: i64,
        gap_filled: bool,
    ) -> anyhow::Result<Delta> {
        let stored = stored_dpi(client, state.project_id, state.dpi_lookup(now)).await?;
        Ok(state.snapshot(now, as_of_seq, gap_filled, stored))
    }

    /// Recomputes a project in memory and compares it with the stored read model.
    #[tracing::instrument(skip_all, fields(project = %project), err)]
    pub async fn verify(&self, project: Uuid) -> anyhow::Result<VerifyReport> {
        let mut client = self.pool.get().await?;
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let last_seq: i64 = tx
            .query_opt(
                "SELECT last_seq FROM metrics_job_checkpoint WHERE project_id = $1",
                &[&project],
            )
            .await?
            .map_or(0, |r| r.get(0));
        let mut stored = store::load_model(&tx, project).await?;
        let snapshot = stored
            .summary
            .as_ref()
            .map(|s| (s.captured_at, s.as_of_seq, s.gap_filled));

        let firing = if self.settings.enabled(Feature::Alerts) {
            alerts::firing_refs(&tx, project).await?
        } else {
            Vec::new()
        };
        let mut state = ProjectState::new(project);
        let mut expected = ReadModel::default();
        let mut replay = Replay::new(project, last_seq, snapshot);
        while let Some(step) = replay.next(&tx, &state).await? {
            match step {
                Step::Events(events, late) => {
                    let delta = state.fold_batch(&events, late.as_ref());
                    expected.apply(&state, &delta);
                }
                Step::Snapshot(captured_at, at_seq, gap_filled) => {
                    // The DPI reference point comes from the recomputation itself.
                    let lookup = state.dpi_lookup(captured_at);
                    let point = expected
                        .trend
                        .iter()
                        .filter(|(k, _)| {
                            k.metric == keys::DPI
                                && k.grain == Grain::Day
                                && k.bucket <= lookup
                                && k.dims.is_none()
                        })
                        .map(|(k, v)| (k.bucket, v.value))
                        .next_back();
                    let mut delta = state.snapshot(captured_at, at_seq, gap_filled, point);
                    if let Some(summary) = delta.summary.as_mut() {
                        let actions = alerting::actions_for(
                            &self.settings,
                            &state.facts,
                            &summary.payload,
                            captured_at,
                            &firing,
                        )?;
                        if let Some(actions) = actions {
                            alerting::set_actions(&mut summary.payload, actions);
                        }
                    }
                    expected.apply(&state, &delta);
                }
            }
        }

        // Compare what retention keeps.
        if let Some((captured_at, _, _)) = snapshot {
            let cutoff = captured_at - chrono::Duration::days(self.settings.retention_days);
            for model in [&mut expected, &mut stored] {
                model.apply_retention(cutoff);
            }
        }
        let (compared, mismatches) = expected.diff(&stored);
        Ok(VerifyReport {
            project_id: project,
            ok: mismatches.is_empty(),
            last_seq,
            compared,
            mismatches,
        })
    }
}
