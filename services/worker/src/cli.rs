//! The `flowmeter-worker` command line.

use clap::{Parser, Subcommand};
use flowmeter_shared::config::Env;
use flowmeter_shared::db::migrations;

use crate::settings::WorkerSettings;

/// Flowmeter's worker. Configuration comes from FLOWMETER_* environment variables
/// (see .env.example).
#[derive(Debug, Parser)]
#[command(name = "flowmeter-worker", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply pending migrations and exit.
    Migrate,
}

impl Cli {
    /// Runs the chosen command, printing its JSON result.
    pub async fn run(self, settings: WorkerSettings) -> anyhow::Result<()> {
        match self.command {
            Command::Migrate => {
                let report = migrate(&settings).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
        }
        Ok(())
    }
}

/// Applies migrations over a dedicated connection.
pub async fn migrate(settings: &WorkerSettings) -> anyhow::Result<migrations::MigrationReport> {
    let files = migrations::load(settings.migrations_dir.as_deref())?;
    let (mut client, connection) =
        tokio_postgres::connect(&settings.database.url, tokio_postgres::NoTls).await?;
    let connection = tokio::spawn(connection);
    let report = migrations::run(&mut client, &files).await?;
    drop(client);
    let _ = connection.await;
    Ok(report)
}

/// Reads settings from the process environment.
pub fn settings_from_env() -> Result<WorkerSettings, flowmeter_shared::config::ConfigError> {
    WorkerSettings::from_env(&Env::from_process())
}
