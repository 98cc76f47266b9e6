//! Driving rixos and the systems it builds from VM tests: the `rixos` binary cargo built beside the test, and
//! commands typed at a booted system's root shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::Machine;

/// The `rixos` executable of this workspace's build (the test binary's `../rixos`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("rixos");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `rixos --store STORE ARGS` in `dir`; a failure panics with its stderr.
pub fn run(store: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(binary())
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running rixos");
    assert!(
        out.status.success(),
        "rixos {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Types `command` at the machine's shell and returns what it printed (between two markers).
pub fn shell(machine: &mut Machine, command: &str, timeout: Duration) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    machine
        .send_line(&format!("echo BEGIN-{n}; {command}; echo END-{n}"))
        .expect("typing on the serial console");
    let groups = machine
        .wait_for_regex(&format!(r"BEGIN-{n}\r?\n([\s\S]*?)END-{n}\r?\n"), timeout)
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    groups[1].replace('\r', "").trim().to_string()
}
