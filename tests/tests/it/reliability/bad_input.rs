//! Bad input on every route → the documented 4xx in the error envelope, never a 500: a
//! matrix of hand-picked cases, then generated query strings and event bodies (a bounded
//! number of cases, deterministic seed).

use flowmeter_tests::TestApp;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use super::*;

/// Sends a request; returns status and body (JSON when it parses).
async fn send(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: Option<Vec<u8>>,
) -> (u16, Value, String) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .body(body);
    }
    let response = match request.send().await {
        Ok(response) => response,
        Err(e) => return (0, Value::Null, format!("no answer: {e:?}")),
    };
    let status = response.status().as_u16();
    let text = response.text().await.unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(Value::Null);
    (status, json, text)
}

/// Checks an error answer: the status expected, the envelope, and the field named.
pub(super) fn check(
    case: &str,
    (status, body, text): &(u16, Value, String),
    expected: u16,
    field: Option<&str>,
) -> Option<String> {
    if *status != expected {
        return Some(format!("{case}: {status} (expected {expected}): {text}"));
    }
    for key in ["error", "message", "details", "request_id", "timestamp"] {
        if body.get(key).is_none() {
            return Some(format!("{case}: no {key} in the envelope: {text}"));
        }
    }
    if let Some(field) = field {
        if body["details"]["field"] != field {
            return Some(format!(
                "{case}: names {} instead of {field}",
                body["details"]["field"]
            ));
        }
    }
    None
}

