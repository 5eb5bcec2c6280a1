//! The migrations are embedded with `include_dir!`, which cargo does not track: without
//! this, adding or editing a file in `migrations/` would not rebuild the binaries.

fn main() {
    println!("cargo:rerun-if-changed=../migrations");
}
