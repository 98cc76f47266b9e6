//! Module system semantics, data-driven: each file in tests/modules/ is a Nix expression evaluating modules
//! with `<rixos/lib.nix>`, headed by `# expect: VALUE` (what `rixos instantiate --eval --strict` prints) or
//! `# expect-error: TEXT` lines (each TEXT must appear in the error). Covers priorities, mkIf laziness,
//! submodule merging, list ordering, conflicts, readOnly, apply, renamed and removed options, unknown options
//! and type errors with their file:line (at top level and inside submodules), imports counted once, and
//! specialArgs. tests/modules/configurations/ holds system configurations `rixos system build` and
//! `rixos options -c` must refuse.

use std::path::Path;
use std::process::Command;

#[test]
fn module_semantics() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modules");
    // Cases are the .nix files at the top; files/ holds what they import.
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expect: Option<&str> = text.lines().find_map(|l| l.strip_prefix("# expect: "));
        let errors = expected_errors(&text);
        assert!(
            expect.is_some() == errors.is_empty(),
            "{}: give either expect or expect-error",
            file.display()
        );
        let out = Command::new(env!("CARGO_BIN_EXE_rixos"))
            .args(["instantiate", "--eval", "--strict"])
            .arg(file)
            .env_remove("RIXOS_STORE")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let name = file.file_name().unwrap().to_string_lossy();
        match expect {
            Some(value) => {
                if !out.status.success() || stdout.trim() != value {
                    failures.push(format!(
                        "{name}: expected {value}\n  got {}{}",
                        stdout.trim(),
                        stderr.trim()
                    ));
                }
            }
            None => {
                if out.status.success() {
                    failures.push(format!("{name}: expected an error, got {}", stdout.trim()));
                }
                for e in &errors {
                    if !stderr.contains(e) {
                        failures.push(format!("{name}: the error lacks {e:?}:\n{stderr}"));
                    }
                }
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(files.len() >= 15);
}

/// `# expect-error: TEXT` lines of a fixture.
fn expected_errors(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("# expect-error: "))
        .collect()
}

/// Each configuration in tests/modules/configurations/ is refused by `rixos system build` (before anything is
/// built or linked) and by `rixos options -c`, with each of its `# expect-error:` texts; one headed
/// `# options: lists it` is an error in a value, which `rixos options` does not evaluate. The errors come
/// before the package set is needed, so no channel is.
#[test]
fn configuration_errors_are_refused_by_system_build_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let configs = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/modules/configurations");
    let mut files: Vec<_> = std::fs::read_dir(&configs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        let expected = expected_errors(&text);
        assert!(!expected.is_empty(), "{} names no expected error", file.display());
        let name = file.file_name().unwrap().to_string_lossy();
        let config = file.to_str().unwrap();
        let options_list_it = text.lines().any(|l| l == "# options: lists it");
        for args in [
            &["system", "build", "-c", config, "-o", "refused"][..],
            &["options", "-c", config, "hostName"][..],
        ] {
            let out = Command::new(env!("CARGO_BIN_EXE_rixos"))
                .arg("--store")
                .arg(dir.path().join("store"))
                .args(args)
                .current_dir(dir.path())
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let command = format!("{name}: rixos {}", args[..2].join(" "));
            if args[0] == "options" && options_list_it {
                if !out.status.success() {
                    failures.push(format!("{command} failed:\n{stderr}"));
                }
                continue;
            }
            if out.status.success() {
                failures.push(format!("{command} succeeded"));
            }
            for e in &expected {
                if !stderr.contains(e) {
                    failures.push(format!("{command}: the error lacks {e:?}:\n{stderr}"));
                }
            }
            if stderr.contains("building '") {
                failures.push(format!("{command}: something was built:\n{stderr}"));
            }
        }
        assert!(std::fs::symlink_metadata(dir.path().join("refused")).is_err());
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(files.len() >= 3);
}

#[test]
fn options_are_searchable_without_a_channel() {
    let dir = tempfile::tempdir().unwrap();
    let rixos = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(dir.path().join("store"))
            .args(args)
            .output()
            .unwrap()
    };
    let out = rixos(&["options", "hostName"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.starts_with("networking.hostName\n"), "{text}");
    assert!(
        text.contains("type: string") && text.contains("default: \"rixos\""),
        "{text}"
    );
    let out = rixos(&["options", "--json"]);
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    for expected in [
        "services.openssh.enable",
        "users.users.<name>.uid",
        "services.nginx.virtualHosts.<name>.root",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let html = dir.path().join("html");
    assert!(rixos(&["options", "--html", html.to_str().unwrap()]).status.success());
    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(page.contains("\"networking.hostName\"") && page.contains("addEventListener(\"input\""));
    assert!(!rixos(&["options", "no-such-option-anywhere"]).status.success());

    // In a browser, a search narrows the list: Debian's Chromium, headless, runs the page's script.
    let url = format!("file://{}?q=hostName", html.join("index.html").display());
    let dom = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--virtual-time-budget=5000",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", dir.path().join("chromium").display()))
        .arg(&url)
        .output()
        .expect("chromium (Debian's package: run scripts/setup)");
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert!(dom.contains(&format!("1 of {} options", names.len())), "{dom}");
    assert!(dom.contains("<div class=\"n\">networking.hostName</div>"), "{dom}");
}
