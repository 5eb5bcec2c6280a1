//! The worker's Prometheus metrics (SPEC §9) and the small HTTP listener that serves them
//! on `FLOWMETER_WORKER_METRICS_ADDR`. The worker has no other HTTP surface, so a minimal
//! responder (GET /metrics, GET /health) keeps it free of a web framework.

use std::sync::Arc;

use flowmeter_shared::alerts::Severity;
use flowmeter_shared::db::alerts::Transition;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Labels of a finished run.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RunLabels {
    /// batch or near_real_time.
    pub mode: &'static str,
    /// succeeded or failed.
    pub status: &'static str,
}

/// Pool connection states.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// idle, in_use, max or waiting.
    pub state: &'static str,
}

/// Labels of `flowmeter_alerts_fired_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct FiredLabels {
    /// warning, critical or emergency.
    pub severity: &'static str,
    /// threshold or anomaly.
    pub alert_type: &'static str,
}

/// Labels of `flowmeter_alerts_firing`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SeverityLabels {
    /// warning, critical or emergency.
    pub severity: String,
}

/// Labels of `flowmeter_project_metric`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ProjectMetricLabels {
    /// Project id, or `other` for every project beyond the top N.
    pub project: String,
    /// dpi, fes, irs, lead_time_p90_hours, blocked_ratio, ini_backlog, throughput_week, wip.
    pub metric: &'static str,
}

/// Outcome of a post to an Alertmanager.
#[derive(Debug, Clone, Copy, Hash, PartialEq, Eq)]
pub enum PostResult {
    /// Alertmanager answered 2xx.
    Success,
    /// No answer, or not 2xx: the rows stay queued and the Alertmanager backs off.
    Error,
}

impl PostResult {
    /// The label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            PostResult::Success => "success",
            PostResult::Error => "error",
        }
    }
}

/// Labels of `flowmeter_alertmanager_posts_total`.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PostLabels {
    /// success or error.
    pub result: &'static str,
}

/// Metrics of the worker process.
#[derive(Debug)]
pub struct WorkerMetrics {
    /// `flowmeter_fold_events_total`.
    pub fold_events: Counter,
    /// `flowmeter_fold_runs_total{mode,status}`.
    pub fold_runs: Family<RunLabels, Counter>,
    /// `flowmeter_fold_run_duration_seconds`.
    pub fold_run_duration: Histogram,
    /// `flowmeter_fold_lag_events`: events appended but not yet folded, over all projects.
    pub fold_lag: Gauge,
    /// `flowmeter_fold_last_success_timestamp_seconds`.
    pub last_success: Gauge<f64, std::sync::atomic::AtomicU64>,
    /// `flowmeter_jobs_running`.
    pub jobs_running: Gauge,
    /// `flowmeter_jobs_submitted_total`: leases claimed.
    pub jobs_submitted: Counter,
    /// `flowmeter_jobs_completed_total`.
    pub jobs_completed: Counter,
    /// `flowmeter_jobs_failed_total`.
    pub jobs_failed: Counter,
    /// `flowmeter_jobs_recovered_total`: leases reclaimed from a worker that never released them.
    pub jobs_recovered: Counter,
    /// `flowmeter_events_quarantined_total`.
    pub quarantined: Counter,
    /// `flowmeter_projects_stalled`.
    pub projects_stalled: Gauge,
    /// `flowmeter_db_pool_connections{state}` of the worker's pool.
    pub pool_connections: Family<PoolLabels, Gauge>,
    /// `flowmeter_alerts_firing{severity}`: open alerts over every project.
    pub alerts_firing: Family<SeverityLabels, Gauge>,
    /// `flowmeter_alerts_fired_total{severity,alert_type}`: alerts opened.
    pub alerts_fired: Family<FiredLabels, Counter>,
    /// `flowmeter_project_metric{project,metric}`: business gauges of the top projects.
    pub project_metric: Family<ProjectMetricLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    /// `flowmeter_alertmanager_posts_total{result}`: posts of alerts to Alertmanagers.
    pub alertmanager_posts: Family<PostLabels, Counter>,
    /// `flowmeter_alertmanager_queue_depth`: outbox rows not yet delivered, over every
    /// Alertmanager.
    pub alertmanager_queue_depth: Gauge,
}

