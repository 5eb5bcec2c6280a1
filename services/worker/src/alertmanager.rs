//! Delivery of Flowmeter's alerts to the Alertmanagers of `FLOWMETER_ALERTMANAGER_URLS`
//! (SPEC §17), at least once. Every alert transition leaves one outbox row per
//! Alertmanager in the snapshot's transaction (`metrics_alertmanager_outbox`); this loop
//! posts them to each Alertmanager's `/api/v2/alerts` in row order, built from the alert as
//! stored at that moment, and marks them delivered only once Alertmanager answered 2xx.
//! A failed post backs the Alertmanager off exponentially (its rows stay queued). Every
//! `FLOWMETER_ALERTMANAGER_RESEND_SECONDS` the firing alerts are posted again, with an
//! `endsAt` four intervals ahead: Alertmanager keeps an alert only until its `endsAt` and
//! forgets everything on restart, so the resend is what keeps it (and a restarted one)
//! current. Acknowledgements with an expiry become silences (`/api/v2/silences`), whose
//! ids are stored in `metrics_alertmanager_silence`.
//!
//! Each Alertmanager's row in `metrics_alertmanager_target` is locked for the round
//! (`FOR UPDATE SKIP LOCKED`), so with several workers one at a time posts to it and posts
//! arrive in order: a stale firing post can never land after the resolution.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{TimeDelta, Utc};
use flowmeter_shared::db::alerts::alertmanager::{self as store, Named};
use serde_json::Value;
use uuid::Uuid;

use crate::daemon::Shutdown;
use crate::observability::PostResult;
use crate::runner::Worker;

/// Outbox rows per post.
const BATCH: i64 = 200;
/// Silences created per round and Alertmanager.
const SILENCE_BATCH: i64 = 20;
/// How long one post may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between rounds.
const POLL: Duration = Duration::from_millis(500);
/// Longest wait between posts to an Alertmanager that fails.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// A firing alert's `endsAt` lies this many resend intervals ahead (as Prometheus does),
/// so one lost resend does not resolve it.
const KEEP_INTERVALS: i32 = 4;

/// Delivers to every configured Alertmanager until shutdown.
pub async fn deliver_until_shutdown(worker: Arc<Worker>, shutdown: Arc<Shutdown>) {
    let urls = worker.settings.alertmanager_urls.clone();
    let http = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "Cannot build the Alertmanager client; alerts stay queued.");
            return;
        }
    };
    let mut registered = false;
    while !shutdown.is_requested() {
        if !registered {
            registered = match register(&worker, &urls).await {
                Ok(()) => true,
                Err(error) => {
                    tracing::warn!(error = %error, "Cannot register the Alertmanagers; retrying.");
                    false
                }
            };
        }
        if registered {
            for url in &urls {
                if let Err(error) = deliver_to(&worker, &http, url).await {
                    tracing::warn!(alertmanager = %url, error = %error, "Alertmanager delivery round failed.");
                }
            }
        }
        if let Err(error) = observe_queue(&worker).await {
            tracing::debug!(error = %error, "Cannot read the Alertmanager queue depth.");
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait() => break,
        }
    }
}

async fn register(worker: &Worker, urls: &[String]) -> anyhow::Result<()> {
    let client = worker.pool.get().await?;
    store::register_targets(&client, urls).await
}

async fn observe_queue(worker: &Worker) -> anyhow::Result<()> {
    let client = worker.pool.get().await?;
    let depth = store::queue_depth(&client, &worker.settings.alertmanager_urls).await?;
    worker.metrics.alertmanager_queue_depth.set(depth);
    Ok(())
}

