//! Differential tests against Nix 2.8 (`nix-bin`, installed by scripts/setup): on a corpus of trees, `rixos store
//! hash-path`, `dump` and `restore` must agree with `nix-hash` and `nix-store` byte for byte.

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn rixos(args: &[&str], stdin: Option<&[u8]>) -> Output {
    run(Command::new(env!("CARGO_BIN_EXE_rixos")).args(args), stdin)
}

fn run(command: &mut Command, stdin: Option<&[u8]>) -> Output {
    let mut child = command
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("running {command:?}: {e} (Nix 2.8 comes from nix-bin: run scripts/setup)"));
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().unwrap();
        let input = input.to_vec();
        // Write from a thread so a large archive cannot deadlock against a full stdout pipe.
        std::thread::spawn(move || std::io::Write::write_all(&mut pipe, &input).unwrap());
    }
    let output = child.wait_with_output().unwrap();
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn executable(path: &Path) {
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).unwrap();
}

/// Bytes that look random but are the same on every run.
fn pseudo_random(len: usize, mut seed: u64) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        })
        .collect()
}

/// Each case is one path to archive: files, links and directories of the kinds that trip archivers.
fn corpus(base: &Path) -> Vec<PathBuf> {
    let mut cases = Vec::new();
    let mut case = |name: &str, make: &dyn Fn(&Path)| {
        let path = base.join(name);
        make(&path);
        cases.push(path);
    };
    case("empty-dir", &|p| fs::create_dir(p).unwrap());
    case("empty-file", &|p| fs::write(p, "").unwrap());
    case("script", &|p| {
        fs::write(p, "#!/bin/sh\necho hi\n").unwrap();
        executable(p);
    });
    case("dangling-link", &|p| symlink("/nonexistent/target", p).unwrap());
    case("padding-lengths", &|p| {
        fs::create_dir(p).unwrap();
        for len in 0..17 {
            fs::write(p.join(format!("f{len:02}")), "x".repeat(len)).unwrap();
        }
    });
    case("tree", &|p| {
        fs::create_dir_all(p.join("nested/empty/deeper")).unwrap();
        fs::create_dir_all(p.join("bin")).unwrap();
        fs::write(p.join("bin/tool"), pseudo_random(4096, 1)).unwrap();
        executable(&p.join("bin/tool"));
        // Names that sort differently by bytes, by locale and by case.
        for name in ["a", "a.b", "a-b", "B", "é", "日本語", "z z", "Ω"] {
            fs::write(p.join(name), name).unwrap();
        }
        symlink("bin", p.join("link-to-dir")).unwrap();
        symlink("../outside", p.join("nested/dangling")).unwrap();
        symlink("日本語", p.join("unicode-link")).unwrap();
        fs::write(p.join("large"), pseudo_random(5 << 20, 7)).unwrap();
    });
    cases
}

#[test]
fn hash_path_dump_and_restore_agree_with_nix() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("corpus");
    fs::create_dir(&base).unwrap();
    for path in corpus(&base) {
        let shown = path.display().to_string();
        let theirs = run(
            Command::new("nix-hash")
                .args(["--type", "sha256", "--base32"])
                .arg(&path),
            None,
        );
        let ours = rixos(&["store", "hash-path", &shown], None);
        let expected = format!("sha256:{}", String::from_utf8_lossy(&theirs.stdout));
        assert_eq!(String::from_utf8_lossy(&ours.stdout), expected, "hash-path of {shown}");

        let their_nar = run(Command::new("nix-store").arg("--dump").arg(&path), None).stdout;
        let our_nar = rixos(&["store", "dump", &shown], None).stdout;
        assert!(our_nar == their_nar, "dump of {shown} differs from nix-store --dump");

        // Our restore of Nix's archive, dumped again by Nix, gives the same archive.
        let restored = dir
            .path()
            .join(format!("restored-{}", path.file_name().unwrap().to_string_lossy()));
        rixos(&["store", "restore", &restored.display().to_string()], Some(&their_nar));
        let again = run(Command::new("nix-store").arg("--dump").arg(&restored), None).stdout;
        assert!(
            again == their_nar,
            "restore of {shown} does not give back the same tree"
        );
    }
}

#[test]
fn restore_of_a_corrupt_archive_fails_and_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("f");
    fs::write(&file, "contents").unwrap();
    let nar = rixos(&["store", "dump", &file.display().to_string()], None).stdout;
    let target = dir.path().join("out");
    let output = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["store", "restore", &target.display().to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            std::io::Write::write_all(child.stdin.as_mut().unwrap(), &nar[..nar.len() - 9])?;
            drop(child.stdin.take());
            child.wait_with_output()
        })
        .unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("truncated"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let left: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["f"], "a failed restore left files behind");
}

