//! Configurations `rixos system build` must refuse: every file in ../shared/configs/errors and in
//! tests/system-errors (invalid users and groups, ...) fails with each of its `# expect-error: TEXT` lines in
//! the output (the option, file:line), building nothing and linking nothing. Needs the network to the Debian
//! mirror (the channel's index).

use std::path::{Path, PathBuf};

mod common;

fn cases() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    common::nix_files(&[
        manifest.join("../shared/configs/errors"),
        manifest.join("tests/system-errors"),
    ])
}

#[test]
fn the_error_configurations_are_refused_saying_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let rixos = |args: &[&str]| common::rixos(&dir.path().join("store"), dir.path(), args);
    let out = rixos(&["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let files = cases();
    assert!(files.len() >= 12, "{files:?}");
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected: Vec<&str> = text
            .lines()
            .filter_map(|l| l.strip_prefix("# expect-error: "))
            .collect();
        assert!(!expected.is_empty(), "{} names no expected error", file.display());
        let out = rixos(&["system", "build", "-c", file.to_str().unwrap(), "-o", "refused"]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            failures.push(format!("{} built", file.display()));
            continue;
        }
        for e in expected {
            if !stderr.contains(e) {
                failures.push(format!("{}: the error lacks {e:?}:\n{stderr}", file.display()));
            }
        }
        if stderr.contains("building '") {
            failures.push(format!("{}: something was built:\n{stderr}", file.display()));
        }
        if std::fs::symlink_metadata(dir.path().join("refused")).is_ok() {
            failures.push(format!("{}: left a `refused` link", file.display()));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
