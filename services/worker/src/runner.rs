//! One fold run of one claimed project (SPEC §3.3): read up to N events after the
//! checkpoint, fold them, write projections and read model, maybe snapshot, and commit
//! everything in the transaction that advances the checkpoint by compare-and-set. Failures
//! back off exponentially and stall the project after the mode's maximum of retries.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Pool};
use flowmeter_shared::db::checkpoints::{self, Advance, JobRun, Lease, RunRecord};
use futures_util::FutureExt;
use rand::Rng;
use serde::Serialize;
use uuid::Uuid;

use crate::alerting::{self, SnapshotKind};
use crate::fold::state::Cursors;
use crate::fold::ProjectState;
use crate::observability::{RunLabels, WorkerMetrics};
use crate::settings::{OnPoison, WorkerSettings};
use crate::store;
use flowmeter_shared::db::alerts::Evaluation;

/// Run modes (SPEC §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Frequent small runs, woken by NOTIFY.
    NearRealTime,
    /// Large runs on the batch schedule; also refreshes snapshots and applies retention.
    Batch,
}

impl Mode {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::NearRealTime => "near_real_time",
            Mode::Batch => "batch",
        }
    }

    /// Retries before the project is marked stalled.
    pub fn max_retries(self) -> i32 {
        match self {
            Mode::NearRealTime => 8,
            Mode::Batch => 5,
        }
    }

    /// The first backoff after a failure.
    pub fn first_backoff(self) -> Duration {
        match self {
            Mode::NearRealTime => Duration::from_secs(15),
            Mode::Batch => Duration::from_secs(60),
        }
    }
}

impl std::str::FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "near_real_time" | "nrt" => Ok(Mode::NearRealTime),
            "batch" => Ok(Mode::Batch),
            other => Err(format!(
                "unknown mode {other:?}; expected batch or near_real_time"
            )),
        }
    }
}

/// What to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    /// Mode recorded on the run.
    pub mode: Mode,
    /// Idempotency key; derived from the checkpoint when absent.
    pub key: Option<String>,
    /// Most events to fold.
    pub max_events: i64,
    /// Where the enclosing backfill started.
    pub replay_from_seq: Option<i64>,
    /// Take a snapshot even when not caught up.
    pub force_snapshot: bool,
    /// Apply retention (SPEC §3.5) with the snapshot: the scheduled batch refresh does.
    pub retention: bool,
}

/// What a run did.
#[derive(Debug, Clone, Serialize)]
pub struct RunOutcome {
    /// The recorded run (absent when there was nothing to do).
    pub run: Option<JobRun>,
    /// True when the key had already succeeded and nothing was done.
    pub reused: bool,
    /// Events folded.
    pub processed_events: i64,
    /// The checkpoint after the run.
    pub last_seq: i64,
    /// Whether the project was caught up with its log when the run read it.
    pub caught_up: bool,
    /// Snapshot time, when one was taken.
    pub snapshot_at: Option<DateTime<Utc>>,
    /// Events quarantined by this run.
    pub quarantined: usize,
}

/// Why a run did not commit.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The checkpoint moved or the lease was taken over: another worker owns the project.
    #[error("lost the lease of project {0}: the checkpoint moved or another worker took over")]
    LostLease(Uuid),
    /// A poison event under `FLOWMETER_ON_POISON=halt`.
    #[error("project {project} halted at seq {seq}: {error}")]
    Halted {
        /// The project.
        project: Uuid,
        /// The poison event.
        seq: i64,
        /// Why it could not be applied.
        error: String,
    },
    /// Anything else (database, decoding).
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
}

struct Cached {
    generation: i64,
    last_seq: i64,
    state: ProjectState,
}

