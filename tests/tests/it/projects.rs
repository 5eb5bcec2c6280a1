//! `GET /v1/projects`, `GET /v1/projects/{id}` and `GET /v1/session` (SPEC §15): scope by
//! the key, paging, `q` and `status`, 404/403, ETag 304, and every body checked against its
//! schema in `/v1/openapi.json`.

use std::collections::BTreeSet;

use chrono::Utc;
use flowmeter_shared::auth::Role;
use flowmeter_tests::app::assert_error;
use flowmeter_tests::events::EventBuilder;
use flowmeter_tests::openapi::{document as openapi_document, response_schema, validate};
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::{json, Value};
use uuid::Uuid;

/// Names `count` projects `<prefix>-<k>` with `events` events each (tasks created), returns
/// their ids in creation order.
async fn named_projects(app: &TestApp, prefix: &str, count: usize, events: usize) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for k in 0..count {
        let mut b = EventBuilder::new();
        let at = Utc::now() - chrono::Duration::hours(3);
        let batch: Vec<Value> = (0..events)
            .map(|t| b.task_created(&format!("t{t}"), at, json!({})))
            .collect();
        app.seed(&batch).await;
        app.db
            .client()
            .await
            .execute(
                "UPDATE project SET name = $2 WHERE id = $1",
                &[&b.project_id, &format!("{prefix}-{k:02}")],
            )
            .await
            .unwrap();
        ids.push(b.project_id);
    }
    ids
}

async fn json_of(app: &TestApp, path: &str, key: &str) -> Value {
    let response = app.get(path, Some(key)).await;
    assert_eq!(response.status(), 200, "{path}");
    flowmeter_tests::app::assert_common_headers(&response);
    response.json().await.unwrap()
}

/// The ids `GET path` lists (authentication off).
async fn listed(app: &TestApp, path: &str) -> Vec<Uuid> {
    ids(&app.get(path, None).await.json::<Value>().await.unwrap())
}

/// `GET path` with `If-None-Match: etag`.
async fn revalidate(app: &TestApp, path: &str, etag: &str) -> reqwest::Response {
    app.http
        .get(app.url(path))
        .header("If-None-Match", etag)
        .send()
        .await
        .unwrap()
}

fn ids(body: &Value) -> Vec<Uuid> {
    body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap().parse().unwrap())
        .collect()
}

