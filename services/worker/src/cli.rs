//! The `flowmeter-worker` command line. Every one-shot command prints a JSON result and
//! exits non-zero on failure.

use std::io::BufRead;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use flowmeter_shared::config::Env;
use flowmeter_shared::db::{self, checkpoints, migrations};
use flowmeter_shared::events::{validate_event, NewEvent};
use prometheus_client::registry::Registry;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::daemon::{self, Shutdown};
use crate::observability::{serve_metrics, WorkerMetrics};
use crate::runner::{Mode, RunRequest, Worker};
use crate::settings::WorkerSettings;

/// Flowmeter's worker: folds the event log into the metrics read model, exactly once.
/// Configuration comes from FLOWMETER_* environment variables (see .env.example).
#[derive(Debug, Parser)]
#[command(name = "flowmeter-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scheduler (the default): fold on the cron schedules and on NOTIFY.
    Run,
    /// Fold one run for a project now.
    Once {
        /// The project.
        #[arg(long)]
        project: Uuid,
        /// batch or near_real_time.
        #[arg(long, default_value = "batch")]
        mode: Mode,
        /// Idempotency key: a key that already succeeded does nothing.
        #[arg(long)]
        key: Option<String>,
        /// Most events to fold (default: the mode's).
        #[arg(long)]
        max_events: Option<i64>,
    },
    /// Fold a project until it is caught up, in resumable runs.
    Backfill {
        /// The project.
        #[arg(long)]
        project: Uuid,
        /// Stop after this many runs.
        #[arg(long)]
        max_runs: Option<u32>,
        /// Events per run (default: FLOWMETER_BATCH_MAX_EVENTS).
        #[arg(long)]
        max_events: Option<i64>,
        /// batch or near_real_time.
        #[arg(long, default_value = "batch")]
        mode: Mode,
    },
    /// Resume a failed backfill from that run's start.
    Recover {
        /// The project.
        #[arg(long)]
        project: Uuid,
        /// The failed run's id.
        #[arg(long)]
        run: Uuid,
    },
    /// Recompute a project from seq 1 (readers keep the old read model until it commits).
    Rebuild {
        /// The project.
        #[arg(long)]
        project: Uuid,
        /// Only 1 is accepted: replaying from the middle would corrupt cumulative state.
        #[arg(long, default_value_t = 1)]
        from: i64,
    },
    /// Recompute a project in memory and compare with the stored read model.
    Verify {
        /// The project.
        #[arg(long)]
        project: Uuid,
    },
    /// Load an NDJSON file of events through ingest validation, in batches.
    Import {
        /// The file.
        file: PathBuf,
        /// Events per transaction.
        #[arg(long, default_value_t = 5000)]
        batch_size: usize,
    },
    /// Generate deterministic demo projects and append them through ingest validation.
    DemoData {
        /// Projects to generate.
        #[arg(long, default_value_t = 3)]
        projects: u32,
        /// Tasks per project.
        #[arg(long, default_value_t = 120)]
        tasks: u32,
        /// Days of history, ending at --end.
        #[arg(long, default_value_t = 30)]
        days: u32,
        /// Seed: the same seed and end give the same events.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// End of the generated history (RFC 3339); default: the current hour.
        #[arg(long)]
        end: Option<chrono::DateTime<chrono::Utc>>,
        /// Deliver the whole histories of this share of tasks (0–100 %) 1–10 days late, as
        /// producers that retry or backfill do (same events, another arrival order).
        #[arg(long, default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=100))]
        late_percent: u32,
    },
    /// Poison events set aside by the fold.
    #[command(subcommand)]
    Quarantine(QuarantineCommand),
    /// Apply pending migrations and exit.
    Migrate,
}

#[derive(Debug, Subcommand)]
enum QuarantineCommand {
    /// List quarantined events.
    List {
        /// Only this project.
        #[arg(long)]
        project: Option<Uuid>,
    },
    /// Clear a project's entries and rebuild it with the current code.
    Retry {
        /// The project.
        #[arg(long)]
        project: Uuid,
    },
}

fn print(value: &Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_default()
    );
}

