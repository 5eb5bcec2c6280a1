//! Per-project fold checkpoints with leases (SPEC §3.4) and the run history (§3.3).
//! Leases are rows claimed with `FOR UPDATE SKIP LOCKED`; every commit of a fold is a
//! compare-and-set on the expected `last_seq`, the lease token and the generation, so a
//! worker whose lease was taken over cannot commit.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient;
use serde::Serialize;
use uuid::Uuid;

/// A claimed project.
#[derive(Debug, Clone)]
pub struct Lease {
    /// The project.
    pub project_id: Uuid,
    /// The fencing token of this claim.
    pub token: Uuid,
    /// Checkpoint when claimed.
    pub last_seq: i64,
    /// Generation when claimed.
    pub generation: i64,
    /// The fold's event-time cursors.
    pub fold_state: serde_json::Value,
    /// Last snapshot time.
    pub last_snapshot_at: Option<DateTime<Utc>>,
    /// Whether the project was taken from a worker that never released it (a crash).
    pub recovered: bool,
    /// Checkpoint status when claimed.
    pub status: String,
    /// Consecutive failures so far.
    pub failure_count: i32,
}

/// Creates checkpoint rows for projects that have events but no checkpoint yet.
pub async fn ensure_checkpoints(client: &impl GenericClient) -> anyhow::Result<u64> {
    Ok(client
        .execute(
            "INSERT INTO metrics_job_checkpoint (project_id)
             SELECT h.project_id FROM event_stream_head h
              WHERE NOT EXISTS (SELECT 1 FROM metrics_job_checkpoint c WHERE c.project_id = h.project_id)
             ON CONFLICT (project_id) DO NOTHING",
            &[],
        )
        .await?)
}

const LEASE_COLUMNS: &str = "c.project_id, c.lease_token, c.last_seq, c.generation, c.fold_state,
    c.last_snapshot_at, prev.previous_owner IS NOT NULL, c.status, c.failure_count";

fn lease_of(row: &tokio_postgres::Row) -> Lease {
    Lease {
        project_id: row.get(0),
        token: row.get(1),
        last_seq: row.get(2),
        generation: row.get(3),
        fold_state: row.get(4),
        last_snapshot_at: row.get(5),
        recovered: row.get(6),
        status: row.get(7),
        failure_count: row.get(8),
    }
}

/// Claims one project that needs work: behind its log head, or (when `refresh_before` is
/// given) with a snapshot older than that. Skips leased, stalled, halted and backing-off
/// projects; the most-behind project first.
pub async fn claim_next(
    client: &impl GenericClient,
    worker_id: &str,
    lease_seconds: i64,
    refresh_before: Option<DateTime<Utc>>,
) -> anyhow::Result<Option<Lease>> {
    let sql = format!(
        "WITH prev AS (
             SELECT c.project_id, c.lease_owner AS previous_owner
               FROM metrics_job_checkpoint c
               JOIN event_stream_head h ON h.project_id = c.project_id
              WHERE (c.lease_expires_at IS NULL OR c.lease_expires_at < now())
                AND c.status IN ('idle', 'failing')
                AND (c.next_attempt_at IS NULL OR c.next_attempt_at <= now())
                AND (h.last_seq > c.last_seq
                     OR ($3::timestamptz IS NOT NULL
                         AND (c.last_snapshot_at IS NULL OR c.last_snapshot_at < $3)))
              ORDER BY h.last_seq - c.last_seq DESC, c.project_id
              LIMIT 1
              FOR UPDATE OF c SKIP LOCKED)
         UPDATE metrics_job_checkpoint c
            SET lease_owner = $1, lease_token = $4,
                lease_expires_at = now() + make_interval(secs => $2), updated_at = now()
           FROM prev WHERE c.project_id = prev.project_id
         RETURNING {LEASE_COLUMNS}"
    );
    let row = client
        .query_opt(
            &sql,
            &[
                &worker_id,
                &(lease_seconds as f64),
                &refresh_before,
                &Uuid::new_v4(),
            ],
        )
        .await?;
    Ok(row.as_ref().map(lease_of))
}

/// Claims a named project whatever its schedule (CLI commands). Waits for no one: returns
/// `None` when another worker holds an unexpired lease. `force` also takes stalled,
/// halted and backing-off projects (an operator asked for this run).
pub async fn claim_project(
    client: &impl GenericClient,
    project_id: Uuid,
    worker_id: &str,
    lease_seconds: i64,
) -> anyhow::Result<Option<Lease>> {
    client
        .execute(
            "INSERT INTO metrics_job_checkpoint (project_id) VALUES ($1) ON CONFLICT DO NOTHING",
            &[&project_id],
        )
        .await?;
    let sql = format!(
        "WITH prev AS (
             SELECT c.project_id, c.lease_owner AS previous_owner FROM metrics_job_checkpoint c
              WHERE c.project_id = $1
                AND (c.lease_expires_at IS NULL OR c.lease_expires_at < now() OR c.lease_owner = $2)
              FOR UPDATE OF c)
         UPDATE metrics_job_checkpoint c
            SET lease_owner = $2, lease_token = $4,
                lease_expires_at = now() + make_interval(secs => $3), updated_at = now()
           FROM prev WHERE c.project_id = prev.project_id
         RETURNING {LEASE_COLUMNS}"
    );
    let row = client
        .query_opt(
            &sql,
            &[
                &project_id,
                &worker_id,
                &(lease_seconds as f64),
                &Uuid::new_v4(),
            ],
        )
        .await?;
    Ok(row.as_ref().map(lease_of))
}

