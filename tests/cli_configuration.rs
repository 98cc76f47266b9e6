//! The commands that build from a configuration.nix (`rixos system`, `rixos image`, `rixos options`) read it
//! from any path: a directory named with a space, `$`, `"` or `;` is just a name, never Nix text.

use std::path::Path;
use std::process::{Command, Output};

/// A directory whose name would break or inject into an expression that pasted it in unquoted.
const AWKWARD: &str = "we ird $HOME; \"x\" ${builtins.abort \"injected\"}";

fn rixos(store: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(store)
        .args(args)
        .output()
        .unwrap()
}

fn awkward_dir(base: &Path) -> std::path::PathBuf {
    let dir = base.join(AWKWARD);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("configuration.nix"),
        "{ lib, ... }: {\n  imports = [ ./extra.nix ];\n  networking.hostName = \"awkward\";\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("extra.nix"),
        "{ lib, ... }: {\n  options.my.marker = lib.mkOption { type = lib.types.str; default = \"x\"; \
         description = \"Declared beside an awkwardly named configuration.\"; };\n}\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("typo.nix"),
        "{ ... }: {\n  networking.hostNam = \"awkward\";\n}\n",
    )
    .unwrap();
    dir
}

#[test]
fn options_reads_a_configuration_in_an_awkwardly_named_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = awkward_dir(tmp.path());
    let config = dir.join("configuration.nix");
    let out = rixos(
        &tmp.path().join("store"),
        &["options", "-c", config.to_str().unwrap(), "my.marker"],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        stdout.contains("Declared beside an awkwardly named configuration."),
        "{stdout}"
    );
    // The module's own file, by its full path.
    assert!(
        stdout.contains(&format!("declared in: {}", dir.join("extra.nix").display())),
        "{stdout}"
    );
}

#[test]
fn system_build_reads_a_configuration_in_an_awkwardly_named_directory() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = awkward_dir(tmp.path());
    let typo = dir.join("typo.nix");
    for command in [
        &["system", "build"][..],
        &["system", "build-vm"],
        &["image", "build", "--format", "iso-minimal"],
    ] {
        let mut args = command.to_vec();
        args.extend(["-c", typo.to_str().unwrap()]);
        let out = rixos(&tmp.path().join("store"), &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{command:?}: the typo is refused");
        // The configuration was evaluated (its typo found, at its path), not pasted into the expression.
        assert!(
            stderr.contains("networking.hostNam' does not exist") && stderr.contains(&format!("{}:2", typo.display())),
            "{command:?}: {stderr}"
        );
        assert!(!stderr.contains("evaluation aborted"), "{command:?}: {stderr}");
    }
}