#[tokio::test]
async fn a_project_key_lists_only_its_project_and_a_star_key_lists_all() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let projects = named_projects(&app, "scope", 3, 2).await;
    let star = app.create_key(None, &[Role::Viewer]).await;
    let one = app.create_key(Some(projects[1]), &[Role::Viewer]).await;
    let all = json_of(&app, "/v1/projects", &star).await;
    assert_eq!(ids(&all), projects, "ordered by name, every project");
    let scoped = json_of(&app, "/v1/projects", &one).await;
    assert_eq!(ids(&scoped), vec![projects[1]]);
    assert_eq!(scoped["next_cursor"], Value::Null);
    // The single route: its own project, 403 for another (before existence), 404 unknown.
    let own = json_of(&app, &format!("/v1/projects/{}", projects[1]), &one).await;
    assert_eq!(own["data"]["id"], projects[1].to_string());
    assert_eq!(own["data"]["name"], "scope-01");
    assert_error(
        app.get(&format!("/v1/projects/{}", projects[0]), Some(&one))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.get(&format!("/v1/projects/{}", Uuid::new_v4()), Some(&one))
            .await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        app.get(&format!("/v1/projects/{}", Uuid::new_v4()), Some(&star))
            .await,
        404,
        "not_found",
    )
    .await;
    // An ingest-only key may not list projects.
    let ingest = app.create_key(None, &[Role::Ingest]).await;
    assert_error(
        app.get("/v1/projects", Some(&ingest)).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(app.get("/v1/projects", None).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn pages_follow_the_cursor_and_q_and_status_filter() {
    let app = TestApp::spawn().await;
    let mut projects = named_projects(&app, "Alpha", 5, 1).await;
    projects.extend(named_projects(&app, "beta", 2, 1).await);
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE project SET status = 'archived' WHERE id = $1",
            &[&projects[6]],
        )
        .await
        .unwrap();
    // Pages of 2: every project once, in name order, the last page without a cursor.
    let mut seen = Vec::new();
    let mut path = "/v1/projects?limit=2".to_owned();
    let mut pages = 0;
    loop {
        let body = app.get(&path, None).await.json::<Value>().await.unwrap();
        let page = ids(&body);
        assert!(page.len() <= 2);
        seen.extend(page);
        pages += 1;
        match body["next_cursor"].as_str() {
            Some(cursor) => path = format!("/v1/projects?limit=2&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(
        seen, projects,
        "Alpha-00…04 then beta-00, beta-01 (byte order)"
    );
    // q: a case-insensitive substring of the name (wildcards literal); status.
    for (path, expected) in [
        ("/v1/projects?q=ALPHA-0", projects[..5].to_vec()),
        ("/v1/projects?q=ta-01", vec![projects[6]]),
        ("/v1/projects?q=%25", Vec::new()),
        ("/v1/projects?status=archived", vec![projects[6]]),
        ("/v1/projects?status=active&q=beta", vec![projects[5]]),
    ] {
        assert_eq!(listed(&app, path).await, expected, "{path}");
    }
    // Bad input names the field.
    for (path, status, field) in [
        ("/v1/projects?limit=0", 422, "limit"),
        ("/v1/projects?limit=501", 422, "limit"),
        ("/v1/projects?limit=ten", 400, "limit"),
        ("/v1/projects?status=gone", 422, "status"),
        ("/v1/projects?q=", 400, "q"),
        ("/v1/projects?cursor=nope", 400, "cursor"),
        ("/v1/projects?planet=mars", 400, "planet"),
        ("/v1/projects?limit=1&limit=2", 400, "limit"),
        ("/v1/projects?q=a%00", 422, "q"),
        ("/v1/projects/abc", 400, "id"),
        ("/v1/projects/%27%20OR%201%3D1", 400, "id"),
    ] {
        let response = app.get(path, None).await;
        let code = if status == 400 {
            "bad_request"
        } else {
            "validation_error"
        };
        let body = assert_error(response, status, code).await;
        assert_eq!(body["details"]["field"], field, "{path}: {body}");
    }
    let gone = format!("/v1/projects?cursor={}", Uuid::new_v4().simple());
    let body = assert_error(app.get(&gone, None).await, 422, "validation_error").await;
    assert_eq!(body["details"]["field"], "cursor");
}

#[tokio::test]
async fn counts_freshness_and_etags_follow_the_log_and_the_fold() {
    let app = TestApp::spawn().await;
    let document = openapi_document(&app).await;
    let project = named_projects(&app, "counted", 1, 4).await[0];
    let path = format!("/v1/projects/{project}");
    let check_schema = |template: &str, body: &Value| {
        let schema = response_schema(&document, "get", template, 200).unwrap();
        let errors = validate(&document, schema, body);
        assert!(errors.is_empty(), "{template}: {}", errors.join("\n"));
    };
    let response = app.get(&path, None).await;
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    check_schema("/v1/projects/{id}", &body);
    let item = &body["data"];
    assert_eq!(item["event_count"], 4);
    assert_eq!(item["status"], "active");
    assert!(item["last_event_at"].as_str().is_some(), "{item}");
    assert_eq!(
        item["freshness"],
        json!({"as_of_seq": 0, "log_head_seq": 4, "lag_events": 4, "captured_at": null})
    );
    // Unchanged: 304 with the same tag, for both routes.
    let again = revalidate(&app, &path, &etag).await;
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"].to_str().unwrap(), etag);
    let list = app.get("/v1/projects", None).await;
    let list_etag = list.headers()["etag"].to_str().unwrap().to_owned();
    let list_body: Value = list.json().await.unwrap();
    check_schema("/v1/projects", &list_body);
    assert_eq!(list_body["data"][0], body["data"]);
    let list_again = revalidate(&app, "/v1/projects", &list_etag).await;
    assert_eq!(list_again.status(), 304);
    // Folding changes freshness, so the tag; a new event changes the count.
    worker_json(
        &app.db.url,
        &["once", "--project", &project.to_string()],
        &[],
    );
    let folded = revalidate(&app, &path, &etag).await;
    assert_eq!(folded.status(), 200);
    let folded: Value = folded.json().await.unwrap();
    assert_eq!(folded["data"]["freshness"]["as_of_seq"], 4);
    assert_eq!(folded["data"]["freshness"]["lag_events"], 0);
    assert!(folded["data"]["freshness"]["captured_at"]
        .as_str()
        .is_some());
    let mut b = EventBuilder::for_project(project);
    let mut late = b.task_created("late-1", Utc::now(), json!({}));
    late["event_id"] = json!("late-event-1");
    app.seed(&[late]).await;
    let body = app.get(&path, None).await.json::<Value>().await.unwrap();
    assert_eq!(body["data"]["event_count"], 5);
    assert_eq!(body["data"]["freshness"]["lag_events"], 1);
    check_schema("/v1/projects/{id}", &body);
}

#[tokio::test]
async fn the_session_says_whether_a_key_is_needed_and_what_it_may_do() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let document = openapi_document(&app).await;
    let project = Uuid::new_v4();
    let planner = app
        .create_key(Some(project), &[Role::Viewer, Role::Planner])
        .await;
    let schema = response_schema(&document, "get", "/v1/session", 200).unwrap();
    let anonymous: Value = app.get("/v1/session", None).await.json().await.unwrap();
    assert!(validate(&document, schema, &anonymous).is_empty());
    assert_eq!(
        anonymous,
        json!({"version": "1.0", "auth_required": true, "authenticated": false, "roles": [], "project_id": null})
    );
    let keyed: Value = app
        .get("/v1/session", Some(&planner))
        .await
        .json()
        .await
        .unwrap();
    assert!(validate(&document, schema, &keyed).is_empty());
    assert_eq!(keyed["authenticated"], true);
    assert_eq!(
        keyed["roles"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.as_str().unwrap())
            .collect::<BTreeSet<_>>(),
        BTreeSet::from(["planner", "viewer"])
    );
    assert_eq!(keyed["project_id"], project.to_string());
    let unknown = format!("fm_{}", "1".repeat(64));
    assert_error(
        app.get("/v1/session", Some(&unknown)).await,
        401,
        "unauthorized",
    )
    .await;

    let open = TestApp::spawn().await;
    let body: Value = open.get("/v1/session", None).await.json().await.unwrap();
    assert_eq!(body["auth_required"], false);
    assert_eq!(body["authenticated"], true);
    assert_eq!(body["roles"], json!(["admin"]));
}
