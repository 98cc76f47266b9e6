//! Real Debian packages, end to end: the default channel (bookworm from the host's apt sources) is updated into
//! a fresh store, each package below is built from `<rixpkgs>`, its closure alone is copied into an empty
//! root (only `nix/store`, `/dev`, `/proc`) and the package's program runs there with chroot. Nix 2.8 then
//! verifies the store these builds produced. Needs the network to the Debian mirror, and root (chroot).
//!
//! OpenSSH's programs refuse to start without a passwd entry for the user they run as, so the two ssh checks
//! get a one-line `/etc/passwd` (and sshd its privilege-separation user) in their root; nothing else does.

use std::path::PathBuf;
use std::process::{Command, Output};

struct Store {
    root: PathBuf,
}

impl Store {
    fn rixos(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(&self.root)
            .args(args)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.rixos(args);
        assert!(
            out.status.success(),
            "rixos {args:?} failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    fn build(&self, attr: &str) -> String {
        let out = self.ok(&[
            "build",
            "-E",
            &format!("(import <rixpkgs> {{}}).{attr}"),
            "--no-out-link",
        ]);
        out.lines().last().unwrap().to_string()
    }

    /// An empty root holding just the closure of `path`, `/dev` and `/proc` (and the extra files).
    fn root_with_closure(&self, path: &str, extra: &[(&str, &str)]) -> Chroot {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("nix/store");
        std::fs::create_dir_all(&store).unwrap();
        for p in self.ok(&["store", "query", "--requisites", path]).lines() {
            let status = Command::new("cp")
                .arg("-a")
                .arg(self.root.join(p.trim_start_matches('/')))
                .arg(&store)
                .status()
                .unwrap();
            assert!(status.success());
        }
        for d in ["dev", "proc", "tmp"] {
            std::fs::create_dir(dir.path().join(d)).unwrap();
        }
        for (file, text) in extra {
            let f = dir.path().join(file);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, text).unwrap();
        }
        Chroot::new(dir)
    }
}

/// A root with /dev and /proc mounted, unmounted when dropped.
struct Chroot {
    dir: tempfile::TempDir,
}

impl Chroot {
    fn new(dir: tempfile::TempDir) -> Chroot {
        let root = dir.path();
        assert!(
            Command::new("mount")
                .arg("--bind")
                .arg("/dev")
                .arg(root.join("dev"))
                .status()
                .unwrap()
                .success()
        );
        assert!(
            Command::new("mount")
                .args(["-t", "proc", "proc"])
                .arg(root.join("proc"))
                .status()
                .unwrap()
                .success()
        );
        Chroot { dir }
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = Command::new("chroot")
            .arg(self.dir.path())
            .arg(program)
            .args(args)
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{program} {args:?} in the chroot failed ({}):\n{text}",
            out.status
        );
        text
    }
}

impl Drop for Chroot {
    fn drop(&mut self) {
        for d in ["proc", "dev"] {
            let _ = Command::new("umount").arg(self.dir.path().join(d)).status();
        }
    }
}

const PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n";

#[test]
fn debian_closures_run_alone_in_an_empty_root() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store {
        root: dir.path().join("store"),
    };
    let update = store.ok(&["channel", "--update"]);
    assert!(update.starts_with("debian /nix/store/"), "{update}");

    let checks: &[(&str, &str, &[&str], &str)] = &[
        ("bash", "bin/bash", &["-c", "echo ok"], "ok"),
        ("coreutils", "bin/ls", &["--version"], "GNU coreutils"),
        ("util-linux", "bin/lsblk", &["--version"], "util-linux"),
        ("e2fsprogs", "sbin/mkfs.ext4", &["-V"], "mke2fs"),
        ("curl", "bin/curl", &["--version"], "libcurl"),
        ("git", "bin/git", &["--version"], "git version"),
        ("vim", "bin/vim.basic", &["--version"], "VIM - Vi IMproved"),
        ("nginx", "sbin/nginx", &["-v"], "nginx version"),
        ("systemd", "bin/systemctl", &["--version"], "systemd 252"),
        // grub-efi-amd64-bin ships GRUB's EFI modules; grub-mkimage, which packs them, is grub-common's.
        ("grub-common", "bin/grub-mkimage", &["--version"], "GRUB"),
    ];
    for (attr, program, args, expect) in checks {
        let path = store.build(attr);
        let root = store.root_with_closure(&path, &[]);
        let out = root.run(&format!("{path}/{program}"), args);
        assert!(out.contains(expect), "{attr}: {out}");
    }
    let grub = store.build("grub-efi-amd64-bin");
    assert!(
        store
            .root
            .join(grub.trim_start_matches('/'))
            .join("lib/grub/x86_64-efi/normal.mod")
            .exists()
    );

    let client = store.build("openssh-client");
    let root = store.root_with_closure(&client, &[("etc/passwd", PASSWD)]);
    assert!(root.run(&format!("{client}/bin/ssh"), &["-V"]).contains("OpenSSH_9"));

    let server = store.build("openssh-server");
    let keygen = format!("{client}/bin/ssh-keygen");
    let both = store.ok(&[
        "build",
        "-E",
        "with import <rixpkgs> {}; [ openssh-server openssh-client ]",
        "--no-out-link",
    ]);
    assert_eq!(both.lines().count(), 2);
    let root = store.root_with_closure(
        &server,
        &[
            ("etc/passwd", PASSWD),
            ("etc/ssh/sshd_config", "Port 2222\nHostKey /etc/ssh/key\nUsePAM no\n"),
            ("run/sshd/.keep", ""),
        ],
    );
    // ssh-keygen comes from the client's closure; copy it in beside the server's.
    for p in store.ok(&["store", "query", "--requisites", &client]).lines() {
        let _ = Command::new("cp")
            .arg("-an")
            .arg(store.root.join(p.trim_start_matches('/')))
            .arg(root.dir.path().join("nix/store"))
            .status();
    }
    root.run(&keygen, &["-q", "-t", "ed25519", "-N", "", "-f", "/etc/ssh/key"]);
    root.run(&format!("{server}/sbin/sshd"), &["-t", "-f", "/etc/ssh/sshd_config"]);

    // Nix itself finds the store these builds made sound.
    let verify = Command::new("nix-store")
        .arg("--store")
        .arg(&store.root)
        .args(["--verify", "--check-contents"])
        .output()
        .expect("nix-store (Nix 2.8 from nix-bin: run scripts/setup)");
    let stderr = String::from_utf8_lossy(&verify.stderr);
    assert!(verify.status.success(), "{stderr}");
    let problems: Vec<&str> = stderr
        .lines()
        .filter(|l| !l.contains("build-users-group") && !l.starts_with("reading") && !l.starts_with("checking"))
        .collect();
    assert!(problems.is_empty(), "nix-store --verify: {problems:?}");
}
