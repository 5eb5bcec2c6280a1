//! The documentation keeps up with the code.

use std::collections::BTreeSet;
use std::path::Path;

fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

fn collect_variables(dir: &Path, found: &mut BTreeSet<String>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect_variables(&path, found);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut rest = text.as_str();
            while let Some(at) = rest.find("\"FLOWMETER_") {
                let tail = &rest[at + 1..];
                let end = tail
                    .find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_'))
                    .unwrap_or(tail.len());
                let name = &tail[..end];
                if tail[end..].starts_with('"') && !name.ends_with('_') {
                    found.insert(name.to_owned());
                }
                rest = &tail[end..];
            }
        }
    }
}

#[test]
fn env_example_lists_every_variable_the_code_reads() {
    let root = workspace_root();
    let mut variables = BTreeSet::new();
    for dir in ["services", "shared/src"] {
        collect_variables(&root.join(dir), &mut variables);
    }
    assert!(variables.contains("FLOWMETER_DATABASE_URL"));
    let example = std::fs::read_to_string(root.join(".env.example")).unwrap();
    let missing: Vec<_> = variables
        .iter()
        .filter(|v| !example.contains(v.as_str()))
        .collect();
    assert!(missing.is_empty(), ".env.example lacks {missing:?}");
}

/// The lines of a markdown document from the heading `start` up to the next heading of the
/// same or a higher level (or the end).
fn section<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    let heading_level = |line: &str| {
        let hashes = line.len() - line.trim_start_matches('#').len();
        (hashes > 0 && line[hashes..].starts_with(' ')).then_some(hashes)
    };
    let level = heading_level(start).unwrap();
    let mut lines = text.lines().skip_while(|l| l.trim() != start);
    assert!(lines.next().is_some(), "no section {start:?}");
    lines
        .take_while(|l| heading_level(l).is_none_or(|h| h > level))
        .collect()
}

/// The cells of the table rows whose first cell is a `code` name: (name, the other cells).
fn field_rows(lines: &[&str]) -> Vec<(String, Vec<String>)> {
    lines
        .iter()
        .filter(|l| l.starts_with("| `"))
        .map(|l| {
            let cells: Vec<String> = l
                .trim()
                .trim_matches('|')
                .split(" | ")
                .map(|c| c.trim().to_owned())
                .collect();
            (cells[0].trim_matches('`').to_owned(), cells[1..].to_vec())
        })
        .collect()
}

