//! Embeds the dashboard's build (`services/dashboard/dist`, written by
//! `scripts/build-dashboard`) into the binary: every file with its content type and a gzip
//! copy compressed once here, so the server never compresses at request time.
//!
//! Without a build the crate still compiles (Rust-only work, CI's lint step) and `GET /`
//! answers 503 with a page naming the command that builds the dashboard; `make run` and
//! `make test` build it first, so their binaries always serve it.

use std::io::Write;
use std::path::{Path, PathBuf};

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

fn files(dir: &Path, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files(&path, found);
        } else {
            found.push(path);
        }
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    let dist = manifest.join("../dashboard/dist");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap_or_default());
    println!("cargo:rerun-if-changed={}", dist.display());
    let mut found = Vec::new();
    files(&dist, &mut found);
    found.sort();
    let mut code = String::from("/// Every file of the dashboard's build: (path under dist, content type, bytes, gzip).\npub static ASSETS: &[(&str, &str, &[u8], &[u8])] = &[\n");
    for path in &found {
        let relative = path
            .strip_prefix(&dist)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        let bytes = std::fs::read(path).unwrap_or_default();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).unwrap_or_default();
        let compressed = gz.finish().unwrap_or_default();
        let gz_path = out.join(format!("{}.gz", relative.replace('/', "__")));
        std::fs::write(&gz_path, compressed).unwrap_or_default();
        code.push_str(&format!(
            "    ({relative:?}, {:?}, include_bytes!({:?}), include_bytes!({:?})),\n",
            content_type(path),
            path.display().to_string(),
            gz_path.display().to_string(),
        ));
    }
    code.push_str("];\n");
    if found.is_empty() {
        println!(
            "cargo:warning=services/dashboard/dist is missing: flowmeter-api is built without the dashboard (GET / answers 503); run scripts/build-dashboard (make run and make test do) and build again"
        );
    }
    std::fs::write(out.join("dashboard_assets.rs"), code).unwrap_or_default();
}
