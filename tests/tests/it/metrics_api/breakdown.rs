//! `/v1/metrics/breakdown`.

use super::*;

#[tokio::test]
async fn breakdown_splits_a_metric_by_a_dimension_with_shares_totals_and_trends() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    // Last 7 days (to 14 March 12:00): only t2 integrated, in m1 ("Alpha"). The week before:
    // t1 (m1) and t6 (no milestone) → m1 had 1 then too.
    let body = get_ok(
        &app,
        "breakdown",
        project,
        "metric=throughput&dimension=milestone",
    )
    .await;
    assert_eq!(body["time_range"], "7d");
    assert_eq!(body["total"], 1.0);
    assert_eq!(
        body["breakdown"],
        json!([{"dimension_value": "m1", "dimension_label": "Alpha", "value": 1.0, "percentage": 100.0, "count": 1,
                "trend": {"direction": "stable", "change_pct": 0.0}}])
    );
    // 30 days: t1, t2 in m1, t6 without a milestone.
    let body = get_ok(
        &app,
        "breakdown",
        project,
        "metric=throughput&dimension=milestone&time_range=30d",
    )
    .await;
    let groups: Vec<(Value, f64, f64)> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dimension_value"].clone(),
                g["value"].as_f64().unwrap(),
                g["percentage"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![(json!("m1"), 2.0, 66.67), (Value::Null, 1.0, 33.33)]
    );
    assert_eq!(body["total"], 3.0);

    // Cycle time by assignee over 30 days: each group's median, total = overall median.
    let body = get_ok(
        &app,
        "breakdown",
        project,
        "metric=cycle_time&dimension=assignee&time_range=30d",
    )
    .await;
    let groups: Vec<(String, f64, i64)> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["dimension_value"].as_str().unwrap().to_owned(),
                g["value"].as_f64().unwrap(),
                g["count"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        vec![
            ("ana".into(), 1980.0, 1),
            ("bo".into(), 7260.0, 1),
            ("cy".into(), 3240.0, 1)
        ]
    );
    assert_eq!(body["total"], 3240.0);
    // Filters on the other dimensions apply: m1 only (t1, t2).
    let body = get_ok(
        &app,
        "breakdown",
        project,
        &format!(
            "metric=cycle_time&dimension=assignee&time_range=30d&filters={}",
            urlencode(r#"{"milestone": "m1"}"#)
        ),
    )
    .await;
    assert_eq!(body["breakdown"].as_array().unwrap().len(), 2);
    assert_eq!(body["total"], 4620.0);
    assert_eq!(body["filters_applied"], json!({"milestone": ["m1"]}));

    // WIP by state: t3 implemented, t4 blocked (both entered WIP within the week).
    let body = get_ok(&app, "breakdown", project, "metric=wip&dimension=state").await;
    let states: Vec<&str> = body["breakdown"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["dimension_value"].as_str().unwrap())
        .collect();
    assert_eq!(states, vec!["blocked", "implemented"]);
    assert_eq!(body["total"], 2.0);
}

#[tokio::test]
async fn breakdown_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let cases: Vec<(String, u16, &str)> = vec![
        ("metric=throughput".into(), 400, "dimension"),
        ("dimension=assignee".into(), 400, "metric"),
        (
            "metric=throughput&dimension=planet".into(),
            422,
            "dimension",
        ),
        (
            "metric=delivery_predictability_index&dimension=assignee".into(),
            422,
            "metric",
        ),
        (
            "metric=throughput&dimension=assignee&time_range=1y".into(),
            422,
            "time_range",
        ),
        (
            format!(
                "metric=throughput&dimension=assignee&filters={}",
                urlencode(r#"{"assignee": "ana"}"#)
            ),
            422,
            "filters",
        ),
        (
            format!(
                "metric=throughput&dimension=assignee&filters={}",
                urlencode("{")
            ),
            400,
            "filters",
        ),
    ];
    for (query, status, field) in cases {
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(
            app.get(
                &format!("/v1/metrics/breakdown?project_id={project}&{query}"),
                None,
            )
            .await,
            status,
            code,
        )
        .await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
}
