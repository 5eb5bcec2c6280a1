//! Alerts and actions end to end: the real worker evaluates rules after each snapshot, the
//! real API lists and acknowledges, a local receiver takes the webhook notifications.

mod actions;
mod alertmanager;
mod api;
mod boundaries;
mod lifecycle;
mod notifications;

use chrono::{DateTime, Duration, Utc};
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::{worker_json, TEST_NOW};
use flowmeter_tests::TestApp;
use serde_json::{json, Value};
use uuid::Uuid;

/// One alert row as the tests compare it: (metric_key, alert_type, severity, state).
type AlertLine = (String, String, String, String);

/// Runs one fold (with a snapshot, which evaluates the rules) for the project.
fn fold(app: &TestApp, project: Uuid, env: &[(&str, &str)]) -> Value {
    worker_json(
        &app.db.url,
        &["once", "--project", &project.to_string(), "--mode", "batch"],
        env,
    )
}

/// Every alert of a project, oldest first (by snapshot time, then by the seq it fired at:
/// most tests run on a fixed clock).
async fn alerts_of(app: &TestApp, project: Uuid) -> Vec<(Uuid, AlertLine)> {
    let client = app.db.client().await;
    client
        .query(
            "SELECT id, metric_key, alert_type, severity, state FROM metrics_alert a
              WHERE project_id = $1
              ORDER BY created_at,
                       (SELECT as_of_seq FROM metrics_alert_event e
                         WHERE e.project_id = a.project_id AND e.alert_id = a.id AND event_no = 1),
                       id",
            &[&project],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4))))
        .collect()
}

/// The alerts of one metric key.
async fn alerts_for(app: &TestApp, project: Uuid, metric_key: &str) -> Vec<(Uuid, AlertLine)> {
    alerts_of(app, project)
        .await
        .into_iter()
        .filter(|(_, line)| line.0 == metric_key)
        .collect()
}

/// The history of an alert: (kind, severity) in order.
async fn history(app: &TestApp, project: Uuid, alert: Uuid) -> Vec<(String, String)> {
    let client = app.db.client().await;
    client
        .query(
            "SELECT kind, severity FROM metrics_alert_event
              WHERE project_id = $1 AND alert_id = $2 ORDER BY event_no",
            &[&project, &alert],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn line(metric: &str, kind: &str, severity: &str, state: &str) -> AlertLine {
    (metric.into(), kind.into(), severity.into(), state.into())
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect()
}

/// The fixed clock of `fold`.
fn now() -> DateTime<Utc> {
    t(TEST_NOW)
}

/// Keeps a project's count of implemented-not-integrated tasks at a chosen number: tasks
/// `t0, t1, …` are implemented an hour apart (t0 oldest); lowering the count integrates the
/// newest ones.
struct Backlog {
    b: EventBuilder,
    created: usize,
    implemented: Vec<String>,
}

impl Backlog {
    fn new() -> Self {
        Backlog {
            b: EventBuilder::new(),
            created: 0,
            implemented: Vec::new(),
        }
    }

    fn project(&self) -> Uuid {
        self.b.project_id
    }

    /// Events that bring the backlog to `n` tasks.
    fn to(&mut self, n: usize) -> Vec<Value> {
        let mut events = Vec::new();
        let base = now() - Duration::days(10);
        while self.implemented.len() < n {
            let id = format!("t{}", self.created);
            let at = base + Duration::hours(self.created as i64);
            events.push(self.b.task_created(&id, at, json!({"assignee": "ana"})));
            events.push(self.b.transition(&id, "in_progress", at));
            events.push(
                self.b
                    .transition(&id, "implemented", at + Duration::minutes(30)),
            );
            self.implemented.push(id);
            self.created += 1;
        }
        while self.implemented.len() > n {
            let id = self.implemented.pop().unwrap();
            events.push(
                self.b
                    .transition(&id, "integrated", now() - Duration::hours(1)),
            );
        }
        events
    }

    /// Ingests the events for `n` and folds.
    async fn set(&mut self, app: &TestApp, n: usize, env: &[(&str, &str)]) {
        let events = self.to(n);
        if !events.is_empty() {
            app.seed(&events).await;
        }
        fold(app, self.project(), env);
    }
}

/// Writes a rule file for the worker and returns its path.
fn rule_file(name: &str, body: &str) -> String {
    let dir = std::env::temp_dir().join(format!("flowmeter-alert-rules-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}-{}.toml", Uuid::new_v4().simple()));
    std::fs::write(&path, body).unwrap();
    path.to_string_lossy().into_owned()
}
