//! Per-test databases. The first test to run builds a template database with every
//! migration applied, named after the migrations' checksums; every test then clones it
//! with `CREATE DATABASE … TEMPLATE`, which takes milliseconds, and drops its clone when done.

use std::sync::OnceLock;

use flowmeter_shared::db::migrations;
use sha2_free_hash::short_hash;
use tokio_postgres::{Client, NoTls};

mod sha2_free_hash {
    /// A short stable hash of the migration checksums (already hex SHA-256 values).
    pub fn short_hash(parts: &[String]) -> String {
        let mut acc: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in parts.iter().flat_map(|p| p.bytes()) {
            acc ^= u64::from(byte);
            acc = acc.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{acc:016x}")
    }
}

/// The admin URL of the test cluster.
pub fn admin_url() -> String {
    std::env::var("FLOWMETER_TEST_DATABASE_URL").expect(
        "FLOWMETER_TEST_DATABASE_URL is not set: run the tests with `make test`, which provisions a throwaway PostgreSQL",
    )
}

/// Replaces the database name of a `postgres://` URL.
pub fn with_database(url: &str, name: &str) -> String {
    let scheme_end = url.find("://").map_or(0, |i| i + 3);
    let (base, query) = match url.find('?') {
        Some(q) => (&url[..q], &url[q..]),
        None => (url, ""),
    };
    let host_end = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    format!("{}/{name}{query}", &base[..host_end])
}

/// Connects with a plain client whose connection task runs in the background.
pub async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("connecting to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

async fn ensure_template() -> String {
    let files = migrations::load(None).expect("embedded migrations");
    let checksums: Vec<String> = files.iter().map(|m| m.checksum.clone()).collect();
    let name = format!("flowmeter_tpl_{}", short_hash(&checksums));
    let admin = connect(&admin_url()).await;
    let exists = admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .expect("query pg_database")
        .is_some();
    if exists {
        return name;
    }
    // Build under a private name, then rename: the rename is atomic, so a concurrent test
    // process either sees no template or a complete one.
    let building = format!("{name}_b{}", std::process::id());
    admin
        .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
        .await
        .expect("drop a stale template build");
    admin
        .batch_execute(&format!("CREATE DATABASE {building}"))
        .await
        .expect("create template database");
    {
        let mut client = connect(&with_database(&admin_url(), &building)).await;
        migrations::run(&mut client, &files)
            .await
            .expect("migrate the template");
    }
    // Wait for the migration connection to go away before renaming.
    for _ in 0..50 {
        let busy: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                &[&building],
            )
            .await
            .expect("pg_stat_activity")
            .get(0);
        if busy == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if let Err(e) = admin
        .batch_execute(&format!("ALTER DATABASE {building} RENAME TO {name}"))
        .await
    {
        // Another process finished first; use its template.
        let _ = admin
            .batch_execute(&format!("DROP DATABASE IF EXISTS {building} WITH (FORCE)"))
            .await;
        assert!(
            e.as_db_error().is_some_and(|d| d.code().code() == "42P04"),
            "renaming the template: {e}"
        );
    }
    name
}

static TEMPLATE: OnceLock<tokio::sync::OnceCell<String>> = OnceLock::new();

/// A fresh, migrated database for one test, dropped when the value is dropped.
pub struct TestDb {
    /// The database name.
    pub name: String,
    /// Its URL.
    pub url: String,
}

impl TestDb {
    /// A database cloned from the migrated template.
    pub async fn migrated() -> Self {
        let template = TEMPLATE
            .get_or_init(tokio::sync::OnceCell::new)
            .get_or_init(ensure_template)
            .await
            .clone();
        Self::create(Some(&template)).await
    }

    /// An empty database with no migrations applied.
    pub async fn empty() -> Self {
        Self::create(None).await
    }

    async fn create(template: Option<&str>) -> Self {
        let name = format!("flowmeter_test_{}", uuid::Uuid::new_v4().simple());
        let admin = connect(&admin_url()).await;
        let sql = match template {
            Some(t) => format!("CREATE DATABASE {name} TEMPLATE {t}"),
            None => format!("CREATE DATABASE {name}"),
        };
        let mut attempt = 0;
        loop {
            match admin.batch_execute(&sql).await {
                Ok(()) => break,
                // "source database is being accessed by other users": a concurrent clone.
                Err(e) if attempt < 50 => {
                    attempt += 1;
                    let _ = e;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
                Err(e) => panic!("creating {name}: {e}"),
            }
        }
        let url = with_database(&admin_url(), &name);
        Self { name, url }
    }

    /// A copy of this database as it is now (no connection may be open on it): what a read
    /// replica that stopped replaying would hold.
    pub async fn copy(&self) -> Self {
        Self::create(Some(&self.name)).await
    }

    /// A plain client on this database.
    pub async fn client(&self) -> Client {
        connect(&self.url).await
    }

    /// A small pool on this database, for calling repository functions directly.
    pub fn pool(&self) -> deadpool_postgres::Pool {
        let env = flowmeter_shared::config::Env::default()
            .set("FLOWMETER_DATABASE_URL", self.url.clone())
            .set("FLOWMETER_DB_POOL_SIZE", "2");
        let settings = flowmeter_shared::config::DatabaseSettings::from_env(&env, 2).unwrap();
        flowmeter_shared::db::create_pool(&settings, "flowmeter-tests").unwrap()
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime; use a separate thread and runtime.
        let _ = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            runtime.block_on(async move {
                if let Ok((client, connection)) = tokio_postgres::connect(&admin_url(), NoTls).await
                {
                    tokio::spawn(connection);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}
