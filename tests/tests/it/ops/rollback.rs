//! scripts/rollback_metrics.sh on its own: idempotent, a dry run that changes nothing, a prompt,
//! objects of later metrics migrations found by name, all or nothing on failure.

use flowmeter_tests::TestDb;

use super::rehearsal::{kept_data, metrics_leftovers};
use super::*;

/// The public schema's catalog (every relation, type, routine, trigger and constraint) and
/// the row count of every table, as one comparable JSON value.
async fn catalog_and_rows(client: &tokio_postgres::Client) -> Value {
    let text: String = client
        .query_one(
            "SELECT jsonb_build_object(
                 'relations', (SELECT jsonb_agg(relname || ':' || relkind::text ORDER BY relname) FROM pg_class
                                WHERE relnamespace = 'public'::regnamespace),
                 'types', (SELECT jsonb_agg(typname ORDER BY typname) FROM pg_type
                            WHERE typnamespace = 'public'::regnamespace),
                 'routines', (SELECT jsonb_agg(proname ORDER BY proname) FROM pg_proc
                               WHERE pronamespace = 'public'::regnamespace),
                 'triggers', (SELECT jsonb_agg(tgname ORDER BY tgname) FROM pg_trigger
                               WHERE NOT tgisinternal),
                 'constraints', (SELECT jsonb_agg(conname ORDER BY conname) FROM pg_constraint
                                  WHERE connamespace = 'public'::regnamespace),
                 'migrations', (SELECT jsonb_agg(version ORDER BY version) FROM schema_migrations))::text",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let mut snapshot: Value = serde_json::from_str(&text).unwrap();
    let tables: Vec<String> = client
        .query(
            "SELECT relname::text FROM pg_class
              WHERE relnamespace = 'public'::regnamespace AND relkind = 'r' ORDER BY relname",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for table in tables {
        let count: i64 = client
            .query_one(&format!("SELECT count(*) FROM \"{table}\""), &[])
            .await
            .unwrap()
            .get(0);
        snapshot["rows"][table] = count.into();
    }
    snapshot
}

/// A migrated database with two demo projects folded by the real worker.
async fn folded_database() -> (TestDb, tokio_postgres::Client) {
    let db = TestDb::migrated().await;
    load_demo(&db.url, 2, 20);
    let mut worker = fold_everything(&db.url).await;
    worker.terminate();
    let _ = worker.child.wait();
    let client = db.client().await;
    (db, client)
}

fn rollback(db: &TestDb, args: &[&str]) -> Output {
    run_script(
        "rollback_metrics.sh",
        args,
        &[("FLOWMETER_DATABASE_URL", &db.url)],
    )
}

#[tokio::test]
async fn rolling_back_twice_is_harmless() {
    let (db, client) = folded_database().await;
    let kept = kept_data(&client).await;

    let first = rollback(&db, &["--confirm"]);
    assert!(first.status.success(), "{}", output_text(&first));
    assert!(String::from_utf8_lossy(&first.stdout).contains("DROP TABLE"));
    let after_first = catalog_and_rows(&client).await;

    let second = rollback(&db, &["--confirm"]);
    assert!(second.status.success(), "{}", output_text(&second));
    let text = String::from_utf8_lossy(&second.stdout);
    assert!(
        text.contains("0 statement(s) to drop metrics objects, 0 schema_migrations row(s)"),
        "{text}"
    );
    assert_eq!(catalog_and_rows(&client).await, after_first);
    assert_eq!(metrics_leftovers(&client).await, Vec::<String>::new());
    assert_eq!(kept_data(&client).await, kept);
}