impl Cli {
    /// Runs the chosen command.
    pub async fn run(self, settings: WorkerSettings) -> anyhow::Result<()> {
        let command = self.command.unwrap_or(Command::Run);
        let report = migrate(&settings).await?;
        if let Command::Migrate = command {
            print(&serde_json::to_value(report)?);
            return Ok(());
        }
        let pool = db::create_pool(&settings.database, "flowmeter-worker")?;
        let mut registry = Registry::default();
        let metrics = Arc::new(WorkerMetrics::register(&mut registry));
        let worker = Arc::new(Worker::new(pool.clone(), settings.clone(), metrics.clone()));
        match command {
            Command::Migrate => {}
            Command::Run => {
                let listener = tokio::net::TcpListener::bind(settings.metrics_addr)
                    .await
                    .map_err(|e| {
                        anyhow::anyhow!(
                            "binding FLOWMETER_WORKER_METRICS_ADDR {}: {e}",
                            settings.metrics_addr
                        )
                    })?;
                tracing::info!(address = %listener.local_addr()?, "Worker metrics listening.");
                let server =
                    tokio::spawn(serve_metrics(listener, Arc::new(registry), metrics, pool));
                let shutdown = Arc::new(Shutdown::default());
                let signals = shutdown.clone();
                tokio::spawn(async move {
                    wait_for_signal().await;
                    tracing::info!("Stop requested; finishing the run in flight.");
                    signals.request();
                });
                daemon::run(worker, shutdown).await?;
                server.abort();
            }
            Command::Once {
                project,
                mode,
                key,
                max_events,
            } => {
                let outcome = with_lease(&worker, project, |worker, mut lease| async move {
                    let request = RunRequest {
                        mode,
                        key,
                        max_events: max_events.unwrap_or(match mode {
                            Mode::NearRealTime => worker.settings.nrt_max_events,
                            Mode::Batch => worker.settings.batch_max_events,
                        }),
                        replay_from_seq: None,
                        force_snapshot: true,
                        retention: mode == Mode::Batch,
                    };
                    let outcome = worker.run_claimed(&mut lease, &request).await;
                    (lease, outcome.map_err(anyhow::Error::from))
                })
                .await?;
                print(&json!({ "project_id": project, "outcome": outcome }));
            }
            Command::Backfill {
                project,
                max_runs,
                max_events,
                mode,
            } => {
                let max_events = max_events.unwrap_or(settings.batch_max_events);
                let result = backfill(&worker, project, mode, max_runs, max_events, None).await?;
                print(&result);
            }
            Command::Recover { project, run } => {
                let client = pool.get().await?;
                let failed = checkpoints::find_run_by_id(&client, project, run)
                    .await?
                    .ok_or_else(|| anyhow::anyhow!("no run {run} for project {project}"))?;
                anyhow::ensure!(
                    failed.status == "failed",
                    "run {run} did not fail (status {}); nothing to recover",
                    failed.status
                );
                let from = failed
                    .replay_from_seq
                    .filter(|_| failed.idempotency_key.starts_with("backfill:"))
                    .ok_or_else(|| anyhow::anyhow!("run {run} is not part of a backfill"))?;
                let mode: Mode = failed.mode.parse().map_err(anyhow::Error::msg)?;
                drop(client);
                let result = backfill(
                    &worker,
                    project,
                    mode,
                    None,
                    settings.batch_max_events,
                    Some(from),
                )
                .await?;
                print(&result);
            }
            Command::Rebuild { project, from } => {
                anyhow::ensure!(
                    from == 1,
                    "--from {from} refused: a rebuild replays from seq 1, because replaying from the middle of a stream would corrupt cumulative state"
                );
                print(&serde_json::to_value(worker.rebuild(project).await?)?);
            }
            Command::Verify { project } => {
                let report = worker.verify(project).await?;
                print(&serde_json::to_value(&report)?);
                anyhow::ensure!(
                    report.ok,
                    "verify found {} mismatch(es)",
                    report.mismatches.len()
                );
            }
            Command::DemoData {
                projects,
                tasks,
                days,
                seed,
                end,
                late_percent,
            } => {
                let end = end.unwrap_or_else(|| {
                    let now = settings.clock.now();
                    now - chrono::Duration::seconds(i64::from(
                        chrono::Timelike::num_seconds_from_midnight(&now) % 3600,
                    )) - chrono::Duration::nanoseconds(i64::from(chrono::Timelike::nanosecond(
                        &now,
                    )))
                });
                let options = crate::demo::DemoOptions {
                    projects,
                    tasks_per_project: tasks,
                    days,
                    seed,
                    end,
                };
                print(&demo_data(&pool, &options, late_percent).await?);
            }
            Command::Import { file, batch_size } => {
                print(&import(&pool, &file, batch_size.max(1), &settings.event_time_bounds).await?);
            }
            Command::Quarantine(QuarantineCommand::List { project }) => {
                let client = pool.get().await?;
                let rows = client
                    .query(
                        "SELECT project_id, seq, event_id, event_type, error, quarantined_at
                           FROM metrics_event_quarantine
                          WHERE $1::uuid IS NULL OR project_id = $1 ORDER BY project_id, seq",
                        &[&project],
                    )
                    .await?;
                let items: Vec<Value> = rows
                    .iter()
                    .map(|r| {
                        json!({
                            "project_id": r.get::<_, Uuid>(0), "seq": r.get::<_, i64>(1),
                            "event_id": r.get::<_, String>(2), "event_type": r.get::<_, String>(3),
                            "error": r.get::<_, String>(4),
                            "quarantined_at": r.get::<_, chrono::DateTime<chrono::Utc>>(5),
                        })
                    })
                    .collect();
                print(&json!({ "quarantined": items }));
            }
            Command::Quarantine(QuarantineCommand::Retry { project }) => {
                let outcome = worker.rebuild(project).await?;
                print(&json!({ "retried": project, "rebuild": outcome }));
            }
        }
        Ok(())
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

/// Claims a project (failing fast when another worker holds it), runs `body`, releases.
async fn with_lease<F, Fut, T>(worker: &Arc<Worker>, project: Uuid, body: F) -> anyhow::Result<T>
where
    F: FnOnce(Arc<Worker>, checkpoints::Lease) -> Fut,
    Fut: std::future::Future<Output = (checkpoints::Lease, anyhow::Result<T>)>,
{
    let client = worker.pool.get().await?;
    let lease = checkpoints::claim_project(
        &client,
        project,
        &worker.worker_id,
        worker.settings.lease_seconds,
    )
    .await?
    .ok_or_else(|| {
        anyhow::anyhow!(
            "project {project} is being folded by another worker; retry when its lease expires"
        )
    })?;
    drop(client);
    if lease.recovered {
        worker.metrics.jobs_recovered.inc();
    }
    let (lease, result) = body(worker.clone(), lease).await;
    let client = worker.pool.get().await?;
    checkpoints::release(&client, &lease).await?;
    result
}

/// Runs until caught up (or `max_runs`), with keys `backfill:{mode}:{from}:start:{start}`,
/// so a repeated or resumed backfill reuses the runs that finished.
async fn backfill(
    worker: &Arc<Worker>,
    project: Uuid,
    mode: Mode,
    max_runs: Option<u32>,
    max_events: i64,
    from: Option<i64>,
) -> anyhow::Result<Value> {
    with_lease(worker, project, |worker, mut lease| async move {
        let from = from.unwrap_or(lease.last_seq + 1);
        let mut runs = Vec::new();
        let mut processed = 0;
        let mut caught_up = false;
        let result = loop {
            if max_runs.is_some_and(|n| runs.len() as u32 >= n) {
                break Ok(());
            }
            let request = RunRequest {
                mode,
                key: Some(format!(
                    "backfill:{}:{from}:start:{}",
                    mode.as_str(),
                    lease.last_seq + 1
                )),
                max_events,
                replay_from_seq: Some(from),
                force_snapshot: false,
                retention: false,
            };
            match worker.run_claimed(&mut lease, &request).await {
                Ok(outcome) => {
                    processed += outcome.processed_events;
                    caught_up = outcome.caught_up;
                    let reused = outcome.reused;
                    runs.push(outcome);
                    if caught_up || reused {
                        break Ok(());
                    }
                }
                Err(error) => break Err(anyhow::Error::from(error)),
            }
        };
        let value = json!({
            "project_id": project, "replay_from_seq": from, "runs": runs.len(),
            "processed_events": processed, "caught_up": caught_up, "last_seq": lease.last_seq,
        });
        (lease, result.map(|()| value))
    })
    .await
}

/// Appends generated projects one at a time (memory holds one project's events), through
/// the same validation and append path as ingest.
async fn demo_data(
    pool: &deadpool_postgres::Pool,
    options: &crate::demo::DemoOptions,
    late_percent: u32,
) -> anyhow::Result<Value> {
    let mut projects = Vec::new();
    let (mut total, mut accepted) = (0usize, 0u64);
    for index in 0..options.projects {
        let project = crate::demo::generate_project(options, index);
        let delivered =
            crate::demo::delay_histories(project.events.clone(), late_percent, options.seed);
        let events = delivered
            .iter()
            .enumerate()
            .map(|(i, e)| {
                validate_event(i, e).map_err(|errors| {
                    let problems: Vec<_> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.field, e.message))
                        .collect();
                    anyhow::anyhow!("generated event {i} is invalid: {}", problems.join("; "))
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let mut stored = 0;
        for chunk in events.chunks(5000) {
            stored += append_batch(pool, chunk).await?.0;
        }
        total += events.len();
        accepted += stored;
        projects.push(
            json!({ "project_id": project.project_id, "name": project.name,
                              "events": events.len(), "accepted": stored }),
        );
    }
    refresh_planner_statistics(pool, accepted).await?;
    Ok(json!({ "projects": projects, "events": total, "accepted": accepted, "end": options.end }))
}

/// Appends one batch in its own transaction and wakes workers; returns (accepted, duplicates).
async fn append_batch(
    pool: &deadpool_postgres::Pool,
    batch: &[NewEvent],
) -> anyhow::Result<(u64, u64)> {
    let mut client = pool.get().await?;
    let tx = client.transaction().await?;
    let projects = db::events::append(&tx, batch).await?;
    for p in projects.iter().filter(|p| p.accepted > 0) {
        db::events::notify_appended(&tx, p.project_id).await?;
    }
    tx.commit().await?;
    Ok((
        projects.iter().map(|p| p.accepted).sum(),
        projects.iter().map(|p| p.duplicates).sum(),
    ))
}

/// The payload of one event line exactly as written (`None` when it has none).
fn raw_payload(line: &str) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Raw<'a> {
        #[serde(borrow, default)]
        payload: Option<&'a serde_json::value::RawValue>,
    }
    serde_json::from_str::<Raw<'_>>(line)
        .ok()?
        .payload
        .map(|p| p.get().to_owned())
}

/// Two passes: validate every line (nothing is stored when any is invalid), then append in
/// batches, each in its own transaction, skipping events already stored.
async fn import(
    pool: &deadpool_postgres::Pool,
    file: &PathBuf,
    batch_size: usize,
    bounds: &flowmeter_shared::events::TimeBounds,
) -> anyhow::Result<Value> {
    let now = chrono::Utc::now();
    let open = || -> anyhow::Result<std::io::BufReader<std::fs::File>> {
        Ok(std::io::BufReader::new(std::fs::File::open(file).map_err(
            |e| anyhow::anyhow!("opening {}: {e}", file.display()),
        )?))
    };
    // Every problem of a line, each as {index, line, field, code, message}.
    let parse = |index: usize, line: &str| -> Result<NewEvent, Vec<Value>> {
        let value: Value = serde_json::from_str(line).map_err(|e| {
            vec![json!({"index": index, "line": index + 1, "field": "line", "code": "invalid_json", "message": e.to_string()})]
        })?;
        validate_event(index, &value)
            .and_then(|event| {
                bounds
                    .check(index, event.occurred_at, now)
                    .map(|()| event)
                    .map_err(|error| vec![error])
            })
            // The payload is stored as written, so its numbers keep every digit.
            .map(|event| NewEvent {
                payload_text: raw_payload(line),
                ..event
            })
            .map_err(|errors| {
                errors.iter().map(|e| {
                    json!({"index": index, "line": index + 1, "field": e.field, "code": e.code, "message": e.message})
                }).collect()
            })
    };
    let mut errors = Vec::new();
    let mut invalid = 0usize;
    let mut total = 0usize;
    for (index, line) in open()?.lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        total += 1;
        if let Err(line_errors) = parse(index, &line) {
            invalid += 1;
            errors.extend(line_errors);
        }
    }
    if invalid > 0 {
        print(
            &json!({ "stored": 0, "invalid": invalid, "errors": errors.iter().take(100).collect::<Vec<_>>() }),
        );
        anyhow::bail!("{invalid} of {total} events are invalid; nothing was stored");
    }
    let (mut accepted, mut duplicates) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(batch_size);
    let mut lines = open()?.lines().enumerate();
    loop {
        let next = lines.next();
        if let Some((index, line)) = &next {
            let line = line.as_ref().map_err(|e| anyhow::anyhow!("{e}"))?;
            if !line.trim().is_empty() {
                batch.push(parse(*index, line).map_err(|e| anyhow::anyhow!("{e:?}"))?);
            }
        }
        if batch.len() >= batch_size || (next.is_none() && !batch.is_empty()) {
            let (a, d) = append_batch(pool, &batch).await?;
            accepted += a;
            duplicates += d;
            batch.clear();
        }
        if next.is_none() {
            break;
        }
    }
    refresh_planner_statistics(pool, accepted).await?;
    Ok(json!({ "events": total, "accepted": accepted, "duplicates": duplicates }))
}

/// After a bulk load, refreshes the event log's planner statistics, so the worker's first
/// reads are planned for the rows now there (autovacuum would do it only later).
async fn refresh_planner_statistics(
    pool: &deadpool_postgres::Pool,
    accepted: u64,
) -> anyhow::Result<()> {
    if accepted > 0 {
        pool.get().await?.batch_execute("ANALYZE event_log").await?;
    }
    Ok(())
}

/// Applies migrations (see `flowmeter_shared::db::migrations::apply`).
pub async fn migrate(settings: &WorkerSettings) -> anyhow::Result<migrations::MigrationReport> {
    migrations::apply(&settings.database.url, settings.migrations_dir.as_deref()).await
}

/// Reads settings from the process environment.
pub fn settings_from_env() -> Result<WorkerSettings, flowmeter_shared::config::ConfigError> {
    WorkerSettings::from_env(&Env::from_process())
}
