//! Deterministic, realistic demo event streams: what `flowmeter-worker demo-data` loads for a new
//! user, what tests fold, and what the 1M-event fold benchmark replays.
//!
//! Each project is simulated on its own from `(seed, index)`, so callers can stream project by
//! project with one project's events in memory. A project gets phases, milestones (early ones
//! complete, one is past due with work left, the last is due in the future), a small team with
//! skewed load (one reviewer receives most review gates and answers slowly), and tasks that arrive
//! over the period (uniformly plus bursts at milestone starts) and walk the SPEC §2.3 lifecycle:
//! backlog → ready → (reserved) → claimed → in_progress → (blocked, short or > 48 h) → implemented
//! → review gates (some rejected, back to rework) → integration attempts (some conflict or fail
//! checks, then retry) → integrated; a few are cancelled or abandoned. Time stops at `end`, so the
//! final picture holds aging WIP, blocked tasks, pending gates and implemented-not-integrated work.
//! A few tasks of the past-due and current milestones stall on purpose (never unblocked, never
//! reviewed, never merged), which is what drives the `unblock`, `swarm`, `reroute_reviewer` and
//! `escalate` actions. A typical stream carries about 11 events per task.
//!
//! Randomness comes from a local SplitMix64 and durations from a log-logistic distribution that
//! needs only `sqrt`, so the output is byte-identical on every platform for the same options.
//! `rng` holds those; `lifecycle` walks one task; this module plans the project around it.

mod late;
mod lifecycle;
mod rng;

use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

pub use self::late::delay_histories;
use self::rng::{mix64, Rng};

/// Longest period generated; keeps date arithmetic far from chrono's limits.
const MAX_DAYS: u32 = 3660;
const MINUTE: i64 = 60;
const HOUR: i64 = 3600;
/// A wait that never ends inside the period: the task stays where it is until `end`.
const FOREVER: i64 = i64::MAX / 4;

const PROJECT_NAMES: [&str; 16] = [
    "Apollo", "Borealis", "Cassini", "Dorado", "Equinox", "Fennec", "Galileo", "Halcyon", "Io",
    "Juno", "Kepler", "Lumen", "Meridian", "Nimbus", "Orion", "Polaris",
];
const PHASE_NAMES: [&str; 4] = ["Discovery", "Build", "Hardening", "Launch"];
const MILESTONE_NAMES: [&str; 6] = [
    "Foundations",
    "Core flows",
    "Integrations",
    "Reporting",
    "Hardening",
    "General availability",
];
const PEOPLE: [&str; 10] = [
    "ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances", "alan", "radia",
];
const REVIEWERS: [&str; 5] = ["sofia", "tariq", "mei", "olusegun", "hana"];
/// Load skew: the first assignee/reviewer of a team gets the largest share.
const ASSIGNEE_WEIGHTS: [u32; 8] = [5, 4, 3, 3, 2, 2, 1, 1];
const REVIEWER_WEIGHTS: [u32; 4] = [7, 2, 1, 1];

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoOptions {
    /// Number of projects.
    pub projects: u32,
    /// Tasks created in each project over the period.
    pub tasks_per_project: u32,
    /// Length of the period in days, ending at `end` (capped at 3660).
    pub days: u32,
    /// Seed: the same options always give byte-identical streams.
    pub seed: u64,
    /// End of the period; every `occurred_at` lies in `[end − days, end]`.
    pub end: DateTime<Utc>,
}

/// One generated project and its event stream.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoProject {
    /// Deterministic version-4 UUID derived from `(seed, index)`.
    pub project_id: Uuid,
    /// Display name, also carried by the stream's `project_upserted`.
    pub name: String,
    /// Events exactly as `POST /v1/events` takes them, sorted by `occurred_at` (ties keep
    /// causal order), with `event_id`s `demo-1`, `demo-2`, … in that order.
    pub events: Vec<Value>,
}

/// All projects (convenience).
pub fn generate(options: &DemoOptions) -> Vec<DemoProject> {
    (0..options.projects)
        .map(|index| generate_project(options, index))
        .collect()
}

