//! `flowmeter-worker run`: the scheduler. Near-real-time drains run on their cron schedule
//! and whenever an ingest commit NOTIFYs; batch drains run on theirs and also refresh
//! snapshots whose ages went stale. A drain claims projects one at a time until none needs
//! work; a project that is behind is folded in consecutive runs (catch-up runs use the batch
//! size) before its lease is released. SIGTERM lets the run in flight commit, then exits.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use flowmeter_shared::db::checkpoints;
use futures_util::StreamExt;
use tokio::sync::Notify;

use crate::alerting;
use crate::observability::{ProjectMetricLabels, SeverityLabels};
use crate::runner::{Mode, RunRequest, Worker};
use flowmeter_shared::alerts::Severity;

/// Stop requests from signals.
#[derive(Debug, Default)]
pub struct Shutdown {
    requested: AtomicBool,
    notify: Notify,
}

impl Shutdown {
    /// Asks the daemon to stop after the run in flight.
    pub fn request(&self) {
        self.requested.store(true, Ordering::SeqCst);
        self.notify.notify_waiters();
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.requested.load(Ordering::SeqCst)
    }

    pub(crate) async fn wait(&self) {
        while !self.is_requested() {
            self.notify.notified().await;
        }
    }
}

/// Listens for `flowmeter_events` notifications and wakes the scheduler; reconnects after
/// errors.
async fn listen(url: String, wake: Arc<Notify>, shutdown: Arc<Shutdown>) {
    let mut delay = Duration::from_millis(200);
    while !shutdown.is_requested() {
        match tokio_postgres::connect(&url, tokio_postgres::NoTls).await {
            Ok((client, mut connection)) => {
                let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages =
                        futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = messages.next().await {
                        match message {
                            Ok(tokio_postgres::AsyncMessage::Notification(_)) => {
                                let _ = tx.send(());
                            }
                            Ok(_) => {}
                            Err(_) => break,
                        }
                    }
                });
                if client
                    .batch_execute("LISTEN flowmeter_events")
                    .await
                    .is_ok()
                {
                    delay = Duration::from_millis(200);
                    // A notification may have been missed while disconnected.
                    wake.notify_one();
                    while rx.recv().await.is_some() {
                        wake.notify_one();
                    }
                }
                driver.abort();
                tracing::warn!("The LISTEN connection closed; reconnecting.");
            }
            Err(error) => tracing::warn!(error = %error, "LISTEN connection failed; retrying."),
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}

/// The schedule's next instant after now.
fn next_tick(schedule: &cron::Schedule) -> chrono::DateTime<Utc> {
    schedule
        .upcoming(Utc)
        .next()
        .unwrap_or_else(|| Utc::now() + chrono::Duration::seconds(1))
}

/// Runs the scheduler until shutdown.
pub async fn run(worker: Arc<Worker>, shutdown: Arc<Shutdown>) -> anyhow::Result<()> {
    let wake = Arc::new(Notify::new());
    let listener = tokio::spawn(listen(
        worker.settings.database.url.clone(),
        wake.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        worker_id = %worker.worker_id,
        nrt = %worker.settings.nrt_schedule.expression,
        batch = %worker.settings.batch_schedule.expression,
        "Worker started."
    );
    let webhook = worker.settings.alert_webhook_url.clone().map(|url| {
        tokio::spawn(crate::webhook::deliver_until_shutdown(
            worker.clone(),
            url,
            shutdown.clone(),
        ))
    });
    let alertmanager = (!worker.settings.alertmanager_urls.is_empty()).then(|| {
        tokio::spawn(crate::alertmanager::deliver_until_shutdown(
            worker.clone(),
            shutdown.clone(),
        ))
    });
    // Catch up with whatever arrived while no worker ran.
    drain_concurrently(&worker, Mode::Batch, false, &shutdown).await;
    let mut next_nrt = next_tick(&worker.settings.nrt_schedule.schedule);
    let mut next_batch = next_tick(&worker.settings.batch_schedule.schedule);
    while !shutdown.is_requested() {
        let due = next_nrt.min(next_batch);
        let sleep = (due - Utc::now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = tokio::time::sleep(sleep) => {}
            _ = wake.notified() => {
                drain_concurrently(&worker, Mode::NearRealTime, false, &shutdown).await;
                continue;
            }
            _ = shutdown.wait() => break,
        }
        // Both schedules may be due at the same instant: run each that is, batch first.
        let now = Utc::now();
        if now >= next_batch {
            drain_concurrently(&worker, Mode::Batch, true, &shutdown).await;
            next_batch = next_tick(&worker.settings.batch_schedule.schedule);
        }
        if now >= next_nrt {
            drain_concurrently(&worker, Mode::NearRealTime, false, &shutdown).await;
            next_nrt = next_tick(&worker.settings.nrt_schedule.schedule);
        }
    }
    listener.abort();
    if let Some(webhook) = webhook {
        let _ = webhook.await;
    }
    if let Some(alertmanager) = alertmanager {
        let _ = alertmanager.await;
    }
    tracing::info!(worker_id = %worker.worker_id, "Worker stopped.");
    Ok(())
}

/// Runs `FLOWMETER_WORKER_CONCURRENCY` drains side by side, so one project's fold (CPU)
/// overlaps another's database writes.
pub async fn drain_concurrently(
    worker: &Arc<Worker>,
    mode: Mode,
    refresh: bool,
    shutdown: &Arc<Shutdown>,
) {
    let tasks: Vec<_> = (0..worker.settings.concurrency)
        .map(|_| {
            let worker = worker.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { drain(&worker, mode, refresh, &shutdown).await })
        })
        .collect();
    for task in tasks {
        let _ = task.await;
    }
}

