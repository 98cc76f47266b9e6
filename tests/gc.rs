//! Garbage collection through the command line: every kind of root keeps its closure, everything else goes.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use rixos::store::local::LocalStore;
use rixos::store::path::StorePath;
use rixos::store::profile::Profile;

fn rixos(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

fn real(root: &Path, path: &StorePath) -> PathBuf {
    root.join("nix/store").join(path.base_name())
}

fn deleted(output: &Output, verb: &str) -> Vec<String> {
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{verb} '")).and_then(|l| l.strip_suffix('\'')))
        .map(str::to_string)
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect()
}

#[test]
fn every_kind_of_root_keeps_its_closure_and_the_rest_is_collected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = LocalStore::open(&root).unwrap();
    let mut add = |name: &str, refs: &[StorePath]| store.add_text(name, name.as_bytes(), refs).unwrap();
    let lib = add("lib", &[]);
    let app = add("app", std::slice::from_ref(&lib));
    let indirect = add("indirect", &[]);
    let old_generation = add("old-generation", &[]);
    let new_generation = add("new-generation", &[]);
    let temporary = add("temporary", &[]);
    let in_use = add("in-use", &[]);
    let garbage = add("garbage", &[]);
    let garbage_dep = add("garbage-dep", &[]);
    let garbage_top = add("garbage-top", std::slice::from_ref(&garbage_dep));
    let state = root.join("nix/var/nix");

    // A direct root, an indirect one (a `result` link elsewhere), a profile, a temporary root, a process.
    symlink(app.to_string(), state.join("gcroots/app")).unwrap();
    let result = dir.path().join("result");
    symlink(indirect.to_string(), &result).unwrap();
    symlink(&result, state.join("gcroots/auto/0123")).unwrap();
    let profile = Profile::new(state.join("profiles/system"));
    profile.add_generation(&old_generation).unwrap();
    let newest = profile.add_generation(&new_generation).unwrap();
    profile.switch(newest).unwrap();
    fs::write(
        state.join("temproots").join(std::process::id().to_string()),
        format!("{temporary}\n"),
    )
    .unwrap();
    let mut process = Command::new("sleep")
        .arg("60")
        .env("USING", real(&root, &in_use))
        .spawn()
        .unwrap();
    // A leftover of a crash: a store entry that was never registered.
    fs::create_dir(root.join("nix/store/00000000000000000000000000000000-unregistered")).unwrap();

    let dry = rixos(&root, &["gc", "--dry-run"]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let mut expected = vec![garbage.to_string(), garbage_dep.to_string(), garbage_top.to_string()];
    expected.sort();
    assert_eq!(deleted(&dry, "would delete"), expected);
    assert!(real(&root, &garbage).exists(), "a dry run deleted something");

    let collected = rixos(&root, &["gc"]);
    assert!(
        collected.status.success(),
        "{}",
        String::from_utf8_lossy(&collected.stderr)
    );
    assert_eq!(deleted(&collected, "deleting"), expected);
    assert!(String::from_utf8_lossy(&collected.stdout).contains("3 store paths deleted"));
    for kept in [
        &lib,
        &app,
        &indirect,
        &old_generation,
        &new_generation,
        &temporary,
        &in_use,
    ] {
        assert!(real(&root, kept).exists(), "{kept} was collected");
    }
    for gone in [&garbage, &garbage_dep, &garbage_top] {
        assert!(!real(&root, gone).exists(), "{gone} is still there");
    }
    assert!(
        !root
            .join("nix/store/00000000000000000000000000000000-unregistered")
            .exists()
    );

    // Roots going away: the process ends, the result link is removed, old generations are deleted.
    process.kill().unwrap();
    process.wait().unwrap();
    fs::remove_file(&result).unwrap();
    fs::remove_file(state.join("temproots").join(std::process::id().to_string())).unwrap();
    let second = rixos(&root, &["gc", "-d"]);
    assert!(second.status.success(), "{}", String::from_utf8_lossy(&second.stderr));
    assert!(String::from_utf8_lossy(&second.stdout).contains("removing profile version 1 of"));
    let mut expected = vec![
        indirect.to_string(),
        old_generation.to_string(),
        temporary.to_string(),
        in_use.to_string(),
    ];
    expected.sort();
    assert_eq!(deleted(&second, "deleting"), expected);
    assert!(!state.join("gcroots/auto/0123").exists(), "the stale auto root stayed");
    assert!(real(&root, &new_generation).exists() && real(&root, &app).exists());
    assert_eq!(profile.current().unwrap(), Some(newest));
    let verify = rixos(&root, &["store", "verify", "--check-contents"]);
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
}

