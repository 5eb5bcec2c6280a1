//! The summary's `metrics` object of SPEC §5, field for field, as serde types. The worker
//! stores it in `metrics_summary.payload`, the API returns it unchanged, and alert rules read
//! numbers out of it, so its shape is the contract. A value that cannot be computed is
//! `null` (never a fake 0); the `reason` fields (present only when set) say why.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::efficiency::Stage;
use super::state::PerState;

/// Machine-readable reasons placed in the `reason` fields.
pub mod reasons {
    /// No task was integrated in the window the value is computed over.
    pub const NO_INTEGRATED_TASKS: &str = "no_integrated_tasks";
    /// Tasks were integrated but none was ever claimed, so no cycle time exists.
    pub const NO_CLAIMED_TASKS: &str = "no_claimed_tasks";
    /// Integrated tasks exist but spent no time in any counted state.
    pub const NO_FLOW_TIME: &str = "no_flow_time";
    /// No integration attempt finished in the window.
    pub const NO_FINISHED_ATTEMPTS: &str = "no_finished_attempts";
    /// Attempts finished but none failed, so there is no recovery time to average.
    pub const NO_FAILED_ATTEMPTS: &str = "no_failed_attempts";
    /// Attempts failed, but none has a recovery to measure (each failed task ended without
    /// a later success).
    pub const NO_RECOVERIES: &str = "no_recoveries";
    /// No task succeeded after a failure in the window.
    pub const NO_RETRIED_SUCCESSES: &str = "no_retried_successes";
    /// No task is in a WIP state.
    pub const NO_WIP_TASKS: &str = "no_wip_tasks";
    /// No task is blocked.
    pub const NO_BLOCKED_TASKS: &str = "no_blocked_tasks";
    /// No task is implemented and waiting for integration.
    pub const NO_BACKLOG_TASKS: &str = "no_backlog_tasks";
    /// No gate decision with a known request time in the window.
    pub const NO_GATE_DECISIONS: &str = "no_gate_decisions";
    /// None of the DPI components could be computed.
    pub const NO_DPI_COMPONENTS: &str = "no_dpi_components";
}

/// The summary's `metrics` object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SummaryMetrics {
    /// DPI, FES, IRS.
    pub north_star: NorthStar,
    /// Flow, WIP, gate and integration figures.
    pub operational: Operational,
    /// Bottlenecks and suggested actions.
    pub actionability: Actionability,
    /// The four DORA keys (SPEC §19); all null in snapshots taken before they existed.
    #[serde(default)]
    pub dora: super::dora::DoraMetrics,
}

/// `metrics.north_star`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct NorthStar {
    /// Delivery predictability index.
    pub delivery_predictability_index: DeliveryPredictabilityIndex,
    /// Flow efficiency score.
    pub flow_efficiency_score: FlowEfficiencyScore,
    /// Integration reliability score.
    pub integration_reliability_score: IntegrationReliabilityScore,
}

/// Direction of DPI against its value 7 d earlier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// More than 5 % (relative) above the earlier value.
    Up,
    /// More than 5 % (relative) below the earlier value.
    Down,
    /// Within ±5 % (relative, inclusive) of the earlier value.
    Stable,
}

/// `north_star.delivery_predictability_index`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DeliveryPredictabilityIndex {
    /// 0–100; `null` when every component is `null`.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Against the value 7 d earlier; `null` when either value is `null`.
    #[schema(required = true)]
    pub trend: Option<Trend>,
    /// Relative change in percent against the value 7 d earlier; `null` when it is
    /// undefined (either value `null`, or the earlier value 0 and the current one not).
    #[schema(required = true)]
    pub change_pct: Option<f64>,
    /// The 0–1 components.
    pub components: DpiComponents,
    /// Why `value` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `delivery_predictability_index.components`, each 0–1 or `null`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DpiComponents {
    /// SR: share of due milestones completed in 90 d that finished within the grace.
    #[schema(required = true)]
    pub schedule_reliability: Option<f64>,
    /// CTS: `clamp(1 − σ/μ)` of cycle times of tasks integrated in 30 d.
    #[schema(required = true)]
    pub cycle_time_stability: Option<f64>,
    /// BRR: share of blocked episodes resolved in 30 d that lasted ≤ 48 h.
    #[schema(required = true)]
    pub blocker_resolution_rate: Option<f64>,
}

/// `north_star.flow_efficiency_score`; all four numbers are 0–100 and `null` together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FlowEfficiencyScore {
    /// `100 × active / (active + waiting + blocked)`.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Active share in percent (equals `value`).
    #[schema(required = true)]
    pub active_time_pct: Option<f64>,
    /// Waiting share in percent.
    #[schema(required = true)]
    pub waiting_time_pct: Option<f64>,
    /// Blocked share in percent.
    #[schema(required = true)]
    pub blocked_time_pct: Option<f64>,
    /// Why the values are `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `north_star.integration_reliability_score`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationReliabilityScore {
    /// 0–100; `null` with no finished attempts in 30 d.
    #[schema(required = true)]
    pub value: Option<f64>,
    /// Successful share of finished attempts, 0–1.
    #[schema(required = true)]
    pub success_rate: Option<f64>,
    /// Mean recovery time in minutes; `null` when nothing failed.
    #[schema(required = true)]
    pub avg_recovery_minutes: Option<f64>,
    /// Why a value is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `metrics.operational`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Operational {
    /// Tasks integrated in the last 7 d.
    pub throughput: Throughput,
    /// Cycle-time percentiles over tasks integrated in 30 d.
    pub cycle_time: DurationPercentiles,
    /// Lead-time percentiles over tasks integrated in 30 d.
    pub lead_time: DurationPercentiles,
    /// Work in progress and its age.
    pub wip: Wip,
    /// Currently blocked tasks.
    pub blocked: Blocked,
    /// Implemented, not yet integrated tasks.
    pub backlog: Backlog,
    /// Review and merge gates.
    pub gates: Gates,
    /// Integration attempts finished in the last 7 d.
    pub integration_outcomes: IntegrationOutcomes,
    /// Tasks per current state.
    pub state_distribution: StateDistribution,
}

