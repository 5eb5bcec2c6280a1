//! The milestone forecast through the API.

use super::*;

/// P(Binomial(n, ½) < k): the chance that fewer than k of n days complete a task.
fn binomial_half_below(n: u64, k: u64) -> f64 {
    let mut total = 0.0;
    let mut choose = 1.0;
    for i in 0..k.min(n + 1) {
        if i > 0 {
            choose = choose * (n - i + 1) as f64 / i as f64;
        }
        total += choose;
    }
    total / 2f64.powi(n as i32)
}

#[tokio::test]
async fn the_milestone_forecast_matches_a_closed_form_breach_probability() {
    let app = TestApp::spawn().await;
    let mut b = EventBuilder::new();
    let mut events = vec![b.event(
        "milestone",
        "target",
        "milestone_upserted",
        t("2026-03-01T00:00:00Z"),
        json!({"name": "Target", "planned_start_at": "2026-03-01T00:00:00Z", "due_at": "2026-04-10T18:00:00Z"}),
    )];
    // The 30 complete days before 31 March: one task integrated on each odd day (15 days),
    // none on even days, so each simulated day draws 0 or 1 with probability ½.
    for day in (1..=30).filter(|d| d % 2 == 1) {
        let id = format!("h{day}");
        let at = |hour: u32| t(&format!("2026-03-{day:02}T{hour:02}:00:00Z"));
        events.push(b.task_created(&id, at(8), json!({})));
        events.push(b.transition(&id, "in_progress", at(9)));
        events.push(b.transition(&id, "integrated", at(17)));
    }
    for i in 0..5 {
        events.push(b.task_created(
            &format!("open{i}"),
            t("2026-03-20T08:00:00Z"),
            json!({"milestone_id": "target"}),
        ));
    }
    events.sort_by_key(|e| e["occurred_at"].as_str().unwrap().to_owned());
    app.ingest(&events).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-31T12:00:00Z")],
    );

    let body: Value = app
        .get(
            &format!("/v1/metrics/health?project_id={}", b.project_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let target = body["milestones"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["milestone_id"] == "target")
        .unwrap();
    assert_eq!(target["forecast"]["status"], "ok", "{target}");
    // Day 1 is 1 April; due on 10 April: the milestone breaches when fewer than 5 of those
    // 10 days complete a task.
    let expected = binomial_half_below(10, 5);
    assert!((expected - 0.376953).abs() < 1e-6);
    let got = target["breach_probability"].as_f64().unwrap();
    assert!(
        (got - expected).abs() <= 0.03,
        "breach probability {got}, closed form {expected}"
    );
    let score = target["health_score"].as_f64().unwrap();
    assert!((score - 100.0 * (1.0 - got)).abs() < 0.01);
    assert_eq!(
        target["health_status"],
        if score >= 70.0 {
            "green"
        } else if score >= 50.0 {
            "yellow"
        } else {
            "red"
        }
    );
    assert_eq!(target["task_summary"]["remaining"], 5);

    // With completions on only 4 of the 30 days there is no forecast, never a made-up one.
    let mut c = EventBuilder::new();
    let mut sparse = vec![c.event(
        "milestone",
        "m",
        "milestone_upserted",
        t("2026-03-01T00:00:00Z"),
        json!({"name": "M", "due_at": "2026-04-10T00:00:00Z"}),
    )];
    for day in [3, 9, 15, 21] {
        let id = format!("s{day}");
        sparse.push(c.task_created(
            &id,
            t(&format!("2026-03-{day:02}T08:00:00Z")),
            json!({"milestone_id": "m"}),
        ));
        sparse.push(c.transition(&id, "integrated", t(&format!("2026-03-{day:02}T17:00:00Z"))));
    }
    sparse.push(c.task_created(
        "left",
        t("2026-03-25T08:00:00Z"),
        json!({"milestone_id": "m"}),
    ));
    app.ingest(&sparse).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &c.project_id.to_string()],
        &[("FLOWMETER_TEST_NOW", "2026-03-31T12:00:00Z")],
    );
    let body: Value = app
        .get(
            &format!("/v1/metrics/health?project_id={}", c.project_id),
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    let m = &body["milestones"][0];
    assert_eq!(
        m["forecast"],
        json!({"status": "insufficient_data", "p50": null, "p85": null, "p95": null})
    );
    assert_eq!(m["breach_probability"], Value::Null);
    assert_eq!(m["health_score"], 80.0, "100 × 4 completed / 5 tasks");
}
