//! PostgreSQL clusters of a test's own, for the scale-out tests (SPEC §18): a primary started
//! with `scripts/pg-local` in a temporary directory, a streaming replica of it made with
//! `pg_basebackup -R`, and a PgBouncer in front of one. Each is stopped and deleted when dropped.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::db::with_database;

/// The repository root (scripts/ lives there).
fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .to_path_buf()
}

/// Runs a command as the clusters' owner: the postgres OS user when the tests run as root
/// (initdb and the server refuse root).
fn as_owner(program: &str) -> Command {
    if nix_is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--", program]);
        command
    } else {
        Command::new(program)
    }
}

fn nix_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

/// The path of a PostgreSQL server binary (Debian keeps them off PATH).
pub fn pg_bin(name: &str) -> String {
    if let Ok(dirs) = std::fs::read_dir("/usr/lib/postgresql") {
        let mut found: Vec<PathBuf> = dirs
            .flatten()
            .map(|d| d.path().join("bin").join(name))
            .filter(|p| p.exists())
            .collect();
        found.sort();
        if let Some(path) = found.pop() {
            return path.display().to_string();
        }
    }
    name.to_owned()
}

fn run(command: &mut Command, what: &str) -> String {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A temporary directory the postgres OS user owns.
fn owned_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("{prefix}-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&dir).expect("create a cluster directory");
    if nix_is_root() {
        run(
            Command::new("chown").args(["postgres:", &dir.display().to_string()]),
            "chown the cluster directory",
        );
    }
    dir
}

/// A running cluster of the test's own; stopped and deleted when dropped.
pub struct Cluster {
    /// Its directory (data in `data/`).
    pub dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Cluster {
    /// A new primary from `scripts/pg-local` (fsync off, as every test cluster).
    pub fn primary() -> Self {
        let dir = owned_dir("flowmeter-primary");
        let url = run(
            Command::new(repo_root().join("scripts/pg-local"))
                .args(["start", &dir.display().to_string()]),
            "scripts/pg-local start",
        );
        let port = url
            .rsplit(':')
            .next()
            .and_then(|rest| rest.split('/').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {url}"));
        Self { dir, port }
    }

    /// A streaming replica of this cluster: `pg_basebackup -R` (which writes
    /// `primary_conninfo` and `standby.signal`), started on a free port.
    pub fn streaming_replica(&self) -> Self {
        let dir = owned_dir("flowmeter-replica");
        let data = dir.join("data");
        run(
            as_owner(&pg_bin("pg_basebackup")).args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
                "-D",
                &data.display().to_string(),
                "-R",
                "-X",
                "stream",
                "--no-sync",
                // Start at once rather than after a spread checkpoint.
                "--checkpoint=fast",
            ]),
            "pg_basebackup -R",
        );
        // A hot standby needs at least the primary's max_connections (pg-local raises it).
        let max_connections = run(
            Command::new(pg_bin("psql")).args([
                &self.url("postgres"),
                "-Atc",
                "SHOW max_connections",
            ]),
            "SHOW max_connections",
        );
        let port = crate::free_port();
        run(
            as_owner(&pg_bin("pg_ctl")).args([
                "-D",
                &data.display().to_string(),
                "-l",
                &dir.join("server.log").display().to_string(),
                "-w",
                "-t",
                "60",
                "-o",
                &format!(
                    "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off \
                     -c hot_standby_feedback=on -c max_connections={max_connections}",
                    dir.display()
                ),
                "start",
            ]),
            "start the replica",
        );
        Self { dir, port }
    }

    /// The URL of database `name` on this cluster.
    pub fn url(&self, name: &str) -> String {
        with_database(
            &format!("postgres://postgres@127.0.0.1:{}/postgres", self.port),
            name,
        )
    }

    /// Creates a database and applies every migration with `flowmeter-api migrate`.
    pub fn migrated_database(&self, name: &str) -> String {
        run(
            Command::new(pg_bin("psql")).args([
                &self.url("postgres"),
                "-qc",
                &format!("CREATE DATABASE {name}"),
            ]),
            "CREATE DATABASE",
        );
        let url = self.url(name);
        run(
            Command::new(crate::bin_path("flowmeter-api"))
                .arg("migrate")
                .env_clear()
                .env("FLOWMETER_DATABASE_URL", &url)
                .env("FLOWMETER_LOG", "warn"),
            "flowmeter-api migrate",
        );
        url
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = as_owner(&pg_bin("pg_ctl"))
            .args([
                "-D",
                &self.dir.join("data").display().to_string(),
                "-m",
                "immediate",
                "-w",
                "stop",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// PgBouncer (Debian's package) on a free port in front of database `name` of the server on
/// 127.0.0.1:`upstream`, pooling in `mode` (`session` or `transaction`); killed when dropped.
pub struct Bouncer {
    child: Child,
    dir: PathBuf,
    /// Its port on 127.0.0.1.
    pub port: u16,
}

impl Bouncer {
    /// Starts PgBouncer and waits until it accepts connections.
    pub fn start(upstream: u16, name: &str, mode: &str, pool_size: u32) -> Self {
        let dir = owned_dir("flowmeter-pgbouncer");
        let port = crate::free_port();
        let config = format!(
            "[databases]\n{name} = host=127.0.0.1 port={upstream} dbname={name}\n\n\
             [pgbouncer]\nlisten_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = trust\nadmin_users = postgres\nauth_file = {dir}/users.txt\npool_mode = {mode}\n\
             default_pool_size = {pool_size}\nmax_client_conn = 500\n\
             ignore_startup_parameters = extra_float_digits,options\n\
             logfile = {dir}/pgbouncer.log\n",
            dir = dir.display(),
        );
        std::fs::write(dir.join("pgbouncer.ini"), config).expect("write pgbouncer.ini");
        std::fs::write(dir.join("users.txt"), "\"postgres\" \"\"\n").expect("write users.txt");
        let program = ["/usr/sbin/pgbouncer", "pgbouncer"]
            .into_iter()
            .find(|p| Path::new(p).exists())
            .unwrap_or("pgbouncer");
        // PgBouncer refuses to run as root: as root it switches to the postgres user itself
        // (-u), so the child is PgBouncer and killing it stops it.
        let mut command = Command::new(program);
        if nix_is_root() {
            command.args(["-u", "postgres"]);
        }
        let child = command
            .arg(dir.join("pgbouncer.ini"))
            .stdout(Stdio::null())
            .stderr(crate::child_stderr())
            .spawn()
            .expect(
                "spawn pgbouncer (Debian's pgbouncer package; scripts/install-deps installs it)",
            );
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "pgbouncer did not listen within 20 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self { child, dir, port }
    }

    /// The port of a `postgres://` URL's server.
    pub fn port_of(url: &str) -> u16 {
        url.split("://")
            .nth(1)
            .and_then(|rest| rest.split('/').next())
            .and_then(|host| host.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or(5432)
    }

    /// Runs an admin-console command (`SHOW STATS` …) and returns its rows as column maps.
    pub async fn show(&self, what: &str) -> Vec<std::collections::HashMap<String, String>> {
        let client = crate::db::connect(&self.url("pgbouncer")).await;
        let messages = client
            .simple_query(&format!("SHOW {what}"))
            .await
            .expect("SHOW");
        messages
            .into_iter()
            .filter_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                    row.columns()
                        .iter()
                        .enumerate()
                        .map(|(i, c)| (c.name().to_owned(), row.get(i).unwrap_or("").to_owned()))
                        .collect(),
                ),
                _ => None,
            })
            .collect()
    }

    /// The URL of the pooled database.
    pub fn url(&self, name: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{name}", self.port)
    }
}

impl Drop for Bouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
