//! What several integration tests share: running the built `rixos` against a store of the test's own, and
//! listing a folder of `.nix` fixtures. Each test binary uses a part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Runs `rixos --store STORE ARGS` in `dir`, whatever it exits with.
pub fn rixos(store: &Path, dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_rixos"))
        .arg("--store")
        .arg(store)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

/// The `.nix` files directly in `dirs`, sorted by path.
pub fn nix_files(dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = dirs
        .iter()
        .flat_map(|dir| std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "nix"))
        .collect();
    files.sort();
    files
}

/// The file `path` names in the store under `root`, links followed by rixos' one resolver
/// (`rixos::store::resolve`). `path` is a logical store path, a physical one under `root`, or a path through
/// a link into the store (a result link of the test's directory).
pub fn resolve(root: &Path, path: &Path) -> PathBuf {
    // A physical path under `root` as the logical one it stands for.
    let logical_of = |p: &Path| match p.strip_prefix(root) {
        Ok(rest) => Some(Path::new("/").join(rest)),
        Err(_) => p.starts_with("/nix/store").then(|| p.to_path_buf()),
    };
    let logical = logical_of(path)
        .or_else(|| {
            path.ancestors().find_map(|link| {
                let target = logical_of(&std::fs::read_link(link).ok()?)?;
                Some(target.join(path.strip_prefix(link).unwrap()))
            })
        })
        .unwrap_or_else(|| panic!("{} leads into no store", path.display()));
    rixos::store::resolve::resolve_under(root, logical.to_str().unwrap())
        .unwrap_or_else(|e| panic!("{}: {e:#}", path.display()))
}
