//! The four DORA keys (SPEC §19) over changes, deployments and incidents.
//!
//! Facts are kept per entity, and each event's part of an entity is a slot that only an
//! event later in canonical order `(occurred_at, seq)` replaces. Merging is therefore
//! commutative and idempotent: any arrival order, a replay, or a duplicate leaves the same
//! facts, and every value below is computed from those facts and one instant `now`.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::stats::{percentile_cont, round_duration, round_ratio, round_to};

/// Days of the rolling DORA window.
pub const WINDOW_DAYS: i64 = 30;

/// Environments counted as production when `FLOWMETER_PRODUCTION_ENVIRONMENTS` is unset.
pub const DEFAULT_PRODUCTION_ENVIRONMENTS: [&str; 2] = ["production", "prod"];

/// How a deployment ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeploymentStatus {
    /// Deployed and serving.
    Success,
    /// The deployment failed.
    Failure,
    /// Stopped before it finished; left out of every DORA key.
    Cancelled,
}

impl DeploymentStatus {
    /// Every status, in catalogue order.
    pub const ALL: [DeploymentStatus; 3] = [Self::Success, Self::Failure, Self::Cancelled];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
            Self::Cancelled => "cancelled",
        }
    }
}

impl std::str::FromStr for DeploymentStatus {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, String> {
        Self::ALL
            .into_iter()
            .find(|s| s.as_str() == value)
            .ok_or_else(|| format!("unknown deployment status {value:?}"))
    }
}

/// Where an event stands in canonical order.
pub type Stamp = (DateTime<Utc>, i64);

/// Puts `new` into `slot` unless the slot holds an event later in canonical order.
pub fn keep_latest<T>(slot: &mut Option<T>, new: T, stamp: impl Fn(&T) -> Stamp) {
    if slot.as_ref().is_none_or(|old| stamp(old) <= stamp(&new)) {
        *slot = Some(new);
    }
}

/// A change (`change_committed`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeFacts {
    /// Commit time (the event's `occurred_at`).
    pub committed_at: DateTime<Utc>,
    /// The event's seq (canonical order among events of the same instant).
    pub seq: i64,
    /// The task it belongs to.
    pub task_id: Option<String>,
    /// Who made it.
    pub author: Option<String>,
    /// The service it is for.
    pub service: Option<String>,
}

/// One `deployment_started` or `deployment_finished` event of a deployment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentEvent {
    /// The event's `occurred_at`.
    pub at: DateTime<Utc>,
    /// The event's seq.
    pub seq: i64,
    /// Target environment.
    pub environment: String,
    /// Service deployed.
    pub service: Option<String>,
    /// Version deployed.
    pub version: Option<String>,
    /// Outcome (finished events only).
    pub status: Option<DeploymentStatus>,
    /// Changes contained.
    pub change_ids: Vec<String>,
    /// Tasks delivered.
    pub task_ids: Vec<String>,
}

/// A deployment: its latest start and latest finish.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeploymentFacts {
    /// The latest `deployment_started`.
    pub started: Option<DeploymentEvent>,
    /// The latest `deployment_finished`; its time is the deployment's time.
    pub finished: Option<DeploymentEvent>,
}

impl DeploymentFacts {
    /// The finish's environment, else the start's.
    pub fn environment(&self) -> Option<&str> {
        self.finished
            .as_ref()
            .or(self.started.as_ref())
            .map(|e| e.environment.as_str())
    }

    /// The finish's service, else the start's.
    pub fn service(&self) -> Option<&str> {
        let finished = self.finished.as_ref().and_then(|e| e.service.as_deref());
        finished.or_else(|| self.started.as_ref().and_then(|e| e.service.as_deref()))
    }

    /// Finish time and status, when finished.
    pub fn outcome(&self) -> Option<(DateTime<Utc>, DeploymentStatus)> {
        let finished = self.finished.as_ref()?;
        Some((finished.at, finished.status?))
    }

    /// The changes the start or the finish names (a change named by both comes twice).
    pub fn change_ids(&self) -> impl Iterator<Item = &String> {
        [&self.started, &self.finished]
            .into_iter()
            .flatten()
            .flat_map(|e| &e.change_ids)
    }
}