#[tokio::test]
async fn the_bad_input_matrix_gets_documented_4xx_on_every_route() {
    let app = TestApp::spawn().await;
    let (p, alert) = folded_project_with_alert(&app).await;
    let get = reqwest::Method::GET;
    let post = reqwest::Method::POST;
    let long = "x".repeat(9 * 1024);
    let injection = "%27%20OR%20%271%27%3D%271";
    let metrics_routes = [
        format!("/v1/metrics/summary?project_id={p}"),
        format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-01-01&end_date=2026-02-01"),
        format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase"),
        format!("/v1/metrics/drilldown?project_id={p}&metric=wip"),
        format!("/v1/metrics/health?project_id={p}"),
        format!("/v1/metrics/alerts?project_id={p}"),
        format!("/v1/metrics/actions?project_id={p}"),
    ];
    let mut failures = Vec::new();
    let mut expect =
        |case: String, answer: (u16, Value, String), status: u16, field: Option<&str>| {
            if let Some(problem) = check(&case, &answer, status, field) {
                failures.push(problem);
            }
        };
    // Every metrics route: the project id and the query string itself.
    for route in &metrics_routes {
        let (path, query) = route.split_once('?').unwrap();
        let rest = query.split_once('&').map_or("", |(_, rest)| rest);
        let with = |q: &str| format!("{path}?{q}{}{rest}", if rest.is_empty() { "" } else { "&" });
        for (case, q, status, field) in [
            ("no project_id", String::new(), 400, "project_id"),
            ("bad UUID", "project_id=abc".to_string(), 400, "project_id"),
            (
                "injection as UUID",
                format!("project_id={injection}"),
                400,
                "project_id",
            ),
            (
                "invalid UTF-8",
                "project_id=%FF%FE".to_string(),
                400,
                "project_id",
            ),
            (
                "unknown parameter",
                format!("project_id={p}&drop_table=1"),
                400,
                "drop_table",
            ),
            (
                "repeated parameter",
                format!("project_id={p}&project_id={p}"),
                400,
                "project_id",
            ),
            (
                "NUL in project_id",
                format!("project_id={p}%00"),
                422,
                "project_id",
            ),
            ("NUL alone", "project_id=%00".to_string(), 422, "project_id"),
        ] {
            expect(
                format!("GET {path} {case}"),
                send(&app, get.clone(), &with(&q), None).await,
                status,
                Some(field),
            );
        }
        expect(
            format!("GET {path} over-long query"),
            send(&app, get.clone(), &format!("{route}&pad={long}"), None).await,
            400,
            None,
        );
        expect(
            format!("GET {path} unknown project"),
            send(
                &app,
                get.clone(),
                &with(&format!("project_id={}", Uuid::new_v4())),
                None,
            )
            .await,
            404,
            None,
        );
    }
    // Route-specific parameters.
    let cases: Vec<(String, u16, &str)> = vec![
        (format!("/v1/metrics/summary?project_id={p}&timestamp=yesterday"), 400, "timestamp"),
        (format!("/v1/metrics/summary?project_id={p}&timestamp=2026-02-30"), 400, "timestamp"),
        (format!("/v1/metrics/trends?project_id={p}&start_date=2026-01-01&end_date=2026-02-01"), 400, "metric"),
        (format!("/v1/metrics/trends?project_id={p}&metric=velocity&start_date=2026-01-01&end_date=2026-02-01"), 422, "metric"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=01/02/2026&end_date=2026-02-01"), 400, "start_date"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-01-01&end_date=2026-13-45"), 400, "end_date"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-01-01&end_date=2026-02-01&granularity=year"), 422, "granularity"),
        (format!("/v1/metrics/trends?project_id={p}&metric=throughput&start_date=2026-01-01&end_date=2026-02-01&dimensions=planet"), 422, "dimensions"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-02-01&end_date=2026-01-01"), 422, "end_date"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=1900-01-01&end_date=2026-01-01&granularity=hour"), 422, "start_date"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=planet"), 422, "dimension"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=velocity&dimension=phase"), 422, "metric"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&time_range=1y"), 422, "time_range"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&filters=%7Bnope"), 400, "filters"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&filters=%7B%22planet%22%3A%22x%22%7D"), 422, "filters"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&limit=0"), 422, "limit"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&limit=501"), 422, "limit"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&limit=-1"), 422, "limit"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&limit=99999999999999999999"), 400, "limit"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&offset=-1"), 422, "offset"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&offset=1e3"), 400, "offset"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&sort_by=salary"), 422, "sort_by"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&sort_order=up"), 422, "sort_order"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&filters=%5B1%5D"), 422, "filters"),
        (format!("/v1/metrics/alerts?project_id={p}&limit=0"), 422, "limit"),
        (format!("/v1/metrics/alerts?project_id={p}&cursor={injection}"), 400, "cursor"),
        (format!("/v1/metrics/alerts?project_id={p}&severity={injection}"), 422, "severity"),
        // NUL in every kind of parameter, and instants outside the years 1–9999 (SPEC §14).
        (format!("/v1/metrics/summary?project_id={p}&timestamp=-5000-01-01"), 422, "timestamp"),
        (format!("/v1/metrics/summary?project_id={p}&timestamp=%2B10000-01-01"), 422, "timestamp"),
        (format!("/v1/metrics/summary?project_id={p}&timestamp=0000-06-01T00:00:00Z"), 422, "timestamp"),
        (format!("/v1/metrics/summary?project_id={p}&timestamp=2026-01-01%00"), 422, "timestamp"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=-5000-01-01&end_date=2026-02-01"), 422, "start_date"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-01-01&end_date=%2B99999-01-01"), 422, "end_date"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip%00&start_date=2026-01-01&end_date=2026-02-01"), 422, "metric"),
        (format!("/v1/metrics/trends?project_id={p}&metric=throughput&start_date=2026-01-01&end_date=2026-02-01&dimensions=phase%00"), 422, "dimensions"),
        (format!("/v1/metrics/trends?project_id={p}&metric=wip&start_date=2026-01-01&end_date=2026-02-01&granularity=%00"), 422, "granularity"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&filters=%7B%22assignee%22%3A%22a%5Cu0000%22%7D"), 422, "filters"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&filters=%7B%22assignee%22%3A%5B%22%5Cu0000%22%5D%7D"), 422, "filters"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase%00"), 422, "dimension"),
        (format!("/v1/metrics/breakdown?project_id={p}&metric=wip&dimension=phase&time_range=7d%00"), 422, "time_range"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&filters=%7B%22phase%22%3A%22%5Cu0000%22%7D"), 422, "filters"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&sort_by=value%00"), 422, "sort_by"),
        (format!("/v1/metrics/drilldown?project_id={p}&metric=wip&limit=5%00"), 422, "limit"),
        (format!("/v1/metrics/alerts?project_id={p}&metric_key=DPI%00"), 422, "metric_key"),
        (format!("/v1/metrics/alerts?project_id={p}&state=firing%00"), 422, "state"),
        (format!("/v1/metrics/alerts?project_id={p}&cursor=%00"), 422, "cursor"),
        (format!("/v1/metrics/alerts?project_id={p}&cursor=999999999999999999.{}", Uuid::nil().simple()), 422, "cursor"),
        (format!("/v1/metrics/alerts?project_id={p}&cursor=-99999999999999999.{}", Uuid::nil().simple()), 422, "cursor"),
        (format!("/v1/metrics/alerts?project_id={p}&cursor=9223372036854775807.{}", Uuid::nil().simple()), 400, "cursor"),
        ("/v1/projects?limit=0".to_owned(), 422, "limit"),
        ("/v1/projects?limit=99999999999999999999".to_owned(), 400, "limit"),
        ("/v1/projects?status=gone".to_owned(), 422, "status"),
        (format!("/v1/projects?q={injection}%00"), 422, "q"),
        (format!("/v1/projects?cursor={injection}"), 400, "cursor"),
        ("/v1/projects?drop_table=1".to_owned(), 400, "drop_table"),
        (format!("/v1/projects/{injection}"), 400, "id"),
        (format!("/v1/projects/{p}?project_id={p}"), 400, "project_id"),
    ];
    for (path, status, field) in cases {
        let answer = send(&app, get.clone(), &path, None).await;
        expect(format!("GET {path}"), answer, status, Some(field));
    }

    // POST /v1/events.
    let valid = || {
        EventBuilder::for_project(p).task_created(
            &format!("n{}", Uuid::new_v4().simple()),
            Utc::now(),
            json!({}),
        )
    };
    let with = |field: &str, value: Value| {
        let mut event = valid();
        event[field] = value;
        serde_json::to_vec(&json!([event])).unwrap()
    };
    let without = |field: &str| {
        let mut event = valid();
        event.as_object_mut().unwrap().remove(field);
        serde_json::to_vec(&json!([event])).unwrap()
    };
    let events_cases: Vec<(&str, Vec<u8>, u16)> = vec![
        ("malformed JSON", b"[{\"project_id\": ".to_vec(), 400),
        ("not an array", b"{\"events\": []}".to_vec(), 400),
        (
            "invalid UTF-8",
            b"[{\"event_id\": \"\xff\xfe\"}]".to_vec(),
            400,
        ),
        (
            "a number out of range",
            b"[{\"payload\": {\"priority\": 1e400}}]".to_vec(),
            400,
        ),
        ("project_id a number", with("project_id", json!(7)), 422),
        (
            "project_id an injection string",
            with("project_id", json!("'; DROP TABLE event_log; --")),
            422,
        ),
        (
            "occurred_at a date in words",
            with("occurred_at", json!("next tuesday")),
            422,
        ),
        (
            "event_type unknown",
            with("event_type", json!("task_exploded")),
            422,
        ),
        ("payload a string", with("payload", json!("{}")), 422),
        ("missing event_id", without("event_id"), 422),
        ("missing occurred_at", without("occurred_at"), 422),
        (
            "unknown top-level field",
            with("ocurred_at", json!("2026-01-01T00:00:00Z")),
            422,
        ),
        (
            "negative priority as text",
            {
                let mut event = valid();
                event["payload"]["priority"] = json!("-1");
                serde_json::to_vec(&json!([event])).unwrap()
            },
            422,
        ),
        (
            "state unknown",
            {
                let mut event = valid();
                event["payload"]["state"] = json!("exploded");
                serde_json::to_vec(&json!([event])).unwrap()
            },
            422,
        ),
        (
            "too many events",
            serde_json::to_vec(&Value::Array((0..5001).map(|_| valid()).collect())).unwrap(),
            413,
        ),
        (
            "a body over 8 MiB",
            {
                let mut event = valid();
                event["payload"]["blob"] = json!("x".repeat(9 * 1024 * 1024));
                serde_json::to_vec(&json!([event])).unwrap()
            },
            413,
        ),
    ];
    for (case, body, status) in events_cases {
        let answer = send(&app, post.clone(), "/v1/events", Some(body)).await;
        expect(format!("POST /v1/events {case}"), answer, status, None);
    }
    // NUL in every string field, payload key and value, and timestamps outside the years
    // 1–9999: 422 naming the field in details.errors.
    let payload_with = |payload: Value| {
        let mut event = valid();
        event["payload"] = payload;
        serde_json::to_vec(&json!([event])).unwrap()
    };
    let nul_cases: Vec<(&str, Vec<u8>)> = vec![
        ("project_id", with("project_id", json!(format!("{p}\u{0}")))),
        ("event_id", with("event_id", json!("e\u{0}1"))),
        ("entity_type", with("entity_type", json!("task\u{0}"))),
        ("entity_id", with("entity_id", json!("\u{0}"))),
        ("event_type", with("event_type", json!("task_created\u{0}"))),
        (
            "occurred_at",
            with("occurred_at", json!("2026-01-01T00:00:00Z\u{0}")),
        ),
        (
            "occurred_at",
            with("occurred_at", json!("0000-01-01T00:00:00Z")),
        ),
        (
            "occurred_at",
            with("occurred_at", json!("-5000-01-01T00:00:00Z")),
        ),
        (
            "occurred_at",
            with("occurred_at", json!("10000-01-01T00:00:00Z")),
        ),
        ("caused_by", with("caused_by", json!("x\u{0}"))),
        ("correlation_id", with("correlation_id", json!("\u{0}c"))),
        ("payload.title", payload_with(json!({"title": "a\u{0}b"}))),
        (
            "payload.assignee",
            payload_with(json!({"title": "t", "assignee": "\u{0}"})),
        ),
        (
            "payload.k\\u0000",
            payload_with(json!({"title": "t", "k\u{0}": 1})),
        ),
        (
            "payload.extra.list.1",
            payload_with(json!({"title": "t", "extra": {"list": ["ok", "\u{0}"]}})),
        ),
    ];
    let mut unnamed = Vec::new();
    for (field, body) in nul_cases {
        let (status, response, text) = send(&app, post.clone(), "/v1/events", Some(body)).await;
        let named = response["details"]["errors"][0]["field"].as_str();
        if status != 422 || named != Some(field) {
            unnamed.push(format!(
                "POST /v1/events bad {field}: {status}, names {named:?}: {text}"
            ));
        }
    }
    let stored: i64 = app
        .db
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM event_log WHERE project_id = $1",
            &[&p],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 24, "no refused batch stored anything");

    // POST acknowledge.
    let ack = format!("/v1/metrics/alerts/{alert}/acknowledge?project_id={p}");
    for (case, path, body, status) in [
        (
            "bad alert id",
            format!("/v1/metrics/alerts/{injection}/acknowledge?project_id={p}"),
            None,
            400,
        ),
        (
            "no project_id",
            format!("/v1/metrics/alerts/{alert}/acknowledge"),
            None,
            400,
        ),
        (
            "malformed JSON",
            ack.clone(),
            Some(b"{\"reason\":".to_vec()),
            400,
        ),
        (
            "reason a number",
            ack.clone(),
            Some(b"{\"reason\": 1}".to_vec()),
            422,
        ),
        (
            "huge expiry",
            ack.clone(),
            Some(b"{\"expires_in_minutes\": 1e30}".to_vec()),
            422,
        ),
        (
            "negative expiry",
            ack.clone(),
            Some(b"{\"expires_in_minutes\": -5}".to_vec()),
            422,
        ),
        (
            "invalid UTF-8",
            ack.clone(),
            Some(b"{\"reason\": \"\xff\"}".to_vec()),
            400,
        ),
        (
            "NUL in the reason",
            ack.clone(),
            Some(b"{\"reason\": \"seen\\u0000\"}".to_vec()),
            422,
        ),
        (
            "NUL in project_id",
            format!("/v1/metrics/alerts/{alert}/acknowledge?project_id={p}%00"),
            None,
            422,
        ),
    ] {
        let answer = send(&app, post.clone(), &path, body).await;
        expect(format!("POST acknowledge {case}"), answer, status, None);
    }
    let answer = send(
        &app,
        post.clone(),
        &ack,
        Some(b"{\"reason\": \"\\u0000\"}".to_vec()),
    )
    .await;
    expect(
        "POST acknowledge NUL reason".into(),
        answer,
        422,
        Some("reason"),
    );
    failures.extend(unnamed);
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// Parameter names the metrics routes know, plus strangers.
const NAMES: [&str; 22] = [
    "project_id",
    "metric",
    "start_date",
    "end_date",
    "granularity",
    "dimensions",
    "dimension",
    "time_range",
    "filters",
    "limit",
    "offset",
    "sort_by",
    "sort_order",
    "timestamp",
    "severity",
    "state",
    "acknowledged",
    "metric_key",
    "cursor",
    "x",
    "",
    "project_id[]",
];

