//! Filter-free breakdowns and drill-down pages are served from what the worker precomputed at
//! snapshot time (SPEC §18). They must equal the answers computed from the drill-down rows:
//! every metric, dimension and range, every sort order and a few pages are asked with the
//! precomputed rows in place and again, from a second API process, after deleting them (the
//! API then reads the rows). Each is asked twice, so the kept rendering is compared too.

use flowmeter_tests::events::EventBuilder;
use flowmeter_tests::process::ApiProcess;
use flowmeter_tests::worker::worker_json;
use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::Value;

use crate::fold::varied_stream;

/// Several hundred requests per API: no rate limits.
const RATE_LIMITS_OFF: [(&str, &str); 5] = [
    ("FLOWMETER_RATE_LIMIT_SUMMARY", "0"),
    ("FLOWMETER_RATE_LIMIT_TRENDS", "0"),
    ("FLOWMETER_RATE_LIMIT_BREAKDOWN", "0"),
    ("FLOWMETER_RATE_LIMIT_DRILLDOWN", "0"),
    ("FLOWMETER_RATE_LIMIT_OTHER", "0"),
];

/// Every filter-free breakdown and a set of drill-down pages from the API at `base`, each asked
/// twice: (query, status, body text).
async fn answers(base: &str, project: uuid::Uuid) -> Vec<(String, u16, String)> {
    let mut queries = Vec::new();
    for metric in flowmeter_shared::read_model::BREAKDOWN_METRICS {
        for dimension in flowmeter_shared::read_model::BREAKDOWN_DIMENSIONS {
            for (range, _) in flowmeter_shared::read_model::BREAKDOWN_RANGES {
                queries.push(format!(
                    "breakdown?project_id={project}&metric={metric}&dimension={dimension}&time_range={range}"
                ));
            }
        }
    }
    for metric in flowmeter_shared::read_model::DRILLDOWN_METRICS {
        for sort in ["value", "timestamp", "task_id"] {
            for order in ["asc", "desc"] {
                for (limit, offset) in [(50, 0), (7, 3), (5, 495), (20, 600)] {
                    queries.push(format!(
                        "drilldown?project_id={project}&metric={metric}&sort_by={sort}&sort_order={order}&limit={limit}&offset={offset}"
                    ));
                }
            }
        }
    }
    for metric in ["throughput", "wip", "cycle_time"] {
        queries.push(format!(
            "trends?project_id={project}&metric={metric}&start_date=2026-01-01&end_date=2026-03-31"
        ));
    }
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for query in queries {
        let url = format!("{base}/v1/metrics/{query}");
        let first = http.get(&url).send().await.unwrap();
        let status = first.status().as_u16();
        let tag = first.headers().get("etag").cloned();
        let body = first.text().await.unwrap();
        // Asked again, the same body comes from the API's kept rendering.
        let again = http.get(&url).send().await.unwrap();
        assert_eq!(again.headers().get("etag").cloned(), tag, "{query}");
        assert_eq!(again.text().await.unwrap(), body, "{query} asked again");
        out.push((query, status, body));
    }
    out
}

#[tokio::test]
async fn precomputed_breakdowns_and_pages_equal_those_computed_from_the_rows() {
    // Several hundred requests: rate limits off.
    let options = RATE_LIMITS_OFF
        .iter()
        .fold(TestAppOptions::default(), |options, (name, value)| {
            options.env(name, *value)
        });
    let app = TestApp::spawn_with(options).await;
    let mut b = EventBuilder::new();
    app.ingest(&varied_stream(&mut b, 60)).await;
    worker_json(
        &app.db.url,
        &["backfill", "--project", &b.project_id.to_string()],
        &[],
    );
    let client = app.db.client().await;
    let count = |table: &'static str| {
        let client = &client;
        async move {
            client
                .query_one(&format!("SELECT count(*) FROM {table}"), &[])
                .await
                .unwrap()
                .get::<_, i64>(0)
        }
    };
    assert_eq!(
        count("metrics_drilldown_aggregate").await,
        flowmeter_shared::read_model::DRILLDOWN_METRICS.len() as i64,
        "one aggregate per drill-down metric"
    );
    assert!(count("metrics_breakdown_group").await > 100);
    let precomputed = answers(&app.url(""), b.project_id).await;
    client
        .batch_execute(
            "DELETE FROM metrics_drilldown_aggregate; DELETE FROM metrics_breakdown_group",
        )
        .await
        .unwrap();
    // A second API process: nothing rendered is kept there, so it reads the rows.
    let fresh = ApiProcess::spawn(&app.db.url, &RATE_LIMITS_OFF).await;
    let from_rows = answers(&fresh.base_url, b.project_id).await;
    let mut nonempty = 0;
    for ((query, status, body), (_, status_rows, body_rows)) in precomputed.iter().zip(&from_rows) {
        assert_eq!(*status, 200, "{query}: {body}");
        assert_eq!((status, body), (status_rows, body_rows), "{query}");
        let parsed: Value = serde_json::from_str(body).unwrap();
        let items = parsed["breakdown"]
            .as_array()
            .or(parsed["items"].as_array())
            .map_or(0, Vec::len);
        nonempty += usize::from(items > 0);
    }
    // Pages past the 60 tasks and the last 24 hours are empty by construction.
    assert!(
        nonempty > precomputed.len() / 3,
        "many answers have groups or items: {nonempty} of {}",
        precomputed.len()
    );
}

#[tokio::test]
async fn the_value_sum_is_exact_in_sql_and_in_the_worker_whatever_the_order() {
    let db = flowmeter_tests::TestDb::empty().await;
    let client = db.client().await;
    // Durations kept to two decimals, in a fixed pseudo-random sequence.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let values: Vec<f64> = (0..2000)
        .map(|_| (next() % 5_000_000) as f64 / 100.0)
        .collect();
    let expected = flowmeter_shared::metrics::stats::exact_sum(values.iter().copied());
    let sql = format!(
        "SELECT {}, sum(value) FROM unnest($1::float8[]) t(value)",
        flowmeter_shared::db::read_model::VALUE_SUM_SQL
    );
    let mut float_sums = std::collections::BTreeSet::new();
    let mut order = values.clone();
    for round in 0..8 {
        // Each round a different permutation of the same values.
        for i in (1..order.len()).rev() {
            order.swap(i, (next() % (i as u64 + 1)) as usize);
        }
        assert_eq!(
            flowmeter_shared::metrics::stats::exact_sum(order.iter().copied()),
            expected,
            "round {round}"
        );
        let row = client.query_one(&sql, &[&order]).await.unwrap();
        assert_eq!(row.get::<_, f64>(0), expected, "round {round}");
        float_sums.insert(row.get::<_, f64>(1).to_bits());
    }
    // The float sum of the same rows moves with their order; the exact one does not.
    assert!(float_sums.len() > 1, "float sums: {float_sums:?}");
}
