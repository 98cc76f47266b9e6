//! Configurations `rixos system build` must refuse: every file in ../shared/configs/errors and in
//! tests/system-errors (invalid users and groups, ...) fails with each of its `# expect-error: TEXT` lines in
//! the output (the option, file:line), building nothing and linking nothing. Needs the network to the Debian
//! mirror (the channel's index).

use std::path::{Path, PathBuf};
use std::process::Command;

fn cases() -> Vec<PathBuf> {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = [
        manifest.join("../shared/configs/errors"),
        manifest.join("tests/system-errors"),
    ]
    .iter()
    .flat_map(|dir| std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
    .map(|e| e.unwrap().path())
    .filter(|p| p.extension().is_some_and(|x| x == "nix"))
    .collect();
    files.sort();
    files
}

#[test]
fn the_error_configurations_are_refused_saying_what_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let rixos = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(args)
            .current_dir(dir.path())
            .output()
            .unwrap()
    };
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
