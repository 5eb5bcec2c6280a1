//! `TestApp`: the real API server on 127.0.0.1:0 against a fresh database.

use std::net::SocketAddr;

use flowmeter_api::settings::ApiSettings;
use flowmeter_api::startup::Application;
use flowmeter_shared::auth::Role;
use flowmeter_shared::config::Env;
use flowmeter_shared::db::api_keys::{self, NewApiKey};
use reqwest::{Response, StatusCode};
use serde_json::Value;
use uuid::Uuid;

use crate::db::TestDb;

/// How to start a test app.
#[derive(Debug, Clone)]
pub struct TestAppOptions {
    /// Disable authentication (every request acts as admin).
    pub auth_disabled: bool,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
}

impl Default for TestAppOptions {
    fn default() -> Self {
        Self {
            auth_disabled: true,
            env: Vec::new(),
        }
    }
}

impl TestAppOptions {
    /// Authentication on (keys required).
    pub fn with_auth() -> Self {
        Self {
            auth_disabled: false,
            env: Vec::new(),
        }
    }

    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: impl Into<String>) -> Self {
        self.env.push((name.to_owned(), value.into()));
        self
    }
}

/// A running API server and its database.
pub struct TestApp {
    /// The server's address.
    pub address: SocketAddr,
    /// `http://127.0.0.1:port`.
    pub base_url: String,
    /// The database (dropped with the app).
    pub db: TestDb,
    /// An HTTP client.
    pub http: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

impl TestApp {
    /// Starts the server with authentication disabled.
    pub async fn spawn() -> Self {
        Self::spawn_with(TestAppOptions::default()).await
    }

    /// Starts the server with the given options on a fresh migrated database.
    pub async fn spawn_with(options: TestAppOptions) -> Self {
        let db = TestDb::migrated().await;
        Self::spawn_on(db, options).await
    }

    /// Starts the server on an existing database.
    pub async fn spawn_on(db: TestDb, options: TestAppOptions) -> Self {
        crate::init_logging();
        let settings = Self::settings(&db.url, &options);
        let app = Application::build(settings).await.expect("build the API");
        let port = app.port();
        let handle = app.handle();
        tokio::spawn(app.run_until_stopped());
        let address: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        Self {
            address,
            base_url: format!("http://{address}"),
            db,
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .unwrap(),
            handle,
        }
    }

    /// The settings a test app runs with.
    pub fn settings(database_url: &str, options: &TestAppOptions) -> ApiSettings {
        let mut env = Env::default()
            .set("FLOWMETER_DATABASE_URL", database_url)
            .set("FLOWMETER_HTTP_ADDR", "127.0.0.1:0")
            .set("FLOWMETER_HTTP_WORKERS", "2")
            .set("FLOWMETER_DB_POOL_SIZE", "8")
            .set(
                "FLOWMETER_AUTH_DISABLED",
                if options.auth_disabled { "1" } else { "0" },
            );
        for (name, value) in &options.env {
            env = env.set(name, value.clone());
        }
        ApiSettings::from_env(&env).expect("test settings")
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }

    /// Stops the server gracefully and hands back its database (to start another server
    /// on it, as a redeploy does).
    pub async fn shut_down(self) -> TestDb {
        self.handle.stop(true).await;
        self.db
    }

    /// A URL on the server.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// `GET path`, with an optional key.
    pub async fn get(&self, path: &str, key: Option<&str>) -> Response {
        let mut request = self.http.get(self.url(path));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("GET")
    }

    /// `POST /v1/events` with a JSON body, with an optional key.
    pub async fn post_events(&self, body: &Value, key: Option<&str>) -> Response {
        let mut request = self.http.post(self.url("/v1/events")).json(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        request.send().await.expect("POST /v1/events")
    }

    /// Ingests events and asserts success; returns the response body.
    pub async fn ingest(&self, events: &[Value]) -> Value {
        let response = self.post_events(&Value::Array(events.to_vec()), None).await;
        let status = response.status();
        let body: Value = response.json().await.expect("ingest response JSON");
        assert_eq!(status, StatusCode::OK, "ingest failed: {body}");
        body
    }

    /// How many events of a project the log holds.
    pub async fn stored_events(&self, project: Uuid) -> i64 {
        self.db
            .client()
            .await
            .query_one(
                "SELECT count(*) FROM event_log WHERE project_id = $1",
                &[&project],
            )
            .await
            .expect("count the project's events")
            .get(0)
    }

    /// The `payload` (the `metrics` object) of a project's latest summary snapshot.
    pub async fn latest_summary_payload(&self, project: Uuid) -> Value {
        self.db
            .client()
            .await
            .query_one(
                "SELECT payload FROM metrics_summary WHERE project_id = $1
                  ORDER BY captured_at DESC LIMIT 1",
                &[&project],
            )
            .await
            .expect("a summary snapshot")
            .get(0)
    }

    /// Appends events directly through ingest validation and the shared append (for tests
    /// whose API refuses ingest: auth on, or ingest switched off).
    pub async fn seed(&self, events: &[Value]) {
        let valid: Vec<_> = events
            .iter()
            .enumerate()
            .map(|(i, e)| flowmeter_shared::events::validate_event(i, e).expect("valid test event"))
            .collect();
        let pool = self.db.pool();
        let mut client = pool.get().await.expect("pool connection");
        let tx = client.transaction().await.expect("transaction");
        flowmeter_shared::db::events::append(&tx, &valid)
            .await
            .expect("append");
        tx.commit().await.expect("commit");
    }

    /// Creates an API key directly in the database; returns its secret.
    pub async fn create_key(&self, project: Option<Uuid>, roles: &[Role]) -> String {
        self.create_key_expiring(project, roles, None).await
    }

    /// Creates a key with an expiry.
    pub async fn create_key_expiring(
        &self,
        project: Option<Uuid>,
        roles: &[Role],
        expires_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> String {
        let pool = self.db.pool();
        let client = pool.get().await.expect("pool connection");
        let (_, secret) = api_keys::create(
            &client,
            &NewApiKey {
                name: "test".into(),
                project_id: project,
                roles: roles.to_vec(),
                expires_at,
            },
        )
        .await
        .expect("create key");
        secret
    }
}

/// Asserts an error response: status, the envelope's fields and the common headers.
pub async fn assert_error(response: Response, status: u16, code: &str) -> Value {
    assert_eq!(response.status().as_u16(), status, "unexpected status");
    assert_common_headers(&response);
    let request_id = response
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body: Value = response.json().await.expect("error body is JSON");
    assert_eq!(body["error"], code, "error code in {body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "message in {body}"
    );
    assert!(body["details"].is_object(), "details in {body}");
    assert_eq!(
        body["request_id"],
        request_id.as_str(),
        "request_id in {body}"
    );
    assert!(body["timestamp"].as_str().is_some(), "timestamp in {body}");
    body
}

/// Asserts `X-API-Version: 1.0` and a non-empty `X-Request-ID`.
pub fn assert_common_headers(response: &Response) {
    let headers = response.headers();
    assert_eq!(
        headers.get("x-api-version").and_then(|v| v.to_str().ok()),
        Some("1.0"),
        "X-API-Version on {}",
        response.url()
    );
    assert!(
        headers
            .get("x-request-id")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| !v.is_empty()),
        "X-Request-ID on {}",
        response.url()
    );
}