/// One project's stream, generated independently of the others (so callers can stream project by
/// project and keep memory bounded).
pub fn generate_project(options: &DemoOptions, index: u32) -> DemoProject {
    let project_seed = options.seed ^ mix64(u64::from(index).wrapping_add(1));
    let mut id_rng = Rng::new(project_seed);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&id_rng.next_u64().to_le_bytes());
    bytes[8..].copy_from_slice(&id_rng.next_u64().to_le_bytes());
    let project_id = uuid::Builder::from_random_bytes(bytes).into_uuid();
    let name = project_name(index);

    let days = options.days.min(MAX_DAYS);
    let end = options.end;
    let start = end
        .checked_sub_signed(TimeDelta::days(i64::from(days)))
        .unwrap_or(end);
    let mut stream = Stream {
        project_id: project_id.to_string(),
        start,
        span: (end - start).num_seconds(),
        // About 11 events per task; capped so absurd options cannot reserve gigabytes up front.
        drafts: Vec::with_capacity((options.tasks_per_project as usize * 12).min(1 << 22) + 16),
    };
    // A second, independent stream so the id does not shift when the simulation changes.
    let mut rng = Rng::new(mix64(project_seed ^ 0x5DEE_CE66_D1CE_5EED));
    let milestones = plan_project(&mut stream, &mut rng, &name);
    let team = Team::pick(&mut rng);

    let mut arrivals: Vec<i64> = (0..options.tasks_per_project)
        .map(|_| arrival(&mut rng, stream.span, milestones.len()))
        .collect();
    arrivals.sort_unstable();
    let window = (stream.span / milestones.len() as i64).max(1);
    let mut previous_slot = None;
    for (number, created_at) in arrivals.into_iter().enumerate() {
        let slot = usize::try_from(created_at / window)
            .unwrap_or(0)
            .min(milestones.len() - 1);
        let first_in_milestone = previous_slot != Some(slot);
        previous_slot = Some(slot);
        if let Some(milestone) = milestones.get(slot) {
            let task = lifecycle::NewTask {
                number: number + 1,
                created_at,
                first_in_milestone,
            };
            lifecycle::simulate_task(&mut stream, &mut rng, &team, milestone, task);
        }
    }
    DemoProject {
        project_id,
        name,
        events: stream.into_events(),
    }
}

fn project_name(index: u32) -> String {
    let index = index as usize;
    let base = PROJECT_NAMES[index % PROJECT_NAMES.len()];
    match index / PROJECT_NAMES.len() {
        0 => base.to_owned(),
        round => format!("{base} {}", round + 1),
    }
}

/// The events of one project under construction, keyed by their offset from `start`.
struct Stream {
    project_id: String,
    start: DateTime<Utc>,
    /// Seconds from `start` to `end`; no event is placed later.
    span: i64,
    drafts: Vec<(i64, Value)>,
}

impl Stream {
    fn stamp(&self, offset: i64) -> String {
        TimeDelta::try_seconds(offset)
            .and_then(|delta| self.start.checked_add_signed(delta))
            .unwrap_or(self.start)
            .to_rfc3339_opts(SecondsFormat::AutoSi, true)
    }

    /// Builds the event's object directly (`json!` would deep-copy the payload).
    fn push(&mut self, at: i64, entity: (&str, &str), event_type: &str, payload: Value) {
        let mut event = Map::new();
        let mut put = |key: &str, value: String| event.insert(key.to_owned(), Value::String(value));
        put("project_id", self.project_id.clone());
        put("entity_type", entity.0.to_owned());
        put("entity_id", entity.1.to_owned());
        put("event_type", event_type.to_owned());
        put("occurred_at", self.stamp(at));
        event.insert("payload".to_owned(), payload);
        self.drafts.push((at, Value::Object(event)));
    }

    /// Sorts by time (stable, so each entity's causal order survives ties) and numbers the
    /// events in log order.
    fn into_events(self) -> Vec<Value> {
        let mut drafts = self.drafts;
        drafts.sort_by_key(|(at, _)| *at);
        drafts
            .into_iter()
            .enumerate()
            .map(|(n, (_, mut event))| {
                if let Value::Object(fields) = &mut event {
                    fields.insert("event_id".into(), Value::String(format!("demo-{}", n + 1)));
                }
                event
            })
            .collect()
    }
}

