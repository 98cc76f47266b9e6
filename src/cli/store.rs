//! `rixos store ...`: store paths and NAR archives.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Subcommand;

use crate::store::hash::nix32_encode;
use crate::store::nar;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Print the sha256 of PATH's NAR serialisation as `sha256:<nix32>` (like `nix-hash --type sha256 --base32`).
    HashPath { path: PathBuf },
    /// Write the NAR serialisation of PATH to standard output (like `nix-store --dump`).
    Dump { path: PathBuf },
    /// Read a NAR from standard input and create it at DIR, which must not exist (like `nix-store --restore`).
    /// A bad archive leaves nothing at DIR.
    Restore { dir: PathBuf },
}

impl StoreCommand {
    pub fn run(self) -> Result<()> {
        match self {
            StoreCommand::HashPath { path } => {
                let (digest, _) = nar::hash_path(&path)?;
                println!("sha256:{}", nix32_encode(&digest));
            }
            StoreCommand::Dump { path } => {
                let stdout = std::io::stdout().lock();
                nar::dump(&path, stdout)?;
            }
            StoreCommand::Restore { dir } => restore(&dir)?,
        }
        std::io::stdout()
            .flush()
            .context("writing to standard output")
    }
}

/// Restores beside `dir` under a temporary name and renames it into place, so `dir` appears whole or not at all.
fn restore(dir: &std::path::Path) -> Result<()> {
    if std::fs::symlink_metadata(dir).is_ok() {
        bail!("{} already exists; restore creates it", dir.display());
    }
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    let name = dir.file_name().context("the target has no file name")?;
    let staging = parent.join(format!(
        ".{}.restoring-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    nar::restore(std::io::stdin().lock(), &staging)?;
    std::fs::rename(&staging, dir)
        .with_context(|| format!("moving the restored tree to {}", dir.display()))
}
