//! API keys: hashing, roles, project scope, revocation, expiry, both headers.

use flowmeter_shared::auth::{hash_key, Role};
use flowmeter_tests::app::assert_error;
use flowmeter_tests::events::{t, EventBuilder};
use flowmeter_tests::{bin_path, TestApp, TestAppOptions};
use serde_json::{json, Value};

fn one_event(b: &mut EventBuilder) -> Value {
    json!([b.task_created("t1", t("2026-03-02T09:00:00Z"), json!({}))])
}

#[tokio::test]
async fn ingest_requires_a_valid_key_with_the_ingest_role_for_the_project() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let mut b = EventBuilder::new();
    let other_project = uuid::Uuid::new_v4();

    // No key, unknown key.
    let response = app.post_events(&one_event(&mut b), None).await;
    assert_eq!(
        response.headers().get("www-authenticate").unwrap(),
        "Bearer"
    );
    assert_error(response, 401, "unauthorized").await;
    assert_error(
        app.post_events(&one_event(&mut b), Some("fm_not_a_real_key"))
            .await,
        401,
        "unauthorized",
    )
    .await;

    // A viewer may not ingest.
    let viewer = app.create_key(Some(b.project_id), &[Role::Viewer]).await;
    assert_error(
        app.post_events(&one_event(&mut b), Some(&viewer)).await,
        403,
        "forbidden",
    )
    .await;

    // Another project's ingest key may not write here.
    let other = app.create_key(Some(other_project), &[Role::Ingest]).await;
    assert_error(
        app.post_events(&one_event(&mut b), Some(&other)).await,
        403,
        "forbidden",
    )
    .await;

    // The project's ingest key, a '*' ingest key and an admin key may.
    let ingest = app.create_key(Some(b.project_id), &[Role::Ingest]).await;
    let star = app.create_key(None, &[Role::Ingest]).await;
    let admin = app.create_key(None, &[Role::Admin]).await;
    for key in [&ingest, &star, &admin] {
        assert_eq!(
            app.post_events(&one_event(&mut b), Some(key))
                .await
                .status(),
            200
        );
    }

    // X-API-Key works as well as Bearer.
    let response = app
        .http
        .post(app.url("/v1/events"))
        .header("x-api-key", &ingest)
        .json(&one_event(&mut b))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn revoked_and_expired_keys_are_refused() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let mut b = EventBuilder::new();
    let expired = app
        .create_key_expiring(
            None,
            &[Role::Ingest],
            Some(chrono::Utc::now() - chrono::Duration::minutes(1)),
        )
        .await;
    assert_error(
        app.post_events(&one_event(&mut b), Some(&expired)).await,
        401,
        "unauthorized",
    )
    .await;

    let key = app.create_key(None, &[Role::Ingest]).await;
    assert_eq!(
        app.post_events(&one_event(&mut b), Some(&key))
            .await
            .status(),
        200
    );
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE api_key SET status = 'revoked' WHERE key_hash = $1",
            &[&hash_key(&key)],
        )
        .await
        .unwrap();
    let body = assert_error(
        app.post_events(&one_event(&mut b), Some(&key)).await,
        401,
        "unauthorized",
    )
    .await;
    assert!(body["message"].as_str().unwrap().contains("revoked"));
}

#[tokio::test]
async fn the_keys_cli_creates_lists_and_revokes_keys_stored_only_as_hashes() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let mut b = EventBuilder::new();
    let cli = |args: &[&str]| {
        std::process::Command::new(bin_path("flowmeter-api"))
            .args(args)
            .env_clear()
            .env("FLOWMETER_DATABASE_URL", &app.db.url)
            .env("FLOWMETER_LOG", "warn")
            .output()
            .unwrap()
    };
    let project = b.project_id.to_string();
    let out = cli(&[
        "keys",
        "create",
        "--project",
        &project,
        "--roles",
        "ingest,viewer",
        "--name",
        "ci",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let created: Value = serde_json::from_slice(&out.stdout).unwrap();
    let secret = created["key"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("fm_"));
    assert_eq!(created["api_key"]["roles"], json!(["ingest", "viewer"]));

    // Stored only as a hash: the secret appears in no column of any row.
    let client = app.db.client().await;
    let leaked: i64 = client
        .query_one(
            "SELECT count(*) FROM api_key k WHERE position($1 in k::text) > 0",
            &[&secret],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(leaked, 0);
    let hashed: i64 = client
        .query_one(
            "SELECT count(*) FROM api_key WHERE key_hash = $1",
            &[&hash_key(&secret)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(hashed, 1);

    assert_eq!(
        app.post_events(&one_event(&mut b), Some(&secret))
            .await
            .status(),
        200
    );

    let out = cli(&["keys", "list"]);
    let listed: Value = serde_json::from_slice(&out.stdout).unwrap();
    let id = listed["keys"][0]["id"].as_str().unwrap().to_owned();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&secret));

    let out = cli(&["keys", "revoke", &id]);
    assert!(out.status.success());
    assert_error(
        app.post_events(&one_event(&mut b), Some(&secret)).await,
        401,
        "unauthorized",
    )
    .await;

    let out = cli(&["keys", "revoke", &uuid::Uuid::new_v4().to_string()]);
    assert!(!out.status.success());
    let out = cli(&[
        "keys",
        "create",
        "--project",
        "nope",
        "--roles",
        "viewer",
        "--name",
        "x",
    ]);
    assert!(!out.status.success());
    let out = cli(&[
        "keys",
        "create",
        "--project",
        "*",
        "--roles",
        "superuser",
        "--name",
        "x",
    ]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn the_bootstrap_key_from_the_environment_is_an_admin_key() {
    let secret = "fm_bootstrap_secret_for_tests_0123456789";
    let app =
        TestApp::spawn_with(TestAppOptions::with_auth().env("FLOWMETER_API_KEY", secret)).await;
    let mut b = EventBuilder::new();
    assert_eq!(
        app.post_events(&one_event(&mut b), Some(secret))
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn auth_disabled_refuses_a_non_loopback_address_unless_insecure_is_allowed() {
    let db = flowmeter_tests::TestDb::migrated().await;
    let options = TestAppOptions::default().env("FLOWMETER_HTTP_ADDR", "0.0.0.0:0");
    let settings = TestApp::settings(&db.url, &options);
    let error = flowmeter_api::startup::Application::build(settings)
        .await
        .err()
        .expect("refused");
    assert!(
        error.to_string().contains("FLOWMETER_ALLOW_INSECURE"),
        "{error}"
    );

    let settings = TestApp::settings(&db.url, &options.env("FLOWMETER_ALLOW_INSECURE", "1"));
    assert!(flowmeter_api::startup::Application::build(settings)
        .await
        .is_ok());
}
