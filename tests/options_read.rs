//! Every option `rixos options` lists changes the built system: the toplevel's derivation is evaluated, all of
//! it, as `rixos system build` would (without building), for tests/data/all-options.nix, a configuration that
//! enables every module and sets every option; the module system notes each option whose value is forced
//! (`builtins.rixosOptionRead`), and a declared option nothing read fails the test unless
//! tests/data/unread-options.txt names it with a reason. Options of submodules count (`users.users.<name>.uid`
//! is read when some user's uid is). Needs the network to the Debian mirror (the channel's index).

use std::collections::BTreeMap;
use std::path::Path;

mod common;

/// Reads first, while nothing but the system's evaluation has forced an option; then the documented options
/// (what `rixos options --json` lists), whose defaults options-doc forces on its own.
const PROBE: &str = r#"{ file }:
let
  r = builtins.seq (builtins.rixosRecordOptionReads true)
    (import <rixos/nixos/eval-config.nix> { configuration = /. + file; });
  reads = builtins.seq r.check (builtins.seq r.config.system.build.toplevel.drvPath (builtins.rixosOptionsRead null));
in
builtins.deepSeq reads {
  inherit reads;
  declared = map (o: o.name) (import <rixos/nixos/options-doc.nix> { configuration = { }; });
}"#;

/// Whether the documented name (`users.users.<name>.uid`, `swapDevices.*.size`) is the option at `loc`.
fn names(doc: &str, loc: &[String]) -> bool {
    let parts: Vec<&str> = doc.split('.').collect();
    parts.len() == loc.len()
        && parts
            .iter()
            .zip(loc)
            .all(|(p, l)| *p == "<name>" || *p == "*" || p == l)
}

#[test]
fn every_declared_option_is_read_by_the_system() {
    let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data");
    let dir = tempfile::tempdir().unwrap();
    let rixos = |args: &[&str]| common::rixos(&dir.path().join("store"), dir.path(), args);
    let out = rixos(&["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let fixture = data.join("all-options.nix");
    let out = rixos(&[
        "instantiate",
        "--eval",
        "--strict",
        "--json",
        "--argstr",
        "file",
        fixture.to_str().unwrap(),
        "-E",
        PROBE,
    ]);
    assert!(
        out.status.success(),
        "evaluating {}:\n{}",
        fixture.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    let result: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let reads: Vec<Vec<String>> = serde_json::from_value(result["reads"].clone()).unwrap();
    let declared: Vec<String> = serde_json::from_value(result["declared"].clone()).unwrap();
    assert!(declared.len() > 100, "only {} options are documented", declared.len());

    let exceptions_file = data.join("unread-options.txt");
    let exceptions: BTreeMap<String, String> = std::fs::read_to_string(&exceptions_file)
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let (name, reason) = l.split_once(' ').unwrap_or((l, ""));
            assert!(
                !reason.trim().is_empty(),
                "{}: {name} has no reason",
                exceptions_file.display()
            );
            (name.to_string(), reason.to_string())
        })
        .collect();

    let mut problems = Vec::new();
    for name in &declared {
        let read = reads.iter().any(|loc| names(name, loc));
        match (read, exceptions.contains_key(name)) {
            (false, false) => problems.push(format!(
                "{name} is declared but nothing the system is built from reads it: implement it, stop declaring \
                 it, or list it in {} with the reason (and set it in {} if only a value there would read it)",
                exceptions_file.display(),
                fixture.display()
            )),
            (true, true) => problems.push(format!(
                "{name} is read now: remove it from {}",
                exceptions_file.display()
            )),
            _ => {}
        }
    }
    for name in exceptions.keys().filter(|n| !declared.contains(n)) {
        problems.push(format!(
            "{} lists {name}, which is not declared",
            exceptions_file.display()
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn documented_names_match_the_locations_read() {
    let loc = |s: &str| s.split('.').map(str::to_string).collect::<Vec<_>>();
    for (doc, read, expected) in [
        ("users.users.<name>.uid", "users.users.alice.uid", true),
        ("swapDevices.*.size", "swapDevices.[definition 1].size", true),
        ("networking.hostName", "networking.hostName", true),
        ("networking.hostName", "networking.domain", false),
        ("users.users.<name>.uid", "users.users", false),
        ("users.users", "users.users.alice.uid", false),
    ] {
        assert_eq!(names(doc, &loc(read)), expected, "{doc} vs {read}");
    }
}
