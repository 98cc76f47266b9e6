//! Logical store paths to files here: a store may live under another root (`ROOT/nix/store`), where the links
//! inside it still name `/nix/store`. Every part that reads a store's files by their logical names goes
//! through this one resolver.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Result, bail};

use super::path::STORE_DIR;

/// Where a logical path is under `root`, links not followed: `/nix/store/...` below `ROOT/nix/store`, any
/// other path as it is.
pub fn real_under(root: &Path, logical: &str) -> PathBuf {
    match logical.strip_prefix(STORE_DIR) {
        Some(rest) => root
            .join(STORE_DIR.trim_start_matches('/'))
            .join(rest.trim_start_matches('/')),
        None => PathBuf::from(logical),
    }
}

/// The file a logical path names in the store under `root`, its links followed inside that store.
pub fn resolve_under(root: &Path, logical: &str) -> Result<PathBuf> {
    resolve_with(logical, &|p| real_under(root, p))
}

/// Follows a logical path's links step by step, each looked up through `real` (a logical path to its place on
/// disk), as the path would resolve on the machine whose store it is: a link's target names `/nix/store`, not
/// the physical root the store lives under here. Gives the file finally named.
pub fn resolve_with(logical: &str, real: &dyn Fn(&str) -> PathBuf) -> Result<PathBuf> {
    let mut path = normalise(Path::new(logical));
    for _ in 0..40 {
        let physical = real(&path);
        // Each component in turn, so a link in the middle of the path is followed too.
        let mut walked = String::new();
        let mut relinked = None;
        for part in path.split('/').filter(|p| !p.is_empty()) {
            walked.push('/');
            walked.push_str(part);
            if let Ok(to) = fs::read_link(real(&walked)) {
                let to = to.to_string_lossy().into_owned();
                let target = if to.starts_with('/') {
                    to
                } else {
                    let parent = Path::new(&walked).parent().unwrap_or(Path::new("/"));
                    parent.join(&to).to_string_lossy().into_owned()
                };
                let rest = &path[walked.len()..];
                relinked = Some(normalise(Path::new(&format!("{target}{rest}"))));
                break;
            }
        }
        match relinked {
            Some(next) => path = next,
            None if fs::symlink_metadata(&physical).is_ok() => return Ok(physical),
            None => bail!("{logical} does not exist ({} is missing)", physical.display()),
        }
    }
    bail!("{logical}: too many levels of symbolic links")
}

/// A path given by a user (a `result` link, `/run/current-system`, a file inside a store path) to the store path
/// it stands for, as Nix's `followLinksToStorePath`: relative to the working directory, links followed while
/// the path is outside the store, then cut to its top-level store path. A path under `ROOT/nix/store` (the
/// store's physical place) counts as its logical `/nix/store` name.
pub fn follow_links_to_store_path(root: &Path, text: &str) -> Result<String> {
    // `--store store` (relative) names the same root as its absolute form, which links point into.
    let root = &std::path::absolute(root)?;
    let physical_store = root.join(STORE_DIR.trim_start_matches('/'));
    let absolute = std::path::absolute(text)?;
    let mut path = match absolute.strip_prefix(&physical_store) {
        Ok(rest) if root != Path::new("/") => format!("{STORE_DIR}/{}", rest.display()),
        _ => normalise(&absolute),
    };
    for _ in 0..40 {
        if path.starts_with(&format!("{STORE_DIR}/")) {
            break;
        }
        // Outside the store, a path means what it means on this machine, whatever the store's root.
        let Ok(to) = fs::read_link(&path) else { break };
        let parent = Path::new(&path).parent().unwrap_or(Path::new("/")).to_path_buf();
        let target = parent.join(to);
        path = match target.strip_prefix(&physical_store) {
            Ok(rest) if root != Path::new("/") => format!("{STORE_DIR}/{}", rest.display()),
            _ => normalise(&target),
        };
    }
    let Some(rest) = path.strip_prefix(&format!("{STORE_DIR}/")) else {
        bail!("{text} is not in the store {STORE_DIR} (nor a link into it)");
    };
    let top = rest.split('/').next().unwrap_or_default();
    Ok(format!("{STORE_DIR}/{top}"))
}

