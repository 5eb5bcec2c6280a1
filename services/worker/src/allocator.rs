//! How soon the allocator hands freed memory back to the operating system.
//!
//! The worker's global allocator is mimalloc (see `main.rs`). By default it keeps freed
//! pages for a second before purging them, so pages freed by one fold run were still
//! resident while the next run, or the other project's run, allocated its own: the worker's
//! peak RSS during the 1 M-event fold was about 100 MB with a live heap of about 31 MB
//! (measured with heaptrack on the system allocator). With a purge delay of 10 ms it
//! peaks at about 70 MB, at the same fold rate (docs/BENCHMARKS.md).

use std::ffi::c_long;

use libmimalloc_sys::{mi_option_get, mi_option_set, mi_option_t};

/// `mi_option_purge_delay`: its position in `mi_option_t` of the mimalloc that
/// libmimalloc-sys bundles (it exports no constant for it). A test checks that this option
/// has mimalloc's default purge delay, so an upgrade that moves it is noticed.
const PURGE_DELAY: mi_option_t = 15;

/// The purge delay the worker runs with, in milliseconds.
pub const PURGE_DELAY_MS: c_long = 10;

/// Sets the purge delay, unless the operator chose one with `MIMALLOC_PURGE_DELAY`. Call it
/// at the start of `main`, before any other thread exists (mimalloc's option setters are not
/// thread safe).
#[allow(unsafe_code)]
pub fn purge_freed_memory_promptly() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    // SAFETY: `mi_option_set` writes one slot of mimalloc's option table and takes no
    // pointers; no other thread exists yet to read the table concurrently.
    unsafe { mi_option_set(PURGE_DELAY, PURGE_DELAY_MS) }
}

/// The purge delay in effect, in milliseconds.
#[allow(unsafe_code)]
pub fn purge_delay_ms() -> c_long {
    // SAFETY: `mi_option_get` reads one slot of mimalloc's option table.
    unsafe { mi_option_get(PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The option at [`PURGE_DELAY`] is the purge delay: in a process that did not set it,
    /// it holds mimalloc's default of 1 000 ms (or what `MIMALLOC_PURGE_DELAY` says).
    #[test]
    fn the_option_set_is_mimallocs_purge_delay() {
        let expected = std::env::var("MIMALLOC_PURGE_DELAY")
            .ok()
            .and_then(|v| v.parse::<c_long>().ok())
            .unwrap_or(1000);
        assert_eq!(purge_delay_ms(), expected);
    }
}
