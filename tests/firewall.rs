//! The firewall's ruleset (networking.firewall, src/modules/nixos/firewall.nix), data-driven: each file in
//! tests/firewall/ is a configuration module headed by `# expect: LINE` (a line of the ruleset, leading space
//! aside), `# expect-not: TEXT` (no line of the ruleset begins with TEXT) or `# expect-error: TEXT` (the
//! evaluation fails, TEXT in its error). Every ruleset is also checked by Debian's own nft (the version the
//! package set has) in a network namespace of its own, and one is loaded, reloaded and removed there as
//! firewall.service does. Needs no channel: the ruleset is evaluated without the package set.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;

/// The ruleset of a configuration, or "(no firewall.service)", with the firewall's assertions checked (the
/// others want a whole machine: a root file system and more).
const RULESET: &str = r#"{ file }:
let
  c = (import <rixos/nixos/eval-config.nix> { configuration = /. + file; pkgs = { }; }).config;
  failed = builtins.filter (a: !a.assertion && builtins.substring 0 20 a.message == "networking.firewall.") c.assertions;
in
if failed != [ ] then throw (builtins.head failed).message
else if c.systemd.services ? firewall then c.networking.firewall.build.ruleset
else "(no firewall.service)""#;

fn ruleset_of(file: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["instantiate", "--eval", "--json", "--argstr", "file"])
        .arg(file)
        .args(["-E", RULESET])
        .env_remove("RIXOS_STORE")
        .output()
        .unwrap()
}

/// `nft ARGS` as root of a new user and network namespace, so nothing of the host's firewall is touched.
fn nft_in_netns(script: &str) -> Output {
    Command::new("unshare")
        .args(["-rn", "sh", "-ec", script])
        .output()
        .expect("unshare (util-linux)")
}

fn cases() -> Vec<PathBuf> {
    common::nix_files(&[Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall")])
}

#[test]
fn rulesets_say_what_the_options_ask_and_nft_accepts_them() {
    let nft = Command::new("nft").arg("--version").output();
    assert!(
        nft.is_ok_and(|o| o.status.success()),
        "nft is missing: Debian's nftables is installed by scripts/setup"
    );
    let tmp = tempfile::tempdir().unwrap();
    let files = cases();
    let mut failures = Vec::new();
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(file).unwrap();
        let header = |key: &str| -> Vec<String> {
            text.lines()
                .filter_map(|l| l.strip_prefix(key))
                .map(str::to_string)
                .collect()
        };
        let (expect, expect_not, errors) = (
            header("# expect: "),
            header("# expect-not: "),
            header("# expect-error: "),
        );
        assert!(
            (expect.is_empty() && expect_not.is_empty()) != errors.is_empty(),
            "{name}: give expect/expect-not or expect-error"
        );
        let out = ruleset_of(file);
        let stderr = String::from_utf8_lossy(&out.stderr);
        if !errors.is_empty() {
            if out.status.success() {
                failures.push(format!(
                    "{name}: expected an error, got {}",
                    String::from_utf8_lossy(&out.stdout)
                ));
            }
            for e in errors.iter().filter(|e| !stderr.contains(e.as_str())) {
                failures.push(format!("{name}: the error lacks {e:?}:\n{stderr}"));
            }
            continue;
        }
        if !out.status.success() {
            failures.push(format!("{name}: evaluation failed:\n{stderr}"));
            continue;
        }
        let ruleset: String = serde_json::from_slice(&out.stdout).unwrap();
        let lines: Vec<&str> = ruleset.lines().map(str::trim_start).collect();
        for e in expect.iter().filter(|e| !lines.contains(&e.as_str())) {
            failures.push(format!("{name}: no line {e:?} in\n{ruleset}"));
        }
        for e in expect_not
            .iter()
            .filter(|e| lines.iter().any(|l| l.starts_with(e.as_str())))
        {
            failures.push(format!("{name}: a line begins with {e:?} in\n{ruleset}"));
        }
        if ruleset.starts_with('(') {
            continue;
        }
        let path = tmp.path().join(format!("{name}.nft"));
        std::fs::write(&path, &ruleset).unwrap();
        let check = nft_in_netns(&format!("nft -c -f '{}'", path.display()));
        if !check.status.success() {
            failures.push(format!(
                "{name}: nft -c refuses the ruleset:\n{}\n{ruleset}",
                String::from_utf8_lossy(&check.stderr)
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    assert!(files.len() >= 15);
}

/// What firewall.service does to a kernel: start (from nothing), reload (over itself), stop (the table gone),
/// with the ruleset of a configuration that opens a port.
#[test]
fn the_ruleset_loads_reloads_and_unloads_in_one_transaction_each() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/firewall/openssh.nix");
    let out = ruleset_of(&file);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let ruleset: String = serde_json::from_slice(&out.stdout).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("firewall.nft");
    std::fs::write(&path, ruleset).unwrap();
    let out = nft_in_netns(&format!(
        "nft -f '{f}'; nft -f '{f}'; nft list ruleset; echo STOPPED; \
         printf 'table inet rixos-fw\\ndelete table inet rixos-fw\\n' | nft -f -; nft list ruleset",
        f = path.display()
    ));
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}{printed}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (loaded, stopped) = printed.split_once("STOPPED").unwrap();
    assert_eq!(loaded.matches("table inet rixos-fw").count(), 1, "{loaded}");
    assert_eq!(loaded.matches("tcp dport { 22, 2222 } accept").count(), 1, "{loaded}");
    assert!(loaded.contains("policy drop;"), "{loaded}");
    assert!(stopped.trim().is_empty(), "stopping leaves {stopped}");
}

#[test]
fn the_firewall_options_are_documented() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(dir.path().join("store"))
        .args(["options", "--json", "networking.firewall"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let options: Vec<(&str, &str)> = all
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["name"].as_str().unwrap(), o["description"].as_str().unwrap()))
        .collect();
    for name in [
        "enable",
        "package",
        "allowedTCPPorts",
        "allowedUDPPorts",
        "allowedTCPPortRanges",
        "allowedUDPPortRanges",
        "interfaces",
        "interfaces.<name>.allowedTCPPorts",
        "interfaces.<name>.allowedUDPPortRanges",
        "trustedInterfaces",
        "allowPing",
        "pingLimit",
        "logRefusedConnections",
        "logRefusedPackets",
        "logRefusedUnicastsOnly",
        "rejectPackets",
        "checkReversePath",
        "logReversePathDrops",
        "extraInputRules",
    ] {
        let full = format!("networking.firewall.{name}");
        let found = options.iter().find(|(n, _)| *n == full);
        assert!(
            found.is_some_and(|(_, d)| !d.is_empty()),
            "{full} is not listed with a description: {options:?}"
        );
    }
    assert!(
        !options.iter().any(|(n, _)| n.contains("build.ruleset")),
        "the generated ruleset is internal"
    );
}
