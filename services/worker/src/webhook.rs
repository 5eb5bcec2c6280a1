//! Delivery of alert notifications from `metrics_alert_outbox` to
//! `FLOWMETER_ALERT_WEBHOOK_URL`, at least once: a row is marked delivered only after the
//! receiver answered 2xx; failures are retried with exponential backoff. Rows are claimed
//! with `FOR UPDATE SKIP LOCKED`, so several workers never send the same row at once, and a
//! project's notifications go out in the order they were written (a failure holds back the
//! project's later rows until it succeeds).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde_json::Value;
use uuid::Uuid;

use crate::daemon::Shutdown;
use crate::runner::Worker;

/// Rows sent per round.
const BATCH: i64 = 50;
/// First retry delay; doubles per failed attempt.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
/// Longest retry delay.
const MAX_BACKOFF: Duration = Duration::from_secs(300);
/// How long one delivery may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between rounds.
const POLL: Duration = Duration::from_secs(1);

/// Delay before attempt `attempts + 1`, with ±20 % jitter.
pub fn backoff(attempts: i32) -> Duration {
    let base = FIRST_BACKOFF.saturating_mul(1u32 << attempts.clamp(0, 16) as u32);
    let base = base.min(MAX_BACKOFF);
    base.mul_f64(rand::thread_rng().gen_range(0.8..1.2))
}

/// Sends due notifications until shutdown.
pub async fn deliver_until_shutdown(worker: Arc<Worker>, url: String, shutdown: Arc<Shutdown>) {
    let client = match reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build() {
        Ok(client) => client,
        Err(error) => {
            tracing::error!(error = %error, "Cannot build the webhook client; notifications stay queued.");
            return;
        }
    };
    while !shutdown.is_requested() {
        match deliver_due(&worker, &client, &url).await {
            Ok(sent) if sent > 0 => continue,
            Ok(_) => {}
            Err(error) => tracing::warn!(error = %error, "Webhook delivery round failed."),
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = shutdown.wait() => break,
        }
    }
}

/// One round: claims due rows, posts them, records the outcome. Returns rows delivered.
pub async fn deliver_due(
    worker: &Worker,
    http: &reqwest::Client,
    url: &str,
) -> anyhow::Result<usize> {
    let mut client = worker.pool.get().await?;
    let tx = client.transaction().await?;
    let rows = tx
        .query(
            "SELECT project_id, id, payload, attempts FROM metrics_alert_outbox o
              WHERE delivered_at IS NULL AND next_attempt_at <= now()
                AND NOT EXISTS (
                    SELECT 1 FROM metrics_alert_outbox earlier
                     WHERE earlier.project_id = o.project_id AND earlier.id < o.id
                       AND earlier.delivered_at IS NULL)
              ORDER BY created_at, id
              LIMIT $1
              FOR UPDATE SKIP LOCKED",
            &[&BATCH],
        )
        .await?;
    // Only a project's oldest undelivered row is due; this set guards a round against a
    // row committed between the query's snapshot and now.
    let mut held_back: HashSet<Uuid> = HashSet::new();
    let mut delivered = 0;
    for row in &rows {
        let project: Uuid = row.get(0);
        let id: i64 = row.get(1);
        let payload: Value = row.get(2);
        let attempts: i32 = row.get(3);
        if held_back.contains(&project) {
            continue;
        }
        let outcome = match http.post(url).json(&payload).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("receiver answered {}", response.status())),
            Err(error) => Err(error.to_string()),
        };
        match outcome {
            Ok(()) => {
                tx.execute(
                    "UPDATE metrics_alert_outbox
                        SET delivered_at = now(), attempts = attempts + 1, last_error = NULL
                      WHERE project_id = $1 AND id = $2",
                    &[&project, &id],
                )
                .await?;
                delivered += 1;
            }
            Err(error) => {
                held_back.insert(project);
                let wait = backoff(attempts);
                tracing::warn!(%project, outbox_id = id, attempts = attempts + 1, error = %error,
                    retry_in_ms = wait.as_millis() as u64, "Webhook delivery failed; will retry.");
                tx.execute(
                    "UPDATE metrics_alert_outbox
                        SET attempts = attempts + 1, last_error = $3,
                            next_attempt_at = now() + make_interval(secs => $4)
                      WHERE project_id = $1 AND id = $2",
                    &[&project, &id, &error, &wait.as_secs_f64()],
                )
                .await?;
            }
        }
    }
    tx.commit().await?;
    Ok(delivered)
}