/// What the tasks of a milestone need to know about it.
struct Milestone {
    id: String,
    phase_id: String,
    /// Past due and in trouble: more blocking, and some tasks stall for good.
    troubled: bool,
    /// The milestone in flight at `end`: a few tasks stall.
    current: bool,
}

/// Emits the project, its phases and milestones at the start of the period. Milestone `k` covers
/// the `k`-th equal slice of the period and is due a little after it ends, so the next-to-last one
/// is already past due at `end` and the last one is due in the future.
fn plan_project(stream: &mut Stream, rng: &mut Rng, name: &str) -> Vec<Milestone> {
    let project_id = stream.project_id.clone();
    stream.push(
        0,
        ("project", &project_id),
        "project_upserted",
        json!({"name": name, "status": "active"}),
    );
    let phase_count = 2 + rng.below(3) as usize;
    for (n, phase) in PHASE_NAMES.iter().take(phase_count).enumerate() {
        let payload = json!({"name": phase, "sequence": n + 1});
        stream.push(
            0,
            ("phase", &format!("phase-{}", n + 1)),
            "phase_upserted",
            payload,
        );
    }
    let count = 3 + rng.below(4) as usize;
    let window = stream.span / count as i64;
    (0..count)
        .map(|k| {
            let troubled = k + 2 == count;
            let slack_pct = if troubled {
                rng.between(5, 15)
            } else {
                rng.between(15, 50)
            };
            let planned = k as i64 * window;
            let due = planned + window + window * slack_pct / 100;
            let milestone = Milestone {
                id: format!("milestone-{}", k + 1),
                phase_id: format!("phase-{}", k * phase_count / count + 1),
                troubled,
                current: k + 1 == count,
            };
            let payload = json!({
                "name": format!("M{}: {}", k + 1, MILESTONE_NAMES[k % MILESTONE_NAMES.len()]),
                "phase_id": milestone.phase_id,
                "sequence": k + 1,
                "planned_start_at": stream.stamp(planned),
                "due_at": stream.stamp(due),
            });
            stream.push(
                0,
                ("milestone", &milestone.id),
                "milestone_upserted",
                payload,
            );
            milestone
        })
        .collect()
}

/// A task's arrival: mostly uniform, a third in bursts at milestone (sprint) starts.
fn arrival(rng: &mut Rng, span: i64, milestones: usize) -> i64 {
    let at = if rng.chance(0.35) {
        let window = span / milestones as i64;
        let k = rng.below(milestones as u64) as i64;
        let u = rng.unit();
        k * window + (window as f64 * 0.25 * u * u) as i64
    } else {
        (rng.unit() * span as f64) as i64
    };
    at.clamp(0, span)
}

/// Assignees and reviewers of one project.
struct Team {
    assignees: Vec<&'static str>,
    reviewers: Vec<&'static str>,
}

impl Team {
    fn pick(rng: &mut Rng) -> Self {
        let assignees = 4 + rng.below(5) as usize;
        let reviewers = 2 + rng.below(3) as usize;
        let first_person = rng.below(PEOPLE.len() as u64) as usize;
        let first_reviewer = rng.below(REVIEWERS.len() as u64) as usize;
        Self {
            assignees: (0..assignees)
                .map(|i| PEOPLE[(first_person + i) % PEOPLE.len()])
                .collect(),
            reviewers: (0..reviewers)
                .map(|i| REVIEWERS[(first_reviewer + i) % REVIEWERS.len()])
                .collect(),
        }
    }