#[test]
fn added_paths_match_nix_and_nix_verifies_our_store() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("corpus");
    fs::create_dir(&base).unwrap();
    let ours = dir.path().join("ours");
    let theirs = dir.path().join("theirs");
    let (ours_arg, theirs_arg) = (ours.display().to_string(), theirs.display().to_string());
    for path in corpus(&base) {
        let shown = path.display().to_string();
        let added = String::from_utf8(rixos(&["--store", &ours_arg, "store", "add", &shown], None).stdout).unwrap();
        let expected = run(
            Command::new("nix-store").args(["--store", &theirs_arg, "--add", &shown]),
            None,
        )
        .stdout;
        assert_eq!(added, String::from_utf8(expected).unwrap(), "store add {shown}");
        let store_path = added.trim();

        let requisites = rixos(
            &["--store", &ours_arg, "store", "query", "--requisites", store_path],
            None,
        )
        .stdout;
        let nix_requisites = run(
            Command::new("nix-store").args(["--store", &ours_arg, "-qR", store_path]),
            None,
        );
        assert_eq!(
            String::from_utf8_lossy(&requisites),
            String::from_utf8_lossy(&nix_requisites.stdout)
        );

        // Canonical as Nix's store requires: mtime 1, read-only modes.
        let real = ours.join(store_path.trim_start_matches('/'));
        let meta = fs::symlink_metadata(&real).unwrap();
        assert_eq!(std::os::unix::fs::MetadataExt::mtime(&meta), 1, "{store_path}");
        if !meta.file_type().is_symlink() {
            assert_eq!(meta.permissions().mode() & 0o222, 0, "{store_path} is writable");
        }
    }
    // Adding the same tree again is a no-op that gives the same path.
    let again = rixos(
        &[
            "--store",
            &ours_arg,
            "store",
            "add",
            &base.join("tree").display().to_string(),
        ],
        None,
    );
    assert!(String::from_utf8_lossy(&again.stdout).ends_with("-tree\n"));

    let verify = run(
        Command::new("nix-store").args(["--store", &ours_arg, "--verify", "--check-contents"]),
        None,
    );
    let said = String::from_utf8_lossy(&verify.stderr);
    for line in said.lines() {
        let expected = line.starts_with("warning: the group 'nixbld'")
            || line.starts_with("reading the Nix store")
            || line.starts_with("checking ");
        assert!(
            expected,
            "nix-store --verify --check-contents complained about our store: {line}"
        );
    }
    rixos(&["--store", &ours_arg, "store", "verify", "--check-contents"], None);
}

#[test]
fn verify_reports_a_tampered_path_and_a_missing_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    let root_arg = root.display().to_string();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    fs::write(&a, "one").unwrap();
    fs::write(&b, "two").unwrap();
    let add = |p: &Path| {
        String::from_utf8(rixos(&["--store", &root_arg, "store", "add", &p.display().to_string()], None).stdout)
            .unwrap()
    };
    let (pa, pb) = (add(&a), add(&b));
    let real_a = root.join(pa.trim().trim_start_matches('/'));
    fs::set_permissions(&real_a, fs::Permissions::from_mode(0o644)).unwrap();
    fs::write(&real_a, "changed").unwrap();
    fs::remove_file(root.join(pb.trim().trim_start_matches('/'))).unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["--store", &root_arg, "store", "verify", "--check-contents"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(
        said.contains(&format!("{} was modified: expected hash sha256:", pa.trim())),
        "{said}"
    );
    assert!(
        said.contains(&format!("{} is registered but missing", pb.trim())),
        "{said}"
    );
}

#[test]
fn a_file_larger_than_4_gib_is_streamed_not_held_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big");
    // Sparse: 4.5 GiB of zeros that take no disk space.
    fs::File::create(&big).unwrap().set_len(4608 << 20).unwrap();
    #[allow(
        clippy::zombie_processes,
        reason = "reaped by wait4 below, which also reports its peak memory"
    )]
    let child = Command::new(env!("CARGO_BIN_EXE_rixos"))
        .args(["store", "dump"])
        .arg(&big)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    // wait4 reports this one child's peak memory, whatever other tests run meanwhile.
    let mut status = 0;
    // SAFETY: wait4 on our own child, filling a zeroed rusage.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert_eq!(pid, child.id() as libc::pid_t);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "dump failed: {status}"
    );
    let peak_kib = usage.ru_maxrss;
    assert!(peak_kib < 64 * 1024, "dumping a 4.5 GiB file peaked at {peak_kib} KiB");
}