/// A worker: its identity, pool, settings, metrics and the in-memory state of the projects
/// it recently folded (reused only while the checkpoint still matches it).
pub struct Worker {
    /// Database pool.
    pub pool: Pool,
    /// Settings.
    pub settings: WorkerSettings,
    /// Identity written as lease owner.
    pub worker_id: String,
    /// Metrics.
    pub metrics: Arc<WorkerMetrics>,
    cache: Mutex<HashMap<Uuid, Cached>>,
    /// Project states held by runs in flight; with the cached ones they stay within
    /// `state_cache`, which bounds the worker's memory.
    states_in_use: AtomicUsize,
    last_snapshot: Mutex<HashMap<Uuid, Instant>>,
    /// When the alert and business gauges were last read from the database.
    gauges_refreshed: Mutex<Option<Instant>>,
}

impl Worker {
    /// A worker.
    pub fn new(pool: Pool, settings: WorkerSettings, metrics: Arc<WorkerMetrics>) -> Self {
        let worker_id = format!(
            "{}-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "worker".into()),
            std::process::id(),
            &Uuid::new_v4().simple().to_string()[..8]
        );
        Self {
            pool,
            settings,
            worker_id,
            metrics,
            cache: Mutex::new(HashMap::new()),
            states_in_use: AtomicUsize::new(0),
            last_snapshot: Mutex::new(HashMap::new()),
            gauges_refreshed: Mutex::new(None),
        }
    }

    /// True (and remembered) when the alert and business gauges were last refreshed at
    /// least `every` ago: drains can follow each other many times a second under ingest,
    /// and those gauges read every project's latest summary.
    pub fn gauges_due(&self, every: std::time::Duration) -> bool {
        let Ok(mut last) = self.gauges_refreshed.lock() else {
            return true;
        };
        if last.is_some_and(|at| at.elapsed() < every) {
            return false;
        }
        *last = Some(Instant::now());
        true
    }

    /// Drops cached states (of other projects) until at most `room` remain.
    fn trim_cache(cache: &mut HashMap<Uuid, Cached>, room: usize) {
        while cache.len() > room {
            let Some(evict) = cache.keys().next().copied() else {
                break;
            };
            cache.remove(&evict);
        }
    }

    fn take_cached(&self, lease: &Lease) -> Option<ProjectState> {
        let mut cache = self.cache.lock().ok()?;
        let cached = cache.remove(&lease.project_id)?;
        (cached.generation == lease.generation && cached.last_seq == lease.last_seq)
            .then_some(cached.state)
    }

    /// Keeps a run's state for the project's next run, within `state_cache` states counting
    /// those other runs still hold (called while this run still counts as in use).
    fn put_cached(&self, generation: i64, last_seq: i64, state: ProjectState) {
        if let Ok(mut cache) = self.cache.lock() {
            let others_in_use = self.states_in_use.load(Ordering::SeqCst).saturating_sub(1);
            let room = self.settings.state_cache.saturating_sub(others_in_use);
            if room == 0 {
                return;
            }
            cache.remove(&state.project_id);
            Self::trim_cache(&mut cache, room - 1);
            cache.insert(
                state.project_id,
                Cached {
                    generation,
                    last_seq,
                    state,
                },
            );
        }
    }

    fn snapshot_due(&self, project: Uuid) -> bool {
        self.last_snapshot
            .lock()
            .map(|m| {
                m.get(&project)
                    .is_none_or(|at| at.elapsed() >= self.settings.snapshot_interval)
            })
            .unwrap_or(true)
    }

    /// Loads a project's state for a claim: the cached copy when it matches, else from the
    /// projections.
    async fn state_for(
        &self,
        client: &impl GenericClient,
        lease: &Lease,
    ) -> anyhow::Result<ProjectState> {
        if let Some(state) = self.take_cached(lease) {
            return Ok(state);
        }
        // Make room before loading, so the peak holds no more states than allowed.
        if let Ok(mut cache) = self.cache.lock() {
            let in_use = self.states_in_use.load(Ordering::SeqCst);
            Self::trim_cache(&mut cache, self.settings.state_cache.saturating_sub(in_use));
        }
        let cursors: Cursors = serde_json::from_value(lease.fold_state.clone()).unwrap_or_default();
        store::load_state(client, lease.project_id, cursors).await
    }

