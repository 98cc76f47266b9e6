//! Lustration, as NixOS does it when `/etc/NIXOS_LUSTRATE` exists on the root: everything on the root but
//! `/nix` and `/boot` moves into `/old-root`, and the paths listed in that file (host keys, `/root/.ssh`, ...)
//! are copied back. This turns another distribution's root into a NixOS root that keeps what was asked for.
//!
//! Uses only std (`std::fs`), so the tests run it on a scratch directory. Invariant: nothing is ever lost.
//! An existing `/old-root` stops it before anything moves, and no move replaces an existing entry (a
//! half-done earlier run left in `/old-root.tmp` is continued, not overwritten).

use std::fs;
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::Path;

/// The request, relative to the root.
pub(crate) const MARKER: &str = "etc/NIXOS_LUSTRATE";
/// Top-level entries that stay: the store and the boot loader's files.
const KEPT_IN_PLACE: [&str; 2] = ["nix", "boot"];
/// Moves go here first, renamed to `OLD_ROOT` once all are done, so a crash midway cannot look finished.
const STAGING: &str = "old-root.tmp";
const OLD_ROOT: &str = "old-root";

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Lustration {
    /// Top-level names moved into `/old-root`.
    pub(crate) moved: Vec<String>,
    /// Absolute paths copied back from `/old-root`.
    pub(crate) kept: Vec<String>,
    /// Lines of the keep list that were skipped, files that could not be copied as they are.
    pub(crate) warnings: Vec<String>,
}

pub(crate) fn requested(root: &Path) -> bool {
    fs::symlink_metadata(root.join(MARKER)).is_ok()
}

/// The top-level entries to move, sorted.
pub(crate) fn entries_to_move(names: &[String]) -> Vec<String> {
    let mut moved: Vec<String> = names
        .iter()
        .filter(|n| !KEPT_IN_PLACE.contains(&n.as_str()) && n.as_str() != STAGING)
        .cloned()
        .collect();
    moved.sort();
    moved
}

/// The paths to keep, relative to the root (`etc/ssh/ssh_host_ed25519_key`), and a warning for each line
/// that cannot be one. Empty lines and `#` comments are skipped.
pub(crate) fn parse_keep_list(text: &str) -> (Vec<String>, Vec<String>) {
    let mut paths = Vec::new();
    let mut warnings = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        if !line.starts_with('/') {
            warnings.push(format!("{MARKER}: `{line}` is not an absolute path; skipped"));
            continue;
        }
        let parts: Vec<&str> = line.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
        if parts.contains(&"..") {
            warnings.push(format!("{MARKER}: `{line}` contains `..`; skipped"));
        } else if parts.is_empty() {
            warnings.push(format!("{MARKER}: `{line}` would keep the whole old root; skipped"));
        } else {
            paths.push(parts.join("/"));
        }
    }
    (paths, warnings)
}