impl WorkerMetrics {
    /// Creates and registers every metric.
    pub fn register(registry: &mut Registry) -> Self {
        let m = Self {
            fold_events: Counter::default(),
            fold_runs: Family::default(),
            fold_run_duration: Histogram::new([
                0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
            ]),
            fold_lag: Gauge::default(),
            last_success: Gauge::default(),
            jobs_running: Gauge::default(),
            jobs_submitted: Counter::default(),
            jobs_completed: Counter::default(),
            jobs_failed: Counter::default(),
            jobs_recovered: Counter::default(),
            quarantined: Counter::default(),
            projects_stalled: Gauge::default(),
            pool_connections: Family::default(),
            alerts_firing: Family::default(),
            alerts_fired: Family::default(),
            project_metric: Family::default(),
            alertmanager_posts: Family::default(),
            alertmanager_queue_depth: Gauge::default(),
        };
        registry.register(
            "flowmeter_fold_events",
            "Events folded",
            m.fold_events.clone(),
        );
        registry.register(
            "flowmeter_fold_runs",
            "Fold runs by mode and status",
            m.fold_runs.clone(),
        );
        registry.register(
            "flowmeter_fold_run_duration_seconds",
            "Duration of fold runs",
            m.fold_run_duration.clone(),
        );
        registry.register(
            "flowmeter_fold_lag_events",
            "Events appended but not yet folded",
            m.fold_lag.clone(),
        );
        registry.register(
            "flowmeter_fold_last_success_timestamp_seconds",
            "Unix time of the last successful fold run",
            m.last_success.clone(),
        );
        registry.register(
            "flowmeter_jobs_running",
            "Fold runs in progress",
            m.jobs_running.clone(),
        );
        registry.register(
            "flowmeter_jobs_submitted",
            "Project leases claimed",
            m.jobs_submitted.clone(),
        );
        registry.register(
            "flowmeter_jobs_completed",
            "Fold runs completed",
            m.jobs_completed.clone(),
        );
        registry.register(
            "flowmeter_jobs_failed",
            "Fold runs failed",
            m.jobs_failed.clone(),
        );
        registry.register(
            "flowmeter_jobs_recovered",
            "Leases reclaimed from a worker that stopped without releasing them",
            m.jobs_recovered.clone(),
        );
        registry.register(
            "flowmeter_events_quarantined",
            "Poison events set aside",
            m.quarantined.clone(),
        );
        registry.register(
            "flowmeter_projects_stalled",
            "Projects stalled after repeated failures",
            m.projects_stalled.clone(),
        );
        registry.register(
            "flowmeter_db_pool_connections",
            "Database pool connections by state",
            m.pool_connections.clone(),
        );
        registry.register(
            "flowmeter_alerts_firing",
            "Alerts currently firing, by severity",
            m.alerts_firing.clone(),
        );
        registry.register(
            "flowmeter_alerts_fired",
            "Alerts opened, by severity and type",
            m.alerts_fired.clone(),
        );
        registry.register(
            "flowmeter_project_metric",
            "Delivery metrics of the most active projects (the rest under project=\"other\")",
            m.project_metric.clone(),
        );
        registry.register(
            "flowmeter_alertmanager_posts",
            "Posts of alerts to Alertmanagers, by result",
            m.alertmanager_posts.clone(),
        );
        registry.register(
            "flowmeter_alertmanager_queue_depth",
            "Alert notifications not yet delivered to an Alertmanager",
            m.alertmanager_queue_depth.clone(),
        );
        for result in [PostResult::Success, PostResult::Error] {
            m.alertmanager_posts
                .get_or_create(&PostLabels {
                    result: result.as_str(),
                })
                .inc_by(0);
        }
        for severity in Severity::ALL {
            m.alerts_firing
                .get_or_create(&SeverityLabels {
                    severity: severity.as_str().to_owned(),
                })
                .set(0);
            for alert_type in ["threshold", "anomaly"] {
                m.alerts_fired
                    .get_or_create(&FiredLabels {
                        severity: severity.as_str(),
                        alert_type,
                    })
                    .inc_by(0);
            }
        }
        for mode in ["batch", "near_real_time"] {
            for status in ["succeeded", "failed"] {
                m.fold_runs
                    .get_or_create(&RunLabels { mode, status })
                    .inc_by(0);
            }
        }
        m
    }

    /// Counts an alert transition stored by a committed run.
    pub fn alert_transition(&self, transition: &Transition) {
        if transition.kind == "firing" {
            self.alerts_fired
                .get_or_create(&FiredLabels {
                    severity: transition.severity.as_str(),
                    alert_type: transition.alert_type,
                })
                .inc();
        }
    }

    /// Counts a post to an Alertmanager.
    pub fn alertmanager_post(&self, result: PostResult) {
        self.alertmanager_posts
            .get_or_create(&PostLabels {
                result: result.as_str(),
            })
            .inc();
    }

    /// Copies the pool's status into the pool gauge.
    pub fn observe_pool(&self, pool: &deadpool_postgres::Pool) {
        let status = pool.status();
        for (state, value) in [
            ("idle", status.available as i64),
            (
                "in_use",
                status.size.saturating_sub(status.available) as i64,
            ),
            ("max", status.max_size as i64),
            ("waiting", status.waiting as i64),
        ] {
            self.pool_connections
                .get_or_create(&PoolLabels { state })
                .set(value);
        }
    }
}

/// Serves `/metrics` (and `/health`) until the task is dropped.
pub async fn serve_metrics(
    listener: TcpListener,
    registry: Arc<Registry>,
    metrics: Arc<WorkerMetrics>,
    pool: deadpool_postgres::Pool,
) {
    loop {
        let Ok((mut socket, _)) = listener.accept().await else {
            continue;
        };
        let registry = registry.clone();
        let metrics = metrics.clone();
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut request = vec![0u8; 4096];
            let n = match tokio::time::timeout(
                std::time::Duration::from_secs(5),
                socket.read(&mut request),
            )
            .await
            {
                Ok(Ok(n)) => n,
                _ => return,
            };
            let line = String::from_utf8_lossy(&request[..n]);
            let path = line.split_whitespace().nth(1).unwrap_or("/");
            let (status, content_type, body) = match path {
                "/metrics" => {
                    metrics.observe_pool(&pool);
                    let mut text = String::new();
                    match prometheus_client::encoding::text::encode(&mut text, &registry) {
                        Ok(()) => (
                            "200 OK",
                            "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            text,
                        ),
                        Err(_) => (
                            "500 Internal Server Error",
                            "text/plain",
                            "encoding failed\n".into(),
                        ),
                    }
                }
                "/health" => ("200 OK", "application/json", "{\"status\":\"ok\"}".into()),
                _ => ("404 Not Found", "text/plain", "not found\n".into()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nx-api-version: {}\r\nconnection: close\r\n\r\n{body}",
                body.len(),
                flowmeter_shared::API_VERSION
            );
            let _ = socket.write_all(response.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}
