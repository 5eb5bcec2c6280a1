//! The summary's single statement and its per-project cache: a key is checked on every
//! request (a revoked or expired key is refused on the very next one, even while the
//! summary is cached), and a cached summary is never served for a changed snapshot row or
//! log head.

use flowmeter_shared::auth::{hash_key, Role};

use super::*;

#[tokio::test]
async fn a_revoked_or_expired_key_is_refused_on_the_very_next_summary_request() {
    let (app, project) = folded_scenario(TestAppOptions::with_auth()).await;
    let path = format!("/v1/metrics/summary?project_id={project}");
    let revoked = app.create_key(Some(project), &[Role::Viewer]).await;
    let expiring = app.create_key(None, &[Role::Admin]).await;
    let other_project = app
        .create_key(Some(uuid::Uuid::new_v4()), &[Role::Viewer])
        .await;
    for key in [&revoked, &expiring] {
        assert_eq!(app.get(&path, Some(key)).await.status(), 200);
        assert_eq!(app.get(&path, Some(key)).await.status(), 200);
    }
    let client = app.db.client().await;
    client
        .execute(
            "UPDATE api_key SET status = 'revoked' WHERE key_hash = $1",
            &[&hash_key(&revoked)],
        )
        .await
        .unwrap();
    client
        .execute(
            "UPDATE api_key SET expires_at = now() - interval '1 second' WHERE key_hash = $1",
            &[&hash_key(&expiring)],
        )
        .await
        .unwrap();
    let body = assert_error(app.get(&path, Some(&revoked)).await, 401, "unauthorized").await;
    assert!(
        body["message"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
    let body = assert_error(app.get(&path, Some(&expiring)).await, 401, "unauthorized").await;
    assert!(
        body["message"].as_str().unwrap().contains("expired"),
        "{body}"
    );
    // The cached summary is never handed to a key without access to the project.
    assert_error(app.get(&path, Some(&other_project)).await, 403, "forbidden").await;
    assert_error(
        app.get(&path, Some("fm_unknown")).await,
        401,
        "unauthorized",
    )
    .await;
    assert_error(app.get(&path, None).await, 401, "unauthorized").await;
}

#[tokio::test]
async fn a_rewritten_snapshot_row_or_a_new_event_is_never_served_from_the_cache() {
    let (app, project) = folded_scenario(TestAppOptions::default()).await;
    let path = format!("/v1/metrics/summary?project_id={project}");
    let first = app.get(&path, None).await;
    let first_tag = first.headers().get("etag").unwrap().to_owned();
    let first_body = first.text().await.unwrap();
    // A repeated request is the same response, byte for byte.
    let again = app.get(&path, None).await;
    assert_eq!(again.headers().get("etag").unwrap(), &first_tag);
    assert_eq!(again.text().await.unwrap(), first_body);

    // The same snapshot row rewritten in place (same time and sequence number).
    let client = app.db.client().await;
    let rewritten = client
        .execute(
            "UPDATE metrics_summary SET payload = jsonb_set(payload, '{operational,wip,total_count}', '99')
              WHERE project_id = $1",
            &[&project],
        )
        .await
        .unwrap();
    assert!(rewritten >= 1);
    let response = app.get(&path, None).await;
    let tag = response.headers().get("etag").unwrap().to_owned();
    assert_ne!(tag, first_tag);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["metrics"]["operational"]["wip"]["total_count"], 99);

    // A new event moves the log head: new freshness, new tag.
    let mut event = EventBuilder::for_project(project).task_created(
        "t-new",
        t("2026-03-14T11:00:00Z"),
        json!({}),
    );
    event["event_id"] = json!("summary-cache-new-event");
    assert_eq!(app.ingest(&[event]).await["accepted"], 1);
    let response = app.get(&path, None).await;
    assert_ne!(response.headers().get("etag").unwrap(), &tag);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["freshness"]["lag_events"], 1);
    assert_eq!(body["metrics"]["operational"]["wip"]["total_count"], 99);

    // Alternating between the latest snapshot and an earlier cut-off serves each correctly.
    for _ in 0..2 {
        let latest: Value = app.get(&path, None).await.json().await.unwrap();
        assert_eq!(latest["freshness"]["lag_events"], 1);
        assert_error(
            app.get(&format!("{path}&timestamp=2026-03-01"), None).await,
            404,
            "not_found",
        )
        .await;
        let at: Value = app
            .get(&format!("{path}&timestamp=2026-03-15"), None)
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(at["timestamp"], "2026-03-14T12:00:00.000000Z");
    }
}
