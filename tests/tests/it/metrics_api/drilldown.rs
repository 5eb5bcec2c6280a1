//! `/v1/metrics/drilldown`.

use super::*;

#[tokio::test]
async fn drilldown_lists_filters_sorts_paginates_and_aggregates() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    // Cycle times: t1 1980, t6 3240, t2 7260 minutes (the summary's samples).
    let body = get_ok(&app, "drilldown", project, "metric=cycle_time").await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t2", "t6", "t1"], "value descending by default");
    assert_eq!(
        body["aggregation"],
        json!({"sum": 12480.0, "avg": 4160.0, "min": 1980.0, "max": 7260.0, "p50": 3240.0, "p90": 6456.0, "p95": 6858.0})
    );
    assert_eq!(
        body["pagination"],
        json!({"total": 3, "limit": 50, "offset": 0, "has_more": false})
    );
    let t2 = &body["items"][0];
    assert_eq!(t2["value"], 7260.0);
    assert_eq!(t2["timestamp"], "2026-03-10T10:00:00Z");
    assert_eq!(t2["context"]["milestone"], "m1");
    assert_eq!(t2["context"]["assignee"], "bo");
    let factors: Vec<&str> = t2["contributing_factors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["factor"].as_str().unwrap())
        .collect();
    assert!(
        factors.contains(&"blocked_episodes") && factors.contains(&"integration_retries"),
        "{factors:?}"
    );

    let body = get_ok(
        &app,
        "drilldown",
        project,
        &format!(
            "metric=cycle_time&filters={}",
            urlencode(r#"{"assignee": "ana"}"#)
        ),
    )
    .await;
    assert_eq!(body["items"].as_array().unwrap().len(), 1);
    assert_eq!(body["items"][0]["task_id"], "t1");
    assert_eq!(body["filters_applied"], json!({"assignee": ["ana"]}));

    let body = get_ok(
        &app,
        "drilldown",
        project,
        "metric=cycle_time&sort_by=task_id&sort_order=asc&limit=2&offset=1",
    )
    .await;
    let ids: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["task_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec!["t2", "t6"]);
    assert_eq!(
        body["pagination"],
        json!({"total": 3, "limit": 2, "offset": 1, "has_more": false})
    );
    let body = get_ok(
        &app,
        "drilldown",
        project,
        "metric=cycle_time&sort_by=task_id&sort_order=asc&limit=1",
    )
    .await;
    assert_eq!(body["pagination"]["has_more"], true);

    // WIP ages as of the snapshot: t3 99 h (claimed 10 March 09:00), t4 75 h.
    let body = get_ok(&app, "drilldown", project, "metric=wip").await;
    let rows: Vec<(&str, f64)> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i["task_id"].as_str().unwrap(), i["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(rows, vec![("t3", 99.0), ("t4", 75.0)]);
}

#[tokio::test]
async fn drilldown_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("metric=velocity".into(), 422, "metric"),
        ("".into(), 400, "metric"),
        ("metric=wip&limit=0".into(), 422, "limit"),
        ("metric=wip&limit=501".into(), 422, "limit"),
        ("metric=wip&limit=-1".into(), 422, "limit"),
        ("metric=wip&limit=ten".into(), 400, "limit"),
        ("metric=wip&offset=-1".into(), 422, "offset"),
        (
            "metric=wip&offset=99999999999999999999".into(),
            400,
            "offset",
        ),
        ("metric=wip&sort_by=colour".into(), 422, "sort_by"),
        ("metric=wip&sort_order=up".into(), 422, "sort_order"),
        (
            format!("metric=wip&filters={}", urlencode("{not json")),
            400,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"{"planet": "mars"}"#)),
            422,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"{"assignee": 7}"#)),
            422,
            "filters",
        ),
        (
            format!("metric=wip&filters={}", urlencode(r#"["assignee"]"#)),
            422,
            "filters",
        ),
        (
            format!(
                "metric=wip&filters={}",
                urlencode(r#"{"assignee": "'; DROP TABLE metrics_drilldown; --"}"#)
            ),
            200,
            "",
        ),
    ];
    for (query, status, field) in cases {
        let response = app
            .get(
                &format!("/v1/metrics/drilldown?project_id={project}&{query}"),
                None,
            )
            .await;
        if status == 200 {
            assert_eq!(response.status(), 200, "{query}");
            continue;
        }
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(response, status, code).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let rows: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM metrics_drilldown", &[])
        .await
        .unwrap()
        .get(0);
    assert!(rows > 0, "the injection string was only a value");
}