/// One `incident_opened` or `incident_resolved` event of an incident.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentEvent {
    /// The event's `occurred_at`.
    pub at: DateTime<Utc>,
    /// The event's seq.
    pub seq: i64,
    /// Severity in the producer's terms.
    pub severity: Option<String>,
    /// Service affected.
    pub service: Option<String>,
    /// The deployment that caused it.
    pub caused_by_deployment_id: Option<String>,
}

/// An incident: its latest opening and latest resolution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IncidentFacts {
    /// The latest `incident_opened`.
    pub opened: Option<IncidentEvent>,
    /// The latest `incident_resolved`.
    pub resolved: Option<IncidentEvent>,
}

impl IncidentFacts {
    /// The deployments the incident names (opening and resolution may each name one).
    pub fn causes(&self) -> impl Iterator<Item = &str> {
        [&self.opened, &self.resolved]
            .into_iter()
            .flatten()
            .filter_map(|e| e.caused_by_deployment_id.as_deref())
    }

    /// The resolution's service, else the opening's.
    pub fn service(&self) -> Option<&str> {
        let resolved = self.resolved.as_ref().and_then(|e| e.service.as_deref());
        resolved.or_else(|| self.opened.as_ref().and_then(|e| e.service.as_deref()))
    }

    /// Opened and resolution times, when both are known (the duration never negative).
    pub fn restore(&self) -> Option<(DateTime<Utc>, f64)> {
        let (opened, resolved) = (self.opened.as_ref()?, self.resolved.as_ref()?);
        Some((resolved.at, minutes_between(opened.at, resolved.at)))
    }
}

/// A project's changes, deployments and incidents by entity id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoraFacts {
    /// Changes.
    pub changes: BTreeMap<String, ChangeFacts>,
    /// Deployments.
    pub deployments: BTreeMap<String, DeploymentFacts>,
    /// Incidents.
    pub incidents: BTreeMap<String, IncidentFacts>,
}

/// A DORA performance level (State of DevOps report bands, see docs/DORA.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PerformanceLevel {
    /// Elite performers.
    Elite,
    /// High performers.
    High,
    /// Medium performers.
    Medium,
    /// Low performers.
    Low,
}

/// `dora.deployment_frequency`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeploymentFrequency {
    /// Successful production deployments per day over the window.
    pub per_day: Option<f64>,
    /// Successful production deployments in the window.
    pub count_30d: Option<i64>,
    /// Level of `per_day`.
    pub performance_level: Option<PerformanceLevel>,
}

/// `dora.lead_time_for_changes`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LeadTimeForChanges {
    /// Median commit → first successful production deployment, in minutes.
    pub p50_minutes: Option<f64>,
    /// 90th percentile, in minutes.
    pub p90_minutes: Option<f64>,
    /// Changes whose first successful production deployment lies in the window.
    pub sample_size: i64,
    /// Level of `p50_minutes`.
    pub performance_level: Option<PerformanceLevel>,
}

/// `dora.change_failure_rate`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ChangeFailureRate {
    /// Failed deployments / finished production deployments (0–1).
    pub rate: Option<f64>,
    /// Failed production deployments plus successful ones an incident names.
    pub failures: i64,
    /// Finished production deployments (success or failure) in the window.
    pub deployments: i64,
    /// Level of `rate`.
    pub performance_level: Option<PerformanceLevel>,
}

/// `dora.time_to_restore`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TimeToRestore {
    /// Median incident opened → resolved, in minutes.
    pub p50_minutes: Option<f64>,
    /// Incidents resolved in the window (with a known opening).
    pub sample_size: i64,
    /// Level of `p50_minutes`.
    pub performance_level: Option<PerformanceLevel>,
}

/// The summary's `metrics.dora` object.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DoraMetrics {
    /// How often production is deployed successfully.
    pub deployment_frequency: DeploymentFrequency,
    /// Commit to production.
    pub lead_time_for_changes: LeadTimeForChanges,
    /// Share of production deployments that failed or caused an incident.
    pub change_failure_rate: ChangeFailureRate,
    /// Incident duration.
    pub time_to_restore: TimeToRestore,
}

