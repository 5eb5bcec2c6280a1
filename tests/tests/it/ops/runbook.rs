//! docs/RUNBOOK.md keeps its promises: every command in it is one the tests or CI run, and
//! its variable table covers .env.example.

use super::*;

/// Commands the runbook may contain, each with the file that runs it and the text there
/// that shows it does.
const EXERCISED: [(&str, &str, &str); 23] = [
    // The release build is the benchmark's first step (`make bench`).
    (
        "cargo build --release --bins",
        "scripts/bench",
        "\"cargo\", \"build\", \"--release\", \"--bins\"",
    ),
    (
        "flowmeter-api migrate",
        "tests/tests/it/migrations.rs",
        ".arg(\"migrate\")",
    ),
    (
        "flowmeter-api serve",
        "tests/tests/it/ops/observability.rs",
        ".arg(\"serve\")",
    ),
    (
        "flowmeter-worker run",
        "tests/src/worker.rs",
        ".arg(\"run\")",
    ),
    (
        "flowmeter-api keys create",
        "tests/tests/it/auth.rs",
        "\"create\"",
    ),
    (
        "flowmeter-api keys list",
        "tests/tests/it/auth.rs",
        "\"keys\", \"list\"",
    ),
    (
        "flowmeter-api keys revoke",
        "tests/tests/it/auth.rs",
        "\"keys\", \"revoke\"",
    ),
    (
        "promtool check rules",
        "tests/tests/it/ops/observability.rs",
        "[\"check\", \"rules\"]",
    ),
    (
        "promtool test rules",
        "tests/tests/it/ops/observability.rs",
        "[\"test\", \"rules\"]",
    ),
    (
        "curl -fsS http://127.0.0.1:8080/health/all",
        "tests/tests/it/ops/observability.rs",
        "/health/all",
    ),
    (
        "flowmeter-worker verify --project",
        "tests/src/worker.rs",
        "\"verify\", \"--project\"",
    ),
    (
        "scripts/smoke_test_metrics --base-url",
        "tests/tests/it/ops/mod.rs",
        "\"smoke_test_metrics\"",
    ),
    (
        "scripts/rollback_metrics.sh --dry-run",
        "tests/tests/it/ops/rollback.rs",
        "&[\"--dry-run\"]",
    ),
    (
        "scripts/rollback_metrics.sh --confirm",
        "tests/tests/it/ops/rehearsal.rs",
        "&[\"--confirm\"]",
    ),
    // CI runs `make test`, which is scripts/test; a filter only narrows it.
    ("scripts/test ", ".ci/run", "make test"),
    (
        "flowmeter-worker once --project",
        "tests/tests/it/fold/operations.rs",
        "\"once\", \"--project\"",
    ),
    (
        "flowmeter-worker backfill --project",
        "tests/src/worker.rs",
        "\"backfill\",",
    ),
    (
        "flowmeter-worker recover --project",
        "tests/tests/it/fold/operations.rs",
        "\"recover\", \"--project\"",
    ),
    (
        "flowmeter-worker rebuild --project",
        "tests/tests/it/fold/correctness.rs",
        "\"rebuild\", \"--project\"",
    ),
    (
        "flowmeter-worker quarantine list",
        "tests/tests/it/fold/correctness.rs",
        "\"quarantine\", \"list\"",
    ),
    (
        "flowmeter-worker quarantine retry --project",
        "tests/tests/it/fold/correctness.rs",
        "\"quarantine\", \"retry\", \"--project\"",
    ),
    ("make test", ".ci/run", "make test"),
    (
        "amtool check-config alerts/alertmanager.example.yml",
        "tests/tests/it/alerts/alertmanager.rs",
        ".arg(\"check-config\")",
    ),
];

fn runbook() -> String {
    std::fs::read_to_string(workspace_root().join("docs/RUNBOOK.md")).unwrap()
}

/// The lines of the runbook's fenced code blocks.
fn command_lines(text: &str) -> Vec<String> {
    let mut inside = false;
    let mut commands = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            inside = !inside;
        } else if inside && !trimmed.is_empty() && !trimmed.starts_with('#') {
            commands.push(trimmed.to_owned());
        }
    }
    assert!(!inside, "an unclosed code block");
    commands
}

#[test]
fn every_runbook_command_is_run_by_a_test_or_ci() {
    let commands = command_lines(&runbook());
    assert!(commands.len() >= 15, "{commands:?}");
    for command in &commands {
        let (_, file, needle) = EXERCISED
            .iter()
            .find(|(prefix, _, _)| command.starts_with(prefix))
            .unwrap_or_else(|| {
                panic!("docs/RUNBOOK.md runs `{command}`, which no test or CI step is known to run")
            });
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        assert!(
            text.contains(needle),
            "`{command}` is said to be run by {file}, which no longer contains {needle}"
        );
    }
}

#[test]
fn the_runbook_variable_table_lists_every_variable_of_env_example() {
    let runbook = runbook();
    let example = std::fs::read_to_string(workspace_root().join(".env.example")).unwrap();
    let variables: Vec<&str> = example
        .lines()
        .map(|l| l.trim_start_matches('#').trim())
        .filter_map(|l| l.split_once('=').map(|(name, _)| name))
        .filter(|name| name.starts_with("FLOWMETER_") && !name.contains(' '))
        .collect();
    assert!(variables.len() > 30, "{variables:?}");
    let missing: Vec<_> = variables
        .iter()
        .filter(|name| !runbook.contains(&format!("| `{name}` |")))
        .collect();
    assert!(missing.is_empty(), "the runbook's table lacks {missing:?}");
}
