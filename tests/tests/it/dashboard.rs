//! The built-in dashboard (SPEC §15): served embedded from the binary with a strict CSP and
//! gzip; its vitest unit tests; and the browser tests (`services/dashboard/browser/run.mjs`:
//! Debian's chromium driven by playwright-core) against the real API with folded demo
//! projects and a project with a firing alert. Screenshots land in
//! `target/dashboard-screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Command;

use flowmeter_shared::auth::Role;
use flowmeter_tests::{TestApp, TestAppOptions};

fn dashboard_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("services/dashboard")
}

/// `npm run <script>` in services/dashboard with `env`; panics with its output on failure.
fn npm(script: &str, env: &[(&str, String)]) -> String {
    let dir = dashboard_dir();
    assert!(
        dir.join("node_modules").is_dir(),
        "services/dashboard/node_modules is missing: run scripts/install-deps (make test does)"
    );
    let output = Command::new("npm")
        .args(["run", "--silent", script])
        .current_dir(&dir)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .expect("npm runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "npm run {script} failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_dashboards_unit_tests_pass() {
    let out = npm("test", &[]);
    assert!(out.contains("passed"), "{out}");
}

/// The first script `index.html` loads.
fn script_path(html: &str) -> String {
    let at = html
        .find("src=\"/ui/assets/")
        .expect("a script under /ui/assets/");
    let rest = &html[at + 5..];
    rest[..rest.find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn the_dashboard_is_embedded_with_a_strict_policy_and_gzip() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    // No key is needed to load the page.
    let page = app.get("/", None).await;
    assert_eq!(
        page.status(),
        200,
        "GET / — a 503 means flowmeter-api was built without services/dashboard/dist (scripts/build-dashboard)"
    );
    flowmeter_tests::app::assert_common_headers(&page);
    let headers = page.headers().clone();
    assert!(headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let policy = headers["content-security-policy"].to_str().unwrap();
    assert!(policy.starts_with("default-src 'self'"), "{policy}");
    assert!(
        !policy.contains("unsafe-inline") && !policy.contains("http"),
        "{policy}"
    );
    let html = page.text().await.unwrap();
    assert!(
        !html.contains("<style") && !html.contains("style="),
        "no inline style: {html}"
    );
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "no other origin: {html}"
    );
    // Every script is a file under /ui/assets/ (none inline).
    assert_eq!(
        html.matches("<script").count(),
        html.matches("<script type=\"module\" crossorigin src=\"/ui/assets/")
            .count(),
        "{html}"
    );
    let script = script_path(&html);
    // gzip for a client that accepts it (reqwest here decompresses nothing).
    let gz = app
        .http
        .get(app.url(&script))
        .header("Accept-Encoding", "gzip")
        .send()
        .await
        .unwrap();
    assert_eq!(gz.status(), 200);
    assert_eq!(gz.headers()["content-encoding"], "gzip");
    assert!(gz.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/javascript"));
    assert_eq!(
        gz.headers()["content-security-policy"].to_str().unwrap(),
        policy
    );
    let compressed = gz.bytes().await.unwrap();
    let plain = app.get(&script, None).await.bytes().await.unwrap();
    let mut decoded = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(&compressed[..]),
        &mut decoded,
    )
    .unwrap();
    assert_eq!(decoded, plain.to_vec(), "the gzip copy is the same file");
    println!(
        "dashboard first-load JavaScript: {} bytes, {} gzip",
        plain.len(),
        compressed.len()
    );
    assert!(
        compressed.len() < 250 * 1024,
        "{} bytes gzip",
        compressed.len()
    );
    // An unknown asset is a 404 in the envelope.
    flowmeter_tests::app::assert_error(app.get("/ui/assets/nope.js", None).await, 404, "not_found")
        .await;
}

#[tokio::test]
async fn the_dashboard_in_a_real_browser_shows_the_apis_numbers() {
    let app = TestApp::spawn_with(
        TestAppOptions::with_auth()
            .env("FLOWMETER_RATE_LIMIT_SUMMARY", "0")
            .env("FLOWMETER_RATE_LIMIT_TRENDS", "0")
            .env("FLOWMETER_RATE_LIMIT_BREAKDOWN", "0")
            .env("FLOWMETER_RATE_LIMIT_DRILLDOWN", "0")
            .env("FLOWMETER_RATE_LIMIT_OTHER", "0"),
    )
    .await;
    let mut projects = crate::ops::load_demo(&app.db.url, 2, 80);
    // The first demo project also deploys (the hand-worked DORA history); the second does not.
    let mut dora = flowmeter_tests::events::EventBuilder::for_project(projects[0]);
    app.seed(&crate::dora::scenario::dora_events(&mut dora))
        .await;
    // A project with a firing ini_backlog alert (folded once), then the demo's by the daemon.
    let (alerted, alert) = crate::reliability::folded_project_with_alert(&app).await;
    let mut worker = crate::ops::fold_everything(&app.db.url).await;
    worker.terminate();
    projects.push(alerted);
    // The worker stops: one more event leaves the alerted project behind a snapshot taken on
    // the tests' clock (months ago), which the badge calls stale. A registered project
    // without events shows its empty state.
    let mut late = flowmeter_tests::events::EventBuilder::for_project(alerted).task_created(
        "late-task",
        chrono::Utc::now(),
        serde_json::json!({}),
    );
    late["event_id"] = serde_json::json!("dashboard-late-event");
    app.seed(&[late]).await;
    let empty = uuid::Uuid::new_v4();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO project (id, name) VALUES ($1, 'Zeta (no events yet)')",
            &[&empty],
        )
        .await
        .unwrap();
    let admin = app.create_key(None, &[Role::Admin]).await;
    let planner = app.create_key(None, &[Role::Viewer, Role::Planner]).await;
    let viewer = app.create_key(None, &[Role::Viewer]).await;
    let ingest = app.create_key(None, &[Role::Ingest]).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("target/dashboard-screenshots");
    let base = app.base_url.clone();
    let list = projects
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let env = vec![
        ("FLOWMETER_DASHBOARD_URL", base),
        ("FLOWMETER_ADMIN_KEY", admin),
        ("FLOWMETER_PLANNER_KEY", planner),
        ("FLOWMETER_VIEWER_KEY", viewer),
        ("FLOWMETER_INGEST_KEY", ingest),
        ("FLOWMETER_PROJECTS", list),
        ("FLOWMETER_ALERT", format!("{alerted}/{alert}")),
        ("FLOWMETER_EMPTY_PROJECT", empty.to_string()),
        ("FLOWMETER_SCREENSHOTS", shots.display().to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || npm("browser-test", &env))
        .await
        .unwrap();
    println!("dashboard measurements: {out}");
    for view in [
        "01-key-form",
        "02-overview",
        "03-trends-day",
        "04b-trends-dora",
        "05-breakdown",
        "05b-breakdown-dora",
        "06-drilldown",
        "07-alert-deep-link",
        "09-alerts-viewer",
    ] {
        assert!(shots.join(format!("{view}.png")).is_file(), "{view}.png");
    }
}