#[test]
fn store_delete_refuses_live_and_referenced_paths() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = LocalStore::open(&root).unwrap();
    let base = store.add_text("base", b"base", &[]).unwrap();
    let top = store.add_text("top", b"top", std::slice::from_ref(&base)).unwrap();
    let rooted = store.add_text("rooted", b"rooted", &[]).unwrap();
    drop(store);
    symlink(rooted.to_string(), root.join("nix/var/nix/gcroots/r")).unwrap();

    let alive = rixos(&root, &["store", "delete", &rooted.to_string()]);
    assert!(!alive.status.success());
    assert!(String::from_utf8_lossy(&alive.stderr).contains("since it is still alive"));

    let referenced = rixos(&root, &["store", "delete", &base.to_string()]);
    assert!(!referenced.status.success());
    assert!(String::from_utf8_lossy(&referenced.stderr).contains(&format!("{top} still refers to it")));

    let both = rixos(&root, &["store", "delete", &top.to_string(), &base.to_string()]);
    assert!(both.status.success(), "{}", String::from_utf8_lossy(&both.stderr));
    assert!(!real(&root, &top).exists() && !real(&root, &base).exists() && real(&root, &rooted).exists());
}

/// `rixos build` in `dir` (its working directory) against the store `root`.
fn build_in(dir: &Path, root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(root)
        .arg("build")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// Writes `builds.nix` in `dir`: `ok` and `other` build with busybox (copied beside it), `broken` fails.
fn busybox_builds(dir: &Path) -> PathBuf {
    fs::create_dir(dir.join("bb")).unwrap();
    fs::copy("/bin/busybox", dir.join("bb/busybox")).expect("static busybox (run scripts/setup)");
    let expr = dir.join("builds.nix");
    fs::write(
        &expr,
        r#"
let
  bb = "${./bb}/busybox";
  mk = name: script: derivation {
    inherit name;
    system = "x86_64-linux";
    builder = bb;
    args = [ "sh" "-c" script ];
  };
in {
  ok = mk "ok" "echo ok > $out";
  other = mk "other" "echo other > $out";
  broken = mk "broken" "exit 1";
}
"#,
    )
    .unwrap();
    expr
}

#[test]
fn a_build_result_link_is_a_root_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let expr = busybox_builds(dir.path());
    let built = build_in(dir.path(), &root, &[expr.to_str().unwrap(), "-A", "ok", "-o", "res"]);
    assert!(built.status.success(), "{}", String::from_utf8_lossy(&built.stderr));
    let out = String::from_utf8_lossy(&built.stdout).trim().to_string();
    let res = dir.path().join("res");
    assert_eq!(fs::read_link(&res).unwrap(), root.join(out.trim_start_matches('/')));

    // As nix-build does: an auto root named by the link's absolute path, pointing at the link.
    let autos: Vec<PathBuf> = fs::read_dir(root.join("nix/var/nix/gcroots/auto"))
        .unwrap()
        .map(|e| fs::read_link(e.unwrap().path()).unwrap())
        .collect();
    assert_eq!(autos, vec![res.clone()]);

    let collected = rixos(&root, &["gc"]);
    assert!(
        collected.status.success(),
        "{}",
        String::from_utf8_lossy(&collected.stderr)
    );
    assert!(
        !deleted(&collected, "deleting").contains(&out),
        "gc deleted the build result"
    );
    assert_eq!(fs::read_to_string(&res).unwrap(), "ok\n");

    fs::remove_file(&res).unwrap();
    let collected = rixos(&root, &["gc"]);
    assert!(deleted(&collected, "deleting").contains(&out), "{collected:?}");
    assert!(
        fs::read_dir(root.join("nix/var/nix/gcroots/auto"))
            .unwrap()
            .next()
            .is_none()
    );
}

