//! Debian binary packages (`.deb`), read without trusting them.
//!
//! Owns the `.deb` format: the `ar` container (`debian-binary`, `control.tar*`, `data.tar*`), the
//! decompression of its members (none, gzip, xz, zstd) and the unpacking of `data.tar` into a fresh directory
//! with Debian's usr-merge applied the way nixpkgs lays out binary packages: `./usr/X` and `./X` both land at
//! `out/X`, so `usr/bin/ls` becomes `out/bin/ls`.
//!
//! Invariants of [`extract_data`]:
//! - Nothing is ever written outside `out`: entries with `..` components or absolute names are refused, every
//!   symlink target is resolved against the package's own tree and rewritten as a relative target that stays
//!   inside `out` (or refused if it cannot), and no entry is written through a symlink.
//! - The result holds only directories (0755), regular files (0755 if the package had any exec bit, else
//!   0644) and symlinks; device nodes, fifos and sockets are refused, hard links become copies, owners and
//!   mtimes are dropped (the store canonicalises them).
//! - Two entries that land on the same path after the merge must agree (directories merge, identical
//!   symlinks are one); a symlink that the merge turns into itself (`./bin -> usr/bin`) is dropped.
//! - On any error `out` is removed again: a failed extraction leaves nothing behind.
//!
//! Knows nothing of the store, of package indices or of signatures: callers check a package's hash against
//! the signed archive before handing it here.

mod ar;
mod control;
mod data;
mod paths;
#[cfg(test)]
mod test_debs;

pub use control::{ControlInfo, extract_control_into, read_control};
pub use data::{DataSummary, extract_data};

use std::io::{self, Read};
use std::path::PathBuf;

use thiserror::Error;

const COPY_BUFFER: usize = 1 << 16;

#[derive(Debug, Error)]
pub enum DebError {
    /// The file is not a Debian binary package at all (no ar magic, members missing or unknown).
    #[error("{} is not a Debian binary package: {reason}", path.display())]
    NotADeb { path: PathBuf, reason: String },
    /// The package has the right shape but its bytes are damaged (truncated, corrupt compression, bad tar).
    #[error("{} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// An entry that could write outside the output or make something other than files, directories and
    /// symlinks.
    #[error("refusing {}: entry '{entry}' {reason}", path.display())]
    Unsafe {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    /// Two entries land on the same path after the usr-merge and do not agree.
    #[error("refusing {}: entry '{entry}' and {earlier} both unpack to '{at}'", path.display())]
    Collision {
        path: PathBuf,
        entry: String,
        earlier: String,
        at: String,
    },
    #[error("{}: member '{member}' uses a compression rixos cannot read (it reads none, .gz, .xz and .zst)", path.display())]
    UnsupportedCompression { path: PathBuf, member: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

fn reading_after(previous: &str, error: &io::Error) -> String {
    if previous.is_empty() {
        format!("reading the first entry: {error}")
    } else {
        format!("reading the entry after '{previous}': {error}")
    }
}

/// Reads `reader` to its end, so the decompressor checks its trailer (a stream cut after the tar's last
/// entry is still caught).
fn drain(mut reader: impl Read) -> io::Result<u64> {
    io::copy(&mut reader, &mut io::sink())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    use crate::pkgs::deb::paths::{archive_path, display, merge_usr, resolve_link};

    /// Every .deb in apt's cache unpacks, and holds exactly the regular files `dpkg-deb -c` lists, at their
    /// usr-merged paths with their sizes.
    #[test]
    fn unpacks_real_debian_packages_from_the_apt_cache() {
        let mut debs: Vec<PathBuf> = fs::read_dir("/var/cache/apt/archives")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        if debs.is_empty() {
            println!("SKIPPED: no .deb in /var/cache/apt/archives to test against");
            return;
        }
        debs.sort();
        debs.truncate(12);
        for deb in debs {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out");
            let summary = extract_data(&deb, &out).unwrap_or_else(|e| panic!("{e}"));
            println!("{}: {summary}", deb.display());
            let info = read_control(&deb).unwrap();
            assert!(info.control.starts_with("Package: "), "{}", deb.display());

            let listing = std::process::Command::new("dpkg-deb")
                .arg("-c")
                .arg(&deb)
                .output()
                .expect("dpkg-deb runs (it is on every host that has an apt cache)");
            assert!(listing.status.success(), "dpkg-deb -c {}", deb.display());
            let mut files = 0;
            for line in String::from_utf8_lossy(&listing.stdout).lines() {
                // "-rw-r--r-- root/root     18336 2022-11-06 12:04 ./usr/bin/hello"
                let mut fields = line.split_whitespace();
                if !fields.next().is_some_and(|perms| perms.starts_with('-')) {
                    continue;
                }
                let size: u64 = fields.nth(1).and_then(|s| s.parse().ok()).expect(line);
                let name = &line[line.find(" ./").expect(line) + 1..];
                let original = archive_path(name.as_bytes()).unwrap();
                let path = out.join(display(merge_usr(&original)));
                let metadata = fs::symlink_metadata(&path)
                    .unwrap_or_else(|e| panic!("{}: {name} -> {}: {e}", deb.display(), path.display()));
                assert!(metadata.is_file(), "{}", path.display());
                assert_eq!(metadata.len(), size, "{}", path.display());
                files += 1;
            }
            assert_eq!(files, summary.files - summary.hard_links, "{}", deb.display());
            assert!(!out.join("usr").exists(), "{}", deb.display());
            assert_links_stay_inside(&out, &[]);
        }
    }

    /// Every symlink under `out/dir` is relative and, resolved lexically, stays inside `out`.
    fn assert_links_stay_inside(out: &Path, dir: &[Vec<u8>]) {
        let path = out.join(display(dir));
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let mut child = dir.to_vec();
            child.push(entry.file_name().as_bytes().to_vec());
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                assert_links_stay_inside(out, &child);
            } else if file_type.is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                assert!(target.is_relative(), "{}", entry.path().display());
                assert!(
                    resolve_link(dir, target.as_os_str().as_bytes()).is_some(),
                    "{} -> {} leaves the output",
                    entry.path().display(),
                    target.display()
                );
            }
        }
    }
}