/// Folds every project that needs it. Errors are logged and counted; the loop goes on
/// with other projects.
pub async fn drain(worker: &Worker, mode: Mode, refresh: bool, shutdown: &Shutdown) {
    let refresh_before = refresh.then(Utc::now);
    if let Err(error) = update_gauges(worker).await {
        tracing::warn!(error = %error, "Reading fold progress failed.");
    }
    while !shutdown.is_requested() {
        let claimed = async {
            let client = worker.pool.get().await?;
            checkpoints::ensure_checkpoints(&client).await?;
            checkpoints::claim_next(
                &client,
                &worker.worker_id,
                worker.settings.lease_seconds,
                refresh_before,
            )
            .await
        }
        .await;
        let mut lease = match claimed {
            Ok(Some(lease)) => lease,
            Ok(None) => break,
            Err(error) => {
                tracing::warn!(error = %error, "Claiming a project failed.");
                break;
            }
        };
        worker.metrics.jobs_submitted.inc();
        if lease.recovered {
            worker.metrics.jobs_recovered.inc();
            tracing::warn!(project = %lease.project_id, "Reclaimed a project whose previous worker never released it.");
        }
        let mut max_events = match mode {
            Mode::NearRealTime => worker.settings.nrt_max_events,
            Mode::Batch => worker.settings.batch_max_events,
        };
        let mut released = false;
        loop {
            let request = RunRequest {
                mode,
                key: None,
                max_events,
                replay_from_seq: None,
                force_snapshot: refresh,
                retention: refresh,
            };
            match worker.run_claimed(&mut lease, &request).await {
                Ok(outcome) if outcome.caught_up || shutdown.is_requested() => break,
                Ok(_) => max_events = worker.settings.batch_max_events,
                Err(_) => {
                    // The failure is recorded and the lease released (or lost).
                    released = true;
                    break;
                }
            }
        }
        if !released {
            if let Ok(client) = worker.pool.get().await {
                if let Err(error) = checkpoints::release(&client, &lease).await {
                    tracing::warn!(error = %error, "Releasing a lease failed.");
                }
            }
        }
    }
    let _ = update_gauges(worker).await;
}

/// Least time between two refreshes of the alert and business gauges.
const ALERT_GAUGES_EVERY: Duration = Duration::from_secs(5);

async fn update_gauges(worker: &Worker) -> anyhow::Result<()> {
    let client = worker.pool.get().await?;
    let progress = checkpoints::progress(&client).await?;
    let lag: i64 = progress
        .iter()
        .map(|p| (p.head_seq - p.last_seq).max(0))
        .sum();
    let stalled = progress
        .iter()
        .filter(|p| p.status == "stalled" || p.status == "halted")
        .count();
    worker.metrics.fold_lag.set(lag);
    worker.metrics.projects_stalled.set(stalled as i64);

    if !worker.gauges_due(ALERT_GAUGES_EVERY) {
        return Ok(());
    }
    let firing = flowmeter_shared::db::alerts::firing_by_severity(&client).await?;
    for severity in Severity::ALL {
        let count = firing
            .iter()
            .find(|(s, _)| s == severity.as_str())
            .map_or(0, |(_, n)| *n);
        worker
            .metrics
            .alerts_firing
            .get_or_create(&SeverityLabels {
                severity: severity.as_str().to_owned(),
            })
            .set(count);
    }
    let samples = alerting::business_gauges(&client, worker.settings.metrics_max_projects).await?;
    worker.metrics.project_metric.clear();
    for (project, metric, value) in samples {
        worker
            .metrics
            .project_metric
            .get_or_create(&ProjectMetricLabels { project, metric })
            .set(value);
    }
    Ok(())
}
