//! `GET /v1/metrics/alerts` and `POST /v1/metrics/alerts/{id}/acknowledge` against the real
//! server, over alerts the real worker raised.

use super::*;
use flowmeter_shared::auth::Role;
use flowmeter_tests::app::assert_error;
use flowmeter_tests::TestAppOptions;

/// Five rules that all fire on a small project, so listings have something to page.
const FIVE_RULES: &str = r#"
[[rule]]
metric_key = "ini_backlog"
direction = "above"
warning = 1
critical = 2

[[rule]]
metric_key = "operational.wip.total_count"
direction = "above"
warning = 1

[[rule]]
metric_key = "operational.state_distribution.by_state.implemented"
direction = "above"
warning = 1

[[rule]]
metric_key = "operational.backlog.avg_age_hours"
direction = "above"
warning = 1

[[rule]]
metric_key = "operational.wip.avg_age_hours"
direction = "above"
warning = 1
emergency = 2
"#;

async fn project_with_alerts(app: &TestApp) -> Uuid {
    let rules = rule_file("five", FIVE_RULES);
    let mut backlog = Backlog::new();
    backlog
        .set(app, 3, &[("FLOWMETER_ALERT_RULES", rules.as_str())])
        .await;
    backlog.project()
}

async fn list(app: &TestApp, project: Uuid, query: &str, key: Option<&str>) -> Value {
    let response = app
        .get(
            &format!("/v1/metrics/alerts?project_id={project}{query}"),
            key,
        )
        .await;
    assert_eq!(response.status(), 200, "{query}");
    flowmeter_tests::app::assert_common_headers(&response);
    assert!(response.headers().get("etag").is_some());
    response.json().await.unwrap()
}