#[tokio::test]
async fn a_dry_run_lists_the_work_and_changes_nothing() {
    let (db, client) = folded_database().await;
    let before = catalog_and_rows(&client).await;
    assert!(before["rows"]["metrics_summary"].as_i64().unwrap() > 0);

    let out = rollback(&db, &["--dry-run"]);
    assert!(out.status.success(), "{}", output_text(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    for expected in [
        "DROP TABLE",
        "metrics_summary",
        "metrics_job_checkpoint",
        "DELETE FROM schema_migrations WHERE version = '0003_metrics_fold'",
        "dry run, nothing changed",
    ] {
        assert!(text.contains(expected), "{expected:?} in\n{text}");
    }
    assert_eq!(catalog_and_rows(&client).await, before);
}

#[tokio::test]
async fn objects_of_a_later_metrics_migration_are_found_by_name_and_dropped() {
    let (db, client) = folded_database().await;
    let event_log_indexes = "SELECT count(*) FROM pg_indexes WHERE tablename = 'event_log'";
    let plain_indexes: i64 = client
        .query_one(event_log_indexes, &[])
        .await
        .unwrap()
        .get(0);
    // What a later NNNN_metrics_* migration might add, including objects on tables that stay.
    client
        .batch_execute(
            "CREATE TYPE metrics_level AS ENUM ('low', 'high');
             CREATE DOMAIN metrics_score AS double precision CHECK (VALUE >= 0);
             CREATE TYPE metrics_pair AS (low int, high int);
             CREATE SEQUENCE metrics_ticket;
             CREATE FUNCTION metrics_touch() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NEW; END$$;
             CREATE FUNCTION metrics_double(x int) RETURNS int LANGUAGE sql AS 'SELECT 2 * x';
             CREATE TRIGGER metrics_project_touch AFTER UPDATE ON project
                 FOR EACH ROW EXECUTE FUNCTION metrics_touch();
             CREATE INDEX metrics_event_log_by_type ON event_log (project_id, event_type);
             ALTER TABLE api_key ADD CONSTRAINT metrics_key_name_present CHECK (name <> '');
             CREATE TABLE metrics_extra (project_id uuid, id int, level metrics_level, score metrics_score,
                 ticket bigint DEFAULT nextval('metrics_ticket'), PRIMARY KEY (project_id, id));
             CREATE TABLE metrics_extra_child (project_id uuid, id int,
                 FOREIGN KEY (project_id, id) REFERENCES metrics_extra);
             CREATE TABLE metrics_numbered (project_id uuid, n bigint GENERATED ALWAYS AS IDENTITY);
             CREATE VIEW metrics_open_task AS SELECT * FROM metrics_task WHERE terminal_at IS NULL;
             CREATE MATERIALIZED VIEW metrics_task_count AS SELECT project_id, count(*) FROM metrics_task GROUP BY 1;
             INSERT INTO schema_migrations (version, checksum) VALUES ('0099_metrics_extra', 'x');",
        )
        .await
        .unwrap();

    let out = rollback(&db, &["--confirm"]);
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(metrics_leftovers(&client).await, Vec::<String>::new());
    let remaining: i64 = client
        .query_one(event_log_indexes, &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        remaining, plain_indexes,
        "the event log keeps its own indexes"
    );
    let constraint: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_constraint WHERE conname = 'metrics_key_name_present'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(constraint, 0);
    let versions: Vec<String> = client
        .query("SELECT version FROM schema_migrations ORDER BY 1", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        versions,
        [
            "0001_event_log",
            "0002_api_key",
            "0010_event_log_time_order",
            // Webhook secrets belong to the API's integrations, not to the metrics.
            "0015_integration_github"
        ]
    );
}

#[tokio::test]
async fn a_rollback_that_cannot_finish_changes_nothing_and_exits_non_zero() {
    let (db, client) = folded_database().await;
    // A report view of another team depends on a metrics table: DROP TABLE must refuse
    // rather than drop it along.
    client
        .batch_execute("CREATE VIEW team_report AS SELECT task_id FROM metrics_task")
        .await
        .unwrap();
    let before = catalog_and_rows(&client).await;

    let out = rollback(&db, &["--confirm"]);
    assert!(!out.status.success(), "{}", output_text(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("team_report") && stderr.contains("nothing changed"),
        "{stderr}"
    );
    assert_eq!(catalog_and_rows(&client).await, before);
}

#[tokio::test]
async fn without_confirm_or_a_terminal_or_a_database_url_it_refuses() {
    let (db, client) = folded_database().await;
    let before = catalog_and_rows(&client).await;

    let out = rollback(&db, &[]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--confirm"));

    let out = run_script("rollback_metrics.sh", &["--confirm"], &[]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLOWMETER_DATABASE_URL"));

    let out = rollback(&db, &["--confirm", "--force"]);
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--force"));

    // DATABASE_URL is the fallback; a dry run through it reaches the same database.
    let out = run_script(
        "rollback_metrics.sh",
        &["--dry-run"],
        &[("DATABASE_URL", &db.url)],
    );
    assert!(out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("metrics_summary"));

    assert_eq!(catalog_and_rows(&client).await, before);
}

/// Runs the rollback on a pseudo-terminal (util-linux `script`) with `answer` typed in.
fn rollback_answering(db: &TestDb, answer: &str) -> Output {
    use std::io::Write;
    let mut child = Command::new("script")
        .args([
            "-qec",
            &script("rollback_metrics.sh").to_string_lossy(),
            "/dev/null",
        ])
        .env("FLOWMETER_DATABASE_URL", &db.url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs the prompt on a terminal");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{answer}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[tokio::test]
async fn the_prompt_rolls_back_only_when_the_operator_types_rollback() {
    let (db, client) = folded_database().await;
    let before = catalog_and_rows(&client).await;

    let out = rollback_answering(&db, "yes");
    assert!(!out.status.success(), "{}", output_text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Type \"rollback\" to go on"));
    assert_eq!(catalog_and_rows(&client).await, before);

    let out = rollback_answering(&db, "rollback");
    assert!(out.status.success(), "{}", output_text(&out));
    assert_eq!(metrics_leftovers(&client).await, Vec::<String>::new());
}
