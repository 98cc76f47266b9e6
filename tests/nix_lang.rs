//! The upstream Nix language test suite (../shared/conformance/nix-lang, or $RIXOS_NIX_LANG_TESTS), run the
//! way upstream's driver runs it, against the `rixos` binary:
//! - parse-okay files parse; parse-fail files are rejected for Nix's reason;
//! - eval-okay files print exactly their `.exp` (`--eval --strict`, or `--xml --no-location` for `.exp.xml`);
//! - eval-fail files exit with status 1 and an error, never a crash or a timeout.
//!
//! Tests still failing are listed with their reasons in tests/nix-lang-known-failures.txt; an unlisted
//! failure, or a listed test that now passes, fails this test. With RIXOS_WRITE_KNOWN_FAILURES=1 the list is
//! rewritten from this run (keeping the reasons already written).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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
    dir.canonicalize().unwrap()
}

const KNOWN: &str = "tests/nix-lang-known-failures.txt";

fn known_failures() -> BTreeMap<String, String> {
    let list = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(KNOWN)).unwrap();
    list.lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(':').expect("known failure lines are 'name: reason'");
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Flags from a `.flags` file: whitespace-separated words, `#` to the end of a line is a comment.
fn flags(dir: &Path, name: &str) -> Vec<String> {
    let Ok(text) = std::fs::read_to_string(dir.join(format!("{name}.flags"))) else {
        return Vec::new();
    };
    text.lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .flat_map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .collect()
}

struct Run {
    status: Option<i32>,
    stdout: String,
    stderr: String,
    timed_out: bool,
}

/// Runs rixos in `work` (which holds `lang` -> the suite), as upstream's driver runs nix-instantiate.
fn run(work: &Path, args: &[String]) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("instantiate")
        .args(args)
        .current_dir(work)
        .env("TEST_VAR", "foo")
        .env("HOME", "/fake-home")
        .env("NIX_PATH", "lang/dir3:lang/dir4")
        // A store of its own, as Nix's suite has its own state: channels of the machine's default store would
        // add their entries to the search path the search-path tests count.
        .env("RIXOS_STORE", work.join(".rixos-store"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running rixos");
    // Read both pipes on threads so a chatty test cannot block on a full pipe.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut s).ok();
        s
    });
    let err_t = std::thread::spawn(move || {
        let mut s = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut s).ok();
        s
    });
    let start = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(20) {
            timed_out = true;
            child.kill().ok();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let work_s = work.display().to_string();
    let clean = |b: Vec<u8>| String::from_utf8_lossy(&b).replace(&work_s, "/pwd");
    Run {
        status: status.code(),
        stdout: clean(out_t.join().unwrap()),
        stderr: clean(err_t.join().unwrap()),
        timed_out,
    }
}

fn first_difference(expected: &str, got: &str) -> String {
    let short = |s: &str| {
        let s: String = s.chars().take(100).collect();
        s.replace('\n', "\\n")
    };
    let at = expected
        .char_indices()
        .zip(got.chars())
        .find(|((_, a), b)| a != b)
        .map(|((i, _), _)| i)
        .unwrap_or(expected.len().min(got.len()));
    let from = expected[..at].char_indices().rev().nth(20).map_or(0, |(i, _)| i);
    format!(
        "output differs at byte {at}: expected {:?}, got {:?}",
        short(&expected[from..]),
        short(got.get(from..).unwrap_or(""))
    )
}