/// One round for one Alertmanager: the due outbox rows (and, when due, every firing alert)
/// in one post, then the silences acknowledgements ask for.
pub async fn deliver_to(worker: &Worker, http: &reqwest::Client, url: &str) -> anyhow::Result<()> {
    let resend = worker.settings.alertmanager_resend;
    let mut client = worker.pool.get().await?;
    let tx = client.transaction().await?;
    let Some(target) = store::lock_target(&tx, url, resend.as_secs_f64()).await? else {
        return Ok(()); // another worker is delivering to it
    };
    if !target.due {
        return Ok(()); // backing off
    }
    let rows = store::pending(&tx, url, BATCH).await?;
    let mut posted = true;
    if !rows.is_empty() || target.resend_due {
        let now = Utc::now();
        let keep_until = now
            + TimeDelta::from_std(resend * KEEP_INTERVALS as u32).unwrap_or(TimeDelta::hours(1));
        let links = &worker.settings.alert_links;
        let mut alerts: Vec<Value> = Vec::new();
        if target.resend_due {
            for named in store::firing(&tx).await? {
                alerts.push(store::postable_alert(
                    &named.alert,
                    &named.project_name,
                    &named.alert.severity,
                    keep_until,
                    links,
                ));
            }
        }
        let ids: Vec<Uuid> = rows.iter().map(|r| r.alert_id).collect();
        let by_id: HashMap<Uuid, Named> = store::alerts_by_id(&tx, &ids)
            .await?
            .into_iter()
            .map(|n| (n.alert.id, n))
            .collect();
        for row in &rows {
            let Some(named) = by_id.get(&row.alert_id) else {
                continue; // the alert is gone (a rollback of the metrics tables)
            };
            let (alert, name) = (&named.alert, named.project_name.as_str());
            if let Some(ended) = &row.ended_severity {
                alerts.push(store::postable_alert(alert, name, ended, row.at, links));
            }
            let ends_at = if alert.state == "firing" {
                keep_until
            } else {
                alert.resolved_at.unwrap_or(row.at)
            };
            alerts.push(store::postable_alert(
                alert,
                name,
                &alert.severity,
                ends_at,
                links,
            ));
        }
        let row_ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
        if alerts.is_empty() {
            store::record_success(&tx, url, &row_ids, target.resend_due).await?;
        } else {
            match post(http, &format!("{url}/api/v2/alerts"), &alerts).await {
                Ok(_) => {
                    worker.metrics.alertmanager_post(PostResult::Success);
                    store::record_success(&tx, url, &row_ids, target.resend_due).await?;
                    tracing::debug!(alertmanager = %url, alerts = alerts.len(), rows = rows.len(),
                        "Posted alerts to Alertmanager.");
                }
                Err(error) => {
                    worker.metrics.alertmanager_post(PostResult::Error);
                    posted = false;
                    back_off(&tx, url, &row_ids, target.failures, &error).await?;
                }
            }
        }
    }
    if posted {
        for named in store::silences_due(&tx, url, SILENCE_BATCH).await? {
            let Some(silence) = store::postable_silence(&named.alert) else {
                continue;
            };
            match post(http, &format!("{url}/api/v2/silences"), &silence).await {
                Ok(answer) => {
                    let id = answer
                        .get("silenceID")
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned();
                    store::store_silence(&tx, url, &named.alert, &id).await?;
                    tracing::info!(alertmanager = %url, alert_id = %named.alert.id, silence_id = %id,
                        "Created an Alertmanager silence for an acknowledgement.");
                }
                Err(error) => {
                    back_off(&tx, url, &[], target.failures, &error).await?;
                    break;
                }
            }
        }
    }
    tx.commit().await?;
    Ok(())
}

async fn back_off(
    tx: &deadpool_postgres::Transaction<'_>,
    url: &str,
    rows: &[i64],
    failures: i32,
    error: &str,
) -> anyhow::Result<()> {
    // The webhook's doubling backoff with ±20 % jitter, capped lower: an Alertmanager that
    // comes back should not wait minutes for what it missed.
    let wait = crate::webhook::backoff(failures).min(MAX_BACKOFF);
    tracing::warn!(alertmanager = %url, rows = rows.len(), failures = failures + 1, error = %error,
        retry_in_ms = wait.as_millis() as u64, "Alertmanager post failed; will retry.");
    store::record_failure(tx, url, rows, error, wait.as_secs_f64()).await
}

/// Posts JSON; the answer's JSON body (or null) on 2xx, the reason otherwise.
async fn post(
    http: &reqwest::Client,
    url: &str,
    body: &impl serde::Serialize,
) -> Result<Value, String> {
    match http.post(url).json(body).send().await {
        Ok(response) if response.status().is_success() => {
            Ok(response.json::<Value>().await.unwrap_or(Value::Null))
        }
        Ok(response) => {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            Err(format!(
                "Alertmanager answered {status}: {}",
                text.chars().take(300).collect::<String>()
            ))
        }
        Err(error) => Err(error.to_string()),
    }
}
