//! The evaluator's store-facing results, checked against Nix:
//! - every store path vector of ../shared/docs/nix-formats.md comes out of `rixos instantiate --eval`;
//! - for the derivation corpus (tests/data/derivations.nix: multi-output, fixed-output, dependent derivations,
//!   a path literal and toFile sources), `rixos instantiate` writes the same .drv files, byte for byte, as
//!   `nix-instantiate` (Nix 2.8), and gives the same drvPath and outPath values;
//! - `rixos build` realises a derivation graph it evaluated and links `result` to the output.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn rixos(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(args)
        .current_dir(dir)
        .env_remove("RIXOS_STORE")
        .output()
        .unwrap()
}

fn stdout_of(out: Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn eval(dir: &Path, expr: &str) -> String {
    stdout_of(rixos(dir, &["instantiate", "--eval", "--strict", "-E", expr]), expr)
        .trim()
        .to_string()
}

#[test]
fn store_path_vectors_of_the_formats_page() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("hello.txt"), "hello").unwrap();
    let drv =
        r#"derivation { name = "foo"; system = "x86_64-linux"; builder = "/bin/sh"; args = ["-c" "echo hi > $out"]; }"#;
    let vectors = [
        (
            r#"builtins.toFile "x" "hello""#.to_string(),
            "/nix/store/4g4g9i669dl63abpww0djbl2jxl6bwiz-x",
        ),
        (
            r#"builtins.toFile "baz" "${builtins.toFile "foo" "bar"}""#.to_string(),
            "/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz",
        ),
        (
            r#""${./hello.txt}""#.to_string(),
            "/nix/store/xfp2hphvk98rkk9ywlqpp587rjdcgnc2-hello.txt",
        ),
        (
            r#"(derivation { name = "fo"; system = "x86_64-linux"; builder = "/bin/sh"; outputHash = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"; outputHashAlgo = "sha256"; }).outPath"#.to_string(),
            "/nix/store/nqf0xn3i5yddaqga5lmixksnxg099q5c-fo",
        ),
        (
            format!("({drv}).drvPath"),
            "/nix/store/rm9v4vd19fmxa6jwy1pz47af8k058rf2-foo.drv",
        ),
        (
            format!("({drv}).outPath"),
            "/nix/store/dcqg0jsvjgqnvh7ibxs5ciinmdmh9rnd-foo",
        ),
        (
            r#"(derivation { name = "multi"; outputs = ["out" "lib"]; system = "x86_64-linux"; builder = "/bin/sh"; }).lib.outPath"#.to_string(),
            "/nix/store/q9hb799g9clccyvr24a5k7nw761v5lxy-multi-lib",
        ),
    ];
    for (expr, expected) in vectors {
        assert_eq!(eval(dir.path(), &expr), format!("\"{expected}\""), "{expr}");
    }
}

fn drv_files(root: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(root.join("nix/store")).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_str().unwrap().to_string();
        if name.ends_with(".drv") {
            out.insert(name, std::fs::read(&path).unwrap());
        }
    }
    out
}

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/derivations.nix")
}

#[test]
fn the_derivation_corpus_instantiates_exactly_as_nix_does() {
    let dir = tempfile::tempdir().unwrap();
    let (nix_root, rixos_root) = (dir.path().join("nix"), dir.path().join("rixos"));
    let corpus = corpus();
    let corpus = corpus.to_str().unwrap();
    let nix = Command::new("nix-instantiate")
        .arg("--store")
        .arg(&nix_root)
        .arg(corpus)
        .output()
        .expect("nix-instantiate (Nix 2.8 from nix-bin: run scripts/setup)");
    let nix_drvs = stdout_of(nix, "nix-instantiate");
    let ours = stdout_of(
        rixos(
            dir.path(),
            &["--store", rixos_root.to_str().unwrap(), "instantiate", corpus],
        ),
        "rixos instantiate",
    );
    assert_eq!(ours, nix_drvs, "the top-level drvPaths differ");
    assert_eq!(ours.lines().count(), 7);

    let (theirs, mine) = (drv_files(&nix_root), drv_files(&rixos_root));
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "different sets of .drv files"
    );
    for (name, bytes) in &theirs {
        assert_eq!(
            String::from_utf8_lossy(&mine[name]),
            String::from_utf8_lossy(bytes),
            "{name} differs"
        );
    }
    // Sources (the path literal, toFile outputs) land at the same store paths.
    let sources = |root: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(root.join("nix/store"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| !n.ends_with(".drv") && !n.starts_with('.'))
            .collect();
        v.sort();
        v
    };
    assert_eq!(sources(&rixos_root), sources(&nix_root));

    // outPath and drvPath values, under --eval (nothing written).
    let expr = format!(
        "builtins.mapAttrs (n: d: {{ drv = d.drvPath; out = d.outPath; all = map (o: o.outPath) d.all; }}) (import {corpus})"
    );
    let nix_json = Command::new("nix-instantiate")
        .args(["--eval", "--strict", "--json", "-E", &expr])
        .output()
        .unwrap();
    let nix_json = stdout_of(nix_json, "nix-instantiate --eval --json");
    let our_json = stdout_of(
        rixos(
            dir.path(),
            &["instantiate", "--eval", "--strict", "--json", "-E", &expr],
        ),
        "rixos instantiate --eval --json",
    );
    assert_eq!(our_json, nix_json);
}

#[test]
fn rixos_build_realises_what_it_evaluated() {
    let dir = tempfile::tempdir().unwrap();
    let bb = dir.path().join("bb");
    std::fs::create_dir(&bb).unwrap();
    std::fs::copy("/bin/busybox", bb.join("busybox")).expect("static busybox (run scripts/setup)");
    let expr = dir.path().join("graph.nix");
    std::fs::write(
        &expr,
        r#"
let
  bb = "${./bb}/busybox";
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = bb;
    args = [ "sh" "-c" "b=${bb}; ${script}" ];
  };
  greeting = mk "greeting" "echo hello > $out";
  shout = mk "shout" "$b tr a-z A-Z < ${greeting} > $out";
in { inherit greeting shout; }
"#,
    )
    .unwrap();
    let root = dir.path().join("store");
    let out = rixos(
        dir.path(),
        &[
            "--store",
            root.to_str().unwrap(),
            "build",
            expr.to_str().unwrap(),
            "-A",
            "shout",
            "-o",
            "result",
        ],
    );
    let printed = stdout_of(out, "rixos build");
    let path = printed.trim();
    assert!(path.starts_with("/nix/store/") && path.ends_with("-shout"), "{printed}");
    let result = std::fs::read_link(dir.path().join("result")).unwrap();
    assert_eq!(std::fs::read_to_string(&result).unwrap(), "HELLO\n");
    assert_eq!(result, root.join(path.trim_start_matches('/')));
}

#[test]
fn deep_recursion_ends_in_a_clear_error_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let expr = "let f = n: if n == 0 then 0 else 1 + f (n - 1); in f 1000000";
    let out = rixos(dir.path(), &["instantiate", "--eval", "-E", expr]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("stack overflow; max-call-depth exceeded"), "{stderr}");
    // With the limit raised, the same recursion completes on the grown stack.
    let out = rixos(
        dir.path(),
        &["instantiate", "--eval", "--max-call-depth", "2000000", "-E", expr],
    );
    assert_eq!(stdout_of(out, "deep recursion").trim(), "1000000");
}