/// What a successful fold commit records.
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    /// The claim.
    pub lease: &'a Lease,
    /// The new checkpoint.
    pub last_seq: i64,
    /// The fold's cursors after the batch.
    pub fold_state: serde_json::Value,
    /// Set when the run took a snapshot.
    pub snapshot_at: Option<DateTime<Utc>>,
    /// How long to extend the lease.
    pub lease_seconds: i64,
}

/// The compare-and-set that commits a fold. Returns false when the checkpoint moved, the
/// lease was taken over, or the project was reset: the caller must roll back.
pub async fn advance(client: &impl GenericClient, advance: &Advance<'_>) -> anyhow::Result<bool> {
    let stmt = client
        .prepare_cached(
            "UPDATE metrics_job_checkpoint
                SET last_seq = $2, fold_state = $3, last_success_at = now(),
                    last_snapshot_at = COALESCE($4, last_snapshot_at),
                    lease_expires_at = now() + make_interval(secs => $5),
                    status = 'idle', failure_count = 0, next_attempt_at = NULL, last_error = NULL,
                    updated_at = now()
              WHERE project_id = $1 AND last_seq = $6 AND lease_token = $7 AND generation = $8",
        )
        .await?;
    let lease = advance.lease;
    let updated = client
        .execute(
            &stmt,
            &[
                &lease.project_id,
                &advance.last_seq,
                &advance.fold_state,
                &advance.snapshot_at,
                &(advance.lease_seconds as f64),
                &lease.last_seq,
                &lease.token,
                &lease.generation,
            ],
        )
        .await?;
    Ok(updated == 1)
}

/// Gives a lease back (only if still ours).
pub async fn release(client: &impl GenericClient, lease: &Lease) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE metrics_job_checkpoint SET lease_owner = NULL, lease_token = NULL,
                    lease_expires_at = NULL, updated_at = now()
              WHERE project_id = $1 AND lease_token = $2",
            &[&lease.project_id, &lease.token],
        )
        .await?;
    Ok(())
}

/// Records a failed run on the checkpoint: backoff until `next_attempt_at`, `stalled`
/// once `failures` reaches the mode's maximum, `halted` for a poison event under
/// `FLOWMETER_ON_POISON=halt`. Releases the lease.
pub async fn record_failure(
    client: &impl GenericClient,
    lease: &Lease,
    status: &str,
    failures: i32,
    next_attempt_at: Option<DateTime<Utc>>,
    error: &str,
) -> anyhow::Result<()> {
    client
        .execute(
            "UPDATE metrics_job_checkpoint
                SET status = $3, failure_count = $4, next_attempt_at = $5, last_error = $6,
                    lease_owner = NULL, lease_token = NULL, lease_expires_at = NULL, updated_at = now()
              WHERE project_id = $1 AND lease_token = $2",
            &[&lease.project_id, &lease.token, &status, &failures, &next_attempt_at, &error],
        )
        .await?;
    Ok(())
}

/// Resets a project for a rebuild: cursor to 0, a new generation, status idle. The caller
/// holds the lease and commits this together with the rebuilt projections.
pub async fn reset_for_rebuild(client: &impl GenericClient, lease: &Lease) -> anyhow::Result<bool> {
    Ok(client
        .execute(
            "UPDATE metrics_job_checkpoint
                SET last_seq = 0, generation = generation + 1, fold_state = '{}'::jsonb,
                    status = 'idle', failure_count = 0, next_attempt_at = NULL, last_error = NULL,
                    updated_at = now()
              WHERE project_id = $1 AND lease_token = $2",
            &[&lease.project_id, &lease.token],
        )
        .await?
        == 1)
}

/// One run of the fold.
#[derive(Debug, Clone, Serialize)]
pub struct JobRun {
    /// Run id.
    pub id: Uuid,
    /// The project.
    pub project_id: Uuid,
    /// batch or near_real_time.
    pub mode: String,
    /// succeeded or failed.
    pub status: String,
    /// Idempotency key.
    pub idempotency_key: String,
    /// Where a backfill started.
    pub replay_from_seq: Option<i64>,
    /// First seq folded.
    pub start_seq: Option<i64>,
    /// Last seq folded.
    pub end_seq: Option<i64>,
    /// Events folded.
    pub processed_events: i64,
    /// Why it failed.
    pub failure_reason: Option<String>,
    /// Tries so far.
    pub attempts: i32,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Finished.
    pub completed_at: Option<DateTime<Utc>>,
}

