//! Driving rixos and the systems it builds from VM tests: the `rixos` binary cargo built beside the test, and
//! commands typed at a booted system's root shell.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::Machine;

/// The `rixos` executable of this workspace's build (the test binary's `../rixos`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .join("rixos");
    assert!(
        bin.exists(),
        "{} is missing: run the tests through `cargo test --workspace`",
        bin.display()
    );
    bin
}

/// Runs `rixos --store STORE ARGS` in `dir`; a failure panics with its stderr.
pub fn run(store: &Path, dir: &Path, args: &[&str]) -> Output {
    let out = Command::new(binary())
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(dir)
        .output()
        .expect("running rixos");
    assert!(
        out.status.success(),
        "rixos {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Types `command` at the machine's shell and returns what it printed (between two markers).
pub fn shell(machine: &mut Machine, command: &str, timeout: Duration) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    machine
        .send_line(&format!("echo BEGIN-{n}; {command}; echo END-{n}"))
        .expect("typing on the serial console");
    let groups = machine
        .wait_for_regex(&format!(r"BEGIN-{n}\r?\n([\s\S]*?)END-{n}\r?\n"), timeout)
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    groups[1].replace('\r', "").trim().to_string()
}

/// A directory of a test's own holding a store whose channel is up to date (from the host's apt sources):
/// where a VM test builds what it boots. Removed when dropped.
pub struct Workspace {
    _tmp: tempfile::TempDir,
    /// The directory builds run in (result links, configurations, disk images).
    pub dir: PathBuf,
    /// The store's root (`STORE/nix/store`).
    pub store: PathBuf,
}

impl Workspace {
    pub fn new() -> Workspace {
        let tmp = tempfile::tempdir().expect("a temporary directory");
        let dir = tmp.path().to_path_buf();
        remove_at_exit(&dir);
        let store = dir.join("store");
        run(&store, &dir, &["channel", "--update"]);
        Workspace { _tmp: tmp, dir, store }
    }

    /// Runs `rixos --store STORE ARGS` in the directory; a failure panics with its stderr.
    pub fn rixos(&self, args: &[&str]) -> Output {
        run(&self.store, &self.dir, args)
    }

    /// The file a logical store path names in this store, links followed (rixos' own resolver).
    pub fn resolve(&self, logical: &str) -> PathBuf {
        rixos::store::resolve::resolve_under(&self.store, logical).unwrap_or_else(|e| panic!("{e:#}"))
    }
}

impl Workspace {
    /// A new ed25519 key pair in the directory (`key`, `key.pub`): the private key's path and the public key's
    /// line, for a test system's authorized keys.
    pub fn ssh_key(&self) -> (PathBuf, String) {
        let key = self.dir.join("key");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) is installed by scripts/setup");
        assert!(status.success(), "ssh-keygen failed");
        let public = std::fs::read_to_string(self.dir.join("key.pub")).unwrap();
        (key, public.trim().to_string())
    }
}

/// Workspaces held in statics (one built image shared by a binary's tests) are never dropped, and each holds
/// a store of gigabytes: they are removed when the test process exits (the harness ends with `exit`, which
/// runs `atexit` handlers), so a suite does not fill the disk.
fn remove_at_exit(dir: &Path) {
    static DIRS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());
    static REGISTERED: std::sync::Once = std::sync::Once::new();
    extern "C" fn remove_all() {
        if let Ok(dirs) = DIRS.lock() {
            for dir in dirs.iter() {
                let _ = std::fs::remove_dir_all(dir);
            }
        }
    }
    DIRS.lock().expect("no panic while holding it").push(dir.to_path_buf());
    // SAFETY: `remove_all` is a plain function that lives as long as the process.
    REGISTERED.call_once(|| unsafe {
        libc::atexit(remove_all);
    });
}

impl Default for Workspace {
    fn default() -> Workspace {
        Workspace::new()
    }
}

/// The seed configuration (`../shared/configs/seed/configuration.nix`), as an absolute path.
pub fn seed() -> PathBuf {
    let seed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/configs/seed/configuration.nix");
    std::fs::canonicalize(&seed).expect("../shared/configs/seed beside the repository")
}

/// The sha256 of a file, in hex.
pub fn sha256_of(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().expect("sha256sum");
    assert!(out.status.success(), "sha256sum {}", path.display());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Runs `command` as root over ssh on a machine whose port 22 the host reaches at `port`, logging in with
/// the private key `key` (host keys not checked: each test machine makes its own).
pub fn ssh(key: &Path, port: u16, command: &str) -> Output {
    // A command that never ends fails the test after ten minutes instead of hanging the suite.
    Command::new("timeout")
        .args(["--kill-after=10", "600", "ssh"])
        .arg("-i")
        .arg(key)
        .args(["-p", &port.to_string()])
        .args(["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o", "ConnectTimeout=30"])
        .args(["root@127.0.0.1", command])
        .output()
        .expect("ssh (openssh-client) is installed by scripts/setup")
}
