//! The hot read queries are served by indexes, so their cost does not grow with the event
//! log or the read model: with sequential scans disabled, PostgreSQL can only avoid one when
//! a usable index exists.

use flowmeter_shared::db::read_model::{
    ROW_CONDITIONS, SNAPSHOT_SQL, SUMMARY_LOOKUP_SQL, TREND_DIMENSIONED_SQL, TREND_TOTALS_SQL,
};
use flowmeter_shared::db::read_path::{drilldown_sql, BREAKDOWN_GROUPS_SQL, CONTEXT_SQL};
use flowmeter_tests::events::EventBuilder;
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::TestApp;
use tokio_postgres::types::ToSql;

use crate::fold::varied_stream;

async fn plan(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> String {
    let rows = client
        .query(&format!("EXPLAIN {sql}"), params)
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, String>(0))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A folded project, analysed, and a client that may not scan sequentially: the app (kept
/// alive with its database), the client and the project.
async fn folded_without_seqscan() -> (TestApp, tokio_postgres::Client, uuid::Uuid) {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    app.ingest(&varied_stream(&mut b, 40)).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[],
    );
    let client = app.db.client().await;
    client
        .batch_execute("ANALYZE; SET enable_seqscan = off")
        .await
        .unwrap();
    (app, client, b.project_id)
}

#[tokio::test]
async fn hot_read_queries_use_indexes() {
    let (_app, client, project) = folded_without_seqscan().await;
    let at: Option<chrono::DateTime<chrono::Utc>> = None;
    let from = flowmeter_tests::events::t("2026-02-01T00:00:00Z");
    let to = flowmeter_tests::events::t("2026-03-01T00:00:00Z");
    let drilldown = format!("SELECT task_id FROM metrics_drilldown WHERE {ROW_CONDITIONS} ORDER BY value DESC, task_id DESC LIMIT 50");
    let none: Option<Vec<String>> = None;
    let plans = [
        (
            "snapshot",
            plan(&client, SNAPSHOT_SQL, &[&project, &at]).await,
        ),
        (
            "trend totals",
            plan(
                &client,
                TREND_TOTALS_SQL,
                &[&project, &"throughput", &"day", &from, &to],
            )
            .await,
        ),
        (
            "trend dimensions",
            plan(
                &client,
                TREND_DIMENSIONED_SQL,
                &[&project, &"throughput", &"day", &from, &to],
            )
            .await,
        ),
        (
            "summary lookup",
            plan(
                &client,
                SUMMARY_LOOKUP_SQL,
                &[&project, &at, &"x", &at, &None::<String>],
            )
            .await,
        ),
        (
            "drilldown page",
            plan(
                &client,
                &drilldown,
                &[&project, &"cycle_time", &none, &none, &none, &none, &none],
            )
            .await,
        ),
        (
            "read context",
            plan(&client, CONTEXT_SQL, &[&project, &"health", &"no such key"]).await,
        ),
        (
            "precomputed breakdown",
            plan(
                &client,
                BREAKDOWN_GROUPS_SQL,
                &[&project, &"cycle_time", &"30d", &"assignee", &from],
            )
            .await,
        ),
        (
            "precomputed drill-down page",
            plan(
                &client,
                &drilldown_sql("by_value_desc"),
                &[&project, &"cycle_time", &1_i32, &50_i32, &from],
            )
            .await,
        ),
        (
            "project",
            plan(
                &client,
                "SELECT name FROM project WHERE id = $1",
                &[&project],
            )
            .await,
        ),
        (
            "log head",
            plan(
                &client,
                "SELECT last_seq FROM event_stream_head WHERE project_id = $1",
                &[&project],
            )
            .await,
        ),
        (
            "api key",
            plan(
                &client,
                "SELECT id FROM api_key WHERE key_hash = $1",
                &[&"x"],
            )
            .await,
        ),
    ];
    for (name, plan) in plans {
        assert!(!plan.contains("Seq Scan"), "{name} scans a table:\n{plan}");
        assert!(plan.contains("Index"), "{name} uses no index:\n{plan}");
    }
}

/// `GET /v1/projects` reads each project's count and last event from its log head and one
/// primary-key lookup of the head event, never by counting or scanning the event log.
#[tokio::test]
async fn the_projects_list_reads_the_log_head_not_the_log() {
    let (_app, client, _) = folded_without_seqscan().await;
    let none: Option<String> = None;
    let plan = plan(
        &client,
        flowmeter_api::routes::projects::PROJECTS_SQL,
        &[
            &None::<uuid::Uuid>,
            &none,
            &none,
            &none,
            &None::<uuid::Uuid>,
            &100_i64,
        ],
    )
    .await;
    assert!(!plan.contains("Seq Scan"), "a table is scanned:\n{plan}");
    assert!(!plan.contains("Aggregate"), "something is counted:\n{plan}");
    assert!(
        plan.contains("event_log_pkey"),
        "the head event by its key:\n{plan}"
    );
    assert!(plan.contains("metrics_summary"), "{plan}");
}
