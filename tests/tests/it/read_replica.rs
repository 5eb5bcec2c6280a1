//! `FLOWMETER_READ_DATABASE_URL` (SPEC §12): metrics reads come from the read database,
//! ingest and acknowledgements go to the primary. A copy of the primary stands in for a
//! replica that stopped replaying, so the two visibly differ.

use flowmeter_tests::app::assert_error;
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::{TestApp, TestAppOptions, TestDb};
use serde_json::{json, Value};
use uuid::Uuid;

fn events(b: &mut EventBuilder, from: usize, to: usize) -> Vec<Value> {
    let at = t("2026-03-18T09:00:00Z");
    (from..to)
        .flat_map(|i| {
            let id = format!("t{i}");
            [
                b.task_created(&id, at, json!({})),
                b.transition(&id, "in_progress", at),
            ]
        })
        .collect()
}

async fn as_of_seq(app: &TestApp, endpoint: &str, project: Uuid) -> Value {
    let response = app
        .get(
            &format!("/v1/metrics/{endpoint}?project_id={project}"),
            None,
        )
        .await;
    assert_eq!(response.status(), 200, "{endpoint}");
    let body: Value = response.json().await.unwrap();
    body["freshness"].clone()
}

async fn log_count(db: &TestDb, project: Uuid) -> i64 {
    db.client()
        .await
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn metrics_reads_come_from_the_read_database_and_writes_go_to_the_primary() {
    let mut b = EventBuilder::new();
    let project = b.project_id;
    let fold = |url: &str| {
        worker_json(url, &["once", "--project", &project.to_string()], &[]);
    };
    let setup = TestApp::spawn().await;
    setup.ingest(&events(&mut b, 0, 5)).await;
    fold(&setup.db.url);
    let primary = setup.shut_down().await;
    let replica = primary.copy().await;

    let app = TestApp::spawn_on(
        primary,
        TestAppOptions::default().env("FLOWMETER_READ_DATABASE_URL", replica.url.clone()),
    )
    .await;
    let seen = as_of_seq(&app, "summary", project).await;
    assert_eq!(seen["as_of_seq"], 10);

    // Ingest lands on the primary, and the primary folds it; the read database does not
    // have it, and every metrics read says so.
    app.ingest(&events(&mut b, 5, 8)).await;
    fold(&app.db.url);
    assert_eq!(log_count(&app.db, project).await, 16);
    assert_eq!(log_count(&replica, project).await, 10);
    for endpoint in ["summary", "health", "actions", "alerts"] {
        let freshness = as_of_seq(&app, endpoint, project).await;
        assert_eq!(
            (&freshness["as_of_seq"], &freshness["log_head_seq"]),
            (&json!(10), &json!(10)),
            "{endpoint} reads the read database"
        );
    }
    let trend: Value = app
        .get(
            &format!("/v1/metrics/trends?project_id={project}&metric=arrivals&start_date=2026-03-18&end_date=2026-03-18"),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        trend["data"][0]["value"],
        json!(5.0),
        "arrivals as the read database has them"
    );
    assert_eq!(app.get("/health/db", None).await.status(), 200);

    // Without the read database, reads fail fast while writes go on.
    let admin = flowmeter_tests::db::connect(&flowmeter_tests::db::admin_url()).await;
    admin
        .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", replica.name))
        .await
        .unwrap();
    assert_error(
        app.get(&format!("/v1/metrics/summary?project_id={project}"), None)
            .await,
        503,
        "service_unavailable",
    )
    .await;
    assert_error(
        app.get("/health/db", None).await,
        503,
        "service_unavailable",
    )
    .await;
    app.ingest(&events(&mut b, 8, 9)).await;
    assert_eq!(log_count(&app.db, project).await, 18);
    let unknown = Uuid::new_v4();
    assert_eq!(
        app.get(&format!("/v1/metrics/summary?project_id={unknown}"), None)
            .await
            .status(),
        503
    );
}