/// Removes `.`, `..` and repeated slashes from an absolute path without touching the file system.
pub fn normalise(path: &Path) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in path.to_str().unwrap_or_default().split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            part => parts.push(part),
        }
    }
    format!("/{}", parts.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A store under `root`: `real` maps `/nix/store/...` below it.
    fn real_in(root: &Path) -> impl Fn(&str) -> PathBuf + '_ {
        move |logical: &str| root.join(logical.trim_start_matches('/'))
    }

    #[test]
    fn links_are_followed_inside_the_root_whole_or_midway() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("nix/store");
        fs::create_dir_all(store.join("aaa-kernel/boot")).unwrap();
        fs::write(store.join("aaa-kernel/boot/vmlinuz-6.1"), "kernel").unwrap();
        fs::create_dir_all(store.join("bbb-system")).unwrap();
        // Absolute (names /nix/store, not the root), relative, and a link to a directory used midway.
        symlink(
            "/nix/store/aaa-kernel/boot/vmlinuz-6.1",
            store.join("bbb-system/kernel"),
        )
        .unwrap();
        symlink("kernel", store.join("bbb-system/kernel-again")).unwrap();
        symlink("/nix/store/aaa-kernel", store.join("bbb-system/kernel-package")).unwrap();
        symlink("../aaa-kernel/./boot", store.join("bbb-system/boot")).unwrap();
        let real = real_in(dir.path());
        let kernel = store.join("aaa-kernel/boot/vmlinuz-6.1");
        for logical in [
            "/nix/store/bbb-system/kernel",
            "/nix/store/bbb-system/kernel-again",
            "/nix/store/bbb-system/kernel-package/boot/vmlinuz-6.1",
            "/nix/store/bbb-system/boot/vmlinuz-6.1",
            "/nix/store/bbb-system/../aaa-kernel/boot/vmlinuz-6.1",
        ] {
            assert_eq!(resolve_with(logical, &real).unwrap(), kernel, "{logical}");
        }
    }

    #[test]
    fn a_user_path_follows_links_outside_the_store_to_its_store_path() {
        let dir = tempfile::tempdir().unwrap();
        let host = dir.path().join("host");
        fs::create_dir_all(host.join("run")).unwrap();
        // A chain of links outside the store, relative and absolute, ending inside a store path.
        symlink("/nix/store/aaa-system", host.join("run/booted")).unwrap();
        symlink("booted", host.join("run/current")).unwrap();
        symlink(host.join("run/current"), host.join("result")).unwrap();
        let root = Path::new("/");
        for given in [host.join("run/booted"), host.join("run/current"), host.join("result")] {
            let given = given.to_string_lossy().into_owned();
            assert_eq!(
                follow_links_to_store_path(root, &given).unwrap(),
                "/nix/store/aaa-system",
                "{given}"
            );
        }
        // A file inside a store path stands for the store path, and the store's physical place for its name.
        assert_eq!(
            follow_links_to_store_path(root, "/nix/store/aaa-system/sw/bin/ls").unwrap(),
            "/nix/store/aaa-system"
        );
        let other = dir.path().join("root");
        let physical = other.join("nix/store/bbb-x/bin").to_string_lossy().into_owned();
        assert_eq!(
            follow_links_to_store_path(&other, &physical).unwrap(),
            "/nix/store/bbb-x"
        );
        let outside = host.join("run").to_string_lossy().into_owned();
        let error = follow_links_to_store_path(root, &outside).unwrap_err().to_string();
        assert!(error.contains("is not in the store"), "{error}");
        assert!(error.contains(&outside), "{error}");
    }

    #[test]
    fn resolving_under_a_root_maps_only_store_paths() {
        let root = Path::new("/var/lib/rixos/root");
        assert_eq!(
            real_under(root, "/nix/store/aaa-x/bin"),
            root.join("nix/store/aaa-x/bin")
        );
        assert_eq!(real_under(root, "/etc/passwd"), Path::new("/etc/passwd"));
    }

    #[test]
    fn a_missing_target_or_a_loop_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let store = dir.path().join("nix/store/ccc-x");
        fs::create_dir_all(&store).unwrap();
        symlink("/nix/store/ddd-gone/file", store.join("dangling")).unwrap();
        symlink("loop", store.join("loop")).unwrap();
        let real = real_in(dir.path());
        let missing = resolve_with("/nix/store/ccc-x/dangling", &real)
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("/nix/store/ccc-x/dangling does not exist"),
            "{missing}"
        );
        assert!(missing.contains("ddd-gone/file is missing"), "{missing}");
        let looped = resolve_with("/nix/store/ccc-x/loop", &real).unwrap_err().to_string();
        assert!(looped.contains("too many levels of symbolic links"), "{looped}");
    }
}
