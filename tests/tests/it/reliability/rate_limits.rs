//! Rate limits key on the authenticated key's id, and failed authentication is limited per
//! client address with bounded memory (SPEC §14).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use flowmeter_shared::auth::Role;
use flowmeter_tests::app::assert_error;
use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::{TestApp, TestAppOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;

#[tokio::test]
async fn after_a_429_every_spelling_of_the_same_key_stays_limited() {
    let app =
        TestApp::spawn_with(TestAppOptions::with_auth().env("FLOWMETER_RATE_LIMIT_SUMMARY", "3"))
            .await;
    let mut b = EventBuilder::new();
    let project = b.project_id;
    app.seed(&[b.task_created("t1", Utc::now(), json!({}))])
        .await;
    let key = app.create_key(Some(project), &[Role::Viewer]).await;
    let other = app.create_key(Some(project), &[Role::Viewer]).await;
    let url = app.url(&format!("/v1/metrics/summary?project_id={project}"));
    for _ in 0..3 {
        let response = app.http.get(&url).bearer_auth(&key).send().await.unwrap();
        assert_ne!(response.status(), 429);
        assert!(response.headers().contains_key("x-ratelimit-remaining"));
    }
    let spellings: Vec<(&str, String)> = vec![
        ("authorization", format!("Bearer {key}")),
        ("authorization", format!("Bearer     {key}")),
        ("authorization", format!("bearer {key}")),
        ("authorization", format!("BEARER {key}  ")),
        ("authorization", format!("  Bearer {key}")),
        ("x-api-key", key.clone()),
        ("x-api-key", format!("   {key}")),
        ("x-api-key", format!("{key}   ")),
    ];
    for (header, value) in spellings {
        let response = app
            .http
            .get(&url)
            .header(header, &value)
            .send()
            .await
            .unwrap();
        assert!(
            response.headers().contains_key("retry-after"),
            "{header}: {value:?}"
        );
        assert_eq!(
            response.headers().get("x-ratelimit-remaining").unwrap(),
            "0",
            "{header}: {value:?}"
        );
        assert_error(response, 429, "rate_limited").await;
    }
    // Another key has its own budget.
    let response = app.http.get(&url).bearer_auth(&other).send().await.unwrap();
    assert_ne!(response.status(), 429);
}

#[tokio::test]
async fn failed_authentication_is_limited_per_address() {
    let app = TestApp::spawn_with(
        TestAppOptions::with_auth().env("FLOWMETER_RATE_LIMIT_UNAUTHENTICATED", "5"),
    )
    .await;
    let project = Uuid::new_v4();
    let key = app.create_key(None, &[Role::Admin]).await;
    let url = app.url(&format!("/v1/metrics/health?project_id={project}"));
    for n in 0..5 {
        let response = app
            .http
            .get(&url)
            .bearer_auth(format!("fm_bogus{n}"))
            .send()
            .await
            .unwrap();
        assert_error(response, 401, "unauthorized").await;
    }
    // The next failure, a request without a key, and (so that keys cannot be guessed past
    // the budget) even a valid key from that address are refused until the window ends.
    let bogus = app
        .http
        .get(&url)
        .bearer_auth("fm_bogus")
        .send()
        .await
        .unwrap();
    assert_eq!(bogus.headers().get("x-ratelimit-policy").unwrap(), "5;w=60");
    let body = assert_error(bogus, 429, "rate_limited").await;
    assert!(body["details"]["retry_after"].as_u64().unwrap() >= 1);
    assert_error(
        app.get(&format!("/v1/metrics/summary?project_id={project}"), None)
            .await,
        429,
        "rate_limited",
    )
    .await;
    assert_error(
        app.http
            .post(app.url("/v1/events"))
            .json(&json!([]))
            .send()
            .await
            .unwrap(),
        429,
        "rate_limited",
    )
    .await;
    assert_error(
        app.get(
            &format!("/v1/metrics/health?project_id={project}"),
            Some(&key),
        )
        .await,
        429,
        "rate_limited",
    )
    .await;
    // Routes without keys are not affected.
    assert_eq!(app.get("/health", None).await.status(), 200);
}

/// Statuses of pipelined raw HTTP/1.1 requests on one connection.
async fn pipeline(address: &str, requests: &[String], counts: &[AtomicU64; 3]) {
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let mut buffer: Vec<u8> = Vec::with_capacity(64 * 1024);
    let mut read = vec![0u8; 64 * 1024];
    for chunk in requests.chunks(128) {
        let batch: String = chunk.concat();
        stream.write_all(batch.as_bytes()).await.unwrap();
        let mut answered = 0;
        while answered < chunk.len() {
            // Parse every complete response in the buffer.
            while let Some(head_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buffer[..head_end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if buffer.len() < head_end + 4 + length {
                    break;
                }
                let slot = match &head[9..12] {
                    "429" => 0,
                    "401" => 1,
                    _ => 2,
                };
                counts[slot].fetch_add(1, Ordering::Relaxed);
                buffer.drain(..head_end + 4 + length);
                answered += 1;
            }
            if answered < chunk.len() {
                let n = stream.read(&mut read).await.unwrap();
                assert!(n > 0, "the server closed the connection");
                buffer.extend_from_slice(&read[..n]);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_flood_of_random_keys_is_limited_per_address_in_bounded_memory() {
    let db = flowmeter_tests::db::TestDb::migrated().await;
    let api = ApiProcess::spawn(&db.url, &[("FLOWMETER_AUTH_DISABLED", "0")]).await;
    let address = api.base_url.trim_start_matches("http://").to_owned();
    let project = Uuid::new_v4();
    let before = api.rss_kib().unwrap();

    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done, pid) = (peak.clone(), done.clone(), api.child.id());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(rss) = flowmeter_tests::process::rss_kib(pid) {
                    peak.fetch_max(rss, Ordering::Relaxed);
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        })
    };
    const TOTAL: usize = 500_000;
    const CONNECTIONS: usize = 4;
    let counts: Arc<[AtomicU64; 3]> = Arc::new(Default::default());
    let started = Instant::now();
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|c| {
            let (address, counts) = (address.clone(), counts.clone());
            tokio::spawn(async move {
                let requests: Vec<String> = (0..TOTAL / CONNECTIONS)
                    .map(|i| {
                        // Both headers, in turns; every key different.
                        let secret = format!("fm_{}", Uuid::new_v4().simple());
                        let header = if (i + c) % 2 == 0 {
                            format!("Authorization: Bearer {secret}")
                        } else {
                            format!("X-API-Key: {secret}")
                        };
                        format!(
                            "GET /v1/metrics/summary?project_id={project} HTTP/1.1\r\nHost: x\r\n{header}\r\n\r\n"
                        )
                    })
                    .collect();
                pipeline(&address, &requests, &counts).await;
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    sampler.await.unwrap();
    let after = api.rss_kib().unwrap();
    let (limited, unauthorized, other) = (
        counts[0].load(Ordering::Relaxed),
        counts[1].load(Ordering::Relaxed),
        counts[2].load(Ordering::Relaxed),
    );
    let peak = peak.load(Ordering::Relaxed);
    eprintln!(
        "flood: {TOTAL} requests in {took:?}: {limited} × 429, {unauthorized} × 401, {other} other; RSS {before} KiB before, peak {peak} KiB, {after} KiB after"
    );
    assert_eq!(other, 0);
    assert_eq!(limited + unauthorized, TOTAL as u64);
    // The default budget: 300 failures a minute from one address, the rest limited.
    assert!(
        unauthorized <= 300 * (took.as_secs() / 60 + 1),
        "{unauthorized} × 401 in {took:?}"
    );
    assert!(peak < 40 * 1024, "RSS peaked at {peak} KiB");
    // The API still serves.
    let health = reqwest::get(format!("{}/health/db", api.base_url))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
}
