//! The migration runner: numbered, forward-only SQL files applied in order.
//!
//! Files are embedded in the binary (`migrations/` at build time) unless
//! `FLOWMETER_MIGRATIONS_DIR` points elsewhere. All pending files are applied in one
//! transaction that first takes an exclusive lock on `schema_migrations`, so two
//! processes starting at once serialize: the second sees the first one's work and
//! applies nothing. An applied file whose checksum changed stops start-up.

use std::path::Path;

use include_dir::{include_dir, Dir};
use sha2::{Digest, Sha256};
use tokio_postgres::Client;

static EMBEDDED: Dir<'_> = include_dir!("$CARGO_MANIFEST_DIR/../migrations");

/// One migration file.
#[derive(Debug, Clone)]
pub struct Migration {
    /// The file name without `.sql`, e.g. `0001_event_log`; also the recorded version.
    pub version: String,
    /// The SQL text.
    pub sql: String,
    /// Hex SHA-256 of the SQL text.
    pub checksum: String,
}

impl Migration {
    fn new(version: String, sql: String) -> Self {
        let checksum = hex::encode(Sha256::digest(sql.as_bytes()));
        Self {
            version,
            sql,
            checksum,
        }
    }
}

/// What a migration run did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct MigrationReport {
    /// Versions applied by this run, in order.
    pub applied: Vec<String>,
    /// How many were already applied.
    pub already_applied: usize,
}

/// Errors that stop start-up.
#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    /// A recorded migration's file changed after it was applied.
    #[error("migration {version} was changed after it was applied (recorded checksum {recorded}, file checksum {current}); restore the original file and add a new migration instead")]
    ChecksumMismatch {
        /// The version.
        version: String,
        /// Checksum stored in `schema_migrations`.
        recorded: String,
        /// Checksum of the file now.
        current: String,
    },
    /// A file name is not of the form `NNNN_name.sql`.
    #[error("migration file {0:?} is not named NNNN_name.sql")]
    BadName(String),
    /// Reading the migrations directory failed.
    #[error("reading migrations from {dir}: {source}")]
    Io {
        /// The directory.
        dir: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A statement failed.
    #[error("migration {version}: {source}")]
    Sql {
        /// The version being applied ("schema_migrations" for the bookkeeping itself).
        version: String,
        /// The cause.
        source: tokio_postgres::Error,
    },
}

/// Loads migrations from `dir`, or the embedded set when `dir` is `None`, sorted by version.
pub fn load(dir: Option<&Path>) -> Result<Vec<Migration>, MigrationError> {
    let mut migrations = Vec::new();
    match dir {
        Some(dir) => {
            let io = |source| MigrationError::Io {
                dir: dir.display().to_string(),
                source,
            };
            for entry in std::fs::read_dir(dir).map_err(io)? {
                let path = entry.map_err(io)?.path();
                if path.extension().and_then(|e| e.to_str()) != Some("sql") {
                    continue;
                }
                let sql = std::fs::read_to_string(&path).map_err(io)?;
                migrations.push(Migration::new(version_of(&path)?, sql));
            }
        }
        None => {
            for file in EMBEDDED.files() {
                if file.path().extension().and_then(|e| e.to_str()) != Some("sql") {
                    continue;
                }
                let sql = String::from_utf8_lossy(file.contents()).into_owned();
                migrations.push(Migration::new(version_of(file.path())?, sql));
            }
        }
    }
    migrations.sort_by(|a, b| a.version.cmp(&b.version));
    Ok(migrations)
}

fn version_of(path: &Path) -> Result<String, MigrationError> {
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    let (number, name) = stem.split_once('_').unwrap_or((&stem, ""));
    if number.len() != 4 || !number.bytes().all(|b| b.is_ascii_digit()) || name.is_empty() {
        return Err(MigrationError::BadName(path.display().to_string()));
    }
    Ok(stem)
}

/// The advisory lock key that serializes creating the bookkeeping table ("flowmetr").
const CREATE_LOCK: i64 = 0x666c_6f77_6d65_7472;

const CREATE_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations (
    version TEXT PRIMARY KEY,
    checksum TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
)";