/// `operational.throughput`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Throughput {
    /// Tasks whose `integrated_at` is in the last 7 d.
    pub tasks_integrated_week: u64,
    /// The same tasks per milestone, largest count first.
    pub tasks_by_milestone: Vec<MilestoneCount>,
}

/// One `tasks_by_milestone` entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MilestoneCount {
    /// Milestone id; `null` groups the tasks without a milestone.
    #[schema(required = true)]
    pub milestone_id: Option<String>,
    /// Tasks integrated in the window.
    pub count: u64,
}

/// p50/p90/p95 of a duration in minutes (`cycle_time`, `lead_time`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct DurationPercentiles {
    /// Median in minutes.
    #[schema(required = true)]
    pub p50_minutes: Option<f64>,
    /// 90th percentile in minutes.
    #[schema(required = true)]
    pub p90_minutes: Option<f64>,
    /// 95th percentile in minutes.
    #[schema(required = true)]
    pub p95_minutes: Option<f64>,
    /// Why the values are `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `operational.wip`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Wip {
    /// Tasks in a WIP state.
    pub total_count: u64,
    /// Mean age in hours; `null` when there is no WIP.
    #[schema(required = true)]
    pub avg_age_hours: Option<f64>,
    /// Ages by bucket, lower bounds inclusive.
    pub aging_buckets: AgingBuckets,
    /// Why `avg_age_hours` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `wip.aging_buckets`; each bucket includes its lower bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct AgingBuckets {
    /// Age < 24 h.
    pub lt_24h: u64,
    /// 24 h ≤ age < 72 h.
    #[serde(rename = "24h_to_72h")]
    pub from_24h_to_72h: u64,
    /// 72 h ≤ age < 7 d.
    #[serde(rename = "72h_to_7d")]
    pub from_72h_to_7d: u64,
    /// Age ≥ 7 d.
    pub gt_7d: u64,
}

/// `operational.blocked`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Blocked {
    /// Blocked / WIP, 0–1; 0 when there is no WIP.
    pub ratio: f64,
    /// Mean hours since `blocked_since` of blocked tasks; `null` when none is blocked.
    #[schema(required = true)]
    pub avg_blocked_hours: Option<f64>,
    /// Tasks currently blocked.
    pub count: u64,
    /// Why `avg_blocked_hours` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `operational.backlog` (implemented, not integrated).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Backlog {
    /// Tasks currently in `implemented`.
    pub implemented_not_integrated: u64,
    /// Mean hours since `implemented_at`; `null` when there are none.
    #[schema(required = true)]
    pub avg_age_hours: Option<f64>,
    /// Why `avg_age_hours` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `operational.gates`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Gates {
    /// Gates requested and not decided.
    pub queue_length: u64,
    /// Mean request-to-decision minutes over decisions in the last 7 d.
    #[schema(required = true)]
    pub avg_latency_minutes: Option<f64>,
    /// Share of those decisions slower than the gate's SLA, 0–1.
    #[schema(required = true)]
    pub sla_breach_rate: Option<f64>,
    /// Why the latency figures are `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `operational.integration_outcomes` over attempts finished in the last 7 d.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct IntegrationOutcomes {
    /// Successful attempts.
    pub success: u64,
    /// Attempts that hit a conflict.
    pub conflict: u64,
    /// Attempts whose checks failed.
    pub failed_checks: u64,
    /// Aborted attempts.
    pub aborted: u64,
    /// Mean minutes from a task's first failure to its next success, over tasks that had one.
    #[schema(required = true)]
    pub avg_retry_to_success_minutes: Option<f64>,
    /// Why `avg_retry_to_success_minutes` is `null`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// `operational.state_distribution`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StateDistribution {
    /// Tasks per current state, every state present.
    #[schema(schema_with = per_state_counts)]
    pub by_state: PerState<u64>,
    /// Tasks in a WIP state.
    pub wip_count: u64,
}

fn per_state_counts() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    <PerState<u64> as utoipa::PartialSchema>::schema()
}

/// `metrics.actionability`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Actionability {
    /// Share of lead time per stage, largest first, summing to 100.
    pub bottleneck_contribution: Vec<StageContribution>,
    /// Suggested actions (SPEC §6), filled by the action engine.
    pub suggested_actions: Vec<SuggestedAction>,
}

/// One `bottleneck_contribution` entry.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StageContribution {
    /// The stage.
    pub stage: Stage,
    /// Percent of the total time of integrated tasks spent in this stage, 0–100.
    pub delay_contribution_pct: f64,
}

/// Action types of SPEC §6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionType {
    /// Escalate a large integration backlog or low DPI.
    Escalate,
    /// Move gate reviews to another reviewer.
    RerouteReviewer,
    /// Unblock tasks blocked for more than 48 h.
    Unblock,
    /// Swarm WIP tasks older than 7 d.
    Swarm,
}

/// One suggested action (`actionability.suggested_actions[]`, `/v1/metrics/actions`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SuggestedAction {
    /// What to do.
    pub action_type: ActionType,
    /// 0–1, 2 decimals.
    pub confidence: f64,
    /// Task ids, oldest first, at most 10.
    pub affected_tasks: Vec<String>,
    /// A human sentence.
    pub rationale: String,
    /// Metric and alert references, e.g. `metric:ini_backlog:12`.
    pub evidence_refs: Vec<String>,
}
