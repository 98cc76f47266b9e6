//! Evaluation and syntax errors say what and where as Nix 2.8 does, data-driven: each file in
//! tests/eval-errors/ (evaluation errors) and tests/eval-errors/syntax/ (broken snippets) is run with
//! `rixos instantiate --eval --strict` and headed by
//! - `# error: TEXT`: the error's first line is `error: TEXT`;
//! - `# at: LINE:COL`: the error is placed at `at FILE:LINE:COL:` (with the code excerpt);
//! - `# error-line: TEXT`: a further line of the error;
//! - `# nix: same` (Nix 2.8's `nix-instantiate` prints the same first line and position), `# nix: message`
//!   (the same first line; where Nix differs is said after it) or `# nix: none` (Nix cannot run it, say why).
//!
//! `@DIR@` stands for the fixture's directory. The Nix side is checked too, so an expectation is Nix's.

use std::path::Path;
use std::process::Command;

mod common;

struct Expectation {
    first: String,
    at: Option<String>,
    lines: Vec<String>,
    nix: String,
}

fn expectation(file: &Path) -> Expectation {
    let text = std::fs::read_to_string(file).unwrap();
    let dir = file.parent().unwrap().display().to_string();
    let header = |key: &str| -> Vec<String> {
        text.lines()
            .filter_map(|l| l.strip_prefix(&format!("# {key}: ")))
            .map(|v| v.replace("@DIR@", &dir))
            .collect()
    };
    let one = |key: &str| header(key).into_iter().next();
    Expectation {
        first: one("error").unwrap_or_else(|| panic!("{}: no `# error:` line", file.display())),
        at: one("at"),
        lines: header("error-line"),
        nix: one("nix").unwrap_or_else(|| panic!("{}: no `# nix:` line", file.display())),
    }
}

/// What a run printed on stderr, without Nix's warnings.
fn stderr_of(mut command: Command, file: &Path) -> String {
    let out = command
        .args(["--eval", "--strict"])
        .arg(file)
        .env_remove("RIXOS_STORE")
        .output()
        .unwrap();
    assert!(!out.status.success(), "{} evaluated", file.display());
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .filter(|l| !l.starts_with("warning:"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The problems with one run's error against the expectation.
fn check(who: &str, file: &Path, stderr: &str, e: &Expectation, with_position: bool) -> Vec<String> {
    let mut problems = Vec::new();
    let name = file.file_name().unwrap().to_string_lossy();
    let first = stderr.lines().next().unwrap_or("");
    if first != format!("error: {}", e.first) {
        problems.push(format!(
            "{name} ({who}): the first line is {first:?}, not \"error: {}\"",
            e.first
        ));
    }
    if with_position && let Some(at) = &e.at {
        let place = format!("at {}:{at}:", file.display());
        if !stderr.lines().any(|l| l.trim() == place) {
            problems.push(format!("{name} ({who}): not placed {place}\n{stderr}"));
        }
    }
    problems
}

fn run(dir: &str, at_least: usize) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let files = common::nix_files(std::slice::from_ref(&dir));
    assert!(files.len() >= at_least, "{}: {files:?}", dir.display());
    let mut problems = Vec::new();
    for file in &files {
        let e = expectation(file);
        let mut rixos = Command::new(env!("CARGO_BIN_EXE_rixos"));
        rixos.arg("instantiate");
        let stderr = stderr_of(rixos, file);
        problems.extend(check("rixos", file, &stderr, &e, true));
        for line in &e.lines {
            if !stderr.lines().any(|l| l.trim() == line) {
                problems.push(format!(
                    "{}: the error lacks the line {line:?}:\n{stderr}",
                    file.display()
                ));
            }
        }
        let nix = e.nix.split_whitespace().next().unwrap_or("");
        if nix == "same" || nix == "message" {
            let stderr = stderr_of(Command::new("nix-instantiate"), file);
            problems.extend(check("nix-instantiate 2.8", file, &stderr, &e, nix == "same"));
        } else {
            assert_eq!(nix, "none", "{}: `# nix:` is same, message or none", file.display());
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn evaluation_errors_say_what_and_where() {
    run("tests/eval-errors", 7);
}

#[test]
fn syntax_errors_are_worded_and_placed_as_nix_does() {
    run("tests/eval-errors/syntax", 35);
}