/// Applies every pending migration in one transaction under an exclusive table lock.
#[tracing::instrument(skip_all, err)]
pub async fn run(
    client: &mut Client,
    migrations: &[Migration],
) -> Result<MigrationReport, MigrationError> {
    let sql_err = |version: &str| {
        let version = version.to_owned();
        move |source| MigrationError::Sql { version, source }
    };
    // The bookkeeping table usually exists already; keep PostgreSQL's notice out of the logs.
    client
        .batch_execute("SET client_min_messages = warning")
        .await
        .map_err(sql_err("schema_migrations"))?;
    // `CREATE TABLE IF NOT EXISTS` is not safe against a concurrent one: two processes on an
    // empty database can both pass the check, and the second then fails on the table's name
    // or its row type. An advisory lock held for the creating transaction serializes them.
    let create =
        format!("BEGIN; SELECT pg_advisory_xact_lock({CREATE_LOCK}); {CREATE_TABLE}; COMMIT;");
    if let Err(e) = client.batch_execute(&create).await {
        let _ = client.batch_execute("ROLLBACK").await;
        // Kept for a server where the lock is not shared (the table exists afterwards).
        if !matches!(crate::db::sqlstate(&e), Some("23505" | "42P07" | "42710")) {
            return Err(sql_err("schema_migrations")(e));
        }
    }
    let tx = client
        .transaction()
        .await
        .map_err(sql_err("schema_migrations"))?;
    tx.batch_execute("LOCK TABLE schema_migrations IN ACCESS EXCLUSIVE MODE")
        .await
        .map_err(sql_err("schema_migrations"))?;
    let rows = tx
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await
        .map_err(sql_err("schema_migrations"))?;
    let recorded: std::collections::HashMap<String, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();

    let mut report = MigrationReport::default();
    for migration in migrations {
        if let Some(checksum) = recorded.get(&migration.version) {
            if *checksum != migration.checksum {
                return Err(MigrationError::ChecksumMismatch {
                    version: migration.version.clone(),
                    recorded: checksum.clone(),
                    current: migration.checksum.clone(),
                });
            }
            report.already_applied += 1;
            continue;
        }
        tx.batch_execute(&migration.sql)
            .await
            .map_err(sql_err(&migration.version))?;
        tx.execute(
            "INSERT INTO schema_migrations (version, checksum) VALUES ($1, $2)",
            &[&migration.version, &migration.checksum],
        )
        .await
        .map_err(sql_err(&migration.version))?;
        tracing::info!(version = %migration.version, "Applied migration.");
        report.applied.push(migration.version.clone());
    }
    tx.commit().await.map_err(sql_err("schema_migrations"))?;
    Ok(report)
}

/// Loads the migrations (embedded, or from `dir`) and applies them over a dedicated
/// connection, so a pool keeps its statement timeout for ordinary work. Both binaries call
/// this at start-up and from their `migrate` command.
pub async fn apply(url: &str, dir: Option<&Path>) -> anyhow::Result<MigrationReport> {
    let files = load(dir)?;
    let (mut client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .map_err(|e| anyhow::anyhow!("connecting to the database to migrate: {e}"))?;
    let connection = tokio::spawn(connection);
    let report = run(&mut client, &files).await?;
    drop(client);
    let _ = connection.await;
    Ok(report)
}

/// Whether every known migration is recorded with the right checksum (for health checks).
pub async fn pending(
    client: &impl deadpool_postgres::GenericClient,
    migrations: &[Migration],
) -> Result<Vec<String>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT version, checksum FROM schema_migrations", &[])
        .await?;
    let recorded: std::collections::HashMap<String, String> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    Ok(migrations
        .iter()
        .filter(|m| recorded.get(&m.version) != Some(&m.checksum))
        .map(|m| m.version.clone())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_migrations_are_sorted_and_well_named() {
        let all = load(None).unwrap();
        assert!(!all.is_empty());
        let versions: Vec<_> = all.iter().map(|m| m.version.clone()).collect();
        let mut sorted = versions.clone();
        sorted.sort();
        assert_eq!(versions, sorted);
        assert!(all.iter().all(|m| m.checksum.len() == 64));
    }

    #[test]
    fn bad_names_are_refused() {
        assert!(version_of(Path::new("1_x.sql")).is_err());
        assert!(version_of(Path::new("0001.sql")).is_err());
        assert_eq!(
            version_of(Path::new("0007_metrics_x.sql")).unwrap(),
            "0007_metrics_x"
        );
    }
}
