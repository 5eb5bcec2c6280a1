//! `/v1/metrics/trends`.

use super::*;

async fn trends(app: &TestApp, query: &str) -> reqwest::Response {
    app.get(&format!("/v1/metrics/trends?{query}"), None).await
}

#[tokio::test]
async fn trends_serve_event_time_points_for_totals_and_dimensions() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    // Integrations: t1 on 4 March, t6 on 6 March, t2 on 10 March.
    let response = trends(
        &app,
        &format!(
            "project_id={project}&metric=throughput&start_date=2026-03-01&end_date=2026-03-13"
        ),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_common_headers(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["granularity"], "day");
    assert_eq!(
        body["end_date"], "2026-03-14T00:00:00Z",
        "end_date covers its whole day"
    );
    let points: Vec<(String, f64)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["timestamp"].as_str().unwrap().to_owned(),
                p["value"].as_f64().unwrap(),
            )
        })
        .collect();
    // Every day of the range, 0 where nothing was integrated.
    let expected: Vec<(String, f64)> = (1..=13)
        .map(|day| {
            let value = if [4, 6, 10].contains(&day) { 1.0 } else { 0.0 };
            (format!("2026-03-{day:02}T00:00:00Z"), value)
        })
        .collect();
    assert_eq!(points, expected);
    assert_eq!(body["data"][3]["metadata"]["sample_size"], 1);
    assert_eq!(body["data"][0]["metadata"]["sample_size"], 0);

    // Arrivals on 2 March, by assignee: t1 (ana) and t2 (bo).
    let body: Value = trends(&app, &format!("project_id={project}&metric=arrivals&start_date=2026-03-02&end_date=2026-03-02&dimensions=assignee"))
        .await
        .json()
        .await
        .unwrap();
    let groups: Vec<(Value, f64)> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["dimensions"].clone(), p["value"].as_f64().unwrap()))
        .collect();
    assert_eq!(
        groups,
        vec![
            (json!({"assignee": "ana"}), 1.0),
            (json!({"assignee": "bo"}), 1.0)
        ]
    );

    // Cycle time p50 as of the end of 4 March: only t1 (1980 min), with its interval.
    let body: Value = trends(
        &app,
        &format!(
            "project_id={project}&metric=cycle_time&start_date=2026-03-04&end_date=2026-03-04"
        ),
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(body["data"][0]["value"], 1980.0);
    assert_eq!(
        body["data"][0]["metadata"],
        json!({"sample_size": 1, "confidence_interval": {"lower": 1980.0, "upper": 1980.0}})
    );

    // Weekly WIP as of the end of the week starting Monday 2 March (9 March 00:00): t1 and
    // t6 are integrated, t3 and t4 not yet claimed; only t2 (implemented) is in WIP.
    let body: Value = trends(&app, &format!("project_id={project}&metric=wip&start_date=2026-03-02&end_date=2026-03-08&granularity=week"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(body["data"][0]["timestamp"], "2026-03-02T00:00:00Z");
    assert_eq!(body["data"][0]["value"], 1.0);
}

#[tokio::test]
async fn trend_parameters_are_validated_naming_the_field() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let base = format!("project_id={project}&start_date=2026-03-01&end_date=2026-03-10");
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("{base}&metric=velocity"), 422, "metric"),
        (format!("project_id={project}&start_date=2026-03-01&end_date=2026-03-10"), 400, "metric"),
        (format!("{base}&metric=wip&granularity=fortnight"), 422, "granularity"),
        (format!("project_id={project}&metric=wip&end_date=2026-03-10"), 400, "start_date"),
        (format!("project_id={project}&metric=wip&start_date=2026-03-10&end_date=2026-03-01"), 422, "end_date"),
        (format!("project_id={project}&metric=wip&start_date=03/01/2026&end_date=2026-03-10"), 400, "start_date"),
        (format!("{base}&metric=cycle_time&dimensions=assignee"), 422, "dimensions"),
        (format!("{base}&metric=wip&dimensions=planet"), 422, "dimensions"),
        (format!("{base}&metric=wip&dimensions=assignee&granularity=hour"), 422, "granularity"),
        (format!("project_id={project}&metric=wip&granularity=hour&start_date=2025-01-01&end_date=2026-03-10"), 422, "start_date"),
    ];
    for (query, status, field) in cases {
        let code = if status == 422 {
            "validation_error"
        } else {
            "bad_request"
        };
        let body = assert_error(trends(&app, &query).await, status, code).await;
        assert_eq!(body["details"]["field"], field, "{query}: {body}");
    }
    let body = assert_error(
        trends(&app, &format!("{base}&metric=velocity")).await,
        422,
        "validation_error",
    )
    .await;
    assert_eq!(
        body["details"]["allowed_values"],
        serde_json::json!(flowmeter_shared::read_model::TREND_METRICS)
    );
    assert_eq!(
        body["details"]["allowed_values"].as_array().unwrap().len(),
        13,
        "nine flow metrics and four DORA keys"
    );
}