    /// Runs once for a claimed project. On failure the run and the checkpoint record it
    /// (with backoff) and the lease is released.
    #[tracing::instrument(skip_all, fields(worker_id = %self.worker_id, project = %lease.project_id, mode = request.mode.as_str()))]
    pub async fn run_claimed(
        &self,
        lease: &mut Lease,
        request: &RunRequest,
    ) -> Result<RunOutcome, RunError> {
        let mut key = request.key.clone().unwrap_or_else(|| {
            format!(
                "{}:g{}:s{}",
                request.mode.as_str(),
                lease.generation,
                lease.last_seq + 1
            )
        });
        {
            let client = self.pool.get().await.map_err(anyhow::Error::from)?;
            if let Some(run) = checkpoints::find_run(&client, lease.project_id, &key).await? {
                if run.status == "succeeded" && request.key.is_none() && run.processed_events == 0 {
                    // A scheduled run found no new event since the last snapshot-only run:
                    // it refreshes the snapshot again (ages grow with time), as a run of its
                    // own rather than a replay of the earlier one.
                    key = format!("{key}:at{}", self.settings.clock.now().timestamp_micros());
                } else if run.status == "succeeded" {
                    return Ok(RunOutcome {
                        last_seq: lease.last_seq,
                        processed_events: 0,
                        caught_up: false,
                        snapshot_at: None,
                        quarantined: 0,
                        reused: true,
                        run: Some(run),
                    });
                }
            }
        }
        let started = Instant::now();
        self.metrics.jobs_running.inc();
        // A panic while folding this project (a bug, a pathological input) fails this
        // project's run like any error, with backoff, and never takes the worker down.
        // A run that outlasts its lease could not commit anyway (the checkpoint's
        // compare-and-set would fail): a database that stops answering fails the run then,
        // with backoff, instead of holding the worker.
        let lease_time =
            Duration::from_secs(u64::try_from(self.settings.lease_seconds).unwrap_or(60));
        let run = tokio::time::timeout(lease_time, self.fold_once(lease, request, &key));
        let result = std::panic::AssertUnwindSafe(run)
            .catch_unwind()
            .await
            .map(|outcome| {
                outcome.unwrap_or_else(|_| {
                    Err(RunError::Failed(anyhow::anyhow!(
                        "the run did not finish within the lease ({lease_time:?}); the database may not be answering"
                    )))
                })
            })
            .unwrap_or_else(|panic| {
                let message = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                Err(RunError::Failed(anyhow::anyhow!(
                    "the fold panicked: {message}"
                )))
            });
        self.metrics.jobs_running.dec();
        let elapsed = started.elapsed().as_secs_f64();
        self.metrics.fold_run_duration.observe(elapsed);
        match result {
            Ok(outcome) => {
                if outcome.run.is_some() {
                    self.metrics.jobs_completed.inc();
                    self.metrics
                        .fold_runs
                        .get_or_create(&RunLabels {
                            mode: request.mode.as_str(),
                            status: "succeeded",
                        })
                        .inc();
                    self.metrics
                        .fold_events
                        .inc_by(outcome.processed_events as u64);
                    self.metrics.quarantined.inc_by(outcome.quarantined as u64);
                    self.metrics
                        .last_success
                        .set(Utc::now().timestamp_millis() as f64 / 1000.0);
                }
                lease.last_seq = outcome.last_seq;
                tracing::info!(
                    run_key = %key,
                    start_seq = lease.last_seq - outcome.processed_events + 1,
                    end_seq = outcome.last_seq,
                    events = outcome.processed_events,
                    duration_ms = elapsed * 1000.0,
                    "Fold run committed."
                );
                Ok(outcome)
            }
            Err(error) => {
                self.metrics.jobs_failed.inc();
                self.metrics
                    .fold_runs
                    .get_or_create(&RunLabels {
                        mode: request.mode.as_str(),
                        status: "failed",
                    })
                    .inc();
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&lease.project_id);
                }
                if !matches!(error, RunError::LostLease(_)) {
                    tracing::warn!(run_key = %key, error = format!("{error:#}"), "Fold run failed.");
                    if let Err(e) = self.record_failure(lease, request, &key, &error).await {
                        tracing::error!(error = %e, "Recording the failed run failed too.");
                    }
                }
                Err(error)
            }
        }
    }

    async fn record_failure(
        &self,
        lease: &Lease,
        request: &RunRequest,
        key: &str,
        error: &RunError,
    ) -> anyhow::Result<()> {
        let client = self.pool.get().await?;
        let reason = format!("{error:#}");
        checkpoints::record_run(
            &client,
            &RunRecord {
                project_id: lease.project_id,
                mode: request.mode.as_str(),
                status: "failed",
                key,
                replay_from_seq: request.replay_from_seq,
                start_seq: Some(lease.last_seq + 1),
                end_seq: None,
                processed_events: 0,
                failure_reason: Some(&reason),
                worker_id: &self.worker_id,
            },
        )
        .await?;
        let failures = lease.failure_count + 1;
        let (status, next_attempt) = if matches!(error, RunError::Halted { .. }) {
            ("halted", None)
        } else if failures >= request.mode.max_retries() {
            ("stalled", None)
        } else {
            (
                "failing",
                Some(Utc::now() + backoff(request.mode, failures)),
            )
        };
        checkpoints::record_failure(&client, lease, status, failures, next_attempt, &reason).await
    }

    async fn fold_once(
        &self,
        lease: &Lease,
        request: &RunRequest,
        key: &str,
    ) -> Result<RunOutcome, RunError> {
        let mut timer = PhaseTimer::new();
        fail_project_for_tests(lease.project_id);
        let mut client = self.pool.get().await.map_err(anyhow::Error::from)?;
        let tx = client.transaction().await.map_err(anyhow::Error::from)?;
        let events =
            store::read_events(&tx, lease.project_id, lease.last_seq, request.max_events).await?;
        timer.mark("read");
        let caught_up = (events.len() as i64) < request.max_events;
        let snapshot_wanted =
            request.force_snapshot || caught_up || self.snapshot_due(lease.project_id);
        if events.is_empty() && !snapshot_wanted {
            return Ok(RunOutcome {
                run: None,
                reused: false,
                processed_events: 0,
                last_seq: lease.last_seq,
                caught_up,
                snapshot_at: None,
                quarantined: 0,
            });
        }
        let _in_use = InUse::new(&self.states_in_use);
        let mut state = self.state_for(&tx, lease).await?;
        timer.mark("load");
        let late = match state.late_from(&events) {
            Some(from) => {
                Some(store::late_input(&tx, lease.project_id, lease.last_seq, from).await?)
            }
            None => None,
        };
        timer.mark("late");
        let delta = state.fold_batch(&events, late.as_ref());
        drop(late);
        timer.mark("fold");
        let end_seq = delta.last_seq.unwrap_or(lease.last_seq);
        if self.settings.on_poison == OnPoison::Halt {
            if let Some((seq, event)) = delta.quarantine.iter().next() {
                return Err(RunError::Halted {
                    project: lease.project_id,
                    seq: *seq,
                    error: event.error.clone(),
                });
            }
        }
        store::write_delta(&tx, &state, &delta, end_seq).await?;
        timer.mark("write");

        let mut snapshot_at = None;
        let mut evaluation = Evaluation::default();
        if snapshot_wanted {
            let now = self.settings.clock.now();
            let stored = store::stored_dpi(&tx, lease.project_id, state.dpi_lookup(now)).await?;
            // A snapshot an operator asked for, or the one that ends a catch-up, fills the gap.
            let fill_gap = caught_up || request.force_snapshot;
            let snapshot = state.snapshot(now, end_seq, fill_gap, stored);
            store::write_delta(&tx, &state, &snapshot, end_seq).await?;
            if let Some(summary) = &snapshot.summary {
                evaluation = alerting::after_snapshot(
                    &tx,
                    &self.settings,
                    &state.facts,
                    lease.project_id,
                    summary,
                    SnapshotKind::New,
                )
                .await?;
            }
            if request.retention {
                store::apply_retention(&tx, &state, now, self.settings.retention_days).await?;
            }
            snapshot_at = Some(now);
            timer.mark("snapshot");
        }

        let advanced = checkpoints::advance(
            &tx,
            &Advance {
                lease,
                last_seq: end_seq,
                fold_state: serde_json::to_value(&state.cursors).map_err(anyhow::Error::from)?,
                snapshot_at,
                lease_seconds: self.settings.lease_seconds,
            },
        )
        .await?;
        if !advanced {
            return Err(RunError::LostLease(lease.project_id));
        }
        let run = checkpoints::record_run(
            &tx,
            &RunRecord {
                project_id: lease.project_id,
                mode: request.mode.as_str(),
                status: "succeeded",
                key,
                replay_from_seq: request.replay_from_seq,
                start_seq: Some(lease.last_seq + 1),
                end_seq: Some(end_seq),
                processed_events: events.len() as i64,
                failure_reason: None,
                worker_id: &self.worker_id,
            },
        )
        .await?;
        if !self.settings.test_fold_delay.is_zero() {
            tokio::time::sleep(self.settings.test_fold_delay).await;
        }
        tx.commit().await.map_err(anyhow::Error::from)?;
        timer.mark("commit");
        tracing::debug!(events = events.len(), phases = %timer, "Fold run phases.");
        for transition in &evaluation.transitions {
            self.metrics.alert_transition(transition);
        }
        if snapshot_at.is_some() {
            if let Ok(mut m) = self.last_snapshot.lock() {
                m.insert(lease.project_id, Instant::now());
            }
        }
        let quarantined = delta.quarantine.len();
        self.put_cached(lease.generation, end_seq, state);
        Ok(RunOutcome {
            run: Some(run),
            reused: false,
            processed_events: events.len() as i64,
            last_seq: end_seq,
            caught_up,
            snapshot_at,
            quarantined,
        })
    }
}

