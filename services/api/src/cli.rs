//! The `flowmeter-api` command line: serve (default), migrate, and key management.

use clap::{Parser, Subcommand};
use flowmeter_shared::auth::Role;
use flowmeter_shared::config::Env;
use flowmeter_shared::db::{self, api_keys};
use serde_json::json;
use uuid::Uuid;

use crate::settings::ApiSettings;
use crate::startup::{migrate, Application};

/// Flowmeter's HTTP API. Configuration comes from FLOWMETER_* environment variables
/// (see .env.example).
#[derive(Debug, Parser)]
#[command(name = "flowmeter-api", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations and serve HTTP (the default).
    Serve,
    /// Apply pending migrations and exit.
    Migrate,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Configure integrations with other systems.
    #[command(subcommand)]
    Integrations(IntegrationsCommand),
}

#[derive(Debug, Subcommand)]
enum IntegrationsCommand {
    /// GitHub webhooks (docs/GITHUB.md).
    #[command(subcommand)]
    Github(GithubCommand),
}

#[derive(Debug, Subcommand)]
enum GithubCommand {
    /// Read a project's webhook secret from standard input and store it encrypted with
    /// FLOWMETER_SECRET_KEY.
    SetSecret {
        /// The project the webhook delivers to.
        #[arg(long)]
        project: Uuid,
    },
}

#[derive(Debug, Subcommand)]
enum KeysCommand {
    /// Create a key and print it once.
    Create {
        /// A project id, or '*' for every project.
        #[arg(long)]
        project: String,
        /// Comma-separated roles: viewer, planner, ingest, admin.
        #[arg(long, value_delimiter = ',', required = true)]
        roles: Vec<Role>,
        /// A name for people.
        #[arg(long)]
        name: String,
        /// Days until the key expires.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36500))]
        expires_in_days: Option<u32>,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key by id.
    Revoke {
        /// The key id shown by `keys list`.
        id: Uuid,
    },
}

impl Cli {
    /// Runs the chosen command; the JSON result of one-shot commands goes to stdout.
    pub async fn run(self, settings: ApiSettings) -> anyhow::Result<()> {
        match self.command.unwrap_or(Command::Serve) {
            Command::Serve => {
                Application::build(settings)
                    .await?
                    .run_until_stopped()
                    .await?
            }
            Command::Migrate => {
                let report =
                    migrate(&settings.database, settings.migrations_dir.as_deref()).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            Command::Integrations(IntegrationsCommand::Github(GithubCommand::SetSecret {
                project,
            })) => set_github_secret(&settings, project).await?,
            Command::Keys(keys) => {
                migrate(&settings.database, settings.migrations_dir.as_deref()).await?;
                let pool = db::create_pool(&settings.database, "flowmeter-api-cli")?;
                let client = pool.get().await?;
                let output = match keys {
                    KeysCommand::Create {
                        project,
                        roles,
                        name,
                        expires_in_days,
                    } => {
                        let project_id = match project.trim() {
                            "*" => None,
                            p => Some(Uuid::parse_str(p).map_err(|_| {
                                anyhow::anyhow!(
                                    "--project must be a project UUID or '*', got {p:?}"
                                )
                            })?),
                        };
                        let new = api_keys::NewApiKey {
                            name,
                            project_id,
                            roles,
                            expires_at: expires_in_days
                                .map(|d| chrono::Utc::now() + chrono::Duration::days(i64::from(d))),
                        };
                        let (key, secret) = api_keys::create(&client, &new).await?;
                        json!({ "key": secret, "api_key": key,
                                "note": "store this key now; it cannot be shown again" })
                    }
                    KeysCommand::List => json!({ "keys": api_keys::list(&client).await? }),
                    KeysCommand::Revoke { id } => {
                        if !api_keys::revoke(&client, id).await? {
                            anyhow::bail!("no API key with id {id}");
                        }
                        json!({ "revoked": id })
                    }
                };
                println!("{}", serde_json::to_string_pretty(&output)?);
            }
        }
        Ok(())
    }
}

/// `integrations github set-secret`: the secret is the first line of standard input.
async fn set_github_secret(settings: &ApiSettings, project: Uuid) -> anyhow::Result<()> {
    let Some(key) = &settings.secret_key else {
        anyhow::bail!(
            "FLOWMETER_SECRET_KEY is not set: webhook secrets are stored encrypted with it \
             (32 random bytes in base64, e.g. `openssl rand -base64 32`)"
        );
    };
    let mut line = String::new();
    std::io::stdin().read_line(&mut line)?;
    let secret = line.trim_end_matches(['\r', '\n']);
    if secret.is_empty() {
        anyhow::bail!("no secret on standard input");
    }
    migrate(&settings.database, settings.migrations_dir.as_deref()).await?;
    let pool = db::create_pool(&settings.database, "flowmeter-api-cli")?;
    let client = pool.get().await?;
    let sealed = key.seal(project, secret.as_bytes());
    db::integrations::store_github_secret(&client, project, &sealed.nonce, &sealed.ciphertext)
        .await?;
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "project_id": project,
            "github_secret": "stored",
            "webhook_url": format!("/v1/integrations/github?project_id={project}"),
        }))?
    );
    Ok(())
}

/// Reads settings from the process environment.
pub fn settings_from_env() -> Result<ApiSettings, flowmeter_shared::config::ConfigError> {
    ApiSettings::from_env(&Env::from_process())
}
