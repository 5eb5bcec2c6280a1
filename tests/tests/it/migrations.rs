//! The migration runner: concurrent starts, checksums, the explicit `migrate` command.

use std::process::Stdio;

use flowmeter_tests::{bin_path, TestDb};

async fn run_migrate(url: &str) -> std::process::Output {
    tokio::process::Command::new(bin_path("flowmeter-api"))
        .arg("migrate")
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", url)
        .env("FLOWMETER_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()
        .await
        .expect("run flowmeter-api migrate")
}

/// Processes started at once on an empty database all succeed and apply each file once,
/// creating the bookkeeping table included (several rounds, as the race is a matter of timing).
#[tokio::test]
async fn processes_migrating_an_empty_database_at_once_all_succeed_and_apply_once() {
    for round in 0..4 {
        let db = TestDb::empty().await;
        let outputs = futures_util::future::join_all((0..4).map(|_| run_migrate(&db.url))).await;
        for out in &outputs {
            assert!(
                out.status.success(),
                "round {round}: migrate failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let applied: usize = outputs
            .iter()
            .map(|o| serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap())
            .map(|r| r["applied"].as_array().unwrap().len())
            .sum();
        let files = flowmeter_shared::db::migrations::load(None).unwrap();
        assert_eq!(
            applied,
            files.len(),
            "round {round}: each migration applied by exactly one process"
        );

        let client = db.client().await;
        let rows = client
            .query(
                "SELECT version, count(*) FROM schema_migrations GROUP BY version",
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), files.len());
        assert!(rows.iter().all(|r| r.get::<_, i64>(1) == 1));
    }
}

#[tokio::test]
async fn a_changed_migration_checksum_stops_start_up() {
    let db = TestDb::migrated().await;
    let client = db.client().await;
    client
        .execute(
            "UPDATE schema_migrations SET checksum = 'tampered' WHERE version = (SELECT min(version) FROM schema_migrations)",
            &[],
        )
        .await
        .unwrap();
    let out = run_migrate(&db.url).await;
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("was changed after it was applied"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrations_dir_override_is_honoured() {
    let db = TestDb::empty().await;
    let dir = std::env::temp_dir().join(format!("fm-mig-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("0001_only.sql"),
        "CREATE TABLE only_this (id int);",
    )
    .unwrap();
    let out = tokio::process::Command::new(bin_path("flowmeter-api"))
        .arg("migrate")
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", &db.url)
        .env("FLOWMETER_MIGRATIONS_DIR", &dir)
        .output()
        .await
        .unwrap();
    std::fs::remove_dir_all(&dir).ok();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let client = db.client().await;
    let versions: Vec<String> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, vec!["0001_only".to_owned()]);
}

#[tokio::test]
async fn a_bad_configuration_value_stops_the_binary_naming_the_variable() {
    let out = tokio::process::Command::new(bin_path("flowmeter-api"))
        .arg("migrate")
        .env_clear()
        .env("FLOWMETER_DATABASE_URL", "postgres://u@127.0.0.1:1/x")
        .env("FLOWMETER_INGEST_MAX_EVENTS", "lots")
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLOWMETER_INGEST_MAX_EVENTS"));

    let out = tokio::process::Command::new(bin_path("flowmeter-api"))
        .arg("migrate")
        .env_clear()
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("FLOWMETER_DATABASE_URL"));
}