/// The facts of a project reduced to what the windows read, in one pass over each kind of
/// entity: every finished production deployment (cancelled ones left out) with whether an
/// incident names it, every change's lead time at its first successful production
/// deployment, and every incident's restore time. Windows then filter these lists by time,
/// so a trend of many buckets reads the facts once.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Prepared {
    /// (finish time, status, named by an incident).
    deployments: Vec<(DateTime<Utc>, DeploymentStatus, bool)>,
    /// (first successful production deployment, lead time in minutes).
    leads: Vec<(DateTime<Utc>, f64)>,
    /// (resolution time, restore time in minutes).
    restores: Vec<(DateTime<Utc>, f64)>,
}

fn minutes_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).num_microseconds().unwrap_or(0).max(0) as f64 / 60_000_000.0
}

impl Prepared {
    /// Reduces the facts for the `production` environments.
    pub fn new(facts: &DoraFacts, production: &[String]) -> Self {
        let named: std::collections::HashSet<&str> = facts
            .incidents
            .values()
            .flat_map(IncidentFacts::causes)
            .collect();
        let mut first_success: std::collections::HashMap<&str, DateTime<Utc>> =
            std::collections::HashMap::new();
        let mut deployments = Vec::new();
        for (id, d) in &facts.deployments {
            let Some((at, status)) = d.outcome() else {
                continue;
            };
            let prod = d
                .environment()
                .is_some_and(|e| production.iter().any(|p| p == e));
            if !prod || status == DeploymentStatus::Cancelled {
                continue;
            }
            deployments.push((at, status, named.contains(id.as_str())));
            if status == DeploymentStatus::Success {
                for change in d.change_ids() {
                    let first = first_success.entry(change.as_str()).or_insert(at);
                    *first = (*first).min(at);
                }
            }
        }
        let leads = facts
            .changes
            .iter()
            .filter_map(|(id, change)| {
                let first = *first_success.get(id.as_str())?;
                Some((first, minutes_between(change.committed_at, first)))
            })
            .collect();
        let restores = facts
            .incidents
            .values()
            .filter_map(IncidentFacts::restore)
            .collect();
        Prepared {
            deployments,
            leads,
            restores,
        }
    }

    /// The window `[from, to)`.
    pub fn window(&self, from: DateTime<Utc>, to: DateTime<Utc>) -> Window {
        let within = |at: &DateTime<Utc>| *at >= from && *at < to;
        let finished: Vec<_> = self
            .deployments
            .iter()
            .filter(|(at, _, _)| within(at))
            .collect();
        Window {
            successes: finished
                .iter()
                .filter(|(_, status, _)| *status == DeploymentStatus::Success)
                .count() as i64,
            lead_minutes: self
                .leads
                .iter()
                .filter(|(at, _)| within(at))
                .map(|(_, minutes)| *minutes)
                .collect(),
            finished: finished.len() as i64,
            failures: finished
                .iter()
                .filter(|(_, status, named)| *status == DeploymentStatus::Failure || *named)
                .count() as i64,
            restore_minutes: self
                .restores
                .iter()
                .filter(|(at, _)| within(at))
                .map(|(_, minutes)| *minutes)
                .collect(),
        }
    }
}

/// What one window `[from, to)` holds: the raw inputs of the four keys.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Window {
    /// Successful production deployments.
    pub successes: i64,
    /// Lead times in minutes of the changes first deployed (successfully, to production).
    pub lead_minutes: Vec<f64>,
    /// Finished production deployments, success or failure.
    pub finished: i64,
    /// Of those, failed or named by an incident.
    pub failures: i64,
    /// Restore times in minutes of the incidents resolved.
    pub restore_minutes: Vec<f64>,
}

