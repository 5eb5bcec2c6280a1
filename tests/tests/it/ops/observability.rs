//! The Grafana dashboards and Prometheus rules that ship in the repository: they parse,
//! promtool accepts them and their unit tests pass, every alert links to its runbook
//! section, and every metric they name is exposed by the running API or worker.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use flowmeter_tests::TestDb;

use super::*;

const DASHBOARDS: [&str; 3] = [
    "flowmeter-service.json",
    "flowmeter-pipeline.json",
    "flowmeter-delivery.json",
];

/// The alerts SPEC §9 asks for, by the names the rule files give them.
const REQUIRED_ALERTS: [&str; 15] = [
    "FlowmeterHighErrorRate",
    "FlowmeterHighLatencyP99",
    "FlowmeterTargetDown",
    "FlowmeterHealthCheckFailing",
    "FlowmeterDbPoolNearlyExhausted",
    "FlowmeterFoldLagGrowing",
    "FlowmeterFoldFailures",
    "FlowmeterProjectsStalled",
    "FlowmeterDeliveryPredictabilityLow",
    "FlowmeterFlowEfficiencyLow",
    "FlowmeterIntegrationReliabilityLow",
    "FlowmeterLeadTimeHigh",
    "FlowmeterBlockedRatioHigh",
    "FlowmeterIntegrationBacklogHigh",
    "FlowmeterAlertmanagerQueueGrowing",
];

fn rule_files() -> Vec<PathBuf> {
    let dir = workspace_root().join("alerts/prometheus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".rules.yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "rule files in {}", dir.display());
    files
}

fn dashboard(name: &str) -> Value {
    let path = workspace_root().join("dashboards").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{} is not JSON: {e}", path.display()))
}

/// promtool from PATH (or $PROMTOOL). Its absence fails the test: `make test` installs it
/// (scripts/install-deps).
fn promtool() -> PathBuf {
    if let Some(path) = std::env::var_os("PROMTOOL") {
        return PathBuf::from(path);
    }
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("promtool"))
            .find(|candidate| candidate.is_file())
    });
    found.expect("promtool is missing: scripts/install-deps (run by `make test`) installs it")
}

#[test]
fn promtool_accepts_the_rule_files_and_their_unit_tests_pass() {
    let check = Command::new(promtool())
        .args(["check", "rules"])
        .args(rule_files())
        .output()
        .unwrap();
    assert!(check.status.success(), "{}", output_text(&check));

    let tests: Vec<PathBuf> = std::fs::read_dir(workspace_root().join("alerts/prometheus/tests"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".test.yml"))
        .collect();
    assert!(!tests.is_empty());
    let test = Command::new(promtool())
        .args(["test", "rules"])
        .args(&tests)
        .output()
        .unwrap();
    assert!(test.status.success(), "{}", output_text(&test));
}

/// GitHub's anchor for a Markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

#[test]
fn every_alert_has_a_summary_a_description_and_a_runbook_section() {
    let runbook = std::fs::read_to_string(workspace_root().join("docs/RUNBOOK.md")).unwrap();
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| anchor(heading.trim_start_matches('#')))
        .collect();
    let mut names = BTreeSet::new();
    for file in rule_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        let blocks: Vec<&str> = text.split("- alert: ").skip(1).collect();
        assert!(!blocks.is_empty(), "{} has alerts", file.display());
        for block in blocks {
            let name = block.lines().next().unwrap().trim().to_owned();
            for annotation in ["summary: ", "description: ", "severity: "] {
                assert!(
                    block.contains(annotation),
                    "{name} in {} lacks {annotation}",
                    file.display()
                );
            }
            let link = format!("runbook_url: \"docs/RUNBOOK.md#{}\"", name.to_lowercase());
            assert!(block.contains(&link), "{name} links {link}");
            assert!(
                anchors.contains(&name.to_lowercase()),
                "docs/RUNBOOK.md has a section headed {name}"
            );
            names.insert(name);
        }
    }
    for required in REQUIRED_ALERTS {
        assert!(names.contains(required), "an alert named {required}");
    }
}

