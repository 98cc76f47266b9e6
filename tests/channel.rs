//! Channels against a small fake Debian archive made by the test: a signing key of its own (gpg), a signed
//! InRelease, a Packages index. A good update makes a generation; a tampered InRelease and a Packages file
//! whose hash does not match are refused with a clear error and change nothing; rollback goes back.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

struct Archive {
    dir: tempfile::TempDir,
    /// The frozen time every signature is made at (gpg's `--faked-system-time EPOCH!`).
    signed_at: String,
}

fn run(cmd: &mut Command) -> Output {
    let out = cmd
        .output()
        .expect("running a tool (gpg from Debian's gnupg: run scripts/setup)");
    assert!(
        out.status.success(),
        "{cmd:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

fn sha256_hex(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data).iter().map(|b| format!("{b:02x}")).collect()
}

const PACKAGES: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nFilename: pool/main/h/hello/hello_2.10-3_amd64.deb\nSize: 10\nSHA256: 0000000000000000000000000000000000000000000000000000000000000000\nDescription: example package\n\nPackage: libc6\nVersion: 2.36-9\nArchitecture: amd64\nFilename: pool/main/g/glibc/libc6_2.36-9_amd64.deb\nSize: 10\nSHA256: 1111111111111111111111111111111111111111111111111111111111111111\nDescription: GNU C Library\n";

impl Archive {
    /// A signed suite at `dists/test` whose Release lists `packages` (or lies about it with `listed`).
    fn new() -> Archive {
        let dir = tempfile::tempdir().unwrap();
        let gnupg = dir.path().join("gnupg");
        std::fs::create_dir(&gnupg).unwrap();
        std::fs::set_permissions(&gnupg, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
        run(Command::new("gpg").env("GNUPGHOME", &gnupg).args([
            "--batch",
            "--passphrase",
            "",
            "--quick-gen-key",
            "rixos test archive <test@invalid>",
            "ed25519",
            "sign",
            "never",
        ]));
        let key = run(Command::new("gpg").env("GNUPGHOME", &gnupg).args(["--export"])).stdout;
        std::fs::write(dir.path().join("keyring.gpg"), key).unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        let signed_at = format!("{}!", now.as_secs() + 1);
        Archive { dir, signed_at }
    }

    fn suite(&self) -> PathBuf {
        self.dir.path().join("debian/dists/test")
    }

    fn url(&self) -> String {
        format!("file://{}", self.suite().display())
    }

    fn publish(&self, packages: &[u8], listed: &[u8]) {
        let index = self.suite().join("main/binary-amd64");
        std::fs::create_dir_all(&index).unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut gz, packages).unwrap();
        let gz = gz.finish().unwrap();
        std::fs::write(index.join("Packages.gz"), &gz).unwrap();
        let mut listed_gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut listed_gz, listed).unwrap();
        let listed_gz = listed_gz.finish().unwrap();
        let release = format!(
            "Origin: Test\nSuite: test\nCodename: test\nArchitectures: amd64\nComponents: main\nSHA256:\n {} {} main/binary-amd64/Packages\n {} {} main/binary-amd64/Packages.gz\n",
            sha256_hex(listed),
            listed.len(),
            sha256_hex(&listed_gz),
            listed_gz.len()
        );
        std::fs::write(self.suite().join("Release"), &release).unwrap();
        let _ = std::fs::remove_file(self.suite().join("InRelease"));
        run(Command::new("gpg")
            .env("GNUPGHOME", self.dir.path().join("gnupg"))
            // One signing time: the same Release signs to the same bytes (ed25519 is deterministic),
            // so publishing a snapshot again is the same snapshot even when a second has passed.
            .args([
                "--batch",
                "--yes",
                "--faked-system-time",
                &self.signed_at,
                "--clearsign",
                "-o",
            ])
            .arg(self.suite().join("InRelease"))
            .arg(self.suite().join("Release")));
    }

    fn rixos(&self, root: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rixos"))
            .arg("--store")
            .arg(root)
            .args(args)
            .env("RIXOS_DEBIAN_KEYRING", self.dir.path().join("keyring.gpg"))
            .output()
            .unwrap()
    }
}