fn query_strategy(project: Uuid) -> impl Strategy<Value = String> {
    let value = prop_oneof![
        Just(project.to_string()),
        "[a-z_]{0,12}",
        "-?[0-9]{1,22}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}(T[0-9]{2}:[0-9]{2}:[0-9]{2}Z)?",
        "\\PC{0,24}",
        Just("{\"phase\": [\"a\", 1, null]}".to_owned()),
        Just("%%%".to_owned()),
        // NUL, alone or inside values and JSON filters (SPEC §14).
        "[a-z0-9_-]{0,6}\\x00[a-z0-9_-]{0,6}",
        Just("{\"phase\": \"a\\u0000\"}".to_owned()),
        // Instants and cursors far outside the years 1–9999.
        "[+-][0-9]{5,6}-0[1-9]-[12][0-9](T00:00:00Z)?",
        "-[0-9]{4}-01-01",
        "0000-0[1-9]-[12][0-9]T[0-2][0-9]:00:00Z",
        "-?[0-9]{15,19}\\.[0-9a-f]{32}",
    ];
    prop::collection::vec((prop::sample::select(NAMES.to_vec()), value), 0..6).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(name, value)| {
                let encoded: String = value
                    .bytes()
                    .map(|b| {
                        if b.is_ascii_alphanumeric() || b"-_.".contains(&b) || value == "%%%" {
                            // Plain characters, and one deliberately broken escape.
                            (b as char).to_string()
                        } else {
                            format!("%{b:02X}")
                        }
                    })
                    .collect();
                format!("{name}={encoded}")
            })
            .collect::<Vec<_>>()
            .join("&")
    })
}