#[test]
fn dashboards_are_grafana_json_with_a_datasource_variable_and_the_expected_panels() {
    let expected: [(&str, &[&str]); 3] = [
        (
            "flowmeter-service.json",
            &[
                "Request rate by route",
                "Error ratio (5xx, 5 m)",
                "Latency p99 by route",
                "Requests in flight",
                "Pool connections by state",
                "Pool free share",
            ],
        ),
        (
            "flowmeter-pipeline.json",
            &[
                "Fold throughput",
                "Fold lag",
                "Runs by mode and status",
                "Failed runs (15 m)",
                "Leases",
                "Quarantined events",
                "Stalled projects",
                "Alertmanager posts by result",
                "Alertmanager queue depth",
            ],
        ),
        (
            "flowmeter-delivery.json",
            &[
                "Delivery predictability (DPI)",
                "Flow efficiency (FES)",
                "Integration reliability (IRS)",
                "Throughput (tasks integrated, last 7 d)",
                "Work in progress",
                "Blocked ratio",
                "Alerts firing per project (Prometheus delivery rules)",
            ],
        ),
    ];
    let mut uids = BTreeSet::new();
    for (file, titles) in expected {
        let board = dashboard(file);
        assert!(board["title"].as_str().is_some_and(|t| !t.is_empty()));
        assert!(
            uids.insert(board["uid"].as_str().unwrap().to_owned()),
            "unique uid"
        );
        let variables = board["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["type"] == "datasource"
                && v["name"] == "datasource"
                && v["query"] == "prometheus"),
            "{file} has a Prometheus datasource variable"
        );
        let panels = board["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{file}: unique panel ids"
            );
            let grid = &panel["gridPos"];
            let (x, w) = (grid["x"].as_i64().unwrap(), grid["w"].as_i64().unwrap());
            assert!(x >= 0 && w > 0 && x + w <= 24, "{file}: {panel}");
            if panel["type"] == "row" {
                continue;
            }
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{file}: panel {} uses the datasource variable",
                panel["title"]
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(
                !targets.is_empty(),
                "{file}: {} has queries",
                panel["title"]
            );
            for target in targets {
                assert!(target["expr"].as_str().is_some_and(|e| !e.is_empty()));
                assert_eq!(target["datasource"]["uid"], "${datasource}");
            }
        }
        let present: BTreeSet<&str> = panels.iter().filter_map(|p| p["title"].as_str()).collect();
        for title in titles {
            assert!(present.contains(title), "{file} has a panel {title:?}");
        }
    }
}

/// Metric names (flowmeter_*) a text mentions.
fn referenced_names(text: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let bytes = text.as_bytes();
    let mut from = 0;
    while let Some(at) = text[from..].find("flowmeter_").map(|i| from + i) {
        let starts_word =
            at == 0 || !(bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_');
        let end = text[at..]
            .find(|c: char| !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .map_or(text.len(), |i| at + i);
        if starts_word {
            names.insert(text[at..end].to_owned());
        }
        from = end.max(at + 1);
    }
    names
}

/// Families (name → type) and sample names of an OpenMetrics text.
fn exposition(text: &str) -> (BTreeMap<String, String>, BTreeSet<String>) {
    let mut families = BTreeMap::new();
    let mut samples = BTreeSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut parts = rest.split_whitespace();
            if let (Some(name), Some(kind)) = (parts.next(), parts.next()) {
                families.insert(name.to_owned(), kind.to_owned());
            }
        } else if let Some(rest) = line.strip_prefix("# HELP ") {
            if let Some(name) = rest.split_whitespace().next() {
                families.entry(name.to_owned()).or_insert_with(String::new);
            }
        } else if !line.starts_with('#') && !line.is_empty() {
            samples.insert(line.split(['{', ' ']).next().unwrap().to_owned());
        }
    }
    (families, samples)
}

/// Whether `name` is a family, a sample, or a counter's `_total` / a histogram's series.
fn is_exposed(name: &str, families: &BTreeMap<String, String>, samples: &BTreeSet<String>) -> bool {
    if families.contains_key(name) || samples.contains(name) {
        return true;
    }
    let suffixes: [(&str, &[&str]); 4] = [
        ("_total", &["counter"]),
        ("_bucket", &["histogram"]),
        ("_sum", &["histogram", "summary"]),
        ("_count", &["histogram", "summary"]),
    ];
    suffixes.iter().any(|(suffix, kinds)| {
        name.strip_suffix(suffix)
            .and_then(|base| families.get(base))
            .is_some_and(|kind| kinds.contains(&kind.as_str()))
    })
}

/// Starts the real `flowmeter-api serve` on a free port; killed when dropped.
struct ApiProcess(std::process::Child, String);