#[test]
fn an_out_link_never_replaces_a_file_and_a_failed_build_keeps_the_old_link() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let expr = busybox_builds(dir.path());
    let expr = expr.to_str().unwrap();
    fs::write(dir.path().join("notes"), "mine").unwrap();
    fs::create_dir(dir.path().join("folder")).unwrap();
    for taken in ["notes", "folder"] {
        let refused = build_in(dir.path(), &root, &[expr, "-A", "ok", "-o", taken]);
        let said = String::from_utf8_lossy(&refused.stderr);
        assert!(!refused.status.success(), "{said}");
        let shown = dir.path().join(taken);
        assert!(
            said.contains(&format!("cannot create symlink '{}'; already exists", shown.display())),
            "{said}"
        );
        assert!(!said.contains("building"), "built before refusing the link: {said}");
    }
    assert_eq!(fs::read_to_string(dir.path().join("notes")).unwrap(), "mine");
    assert!(dir.path().join("folder").is_dir());

    let good = build_in(dir.path(), &root, &[expr, "-A", "ok", "-o", "res"]);
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let first = fs::read_link(dir.path().join("res")).unwrap();
    let failed = build_in(dir.path(), &root, &[expr, "-A", "broken", "-o", "res"]);
    assert!(!failed.status.success());
    assert_eq!(
        fs::read_link(dir.path().join("res")).unwrap(),
        first,
        "a failed build moved the link"
    );
    let fresh = build_in(dir.path(), &root, &[expr, "-A", "broken", "-o", "fresh"]);
    assert!(!fresh.status.success());
    assert!(
        fs::symlink_metadata(dir.path().join("fresh")).is_err(),
        "a failed build made its link"
    );

    // A link into the store is the build's own: replaced. Several derivations get nix-build's names. With
    // -q, only the output paths are printed.
    let both = build_in(dir.path(), &root, &["-q", expr, "-A", "other", "-A", "ok", "-o", "res"]);
    assert!(both.status.success(), "{}", String::from_utf8_lossy(&both.stderr));
    assert_eq!(String::from_utf8_lossy(&both.stderr), "", "-q build printed progress");
    assert_eq!(String::from_utf8_lossy(&both.stdout).lines().count(), 2);
    assert_eq!(fs::read_to_string(dir.path().join("res")).unwrap(), "other\n");
    assert_eq!(fs::read_to_string(dir.path().join("res-2")).unwrap(), "ok\n");
}

#[test]
fn quiet_gc_prints_nothing_and_leftover_lock_files_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let mut store = LocalStore::open(&root).unwrap();
    let garbage = store.add_text("garbage", b"garbage", &[]).unwrap();
    drop(store);
    // What older builds left: a lock file nobody holds.
    let stale_lock = root.join("nix/store/00000000000000000000000000000000-built.lock");
    fs::write(&stale_lock, "").unwrap();

    let quiet = rixos(&root, &["-q", "gc"]);
    assert!(quiet.status.success(), "{}", String::from_utf8_lossy(&quiet.stderr));
    assert_eq!(String::from_utf8_lossy(&quiet.stdout), "", "-q gc printed");
    assert_eq!(String::from_utf8_lossy(&quiet.stderr), "", "-q gc printed");
    assert!(!real(&root, &garbage).exists());
    assert!(!stale_lock.exists(), "the stale lock file stayed");
}
