//! Following a path as it will look after the switch to the new root, while that root is still mounted at
//! `/mnt-root`: absolute symlinks (the store is full of them) point into the new root, not the initrd.
//!
//! Uses only std (`std::fs`). Like the kernel, it gives up after 40 symlinks and never climbs above the root.

use std::collections::VecDeque;
use std::fs;
use std::path::{Component, Path, PathBuf};

const MAX_SYMLINKS: usize = 40;

/// `path` (absolute, as seen from inside `root`) resolved to where it is now: `root/...`, with every symlink
/// followed. The error says which part is missing.
pub(crate) fn resolve_in_root(root: &Path, path: &str) -> Result<PathBuf, String> {
    let mut pending: VecDeque<String> = components(path).collect();
    let mut resolved: Vec<String> = Vec::new();
    let mut symlinks = 0;
    while let Some(part) = pending.pop_front() {
        if part == ".." {
            resolved.pop();
            continue;
        }
        let inside = format!("/{}", join(&resolved, &part));
        let here = root.join(inside.trim_start_matches('/'));
        let md = fs::symlink_metadata(&here).map_err(|e| explain(&inside, &e))?;
        if md.file_type().is_symlink() {
            symlinks += 1;
            if symlinks > MAX_SYMLINKS {
                return Err(format!("{inside}: more than {MAX_SYMLINKS} symlinks (a loop?)"));
            }
            let target = fs::read_link(&here).map_err(|e| explain(&inside, &e))?;
            let target = target.to_string_lossy().into_owned();
            if target.starts_with('/') {
                resolved.clear();
            }
            for (i, t) in components(&target).enumerate() {
                pending.insert(i, t);
            }
        } else {
            if !pending.is_empty() && !md.is_dir() {
                return Err(format!("{inside}: not a directory"));
            }
            resolved.push(part);
        }
    }
    Ok(root.join(resolved.join("/")))
}

fn explain(inside: &str, error: &std::io::Error) -> String {
    if error.kind() == std::io::ErrorKind::NotFound {
        format!("{inside} is missing")
    } else {
        format!("{inside}: {error}")
    }
}

fn components(path: &str) -> impl Iterator<Item = String> + '_ {
    Path::new(path).components().filter_map(|c| match c {
        Component::Normal(name) => Some(name.to_string_lossy().into_owned()),
        Component::ParentDir => Some("..".to_string()),
        Component::RootDir | Component::CurDir | Component::Prefix(_) => None,
    })
}

fn join(resolved: &[String], part: &str) -> String {
    if resolved.is_empty() {
        part.to_string()
    } else {
        format!("{}/{part}", resolved.join("/"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("rixos-rootpath-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn absolute_symlinks_stay_inside_the_root() {
        let root = scratch("abs");
        fs::create_dir_all(root.join("nix/store/aaa-system")).unwrap();
        fs::create_dir_all(root.join("nix/store/bbb-init/bin")).unwrap();
        fs::write(root.join("nix/store/bbb-init/bin/init"), "#!/bin/sh").unwrap();
        symlink("/nix/store/bbb-init/bin/init", root.join("nix/store/aaa-system/init")).unwrap();
        symlink("nix/store/aaa-system", root.join("current")).unwrap();
        symlink("../../..", root.join("nix/store/up")).unwrap();
        assert_eq!(
            resolve_in_root(&root, "/nix/store/aaa-system/init").unwrap(),
            root.join("nix/store/bbb-init/bin/init")
        );
        assert_eq!(
            resolve_in_root(&root, "/current/init").unwrap(),
            root.join("nix/store/bbb-init/bin/init")
        );
        assert_eq!(
            resolve_in_root(&root, "/nix/store/up/current/init").unwrap(),
            root.join("nix/store/bbb-init/bin/init")
        );
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn missing_parts_and_loops() {
        let root = scratch("missing");
        fs::create_dir_all(root.join("nix/store")).unwrap();
        symlink("/nix/store/gone", root.join("nix/store/dangling")).unwrap();
        symlink("/loop", root.join("loop")).unwrap();
        fs::write(root.join("file"), "").unwrap();
        let error = resolve_in_root(&root, "/nix/store/xyz-system/init").unwrap_err();
        assert_eq!(error, "/nix/store/xyz-system is missing");
        let error = resolve_in_root(&root, "/nix/store/dangling/init").unwrap_err();
        assert_eq!(error, "/nix/store/gone is missing");
        assert!(resolve_in_root(&root, "/loop").unwrap_err().contains("symlinks"));
        assert!(
            resolve_in_root(&root, "/file/x")
                .unwrap_err()
                .contains("not a directory")
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
