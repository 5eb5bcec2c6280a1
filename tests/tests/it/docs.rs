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
