//! Messages to the console, each line prefixed `rixos stage 1: ` so they stand out among the kernel's.
//!
//! Writes straight to stderr and ignores write errors: PID 1 must not die because the console went away.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) const PREFIX: &str = "rixos stage 1: ";

static DEBUG: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_debug(on: bool) {
    DEBUG.store(on, Ordering::Relaxed);
}

/// A line that is always shown.
pub(crate) fn info(message: &str) {
    let mut text = String::with_capacity(message.len() + PREFIX.len() + 1);
    for line in message.lines() {
        text.push_str(PREFIX);
        text.push_str(line);
        text.push('\n');
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

/// A line shown only with `rixos.debug` on the kernel command line.
pub(crate) fn debug(message: &str) {
    if DEBUG.load(Ordering::Relaxed) {
        info(message);
    }
}

/// Console text without the prefix (the rescue menu).
pub(crate) fn plain(text: &str) {
    let mut stderr = std::io::stderr();
    let _ = stderr.write_all(text.as_bytes());
    let _ = stderr.flush();
}