#[test]
fn nix_language_suite() {
    let dir = suite_dir();
    let known = known_failures();
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&dir, work.path().join("lang")).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter_map(|n| n.strip_suffix(".nix").map(str::to_string))
        .filter(|n| n.starts_with("parse-") || n.starts_with("eval-"))
        .collect();
    names.sort();

    let mut tally: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    let mut failures: BTreeMap<String, String> = BTreeMap::new();
    for name in &names {
        let file = dir.join(format!("{name}.nix"));
        let (kind, result): (&str, Result<(), String>) = if name.starts_with("parse-") {
            let source = std::fs::read_to_string(&file).unwrap();
            let parsed = parse(&source, &file.display().to_string());
            if name.starts_with("parse-fail-") {
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
                (
                    "parse-fail rejected",
                    match &parsed {
                        Ok(_) => Err("it parsed".to_string()),
                        Err(e) if e.message.starts_with(core) => Ok(()),
                        Err(e) => Err(format!("expected {core:?}, got {:?}", e.message)),
                    },
                )
            } else {
                ("parse-okay parsed", parsed.map(|_| ()).map_err(|e| e.to_string()))
            }
        } else if name.starts_with("eval-okay-") {
            if dir.join(format!("{name}.exp-disabled")).exists() {
                continue;
            }
            let xml = dir.join(format!("{name}.exp.xml"));
            let (expected, mut args) = if xml.exists() {
                (
                    std::fs::read_to_string(&xml).unwrap(),
                    vec!["--eval", "--xml", "--no-location", "--strict"],
                )
            } else {
                (
                    std::fs::read_to_string(dir.join(format!("{name}.exp"))).unwrap_or_default(),
                    vec!["--eval", "--strict"],
                )
            };
            let mut all: Vec<String> = flags(&dir, name);
            all.extend(args.drain(..).map(str::to_string));
            all.push(format!("lang/{name}.nix"));
            let r = run(work.path(), &all);
            let result = if r.timed_out {
                Err("timed out".to_string())
            } else if r.status != Some(0) {
                let first = r
                    .stderr
                    .lines()
                    .find(|l| l.contains("error"))
                    .unwrap_or("")
                    .trim()
                    .to_string();
                Err(format!(
                    "exit {:?}: {}",
                    r.status,
                    first.chars().take(160).collect::<String>()
                ))
            } else if r.stdout != expected {
                Err(first_difference(&expected, &r.stdout))
            } else {
                Ok(())
            };
            ("eval-okay output matches", result)
        } else if name.starts_with("eval-fail-") {
            let mut all = flags(&dir, name);
            if all.is_empty() {
                all = vec!["--eval".into(), "--strict".into(), "--show-trace".into()];
            }
            all.push(format!("lang/{name}.nix"));
            let r = run(work.path(), &all);
            let result = if r.timed_out {
                Err("timed out".to_string())
            } else if r.stderr.contains("panicked") {
                Err(format!("crashed: {}", r.stderr.lines().next().unwrap_or("")))
            } else if r.status != Some(1) {
                Err(format!("exit status {:?}, not 1 (it should fail)", r.status))
            } else if !r.stderr.contains("error") {
                Err("no error message".to_string())
            } else {
                Ok(())
            };
            ("eval-fail fails cleanly", result)
        } else {
            continue;
        };
        let entry = tally.entry(kind).or_default();
        entry.1 += 1;
        match result {
            Ok(()) => entry.0 += 1,
            Err(reason) => {
                failures.insert(name.clone(), reason);
            }
        }
    }
    for (kind, (passed, total)) in &tally {
        println!(
            "{kind}: {passed}/{total} ({:.1}%)",
            100.0 * *passed as f64 / *total as f64
        );
    }
    if std::env::var_os("RIXOS_WRITE_KNOWN_FAILURES").is_some() {
        let header: String = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(KNOWN))
            .unwrap()
            .lines()
            .take_while(|l| l.starts_with('#'))
            .map(|l| format!("{l}\n"))
            .collect();
        let mut text = header;
        for (name, reason) in &failures {
            let reason = known.get(name).cloned().unwrap_or_else(|| reason.clone());
            text.push_str(&format!("{name}: {reason}\n"));
        }
        std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(KNOWN), text).unwrap();
    }
    let mut unexpected = Vec::new();
    for (name, reason) in &failures {
        if !known.contains_key(name) {
            unexpected.push(format!("{name} fails and is not listed: {reason}"));
        }
    }
    for name in known.keys() {
        if !names.contains(name) {
            unexpected.push(format!("{name} is listed but not in the suite"));
        } else if !failures.contains_key(name) {
            unexpected.push(format!("{name} passes now: remove it from the known failures"));
        }
    }
    assert!(unexpected.is_empty(), "\n{}", unexpected.join("\n"));
}