async fn ack(
    app: &TestApp,
    project: Uuid,
    alert: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.post(app.url(&format!(
        "/v1/metrics/alerts/{alert}/acknowledge?project_id={project}"
    )));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn alerts_list_newest_first_with_filters_and_cursor_pages() {
    let app = TestApp::spawn().await;
    let project = project_with_alerts(&app).await;
    let all = list(&app, project, "", None).await;
    assert_eq!(all["version"], "1.0");
    assert_eq!(all["project_id"], json!(project));
    assert!(all["freshness"]["as_of_seq"].as_i64().unwrap() > 0);
    let items = all["items"].as_array().unwrap();
    assert_eq!(items.len(), 5);
    assert_eq!(all["next_cursor"], Value::Null);
    let keys = [
        "id",
        "project_id",
        "metric_key",
        "alert_type",
        "severity",
        "state",
        "value",
        "threshold",
        "context",
        "created_at",
        "updated_at",
        "resolved_at",
        "acknowledged_at",
        "acknowledged_by",
        "ack_reason",
        "ack_expires_at",
    ];
    for item in items {
        let mut fields: Vec<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        fields.sort_unstable();
        let mut expected = keys.to_vec();
        expected.sort_unstable();
        assert_eq!(fields, expected);
        assert_eq!(item["state"], "firing");
    }
    // Newest first: (created_at, id) descending.
    let order: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            (
                i["created_at"].as_str().unwrap().to_owned(),
                i["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let mut sorted = order.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(order, sorted);

    // Pages of 2 walk the same list.
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &cursor {
            Some(c) => format!("&limit=2&cursor={c}"),
            None => "&limit=2".into(),
        };
        let page = list(&app, project, &query, None).await;
        pages += 1;
        for item in page["items"].as_array().unwrap() {
            seen.push(item["id"].as_str().unwrap().to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(
        seen,
        order.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>()
    );

    // Filters.
    let critical = list(&app, project, "&severity=critical", None).await;
    let critical = critical["items"].as_array().unwrap();
    assert_eq!(critical.len(), 1);
    assert_eq!(critical[0]["metric_key"], "ini_backlog");
    let emergency = list(&app, project, "&severity=emergency", None).await;
    assert_eq!(
        emergency["items"][0]["metric_key"],
        "operational.wip.avg_age_hours"
    );
    let by_key = list(
        &app,
        project,
        "&metric_key=operational.wip.total_count",
        None,
    )
    .await;
    assert_eq!(by_key["items"].as_array().unwrap().len(), 1);
    assert_eq!(
        list(&app, project, "&state=resolved", None).await["items"],
        json!([])
    );
    assert_eq!(
        list(&app, project, "&state=firing", None).await["items"]
            .as_array()
            .unwrap()
            .len(),
        5
    );
    assert_eq!(
        list(&app, project, "&acknowledged=true", None).await["items"],
        json!([])
    );
}

#[tokio::test]
async fn malformed_alert_parameters_are_4xx_naming_the_field() {
    let app = TestApp::spawn().await;
    let project = project_with_alerts(&app).await;
    let cases = [
        ("&severity=loud", 422, "severity"),
        ("&state=open", 422, "state"),
        ("&acknowledged=yes", 422, "acknowledged"),
        ("&limit=0", 422, "limit"),
        ("&limit=501", 422, "limit"),
        ("&limit=-1", 422, "limit"),
        ("&limit=ten", 400, "limit"),
        ("&cursor=abc", 400, "cursor"),
        ("&cursor=1.not-a-uuid", 400, "cursor"),
        (
            "&cursor=99999999999999999999.00000000000000000000000000000000",
            400,
            "cursor",
        ),
        ("&colour=red", 400, "colour"),
    ];
    for (query, status, field) in cases {
        let response = app
            .get(
                &format!("/v1/metrics/alerts?project_id={project}{query}"),
                None,
            )
            .await;
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(response, status, code).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let body = assert_error(
        app.get("/v1/metrics/alerts?project_id=nope", None).await,
        400,
        "bad_request",
    )
    .await;
    assert_eq!(body["details"]["field"], "project_id");
    let unknown = Uuid::new_v4();
    assert_error(
        app.get(&format!("/v1/metrics/alerts?project_id={unknown}"), None)
            .await,
        404,
        "not_found",
    )
    .await;
}

#[tokio::test]
async fn acknowledging_is_for_planners_idempotent_and_does_not_resolve() {
    let app = TestApp::spawn_with(TestAppOptions::with_auth()).await;
    let project = project_with_alerts(&app).await;
    let other_project = project_with_alerts(&app).await;
    let viewer = app.create_key(Some(project), &[Role::Viewer]).await;
    let planner = app.create_key(Some(project), &[Role::Planner]).await;
    let admin = app.create_key(None, &[Role::Admin]).await;
    let other_planner = app.create_key(Some(other_project), &[Role::Planner]).await;

    let items = list(&app, project, "", Some(&viewer)).await["items"].clone();
    let alert = items[0]["id"].as_str().unwrap().to_owned();
    let foreign = list(&app, other_project, "", Some(&admin)).await["items"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // Who may: viewers not, other projects' keys not (scope before existence), no key not.
    assert_error(
        ack(&app, project, &alert, Some(&viewer), None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        ack(&app, project, &alert, Some(&other_planner), None).await,
        403,
        "forbidden",
    )
    .await;
    assert_error(
        ack(&app, project, &alert, None, None).await,
        401,
        "unauthorized",
    )
    .await;
    // Unknown alert, and an alert of another project, are 404.
    let missing = Uuid::new_v4().to_string();
    assert_error(
        ack(&app, project, &missing, Some(&planner), None).await,
        404,
        "not_found",
    )
    .await;
    assert_error(
        ack(&app, project, &foreign, Some(&admin), None).await,
        404,
        "not_found",
    )
    .await;
    // Bad input.
    for (alert_id, body, status, field) in [
        ("not-a-uuid", None, 400, "id"),
        (alert.as_str(), Some(json!({"reason": 5})), 422, "reason"),
        (
            alert.as_str(),
            Some(json!({"expires_in_minutes": 0})),
            422,
            "expires_in_minutes",
        ),
        (
            alert.as_str(),
            Some(json!({"expires_in_minutes": "soon"})),
            422,
            "expires_in_minutes",
        ),
        (
            alert.as_str(),
            Some(json!({"reason": "x", "why": 1})),
            422,
            "why",
        ),
        (alert.as_str(), Some(json!(["reason"])), 400, "body"),
    ] {
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(
            ack(&app, project, alert_id, Some(&planner), body).await,
            status,
            code,
        )
        .await;
        assert_eq!(body["details"]["field"], field);
    }

    let first = ack(
        &app,
        project,
        &alert,
        Some(&planner),
        Some(json!({"reason": "on it", "expires_in_minutes": 120})),
    )
    .await;
    assert_eq!(first.status(), 200);
    flowmeter_tests::app::assert_common_headers(&first);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["version"], "1.0");
    assert_eq!(first["id"], json!(alert));
    assert_eq!(first["state"], "firing", "acknowledging does not resolve");
    assert_eq!(first["ack_reason"], "on it");
    assert!(first["acknowledged_by"]
        .as_str()
        .unwrap()
        .starts_with("key:fm_"));
    let acked_at = first["acknowledged_at"].as_str().unwrap().to_owned();
    let expires =
        chrono::DateTime::parse_from_rfc3339(first["ack_expires_at"].as_str().unwrap()).unwrap();
    let at = chrono::DateTime::parse_from_rfc3339(&acked_at).unwrap();
    assert_eq!(expires - at, Duration::minutes(120));

    // Twice: the first acknowledgement unchanged, by an admin with another reason too.
    let again: Value = ack(
        &app,
        project,
        &alert,
        Some(&admin),
        Some(json!({"reason": "me too"})),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again["acknowledged_at"], json!(acked_at));
    assert_eq!(again["ack_reason"], "on it");
    assert_eq!(again["acknowledged_by"], first["acknowledged_by"]);

    let acked = list(&app, project, "&acknowledged=true", Some(&viewer)).await;
    assert_eq!(acked["items"].as_array().unwrap().len(), 1);
    assert_eq!(acked["items"][0]["id"], json!(alert));
    assert_eq!(
        list(&app, project, "&acknowledged=false", Some(&viewer)).await["items"]
            .as_array()
            .unwrap()
            .len(),
        4
    );
    let alert_id = Uuid::parse_str(&alert).unwrap();
    let kinds: Vec<String> = history(&app, project, alert_id)
        .await
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    assert_eq!(kinds, vec!["firing", "acknowledged"]);
    // Still firing after the next evaluation.
    fold(
        &app,
        project,
        &[("FLOWMETER_ALERT_RULES", &rule_file("five", FIVE_RULES))],
    );
    let state: String = app
        .db
        .client()
        .await
        .query_one(
            "SELECT state FROM metrics_alert WHERE project_id = $1 AND id = $2",
            &[&project, &alert_id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(state, "firing");
}