fn generations(root: &Path) -> usize {
    std::fs::read_dir(root.join("nix/var/nix/profiles/per-user/root"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("channels-")
            })
            .count()
        })
        .unwrap_or(0)
}

#[test]
fn updates_verify_the_signature_and_hashes_and_roll_back() {
    let archive = Archive::new();
    let root = archive.dir.path().join("store");
    let root = root.as_path();
    let ok = |out: Output| {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    archive.publish(PACKAGES.as_bytes(), PACKAGES.as_bytes());
    ok(archive.rixos(root, &["channel", "--add", &archive.url(), "debian"]));
    let list = ok(archive.rixos(root, &["channel", "--list"]));
    assert!(
        list.contains("debian file://") && list.contains("(not downloaded)"),
        "{list}"
    );

    let first = ok(archive.rixos(root, &["channel", "--update"]));
    assert!(
        first.starts_with("debian /nix/store/") && first.trim_end().ends_with("-debian-channel"),
        "{first}"
    );
    assert_eq!(generations(root), 1);
    // The package set of the snapshot answers lookups, by the default channel.
    let name = ok(archive.rixos(
        root,
        &["instantiate", "--eval", "-E", "(import <rixpkgs> {}).hello.version"],
    ));
    assert_eq!(name.trim(), "\"2.10-3\"");

    // A second snapshot with a changed index is a second generation.
    let changed = PACKAGES
        .replace("2.10-3", "2.10-4")
        .replace("hello_2.10-4", "hello_2.10-3");
    archive.publish(changed.as_bytes(), changed.as_bytes());
    let second = ok(archive.rixos(root, &["channel", "--update", "debian"]));
    assert_ne!(first, second);
    assert_eq!(generations(root), 2);

    // One byte of the InRelease changed: the signature no longer verifies.
    let in_release = archive.suite().join("InRelease");
    let mut bytes = std::fs::read(&in_release).unwrap();
    let at = String::from_utf8_lossy(&bytes)
        .find("2.10")
        .unwrap_or(200)
        .min(bytes.len() - 1);
    let at = String::from_utf8_lossy(&bytes)
        .find("Suite: test")
        .map_or(at, |i| i + 7);
    bytes[at] ^= 0x01;
    std::fs::write(&in_release, &bytes).unwrap();
    let out = archive.rixos(root, &["channel", "--update"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("signature does not verify"), "{err}");
    assert_eq!(generations(root), 2, "a refused update makes no generation");

    // A Packages index that is not the one the signed Release lists.
    let evil = PACKAGES.replace("example package", "trojan");
    archive.publish(evil.as_bytes(), PACKAGES.as_bytes());
    let out = archive.rixos(root, &["channel", "--update"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("does not match the signed Release"), "{err}");
    assert_eq!(generations(root), 2);

    // A .deb whose bytes are not the ones the index names is refused by its fixed-output hash.
    archive.publish(changed.as_bytes(), changed.as_bytes());
    ok(archive.rixos(root, &["channel", "--update"]));
    let pool = archive.dir.path().join("debian/pool/main/h/hello");
    std::fs::create_dir_all(&pool).unwrap();
    std::fs::write(pool.join("hello_2.10-3_amd64.deb"), b"not the package the index names").unwrap();
    let out = archive.rixos(root, &["build", "<rixpkgs>", "-A", "hello.src", "--no-out-link"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("hash mismatch"), "{err}");
    let store: Vec<String> = std::fs::read_dir(root.join("nix/store"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(
        !store.iter().any(|n| n.ends_with(".deb") && !n.ends_with(".drv")),
        "{store:?}"
    );
    // The same snapshot again is the same generation.
    assert_eq!(generations(root), 2);

    // Rollback returns to the first snapshot.
    ok(archive.rixos(root, &["channel", "--rollback"]));
    let list = ok(archive.rixos(root, &["channel", "--list"]));
    assert!(
        list.contains(first.split_whitespace().nth(1).unwrap()),
        "{list}\n{first}"
    );
}
