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
