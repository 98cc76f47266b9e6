//! The store's command line where a user's slip or a Ctrl-C could leave a mess: a mistyped `--store`, an
//! interrupted `store restore`, a malformed channel URL.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn rixos(root: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(root)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn commands_that_only_read_refuse_a_store_that_is_not_there() {
    let dir = tempfile::tempdir().unwrap();
    let typo = dir.path().join("stroe");
    let path = "/nix/store/00000000000000000000000000000000-x";
    for args in [
        &["gc", "--dry-run"][..],
        &["gc"],
        &["store", "query", "--requisites", path],
        &["store", "verify"],
        &["store", "delete", path],
        &["store", "realise", "/nix/store/00000000000000000000000000000000-x.drv"],
        &["channel", "--list"],
        &["channel", "--rollback"],
    ] {
        let out = rixos(&typo, args);
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{args:?} succeeded");
        let expected = format!(
            "no store at {} (no {}/nix/store); check --store",
            typo.display(),
            typo.display()
        );
        assert!(said.contains(&expected), "{args:?}: {said}");
        assert!(!typo.exists(), "{args:?} created {}", typo.display());
    }
    // Commands that write start a store.
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let added = rixos(&typo, &["store", "add", file.to_str().unwrap()]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    assert!(typo.join("nix/store").is_dir());
}

#[test]
fn channel_add_refuses_a_url_that_names_no_suite() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let out = rixos(&root, &["channel", "--add", "http://mirror.example/debian"]);
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(said.contains("must end in /dists/SUITE"), "{said}");
    assert!(said.contains("e.g. http://MIRROR/debian/dists/bookworm"), "{said}");
    assert!(
        !root.join("nix/var/rixos/channels").exists(),
        "the bad channel was written"
    );

    let good = rixos(
        &root,
        &["channel", "--add", "http://mirror.example/debian/dists/bookworm/"],
    );
    assert!(good.status.success(), "{}", String::from_utf8_lossy(&good.stderr));
    let list = rixos(&root, &["channel", "--list"]);
    let listed = String::from_utf8_lossy(&list.stdout);
    assert!(
        listed.contains("bookworm http://mirror.example/debian/dists/bookworm"),
        "{listed}"
    );
}

/// Entries of `dir` that an unfinished restore leaves (`.NAME.restoring-PID`).
fn restoring_leftovers(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".restoring-"))
        .collect()
}

#[test]
fn an_interrupted_restore_leaves_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let tree = dir.path().join("tree");
    fs::create_dir_all(tree.join("sub")).unwrap();
    fs::write(tree.join("sub/file"), "contents").unwrap();
    let dump = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["store", "dump"])
        .arg(&tree)
        .output()
        .unwrap();
    assert!(dump.status.success());
    let nar = dump.stdout;

    // Half the archive, then Ctrl-C while rixos waits for the rest.
    let target = dir.path().join("copy");
    let mut child = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(&root)
        .args(["store", "restore"])
        .arg(&target)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&nar[..nar.len() / 2]).unwrap();
    stdin.flush().unwrap();
    let started = Instant::now();
    while restoring_leftovers(dir.path()).is_empty() {
        assert!(started.elapsed() < Duration::from_secs(10), "the restore never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: signalling a child this test started and has not reaped.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    drop(stdin);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted"), "{out:?}");
    assert_eq!(restoring_leftovers(dir.path()), Vec::<String>::new());
    assert!(!target.exists());

    // What a kill -9 leaves (a dead process's tree) goes at the next restore there.
    let stale = dir.path().join(".other.restoring-999999999");
    fs::create_dir_all(stale.join("d")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["store", "restore"])
        .arg(&target)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&nar).unwrap();
    assert!(child.wait().unwrap().success());
    assert_eq!(fs::read_to_string(target.join("sub/file")).unwrap(), "contents");
    assert_eq!(restoring_leftovers(dir.path()), Vec::<String>::new());
}

#[test]
fn a_link_to_a_store_path_stands_for_it_as_in_nix() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let file = dir.path().join("file");
    fs::write(&file, "x").unwrap();
    let added = rixos(&root, &["store", "add", file.to_str().unwrap()]);
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let path = String::from_utf8(added.stdout).unwrap().trim().to_string();
    // A result link to the store path, and a link to that link, as /run/current-system on a booted system.
    let result = dir.path().join("result");
    std::os::unix::fs::symlink(&path, &result).unwrap();
    let current = dir.path().join("current");
    std::os::unix::fs::symlink("result", &current).unwrap();
    for given in [&result, &current] {
        let out = rixos(&root, &["store", "query", "--requisites", given.to_str().unwrap()]);
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), path);
    }
    // A link to the store path's physical place (what `rixos build` links in a store of its own), with the
    // store named relative to the working directory.
    let physical = dir.path().join("physical");
    std::os::unix::fs::symlink(root.join(path.trim_start_matches('/')), &physical).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .current_dir(dir.path())
        .args(["--store", "root", "store", "query", "--requisites", "physical"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), path);
    let out = rixos(&root, &["store", "query", "--requisites", dir.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("is not in the store"), "{said}");
}
