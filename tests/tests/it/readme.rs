//! The README matches the code: its route table lists every route of the OpenAPI document
//! with exactly its parameters, and every block marked `sh example` runs as printed against
//! a folded demo project, each request answering 200.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};

use flowmeter_tests::{TestApp, TestAppOptions};
use serde_json::Value;

use crate::ops::{fold_everything, load_demo, output_text};

fn readme() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    std::fs::read_to_string(root.join("README.md")).unwrap()
}

/// The contents of the fenced blocks whose info string is `sh example`.
fn example_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim()) {
            (None, "```sh example") => current = Some(String::new()),
            (Some(block), "```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    assert!(current.is_none(), "README.md: an unclosed example block");
    blocks
}

/// (method, path) → (required, optional) parameter names, from the README's route table.
type Routes = BTreeMap<(String, String), (BTreeSet<String>, BTreeSet<String>)>;

fn names(cell: &str) -> BTreeSet<String> {
    cell.split(',')
        .map(|n| n.trim().trim_matches('`').to_owned())
        .filter(|n| !n.is_empty() && n != "—")
        .collect()
}

fn readme_routes(text: &str) -> Routes {
    text.lines()
        .filter(|l| l.starts_with("| `GET ") || l.starts_with("| `POST "))
        .map(|l| {
            let cells: Vec<&str> = l.trim().trim_matches('|').split(" | ").collect();
            let (method, path) = cells[0].trim().trim_matches('`').split_once(' ').unwrap();
            (
                (method.to_lowercase(), path.to_owned()),
                (names(cells[1]), names(cells[2])),
            )
        })
        .collect()
}

#[tokio::test]
async fn the_readme_route_table_lists_every_route_with_exactly_its_parameters() {
    let app = TestApp::spawn().await;
    let doc: Value = app
        .get("/v1/openapi.json", None)
        .await
        .json()
        .await
        .unwrap();
    let mut documented = Routes::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let (mut required, mut optional) = (BTreeSet::new(), BTreeSet::new());
            for parameter in operation["parameters"].as_array().into_iter().flatten() {
                if parameter["in"] != "query" {
                    continue;
                }
                let name = parameter["name"].as_str().unwrap().to_owned();
                if parameter["required"] == true {
                    required.insert(name);
                } else {
                    optional.insert(name);
                }
            }
            documented.insert((method.clone(), path.clone()), (required, optional));
        }
    }
    let listed = readme_routes(&readme());
    assert!(listed.len() >= 14, "{listed:?}");
    for (route, parameters) in &documented {
        assert_eq!(
            listed.get(route),
            Some(parameters),
            "README.md's route table for {route:?} (required, optional) differs from the OpenAPI document"
        );
    }
    let extra: Vec<_> = listed
        .keys()
        .filter(|r| !documented.contains_key(*r))
        .collect();
    assert!(
        extra.is_empty(),
        "README.md lists routes the API does not have: {extra:?}"
    );
}

#[tokio::test]
async fn every_readme_example_runs_as_printed_against_a_demo_instance() {
    let key = "fm_readme_examples_admin_key_0123456789";
    let app = TestApp::spawn_with(TestAppOptions::with_auth().env("FLOWMETER_API_KEY", key)).await;
    let project = load_demo(&app.db.url, 1, 150)[0];
    let _worker = fold_everything(&app.db.url).await;

    let blocks = example_blocks(&readme());
    assert!(
        blocks.len() >= 5,
        "README.md has {} example blocks",
        blocks.len()
    );
    let mut requests = 0;
    for block in &blocks {
        // Each curl also reports its status on stderr, so every request is checked.
        let script = format!(
            "curl() {{ command curl -w '%{{stderr}}HTTP %{{http_code}}\\n' \"$@\"; }}\n{block}"
        );
        let mut command = Command::new("bash");
        command
            .args(["-euo", "pipefail", "-c", &script])
            .env_clear()
            .env("PATH", "/usr/local/bin:/usr/bin:/bin")
            .env("HOME", std::env::temp_dir())
            .env("FLOWMETER_API_URL", &app.base_url)
            .env("FLOWMETER_API_KEY", key)
            .env("FLOWMETER_PROJECT_ID", project.to_string())
            .stdin(Stdio::null());
        // The server runs on this test's runtime: wait for bash off it.
        let out = tokio::task::spawn_blocking(move || command.output())
            .await
            .unwrap()
            .expect("bash");
        assert!(
            out.status.success(),
            "README.md example failed:\n{block}\n{}",
            output_text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        let statuses: Vec<&str> = stderr
            .lines()
            .filter_map(|l| l.strip_prefix("HTTP "))
            .collect();
        let calls = block.matches("curl -").count();
        assert_eq!(
            statuses.len(),
            calls,
            "README.md example: {calls} curl calls, {} statuses:\n{block}\n{}",
            statuses.len(),
            output_text(&out)
        );
        assert!(
            statuses.iter().all(|s| *s == "200"),
            "README.md example answered {statuses:?}:\n{block}"
        );
        requests += calls;
    }
    assert!(
        requests >= 15,
        "only {requests} requests in README.md's examples"
    );
}
