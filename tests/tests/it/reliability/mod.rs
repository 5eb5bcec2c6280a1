//! Reliability (SPEC §11): the guarantees an operator relies on, each proven against a real
//! PostgreSQL with the real binaries.
//!
//! | guarantee | test |
//! |---|---|
//! | no skip, no double count: 8 writers (some rolling back) and 2 workers | `writers` |
//! | a worker killed mid-batch is replaced, nothing partial | `fold::daemon::a_worker_killed_mid_run_leaves_nothing_partial_and_another_takes_over` |
//! | PostgreSQL restarted under load: quick 503s, the pool recovers, nothing lost | `restart` |
//! | PostgreSQL frozen (SIGSTOP): 503 within the database timeout, recovery, nothing lost | `frozen_db` |
//! | conflicting duplicates, exact numbers, gzip, 415, 408, the envelope everywhere | `hardening` |
//! | limits on the key id whatever its spelling; failed authentication per address | `rate_limits` |
//! | bad input on every route is a documented 4xx, never a 500 (matrix and generated cases) | `bad_input`, `bad_input_github` |
//! | every route × every kind of key | `auth_matrix` |
//! | SIGTERM finishes in-flight requests and the current fold batch | `shutdown` |
//! | a minute of mixed load: no error, flat memory | `load` |

mod auth_matrix;
mod bad_input;
mod bad_input_github;
mod frozen_db;
mod hardening;
mod load;
mod rate_limits;
mod restart;
mod shutdown;
mod writers;

use std::time::{Duration, Instant};

use chrono::Utc;
use flowmeter_tests::events::EventBuilder;
use serde_json::{json, Value};
use uuid::Uuid;

/// Events for `tasks` tasks of a project, each created and moved to in_progress, with event
/// ids unique to `tag`.
fn task_events(project: Uuid, tag: &str, tasks: usize) -> Vec<Value> {
    let mut b = EventBuilder::for_project(project);
    let at = Utc::now() - chrono::Duration::hours(2);
    let mut events = Vec::new();
    for k in 0..tasks {
        let id = format!("{tag}-t{k}");
        events.push(b.task_created(&id, at, json!({})));
        events.push(b.transition(&id, "in_progress", at + chrono::Duration::minutes(1)));
    }
    for event in &mut events {
        let unique = format!("{tag}-{}", event["event_id"].as_str().unwrap());
        event["event_id"] = json!(unique);
    }
    events
}

/// A project folded by the real worker with one firing alert (a backlog of 12), and the id
/// of that alert: every route has something to serve.
pub(crate) async fn folded_project_with_alert(app: &flowmeter_tests::TestApp) -> (Uuid, Uuid) {
    let mut b = EventBuilder::new();
    let at = Utc::now() - chrono::Duration::days(2);
    let mut events = Vec::new();
    for k in 0..12 {
        let id = format!("t{k}");
        events.push(b.task_created(&id, at, json!({"assignee": "ana", "phase_id": "build"})));
        events.push(b.transition(&id, "implemented", at + chrono::Duration::hours(1)));
    }
    app.seed(&events).await;
    let project = b.project_id;
    flowmeter_tests::worker::worker_json(
        &app.db.url,
        &["once", "--project", &project.to_string()],
        &[],
    );
    let alert: Uuid = app
        .db
        .client()
        .await
        .query_one(
            "SELECT id FROM metrics_alert WHERE project_id = $1 AND metric_key = 'ini_backlog'",
            &[&project],
        )
        .await
        .unwrap()
        .get(0);
    (project, alert)
}

/// Every route of the API: method, path and query for a valid request, the role it needs
/// (`None`: no key needed), and a valid body.
struct Route {
    method: reqwest::Method,
    path: String,
    role: Option<flowmeter_shared::auth::Role>,
    body: Option<Value>,
}

fn routes(project: Uuid, alert: Uuid) -> Vec<Route> {
    use flowmeter_shared::auth::Role;
    let get = |path: String, role: Option<Role>| Route {
        method: reqwest::Method::GET,
        path,
        role,
        body: None,
    };
    let p = project;
    vec![
        get("/health".into(), None),
        get("/health/db".into(), None),
        get("/health/all".into(), None),
        get("/metrics".into(), None),
        get(format!("/v1/metrics/summary?project_id={p}"), Some(Role::Viewer)),
        get(
            format!("/v1/metrics/trends?project_id={p}&metric=throughput&start_date=2026-01-01&end_date=2026-12-31"),
            Some(Role::Viewer),
        ),
        get(
            format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=assignee"),
            Some(Role::Viewer),
        ),
        get(format!("/v1/metrics/drilldown?project_id={p}&metric=backlog"), Some(Role::Viewer)),
        get(format!("/v1/metrics/health?project_id={p}"), Some(Role::Viewer)),
        get(format!("/v1/metrics/alerts?project_id={p}"), Some(Role::Viewer)),
        get(format!("/v1/metrics/actions?project_id={p}"), Some(Role::Viewer)),
        get(format!("/v1/projects/{p}"), Some(Role::Viewer)),
        get("/".into(), None),
        Route {
            method: reqwest::Method::POST,
            path: "/v1/events".into(),
            role: Some(Role::Ingest),
            body: Some(Value::Array(vec![{
                // Its own event id: the seeded project's builder ids are taken (a reuse
                // with other content is a conflict).
                let mut event = EventBuilder::for_project(p).task_created(
                    &format!("new-{}", Uuid::new_v4().simple()),
                    Utc::now(),
                    json!({}),
                );
                event["event_id"] = json!(format!("new-{}", Uuid::new_v4().simple()));
                event
            }])),
        },
        Route {
            method: reqwest::Method::POST,
            path: format!("/v1/metrics/alerts/{alert}/acknowledge?project_id={p}"),
            role: Some(Role::Planner),
            body: Some(json!({"reason": "seen"})),
        },
    ]
}