/// The contents of every ```json block.
fn json_blocks(lines: &[&str]) -> Vec<serde_json::Value> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in lines {
        match (&mut current, line.trim()) {
            (None, "```json") => current = Some(String::new()),
            (Some(text), "```") => {
                blocks.push(
                    serde_json::from_str(text)
                        .unwrap_or_else(|e| panic!("a json block is not JSON ({e}):\n{text}")),
                );
                current = None;
            }
            (Some(text), _) => {
                text.push_str(line);
                text.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

/// docs/EVENTS.md and the catalogue the validator checks against agree: the same event types
/// in the same order, each with its entity type and exactly the catalogue's payload fields
/// (name, JSON type, required, allowed values), a complete example the validator accepts,
/// the envelope's fields, and an error example that is what the validator answers.
#[test]
fn events_md_matches_the_validators_catalogue() {
    use flowmeter_shared::events::catalogue::CATALOGUE;
    use flowmeter_shared::events::{validate_event, EVENT_FIELDS};

    let text = std::fs::read_to_string(workspace_root().join("docs/EVENTS.md")).unwrap();

    let envelope = field_rows(&section(&text, "## The envelope (every event)"));
    let names: Vec<&str> = envelope.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(names, EVENT_FIELDS, "the envelope table of docs/EVENTS.md");

    let types = section(&text, "## Event types");
    let documented: Vec<&str> = types
        .iter()
        .filter_map(|l| l.strip_prefix("### `"))
        .map(|l| l.trim_end_matches('`'))
        .collect();
    let catalogued: Vec<&str> = CATALOGUE.iter().map(|s| s.event_type.as_str()).collect();
    assert_eq!(
        documented, catalogued,
        "the event types of docs/EVENTS.md (### headings under ## Event types)"
    );

    for spec in &CATALOGUE {
        let name = spec.event_type.as_str();
        let lines = section(&text, &format!("### `{name}`"));
        let entity = format!("entity_type `{}`.", spec.event_type.entity_type());
        assert!(
            lines.iter().any(|l| l.starts_with(&entity)),
            "docs/EVENTS.md, {name}: no line starting with {entity:?}"
        );
        let rows: Vec<(String, String, String, String)> = field_rows(&lines)
            .into_iter()
            .map(|(field, cells)| {
                (
                    field,
                    cells[0].clone(),
                    cells[1].clone(),
                    cells.get(2).cloned().unwrap_or_default(),
                )
            })
            .collect();
        let expected: Vec<(String, String, String, String)> = spec
            .fields
            .iter()
            .map(|f| {
                (
                    f.name.to_owned(),
                    f.kind.json_type().to_owned(),
                    if f.required { "yes" } else { "no" }.to_owned(),
                    f.kind.allowed(),
                )
            })
            .collect();
        let as_rows = |rows: &[(String, String, String, String)]| -> String {
            rows.iter()
                .map(|(n, t, r, a)| format!("| `{n}` | {t} | {r} | {a} | … |"))
                .collect::<Vec<_>>()
                .join("\n")
        };
        assert!(
            rows == expected,
            "docs/EVENTS.md, {name}: the field table differs from the validator's catalogue.\n\
             documented:\n{}\nthe catalogue says:\n{}",
            as_rows(&rows),
            as_rows(&expected)
        );

        let examples = json_blocks(&lines);
        assert_eq!(examples.len(), 1, "docs/EVENTS.md, {name}: one example");
        let example = &examples[0];
        let event = validate_event(0, example)
            .unwrap_or_else(|e| panic!("docs/EVENTS.md, {name}: the example is refused: {e:?}"));
        assert_eq!(
            event.event_type, spec.event_type,
            "{name}: the example's type"
        );
        let missing: Vec<&str> = spec
            .fields
            .iter()
            .map(|f| f.name)
            .filter(|field| example["payload"].get(field).is_none())
            .collect();
        assert!(
            missing.is_empty(),
            "docs/EVENTS.md, {name}: the example is not complete, it lacks {missing:?}"
        );
    }

    // The error example is what the validator says about the example batch.
    let errors = section(&text, "## Errors");
    let blocks = json_blocks(&errors);
    let [batch, response] = blocks.as_slice() else {
        panic!("## Errors has a batch and a response");
    };
    let found: Vec<serde_json::Value> = batch
        .as_array()
        .unwrap()
        .iter()
        .enumerate()
        .filter_map(|(index, event)| validate_event(index, event).err())
        .flatten()
        .map(|e| serde_json::to_value(e).unwrap())
        .collect();
    assert_eq!(
        serde_json::Value::Array(found),
        response["details"]["errors"],
        "docs/EVENTS.md, ## Errors"
    );
}

/// The numbers in a text: digit groups separated by single spaces (`112 705`), with an
/// optional decimal part (`7.65`).
fn numbers(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        if !chars[i].is_ascii_digit() || (i > 0 && chars[i - 1].is_ascii_alphanumeric()) {
            i += 1;
            continue;
        }
        let start = i;
        loop {
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            let group = |at: usize| {
                at + 3 <= chars.len()
                    && chars[at..at + 3].iter().all(char::is_ascii_digit)
                    && chars.get(at + 3).is_none_or(|c| !c.is_ascii_digit())
            };
            let thousands = i + 1 < chars.len() && chars[i] == ' ' && group(i + 1);
            let decimals = i + 1 < chars.len() && chars[i] == '.' && chars[i + 1].is_ascii_digit();
            if !(thousands || decimals) {
                break;
            }
            i += 1;
        }
        found.push(chars[start..i].iter().collect());
    }
    found
}

#[test]
fn every_figure_docs_scaling_md_quotes_is_in_docs_benchmarks_md() {
    let root = workspace_root();
    let scaling = std::fs::read_to_string(root.join("docs/SCALING.md")).unwrap();
    let benchmarks = std::fs::read_to_string(root.join("docs/BENCHMARKS.md")).unwrap();
    let rows: Vec<Vec<&str>> = section(&scaling, "## Limits measured")
        .into_iter()
        .filter(|l| l.starts_with('|') && !l.starts_with("|---") && !l.starts_with("| figure"))
        .map(|l| l.trim().trim_matches('|').split(" | ").collect())
        .collect();
    assert!(rows.len() >= 5, "{rows:?}");
    let mut checked = 0;
    for row in &rows {
        for figure in numbers(row[1]) {
            assert!(
                benchmarks.contains(&figure),
                "docs/SCALING.md quotes {figure} ({}), which docs/BENCHMARKS.md does not have: \
                 take the current figure from docs/BENCHMARKS.md",
                row[0]
            );
            checked += 1;
        }
    }
    assert!(checked >= 10, "only {checked} figures");
    assert_eq!(
        numbers("~112 705 events/s, p99 7.65 ms, 1 942 / 404, 10 projects"),
        ["112 705", "7.65", "1 942", "404", "10"]
    );
}