    fn assignee(&self, rng: &mut Rng) -> &'static str {
        self.assignees[rng.weighted(&ASSIGNEE_WEIGHTS[..self.assignees.len()])]
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeSet, HashMap};

    use flowmeter_shared::events::{validate_event, EntityType, EventType};
    use flowmeter_shared::metrics::TaskState;

    use super::*;

    fn options(tasks_per_project: u32, days: u32, seed: u64) -> DemoOptions {
        DemoOptions {
            projects: 3,
            tasks_per_project,
            days,
            seed,
            end: DateTime::parse_from_rfc3339("2026-03-02T12:00:00Z")
                .unwrap()
                .with_timezone(&Utc),
        }
    }

    fn time(event: &Value, field: &str) -> DateTime<Utc> {
        let text = event[field].as_str().or(event["payload"][field].as_str());
        DateTime::parse_from_rfc3339(text.unwrap())
            .unwrap()
            .with_timezone(&Utc)
    }

    fn text<'v>(event: &'v Value, field: &str) -> &'v str {
        event[field]
            .as_str()
            .or(event["payload"][field].as_str())
            .unwrap()
    }

    /// Each task's state (replayed from its events, checking `from_state` on the way), its
    /// milestone and when it entered that state.
    fn replay(events: &[Value]) -> HashMap<String, (TaskState, String, DateTime<Utc>)> {
        let mut tasks: HashMap<String, (TaskState, String, DateTime<Utc>)> = HashMap::new();
        for event in events {
            let (id, at) = (
                text(event, "entity_id").to_owned(),
                time(event, "occurred_at"),
            );
            match text(event, "event_type") {
                "task_created" => {
                    let milestone = text(event, "milestone_id").to_owned();
                    tasks.insert(id, (TaskState::Backlog, milestone, at));
                }
                "task_state_transitioned" => {
                    let task = tasks.get_mut(&id).unwrap();
                    assert_eq!(text(event, "from_state"), task.0.as_str(), "{event}");
                    task.0 = text(event, "to_state").parse().unwrap();
                    task.2 = at;
                }
                _ => {}
            }
        }
        tasks
    }

    #[test]
    fn every_generated_event_passes_ingest_validation() {
        for project in generate(&options(150, 30, 7)) {
            assert!(!project.events.is_empty());
            for (index, event) in project.events.iter().enumerate() {
                let valid = validate_event(index, event).unwrap();
                assert_eq!(valid.project_id, project.project_id);
            }
            assert_eq!(project.events[0]["payload"]["name"], project.name.as_str());
        }
    }

    #[test]
    fn same_seed_gives_identical_bytes_and_another_seed_differs() {
        let first = serde_json::to_string(&generate(&options(80, 20, 42))[1].events).unwrap();
        let again = serde_json::to_string(&generate(&options(80, 20, 42))[1].events).unwrap();
        let other = serde_json::to_string(&generate(&options(80, 20, 43))[1].events).unwrap();
        assert_eq!(first, again);
        assert_ne!(first, other);
        let ids: BTreeSet<Uuid> = generate(&options(1, 1, 42))
            .iter()
            .chain(&generate(&options(1, 1, 43)))
            .map(|p| p.project_id)
            .collect();
        assert_eq!(ids.len(), 6);
        assert!(ids.iter().all(|id| id.get_version_num() == 4));
    }

    #[test]
    fn events_are_time_ordered_uniquely_named_and_inside_the_period() {
        let options = options(200, 30, 11);
        let start = options.end - TimeDelta::days(30);
        for project in generate(&options) {
            let mut ids = BTreeSet::new();
            let mut previous = start;
            for event in &project.events {
                let at = time(event, "occurred_at");
                assert!(at >= previous && at <= options.end, "{event}");
                previous = at;
                assert!(ids.insert(text(event, "event_id").to_owned()));
            }
            // The replay asserts every transition starts from the simulated state.
            replay(&project.events);
        }
    }

    #[test]
    fn the_mix_exercises_every_metric_and_action() {
        let options = options(200, 30, 5);
        let end = options.end;
        let mut event_types = BTreeSet::new();
        let (mut events, mut tasks) = (0usize, 0usize);
        let (mut long_open_blocks, mut rejections, mut recovered_conflicts) = (0, 0, 0);
        let mut late_unfinished_milestones = 0;
        for project in generate(&options) {
            events += project.events.len();
            tasks += options.tasks_per_project as usize;
            let replayed = replay(&project.events);
            long_open_blocks += replayed
                .values()
                .filter(|(state, _, since)| {
                    *state == TaskState::Blocked && end - *since > TimeDelta::hours(48)
                })
                .count();
            let mut gates_by_reviewer: HashMap<&str, usize> = HashMap::new();
            let mut conflicted = BTreeSet::new();
            for event in &project.events {
                event_types.insert(text(event, "event_type").to_owned());
                match (
                    text(event, "event_type"),
                    event["payload"]["outcome"].as_str(),
                ) {
                    ("gate_decision_recorded", Some("rejected")) => rejections += 1,
                    ("gate_requested", _) => {
                        *gates_by_reviewer
                            .entry(text(event, "reviewer"))
                            .or_default() += 1
                    }
                    ("integration_attempt_finished", _) => {
                        let task = text(event, "task_id");
                        match text(event, "result") {
                            "conflict" => {
                                conflicted.insert(task);
                            }
                            "success" if conflicted.contains(task) => recovered_conflicts += 1,
                            _ => {}
                        }
                    }
                    ("milestone_upserted", _) if time(event, "due_at") < end => {
                        let milestone = text(event, "entity_id");
                        if replayed
                            .values()
                            .any(|(state, m, _)| m == milestone && !state.is_terminal())
                        {
                            late_unfinished_milestones += 1;
                        }
                    }
                    _ => {}
                }
            }
            let mut load: Vec<usize> = gates_by_reviewer.into_values().collect();
            load.sort_unstable_by(|a, b| b.cmp(a));
            assert!(load[0] > 2 * load[1], "reviewer load not skewed: {load:?}");
        }
        // Every task-flow event type; the demo has no deployments or incidents.
        let all: BTreeSet<String> = EventType::ALL
            .iter()
            .filter(|t| {
                !matches!(
                    t.entity_type(),
                    EntityType::Change | EntityType::Deployment | EntityType::Incident
                )
            })
            .map(|t| t.as_str().into())
            .collect();
        assert_eq!(event_types, all);
        assert!(
            long_open_blocks > 0,
            "no blocked episode > 48 h open at the end"
        );
        assert!(rejections > 0 && recovered_conflicts > 0);
        assert!(late_unfinished_milestones > 0);
        let per_task = events as f64 / tasks as f64;
        println!("{events} events, {per_task:.2} per task");
        assert!(
            (8.0..=16.0).contains(&per_task),
            "{per_task} events per task"
        );
    }

    #[test]
    fn degenerate_periods_still_give_valid_streams() {
        let mut degenerate = options(5, 0, 1);
        for project in generate(&degenerate) {
            // A zero-day period leaves room for the creations only, all at `end`.
            assert_eq!(project.events.len(), project.events.len().min(20));
            for (index, event) in project.events.iter().enumerate() {
                validate_event(index, event).unwrap();
                assert_eq!(time(event, "occurred_at"), degenerate.end);
            }
        }
        degenerate.days = u32::MAX;
        let project = generate_project(&degenerate, 0);
        let first = time(&project.events[0], "occurred_at");
        assert_eq!(first, degenerate.end - TimeDelta::days(i64::from(MAX_DAYS)));
    }

    /// `cargo test --release -p flowmeter-worker --lib demo -- --ignored --nocapture`
    #[test]
    #[ignore = "timing run for the 1M-event benchmark stream"]
    fn a_million_events_generate_in_seconds() {
        let options = DemoOptions {
            projects: 10,
            tasks_per_project: 9_000,
            days: 90,
            ..options(0, 0, 1)
        };
        let started = std::time::Instant::now();
        let (mut events, mut largest) = (0, 0);
        let mut freeing = std::time::Duration::ZERO;
        for index in 0..options.projects {
            let project = generate_project(&options, index);
            events += project.events.len();
            largest = largest.max(project.events.len());
            let dropped_at = std::time::Instant::now();
            drop(project);
            freeing += dropped_at.elapsed();
        }
        let elapsed = started.elapsed();
        let per_task = events as f64 / f64::from(options.projects * options.tasks_per_project);
        println!(
            "{events} events ({per_task:.2} per task, largest project {largest}) in {elapsed:?}, \
             of which {freeing:?} freeing them"
        );
        assert!(events >= 950_000);
    }
}