/// Panics for the projects listed in `FLOWMETER_TEST_PANIC_PROJECTS` (builds with the
/// `test-hooks` feature), so tests can show that one project's failure leaves the others be.
#[cfg(feature = "test-hooks")]
fn fail_project_for_tests(project: Uuid) {
    static PROJECTS: std::sync::OnceLock<Vec<String>> = std::sync::OnceLock::new();
    let listed = PROJECTS.get_or_init(|| {
        std::env::var("FLOWMETER_TEST_PANIC_PROJECTS")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect()
    });
    if listed.iter().any(|p| *p == project.to_string()) {
        panic!("project {project} is listed in FLOWMETER_TEST_PANIC_PROJECTS");
    }
}

#[cfg(not(feature = "test-hooks"))]
fn fail_project_for_tests(_: Uuid) {}

/// Counts a run's project state as in use until the run ends (whatever way it ends).
struct InUse<'a>(&'a AtomicUsize);

impl<'a> InUse<'a> {
    fn new(counter: &'a AtomicUsize) -> Self {
        counter.fetch_add(1, Ordering::SeqCst);
        Self(counter)
    }
}

impl Drop for InUse<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Milliseconds spent per phase of a run, for the debug log.
struct PhaseTimer {
    last: Instant,
    phases: Vec<(&'static str, f64)>,
}

impl PhaseTimer {
    fn new() -> Self {
        Self {
            last: Instant::now(),
            phases: Vec::new(),
        }
    }

    fn mark(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.phases
            .push((phase, (now - self.last).as_secs_f64() * 1000.0));
        self.last = now;
    }
}

impl std::fmt::Display for PhaseTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, (phase, ms)) in self.phases.iter().enumerate() {
            write!(f, "{}{phase}={ms:.1}ms", if i == 0 { "" } else { " " })?;
        }
        Ok(())
    }
}

/// Exponential backoff with ±20 % jitter, capped at 15 minutes.
pub fn backoff(mode: Mode, failures: i32) -> chrono::Duration {
    let base = mode.first_backoff().as_secs_f64() * 2f64.powi((failures - 1).clamp(0, 20));
    let capped = base.min(15.0 * 60.0);
    let jitter = rand::thread_rng().gen_range(0.8..1.2);
    chrono::Duration::milliseconds((capped * jitter * 1000.0) as i64)
}
