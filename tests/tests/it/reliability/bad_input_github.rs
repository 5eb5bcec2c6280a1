//! Bad input on the GitHub route (`POST /v1/integrations/github`): a documented 4xx in the
//! envelope naming the field, never a 500, and nothing stored.

use flowmeter_tests::TestApp;

use super::bad_input::check;
use super::*;

/// One bad request to the GitHub route and the answer it must get.
struct GithubCase {
    case: &'static str,
    path: String,
    content_type: &'static str,
    kind: &'static str,
    delivery: String,
    body: Vec<u8>,
    signed: bool,
    status: u16,
    field: Option<&'static str>,
}

/// Every case against a project with a secret.
#[tokio::test]
async fn the_github_route_gets_documented_4xx_for_bad_input() {
    use crate::dora::github::{fixture, signed, store_secret, with_secret_key};
    let app =
        TestApp::spawn_with(with_secret_key(flowmeter_tests::TestAppOptions::default())).await;
    let p = Uuid::new_v4();
    store_secret(&app, p).await;
    let opened = fixture("01-pull_request-opened");
    let mut no_created: Value = serde_json::from_slice(&opened).unwrap();
    no_created["pull_request"]
        .as_object_mut()
        .unwrap()
        .remove("created_at");
    let no_created = serde_json::to_vec(&no_created).unwrap();
    let mut nul_title: Value = serde_json::from_slice(&opened).unwrap();
    nul_title["pull_request"]["title"] = json!("a\u{0}b");
    let nul_title = serde_json::to_vec(&nul_title).unwrap();
    let path = format!("/v1/integrations/github?project_id={p}");
    // A signed JSON pull_request delivery, changed in one way per case.
    let case = |case, status, field| GithubCase {
        case,
        path: path.clone(),
        content_type: "application/json",
        kind: "pull_request",
        delivery: "d".into(),
        body: opened.clone(),
        signed: true,
        status,
        field,
    };
    let cases = vec![
        GithubCase {
            path: "/v1/integrations/github".into(),
            ..case("no project_id", 400, Some("project_id"))
        },
        GithubCase {
            path: "/v1/integrations/github?project_id=abc".into(),
            ..case("bad UUID", 400, Some("project_id"))
        },
        GithubCase {
            path: format!("{path}&secret=1"),
            ..case("unknown parameter", 400, Some("secret"))
        },
        GithubCase {
            content_type: "application/x-www-form-urlencoded",
            ..case("form content type", 415, Some("content-type"))
        },
        GithubCase {
            signed: false,
            ..case("unsigned", 401, None)
        },
        GithubCase {
            kind: "",
            ..case("no event kind", 400, Some("X-GitHub-Event"))
        },
        GithubCase {
            delivery: "d".repeat(129),
            ..case("delivery id too long", 400, Some("X-GitHub-Delivery"))
        },
        GithubCase {
            body: b"{not json".to_vec(),
            ..case("not JSON", 400, Some("body"))
        },
        GithubCase {
            body: no_created,
            ..case("mapped field missing", 422, Some("pull_request.created_at"))
        },
        GithubCase {
            body: nul_title,
            ..case("NUL in a mapped field", 422, None)
        },
    ];
    let mut failures = Vec::new();
    for c in cases {
        let mut request = app
            .http
            .post(app.url(&c.path))
            .header("content-type", c.content_type)
            .header("x-github-event", c.kind)
            .header("x-github-delivery", &c.delivery)
            .body(c.body.clone());
        if c.signed {
            request = request.header("x-hub-signature-256", signed(&c.body).unwrap());
        }
        let response = request.send().await.unwrap();
        let answer_status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::Null);
        if let Some(problem) = check(c.case, &(answer_status, json, text), c.status, c.field) {
            failures.push(problem);
        }
    }
    assert_eq!(app.stored_events(p).await, 0);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
