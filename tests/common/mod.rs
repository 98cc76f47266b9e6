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
