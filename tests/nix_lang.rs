//! The upstream Nix language test suite (../shared/conformance/nix-lang, or $RIXOS_NIX_LANG_TESTS), as far as
//! rixos implements the language today: every parse-okay file parses, every parse-fail file is rejected, and
//! every eval-okay file parses (Nix parsed it). Tests still failing are listed with their reasons in
//! tests/nix-lang-known-failures.txt; an unlisted failure, or a listed test that now passes, fails this test.
//! The evaluation tests (eval-okay output, eval-fail errors) join with the evaluator.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rixos::eval::parse::parse;

fn suite_dir() -> PathBuf {
    let dir = std::env::var_os("RIXOS_NIX_LANG_TESTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/nix-lang"));
    assert!(
        dir.is_dir(),
        "the Nix language suite is missing at {} (set RIXOS_NIX_LANG_TESTS)",
        dir.display()
    );
    dir
}

fn known_failures() -> BTreeMap<String, String> {
    let list = include_str!("nix-lang-known-failures.txt");
    list.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(':').expect("known failure lines are 'name: reason'");
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

#[test]
fn parse_tests_and_eval_okay_sources() {
    let dir = suite_dir();
    let known = known_failures();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".nix").map(str::to_string))
        .filter(|n| n.starts_with("parse-") || n.starts_with("eval-okay-"))
        .collect();
    names.sort();

    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut unexpected = Vec::new();
    for name in &names {
        let file = dir.join(format!("{name}.nix"));
        let source = std::fs::read_to_string(&file).unwrap();
        let result = parse(&source, &file.display().to_string());
        let (kind, passed, detail) = if name.starts_with("parse-fail-") {
            // Rejected for Nix's reason: a syntax error where Nix has one, else the same message core.
            let expected = std::fs::read_to_string(dir.join(format!("{name}.err.exp"))).unwrap_or_default();
            let first = expected
                .lines()
                .next()
                .unwrap_or_default()
                .trim_start_matches("error: ");
            let core = first.split(" at «").next().unwrap_or(first).trim();
            let core = if core.starts_with("syntax error") {
                "syntax error"
            } else {
                core
            };
            match &result {
                Ok(_) => ("parse-fail rejected", false, "it parsed".to_string()),
                Err(e) if e.message.starts_with(core) => ("parse-fail rejected", true, String::new()),
                Err(e) => (
                    "parse-fail rejected",
                    false,
                    format!("expected {core:?}, got {:?}", e.message),
                ),
            }
        } else if name.starts_with("parse-okay-") {
            (
                "parse-okay parsed",
                result.is_ok(),
                result.err().map(|e| e.to_string()).unwrap_or_default(),
            )
        } else {
            (
                "eval-okay parsed",
                result.is_ok(),
                result.err().map(|e| e.to_string()).unwrap_or_default(),
            )
        };
        let entry = tally.entry(kind).or_default();
        entry.1 += 1;
        if passed {
            entry.0 += 1;
        }
        match (passed, known.contains_key(name)) {
            (false, false) => unexpected.push(format!("{name} fails and is not listed: {detail}")),
            (true, true) => unexpected.push(format!("{name} passes now: remove it from the known failures")),
            _ => {}
        }
    }
    for (kind, (passed, total)) in &tally {
        println!(
            "{kind}: {passed}/{total} ({:.1}%)",
            100.0 * *passed as f64 / *total as f64
        );
    }
    for name in known.keys() {
        if !names.contains(name) {
            unexpected.push(format!("{name} is listed but not in the suite"));
        }
    }
    assert!(unexpected.is_empty(), "\n{}", unexpected.join("\n"));
}
