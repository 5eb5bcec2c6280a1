//! Every route × {no key, unknown key, revoked, expired, another project's key, a key without
//! the role, the right key} → the documented status (SPEC §7).

use chrono::Utc;
use flowmeter_shared::auth::Role;
use flowmeter_tests::{TestApp, TestAppOptions};

use super::*;

#[tokio::test]
async fn every_route_answers_each_kind_of_key_with_the_documented_status() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let (project, alert) = folded_project_with_alert(&app).await;
    let all_roles = [Role::Viewer, Role::Planner, Role::Ingest, Role::Admin];
    let revoked = app.create_key(Some(project), &all_roles).await;
    let revoked_rows = app
        .db
        .client()
        .await
        .execute(
            "UPDATE api_key SET status = 'revoked' WHERE key_hash = $1",
            &[&flowmeter_shared::auth::hash_key(&revoked)],
        )
        .await
        .unwrap();
    assert_eq!(revoked_rows, 1);
    let expired = app
        .create_key_expiring(
            Some(project),
            &all_roles,
            Some(Utc::now() - chrono::Duration::minutes(1)),
        )
        .await;
    let other_project = app.create_key(Some(Uuid::new_v4()), &all_roles).await;
    let unknown = format!("fm_{}", "0".repeat(64));

    let mut failures = Vec::new();
    for route in routes(project, alert) {
        let right = match route.role {
            Some(role) => Some(app.create_key(Some(project), &[role]).await),
            None => None,
        };
        // A key holding every role except the one needed (admin grants everything).
        let lacking = match route.role {
            Some(needed) => {
                let roles: Vec<Role> = [Role::Viewer, Role::Planner, Role::Ingest]
                    .into_iter()
                    .filter(|r| *r != needed && !(needed == Role::Viewer && *r == Role::Planner))
                    .collect();
                Some(app.create_key(Some(project), &roles).await)
            }
            None => None,
        };
        let protected = route.role.is_some();
        let cases: Vec<(&str, Option<String>, u16)> = vec![
            ("no key", None, if protected { 401 } else { 200 }),
            (
                "unknown key",
                Some(unknown.clone()),
                if protected { 401 } else { 200 },
            ),
            (
                "revoked key",
                Some(revoked.clone()),
                if protected { 401 } else { 200 },
            ),
            (
                "expired key",
                Some(expired.clone()),
                if protected { 401 } else { 200 },
            ),
            (
                "other project's key",
                Some(other_project.clone()),
                if protected { 403 } else { 200 },
            ),
            (
                "key without the role",
                lacking.clone(),
                if protected { 403 } else { 200 },
            ),
            ("right key", right.clone(), 200),
        ];
        for (case, key, expected) in cases {
            let mut request = app.http.request(route.method.clone(), app.url(&route.path));
            if let Some(key) = &key {
                request = request.bearer_auth(key);
            }
            if let Some(body) = &route.body {
                request = request.json(body);
            }
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            if status != expected {
                failures.push(format!(
                    "{} {} with {case}: {status}, expected {expected}",
                    route.method, route.path
                ));
                continue;
            }
            if status == 401 {
                assert_eq!(
                    response
                        .headers()
                        .get("www-authenticate")
                        .and_then(|v| v.to_str().ok()),
                    Some("Bearer"),
                    "{} {case}",
                    route.path
                );
            }
            if status >= 400 {
                let code = if status == 401 {
                    "unauthorized"
                } else {
                    "forbidden"
                };
                flowmeter_tests::app::assert_error(response, status, code).await;
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// GitHub cannot send a key: its route ignores every kind of key and answers by the
/// delivery's signature alone (401 without a valid one, 202 for a signed `ping`).
#[tokio::test]
async fn the_github_route_answers_by_signature_whatever_the_key() {
    use crate::dora::github::{deliver, fixture, signed, store_secret, with_secret_key};
    let app = TestApp::spawn_with(with_secret_key(TestAppOptions::with_auth())).await;
    let project = Uuid::new_v4();
    store_secret(&app, project).await;
    let admin = app.create_key(Some(project), &[Role::Admin]).await;
    let ping = fixture("16-ping");
    let mut failures = Vec::new();
    for (case, key) in [
        ("no key", None),
        ("admin key", Some(admin)),
        ("unknown key", Some(format!("fm_{}", "0".repeat(64)))),
    ] {
        for (signature, expected) in [(None, 401), (signed(b"other"), 401), (signed(&ping), 202)] {
            let mut request = app
                .http
                .post(app.url(&format!("/v1/integrations/github?project_id={project}")))
                .header("content-type", "application/json")
                .header("x-github-event", "ping")
                .header("x-github-delivery", "d-auth")
                .body(ping.clone());
            if let Some(key) = &key {
                request = request.bearer_auth(key);
            }
            if let Some(signature) = signature {
                request = request.header("x-hub-signature-256", signature);
            }
            let status = request.send().await.unwrap().status().as_u16();
            if status != expected {
                failures.push(format!("{case}: {status}, expected {expected}"));
            }
        }
    }
    // The plain deliver helper (no key) agrees.
    let response = deliver(&app, project, "ping", "d", &ping, None).await;
    flowmeter_tests::app::assert_error(response, 401, "unauthorized").await;
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