const RUN_COLUMNS: &str =
    "id, project_id, mode, status, idempotency_key, replay_from_seq, start_seq,
    end_seq, processed_events, failure_reason, attempts, created_at, completed_at";

fn run_of(row: &tokio_postgres::Row) -> JobRun {
    JobRun {
        id: row.get(0),
        project_id: row.get(1),
        mode: row.get(2),
        status: row.get(3),
        idempotency_key: row.get(4),
        replay_from_seq: row.get(5),
        start_seq: row.get(6),
        end_seq: row.get(7),
        processed_events: row.get(8),
        failure_reason: row.get(9),
        attempts: row.get(10),
        created_at: row.get(11),
        completed_at: row.get(12),
    }
}

/// A run by idempotency key.
pub async fn find_run(
    client: &impl GenericClient,
    project_id: Uuid,
    key: &str,
) -> anyhow::Result<Option<JobRun>> {
    let sql = format!(
        "SELECT {RUN_COLUMNS} FROM metrics_job_run WHERE project_id = $1 AND idempotency_key = $2"
    );
    Ok(client
        .query_opt(&sql, &[&project_id, &key])
        .await?
        .as_ref()
        .map(run_of))
}

/// A run by id.
pub async fn find_run_by_id(
    client: &impl GenericClient,
    project_id: Uuid,
    id: Uuid,
) -> anyhow::Result<Option<JobRun>> {
    let sql =
        format!("SELECT {RUN_COLUMNS} FROM metrics_job_run WHERE project_id = $1 AND id = $2");
    Ok(client
        .query_opt(&sql, &[&project_id, &id])
        .await?
        .as_ref()
        .map(run_of))
}

/// What a finished run records.
#[derive(Debug, Clone)]
pub struct RunRecord<'a> {
    /// The project.
    pub project_id: Uuid,
    /// Mode.
    pub mode: &'a str,
    /// succeeded or failed.
    pub status: &'a str,
    /// Idempotency key.
    pub key: &'a str,
    /// Backfill origin.
    pub replay_from_seq: Option<i64>,
    /// First seq.
    pub start_seq: Option<i64>,
    /// Last seq.
    pub end_seq: Option<i64>,
    /// Events folded.
    pub processed_events: i64,
    /// Failure reason.
    pub failure_reason: Option<&'a str>,
    /// The worker.
    pub worker_id: &'a str,
}

/// Records a run; a key seen before (a retried failure) gets attempts + 1.
pub async fn record_run(
    client: &impl GenericClient,
    run: &RunRecord<'_>,
) -> anyhow::Result<JobRun> {
    let sql = format!(
        "INSERT INTO metrics_job_run AS r (project_id, id, mode, status, idempotency_key, replay_from_seq,
             start_seq, end_seq, processed_events, failure_reason, worker_id, completed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, now())
         ON CONFLICT (project_id, idempotency_key) DO UPDATE
            SET status = EXCLUDED.status, start_seq = EXCLUDED.start_seq, end_seq = EXCLUDED.end_seq,
                processed_events = EXCLUDED.processed_events, failure_reason = EXCLUDED.failure_reason,
                worker_id = EXCLUDED.worker_id, completed_at = now(), attempts = r.attempts + 1
         RETURNING {RUN_COLUMNS}"
    );
    let row = client
        .query_one(
            &sql,
            &[
                &run.project_id,
                &Uuid::new_v4(),
                &run.mode,
                &run.status,
                &run.key,
                &run.replay_from_seq,
                &run.start_seq,
                &run.end_seq,
                &run.processed_events,
                &run.failure_reason,
                &run.worker_id,
            ],
        )
        .await?;
    Ok(run_of(&row))
}

/// Fold progress of one project, for health and metrics.
#[derive(Debug, Clone, Serialize)]
pub struct Progress {
    /// The project.
    pub project_id: Uuid,
    /// Folded up to.
    pub last_seq: i64,
    /// Log head.
    pub head_seq: i64,
    /// Checkpoint status.
    pub status: String,
    /// Last successful fold.
    pub last_success_at: Option<DateTime<Utc>>,
    /// Last error.
    pub last_error: Option<String>,
}

/// Progress of every project with events.
pub async fn progress(client: &impl GenericClient) -> anyhow::Result<Vec<Progress>> {
    let rows = client
        .query(
            "SELECT h.project_id, COALESCE(c.last_seq, 0), h.last_seq, COALESCE(c.status, 'idle'),
                    c.last_success_at, c.last_error
               FROM event_stream_head h
               LEFT JOIN metrics_job_checkpoint c ON c.project_id = h.project_id
              ORDER BY h.project_id",
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| Progress {
            project_id: r.get(0),
            last_seq: r.get(1),
            head_seq: r.get(2),
            status: r.get(3),
            last_success_at: r.get(4),
            last_error: r.get(5),
        })
        .collect())
}