fn json_strategy() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,16}".prop_map(Value::from),
        "\\PC{0,4}\\x00\\PC{0,4}".prop_map(Value::from),
        "[+-]?[0-9]{4,6}-[01][0-9]-[0-3][0-9]T[0-2][0-9]:00:00Z".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("[a-z_]{1,12}(\\x00)?", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A valid event with one field replaced by generated JSON (or removed), or generated JSON
/// outright.
fn event_strategy(project: Uuid) -> impl Strategy<Value = Value> {
    let fields = vec![
        "project_id",
        "event_id",
        "entity_type",
        "entity_id",
        "event_type",
        "occurred_at",
        "payload",
        "caused_by",
        "correlation_id",
    ];
    prop_oneof![
        (prop::sample::select(fields), json_strategy(), any::<bool>()).prop_map(
            move |(field, value, remove)| {
                let mut event =
                    EventBuilder::for_project(project).transition("t", "claimed", Utc::now());
                if remove {
                    event.as_object_mut().unwrap().remove(field);
                } else {
                    event[field] = value;
                }
                json!([event])
            }
        ),
        json_strategy(),
    ]
}

#[tokio::test]
async fn generated_query_strings_and_event_bodies_never_get_a_500() {
    let app = TestApp::spawn().await;
    let (p, _) = folded_project_with_alert(&app).await;
    let config = Config {
        cases: 64,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]));
    let routes = [
        "/v1/metrics/summary",
        "/v1/metrics/trends",
        "/v1/metrics/breakdown",
        "/v1/metrics/drilldown",
        "/v1/metrics/health",
        "/v1/metrics/alerts",
        "/v1/metrics/actions",
    ];
    let queries = query_strategy(p);
    let mut problems = Vec::new();
    for route in routes {
        for _ in 0..64 {
            let query = queries.new_tree(&mut runner).unwrap().current();
            let (status, body, text) = send(
                &app,
                reqwest::Method::GET,
                &format!("{route}?{query}"),
                None,
            )
            .await;
            let unnamed = matches!(status, 400 | 422) && !body["details"]["field"].is_string();
            if status >= 500 || (status >= 400 && body.get("error").is_none()) || unnamed {
                problems.push(format!("GET {route}?{query} → {status} {text}"));
            }
        }
    }
    let events = event_strategy(p);
    for _ in 0..256 {
        let body = events.new_tree(&mut runner).unwrap().current();
        let (status, response, text) = send(
            &app,
            reqwest::Method::POST,
            "/v1/events",
            Some(serde_json::to_vec(&body).unwrap()),
        )
        .await;
        let details = &response["details"];
        let named = match status {
            400 => details["field"].is_string(),
            422 => details["errors"].as_array().is_some_and(|errors| {
                !errors.is_empty() && errors.iter().all(|e| e["field"].is_string())
            }),
            409 => details["conflicts"]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            _ => true,
        };
        if status >= 500 || (status >= 400 && response.get("error").is_none()) || !named {
            problems.push(format!("POST /v1/events {body} → {status} {text}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    // The server is still healthy after all of it.
    assert_eq!(
        send(&app, reqwest::Method::GET, "/health/db", None).await.0,
        200
    );
}