impl Window {
    /// Gathers a window's inputs from the facts (one window; a series uses [`Prepared`]).
    pub fn of(
        facts: &DoraFacts,
        production: &[String],
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Self {
        Prepared::new(facts, production).window(from, to)
    }

    /// The change failure rate (unrounded); `None` without finished deployments.
    pub fn failure_rate(&self) -> Option<f64> {
        (self.finished > 0).then(|| self.failures as f64 / self.finished as f64)
    }
}

/// The four keys over production deployments (`production` environments), for the window
/// `[now − 30 d, now)`.
pub fn compute_dora(facts: &DoraFacts, now: DateTime<Utc>, production: &[String]) -> DoraMetrics {
    let window = Window::of(facts, production, now - Duration::days(WINDOW_DAYS), now);
    let mut out = DoraMetrics::default();
    let has_production = facts.deployments.values().any(|d| {
        d.environment()
            .is_some_and(|e| production.iter().any(|p| p == e))
    });
    if has_production {
        let per_day = window.successes as f64 / WINDOW_DAYS as f64;
        out.deployment_frequency = DeploymentFrequency {
            per_day: Some(round_to(per_day, 4)),
            count_30d: Some(window.successes),
            performance_level: Some(levels::deployment_frequency(per_day)),
        };
    }
    let p50 = percentile_cont(&window.lead_minutes, 0.5);
    out.lead_time_for_changes = LeadTimeForChanges {
        p50_minutes: p50.map(round_duration),
        p90_minutes: percentile_cont(&window.lead_minutes, 0.9).map(round_duration),
        sample_size: window.lead_minutes.len() as i64,
        performance_level: p50.map(levels::lead_time),
    };
    let rate = window.failure_rate();
    out.change_failure_rate = ChangeFailureRate {
        rate: rate.map(round_ratio),
        failures: window.failures,
        deployments: window.finished,
        performance_level: rate.map(levels::change_failure_rate),
    };
    let p50 = percentile_cont(&window.restore_minutes, 0.5);
    out.time_to_restore = TimeToRestore {
        p50_minutes: p50.map(round_duration),
        sample_size: window.restore_minutes.len() as i64,
        performance_level: p50.map(levels::time_to_restore),
    };
    out
}

/// Trend metrics of the DORA keys (`GET /v1/metrics/trends`), each computed per bucket.
pub const TREND_METRICS: [&str; 4] = [
    "deployments",
    "lead_time_for_changes",
    "change_failure_rate",
    "time_to_restore",
];

/// One trend bucket `[from, to)` of a DORA trend metric: the value (successful production
/// deployments; p50 lead time or time to restore in minutes; the change failure rate) and
/// its sample size. `None` for a metric that is not one of [`TREND_METRICS`].
pub fn trend_value(
    prepared: &Prepared,
    metric: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Option<(Option<f64>, i64)> {
    super::dora_breakdown::value_of(metric, &prepared.window(from, to))
}

/// The performance bands of docs/DORA.md. Each band includes its better bound.
pub mod levels {
    use super::PerformanceLevel::{self, Elite, High, Low, Medium};

    /// Minutes in a day.
    const DAY: f64 = 1440.0;

    /// Elite: at least daily (on demand); high: at least weekly; medium: at least monthly.
    pub fn deployment_frequency(per_day: f64) -> PerformanceLevel {
        if per_day >= 1.0 {
            Elite
        } else if per_day >= 1.0 / 7.0 {
            High
        } else if per_day >= 1.0 / 30.0 {
            Medium
        } else {
            Low
        }
    }

    /// Elite: under an hour; high: up to a week; medium: up to six months (180 days).
    pub fn lead_time(p50_minutes: f64) -> PerformanceLevel {
        if p50_minutes < 60.0 {
            Elite
        } else if p50_minutes <= 7.0 * DAY {
            High
        } else if p50_minutes <= 180.0 * DAY {
            Medium
        } else {
            Low
        }
    }

    /// Elite: up to 15 %; high: up to 30 %; medium: up to 45 %.
    pub fn change_failure_rate(rate: f64) -> PerformanceLevel {
        if rate <= 0.15 {
            Elite
        } else if rate <= 0.30 {
            High
        } else if rate <= 0.45 {
            Medium
        } else {
            Low
        }
    }

    /// Elite: under an hour; high: under a day; medium: up to a week.
    pub fn time_to_restore(p50_minutes: f64) -> PerformanceLevel {
        if p50_minutes < 60.0 {
            Elite
        } else if p50_minutes < DAY {
            High
        } else if p50_minutes <= 7.0 * DAY {
            Medium
        } else {
            Low
        }
    }
}

#[cfg(test)]
#[path = "dora_tests.rs"]
mod tests;