pub(crate) fn lustrate(root: &Path) -> Result<Lustration, String> {
    let old_root = root.join(OLD_ROOT);
    if fs::symlink_metadata(&old_root).is_ok() {
        return Err(format!(
            "{} already exists (from an earlier lustration?); nothing was moved. Move it away or delete it, \
             then boot again",
            old_root.display()
        ));
    }
    let staging = root.join(STAGING);
    match fs::symlink_metadata(&staging) {
        Ok(md) if md.is_dir() => {}
        Ok(_) => {
            return Err(format!(
                "{} exists and is not a directory; nothing was moved",
                staging.display()
            ));
        }
        Err(_) => fs::DirBuilder::new()
            .mode(0o755)
            .create(&staging)
            .map_err(|e| format!("creating {}: {e}", staging.display()))?,
    }

    let mut report = Lustration::default();
    let names = fs::read_dir(root)
        .map_err(|e| format!("listing {}: {e}", root.display()))?
        .map(|entry| entry.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<io::Result<Vec<String>>>()
        .map_err(|e| format!("listing {}: {e}", root.display()))?;
    for name in entries_to_move(&names) {
        let from = root.join(&name);
        let to = staging.join(&name);
        if fs::symlink_metadata(&to).is_ok() {
            return Err(format!(
                "both {} and {} exist; stopping rather than replacing one with the other",
                from.display(),
                to.display()
            ));
        }
        fs::rename(&from, &to).map_err(|e| format!("moving {} to {}: {e}", from.display(), to.display()))?;
        report.moved.push(name);
    }
    fs::rename(&staging, &old_root)
        .map_err(|e| format!("renaming {} to {}: {e}", staging.display(), old_root.display()))?;

    let etc = root.join("etc");
    fs::DirBuilder::new()
        .mode(0o755)
        .create(&etc)
        .map_err(|e| format!("creating {}: {e}", etc.display()))?;
    fs::write(etc.join("NIXOS"), b"").map_err(|e| format!("creating {}/NIXOS: {e}", etc.display()))?;

    let request = old_root.join(MARKER);
    let text = fs::read_to_string(&request).map_err(|e| format!("reading {}: {e}", request.display()))?;
    let (keep, mut warnings) = parse_keep_list(&text);
    report.warnings.append(&mut warnings);
    for relative in keep {
        let from = old_root.join(&relative);
        let to = root.join(&relative);
        if fs::symlink_metadata(&from).is_err() {
            report.warnings.push(format!(
                "/{relative} is listed in {MARKER} but does not exist; not kept"
            ));
            continue;
        }
        if let Some(parent) = to.parent() {
            fs::DirBuilder::new()
                .mode(0o755)
                .recursive(true)
                .create(parent)
                .map_err(|e| format!("creating {}: {e}", parent.display()))?;
        }
        copy_preserving(&from, &to, &mut report.warnings)
            .map_err(|e| format!("copying {} back to {}: {e}", from.display(), to.display()))?;
        report.kept.push(format!("/{relative}"));
    }
    Ok(report)
}

/// `cp -a` for one path: symlinks as symlinks, directories recursively (merged into an existing one),
/// with modes, ownership and modification times. Device nodes and sockets are skipped with a warning.
fn copy_preserving(from: &Path, to: &Path, warnings: &mut Vec<String>) -> io::Result<()> {
    let md = fs::symlink_metadata(from)?;
    let kind = md.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(from)?;
        if fs::symlink_metadata(to).is_ok() {
            fs::remove_file(to)?;
        }
        std::os::unix::fs::symlink(&target, to)?;
        std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()))?;
        return Ok(());
    }
    if kind.is_dir() {
        match fs::DirBuilder::new().mode(0o700).create(to) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && to.is_dir() => {}
            other => other?,
        }
        for entry in fs::read_dir(from)? {
            let name = entry?.file_name();
            copy_preserving(&from.join(&name), &to.join(&name), warnings)?;
        }
    } else if kind.is_file() {
        fs::copy(from, to)?;
    } else {
        warnings.push(format!(
            "{} is not a file, directory or symlink; not copied",
            from.display()
        ));
        return Ok(());
    }
    // Ownership first: chown clears set-user-ID bits that the mode then restores.
    std::os::unix::fs::lchown(to, Some(md.uid()), Some(md.gid()))?;
    fs::set_permissions(to, fs::Permissions::from_mode(md.mode() & 0o7777))?;
    let times = fs::FileTimes::new()
        .set_accessed(md.accessed()?)
        .set_modified(md.modified()?);
    fs::File::open(to)?.set_times(times)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn scratch(name: &str) -> PathBuf {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("rixos-lustrate-{}-{n}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(root: &Path, relative: &str, text: &str) {
        let path = root.join(relative);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn plan() {
        let names: Vec<String> = ["usr", "nix", "boot", "etc", ".hidden", "old-root.tmp"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(entries_to_move(&names), vec![".hidden", "etc", "usr"]);
        let (paths, warnings) = parse_keep_list(
            "/etc/ssh/ssh_host_ed25519_key\n\n  /root/.ssh/  \n# comment\nrel\n/a/../b\n/\n//etc//./x\n",
        );
        assert_eq!(paths, vec!["etc/ssh/ssh_host_ed25519_key", "root/.ssh", "etc/x"]);
        assert_eq!(warnings.len(), 3, "{warnings:?}");
    }

    #[test]
    fn moves_everything_and_keeps_what_is_listed() {
        let root = scratch("full");
        write(&root, "nix/store/abc-x/file", "store");
        write(&root, "boot/vmlinuz", "kernel");
        write(&root, "etc/passwd", "root:x:0:0");
        write(&root, "etc/ssh/ssh_host_ed25519_key", "secret");
        fs::set_permissions(
            root.join("etc/ssh/ssh_host_ed25519_key"),
            fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        write(&root, "root/.ssh/authorized_keys", "ssh-ed25519 AAAA");
        write(&root, "home/user/notes", "n");
        write(&root, ".hidden", "h");
        std::os::unix::fs::symlink("/etc/passwd", root.join("link")).unwrap();
        write(
            &root,
            MARKER,
            "/etc/ssh/ssh_host_ed25519_key\n/root/.ssh\n/link\n/not/there\n",
        );

        let report = lustrate(&root).unwrap();
        assert_eq!(report.moved, vec![".hidden", "etc", "home", "link", "root"]);
        assert_eq!(
            report.kept,
            vec!["/etc/ssh/ssh_host_ed25519_key", "/root/.ssh", "/link"]
        );
        assert_eq!(report.warnings.len(), 1, "{:?}", report.warnings);
        assert_eq!(names(&root), vec!["boot", "etc", "link", "nix", "old-root", "root"]);
        assert_eq!(names(&root.join("etc")), vec!["NIXOS", "ssh"]);
        assert_eq!(fs::read(root.join("etc/NIXOS")).unwrap(), b"");
        let key = fs::metadata(root.join("etc/ssh/ssh_host_ed25519_key")).unwrap();
        assert_eq!(key.mode() & 0o7777, 0o600);
        assert_eq!(
            fs::read_to_string(root.join("root/.ssh/authorized_keys")).unwrap(),
            "ssh-ed25519 AAAA"
        );
        assert_eq!(fs::read_link(root.join("link")).unwrap(), PathBuf::from("/etc/passwd"));
        assert_eq!(fs::metadata(root.join("etc/ssh")).unwrap().mode() & 0o777, 0o755);
        assert_eq!(
            fs::read_to_string(root.join("old-root/etc/passwd")).unwrap(),
            "root:x:0:0"
        );
        assert_eq!(fs::read_to_string(root.join("old-root/home/user/notes")).unwrap(), "n");
        assert_eq!(fs::read_to_string(root.join("nix/store/abc-x/file")).unwrap(), "store");
        assert!(!requested(&root), "the marker went to old-root");
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_existing_old_root_stops_it_untouched() {
        let root = scratch("old");
        write(&root, "old-root/etc/passwd", "older");
        write(&root, "etc/passwd", "current");
        write(&root, MARKER, "/etc/passwd\n");
        assert!(requested(&root));
        let error = lustrate(&root).unwrap_err();
        assert!(error.contains("already exists"), "{error}");
        assert_eq!(names(&root), vec!["etc", "old-root"]);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_clash_in_staging_stops_before_replacing() {
        let root = scratch("clash");
        write(&root, "old-root.tmp/etc/passwd", "moved by an interrupted run");
        write(&root, "etc/passwd", "current");
        write(&root, "usr/bin/x", "x");
        write(&root, MARKER, "");
        let error = lustrate(&root).unwrap_err();
        assert!(error.contains("both"), "{error}");
        assert_eq!(fs::read_to_string(root.join("etc/passwd")).unwrap(), "current");
        assert_eq!(
            fs::read_to_string(root.join("old-root.tmp/etc/passwd")).unwrap(),
            "moved by an interrupted run"
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