impl ApiProcess {
    async fn spawn(db_url: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new(flowmeter_tests::bin_path("flowmeter-api"))
            .arg("serve")
            .env_clear()
            .env("FLOWMETER_DATABASE_URL", db_url)
            .env("FLOWMETER_HTTP_ADDR", format!("127.0.0.1:{port}"))
            .env("FLOWMETER_AUTH_DISABLED", "1")
            .env("FLOWMETER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        while reqwest::get(format!("{base}/health")).await.is_err() {
            assert!(Instant::now() < deadline, "the API did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        Self(child, base)
    }
}

impl Drop for ApiProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn every_metric_a_dashboard_or_rule_uses_is_exposed_by_the_running_api_or_worker() {
    let db = TestDb::migrated().await;
    load_demo(&db.url, 1, 20);
    let worker = fold_everything(&db.url).await;
    let api = ApiProcess::spawn(&db.url).await;
    // A request of each kind, so per-route series exist too.
    reqwest::get(format!("{}/health/all", api.1)).await.unwrap();

    let api_text = reqwest::get(format!("{}/metrics", api.1))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // The worker refreshes its business gauges at most every few seconds after a drain: wait
    // for a refresh that saw the folded projects.
    let started = std::time::Instant::now();
    let worker_text = loop {
        let text = worker.metrics().await;
        if text.contains("flowmeter_project_metric{") || started.elapsed().as_secs() > 20 {
            break text;
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    };
    let (mut families, mut samples) = exposition(&api_text);
    let (worker_families, worker_samples) = exposition(&worker_text);
    families.extend(worker_families);
    samples.extend(worker_samples);
    assert!(
        families.contains_key("flowmeter_http_requests"),
        "{api_text}"
    );
    assert!(
        families.contains_key("flowmeter_fold_events"),
        "{worker_text}"
    );

    let mut referenced = BTreeMap::<String, String>::new();
    for name in DASHBOARDS {
        let path = workspace_root().join("dashboards").join(name);
        for metric in referenced_names(&std::fs::read_to_string(&path).unwrap()) {
            referenced.entry(metric).or_insert_with(|| name.to_owned());
        }
    }
    for path in rule_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        for metric in referenced_names(&std::fs::read_to_string(&path).unwrap()) {
            referenced.entry(metric).or_insert_with(|| file.clone());
        }
    }
    for expected in [
        "flowmeter_http_request_duration_seconds_bucket",
        "flowmeter_fold_lag_events",
        "flowmeter_project_metric",
        "flowmeter_alerts_firing",
        "flowmeter_alertmanager_posts_total",
        "flowmeter_alertmanager_queue_depth",
    ] {
        assert!(referenced.contains_key(expected), "{expected} is used");
    }
    let missing: Vec<String> = referenced
        .iter()
        .filter(|(name, _)| !is_exposed(name, &families, &samples))
        .map(|(name, file)| format!("{name} (in {file})"))
        .collect();
    assert!(
        missing.is_empty(),
        "named by dashboards or rules but exposed by neither process: {missing:?}\nexposed: {:?}",
        families.keys().collect::<Vec<_>>()
    );
}

#[test]
fn the_cross_check_understands_counter_and_histogram_suffixes() {
    let text =
        "# HELP flowmeter_fold_events Events folded.\n# TYPE flowmeter_fold_events counter\n\
                flowmeter_fold_events_total 3\n# TYPE flowmeter_fold_lag_events gauge\n\
                # TYPE flowmeter_fold_run_duration_seconds histogram\n\
                flowmeter_fold_run_duration_seconds_bucket{le=\"0.1\"} 1\n# EOF\n";
    let (families, samples) = exposition(text);
    for name in [
        "flowmeter_fold_events_total",
        "flowmeter_fold_lag_events",
        "flowmeter_fold_run_duration_seconds_bucket",
        "flowmeter_fold_run_duration_seconds_sum",
        "flowmeter_fold_run_duration_seconds_count",
    ] {
        assert!(is_exposed(name, &families, &samples), "{name}");
    }
    for name in [
        "flowmeter_fold_lag_events_total",
        "flowmeter_fold_events_bucket",
        "flowmeter_alerts_firing",
        "flowmeter_alertmanager_posts_total",
        "flowmeter_alertmanager_queue_depth",
    ] {
        assert!(!is_exposed(name, &families, &samples), "{name}");
    }
    assert_eq!(
        referenced_names(
            "rate(flowmeter_a_total[5m]) / x_flowmeter_b + flowmeter_c{job=\"flowmeter-api\"}"
        ),
        BTreeSet::from(["flowmeter_a_total".to_owned(), "flowmeter_c".to_owned()])
    );
}
