//! Everything the evaluator reads or writes outside itself: source files, directories, the environment and the
//! store. The evaluator calls only this trait, so tests and `--eval` (which writes nothing to the store) choose
//! what a store write means.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use crate::store::hash::sha256;
use crate::store::local::LocalStore;
use crate::store::nar;
use crate::store::path::{StorePath, source_path, text_path};

pub const STORE_DIR: &str = "/nix/store";

pub fn is_store_path(path: &str) -> bool {
    path.strip_prefix("/nix/store/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/') && StorePath::parse(path).is_ok())
}

/// The store path a path inside the store belongs to (`/nix/store/x-y/bin/z` -> `/nix/store/x-y`).
pub fn store_path_of(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/nix/store/")?;
    let base = rest.split('/').next()?;
    let candidate = format!("/nix/store/{base}");
    is_store_path(&candidate).then_some(candidate)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum FileKind {
    Regular,
    Directory,
    Symlink,
    Unknown,
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            FileKind::Regular => "regular",
            FileKind::Directory => "directory",
            FileKind::Symlink => "symlink",
            FileKind::Unknown => "unknown",
        }
    }
}

pub trait EvalIo {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>>;
    fn is_dir(&self, path: &Path) -> bool;
    fn exists(&self, path: &Path) -> bool;
    fn file_kind(&self, path: &Path) -> io::Result<FileKind>;
    /// Entries of a directory, sorted by name.
    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileKind)>>;
    /// Adds a tree to the store under `name`; with `only`, just those paths (relative to `path`, as
    /// `filterSource` chose them) are included. Gives the store path. Flat (non-recursive) adds hash the file.
    fn add_path(&mut self, path: &Path, name: &str, only: Option<&HashSet<PathBuf>>, recursive: bool)
    -> Result<String>;
    /// Writes a text file (`toFile`, a .drv) with the given references; gives its store path.
    fn add_text(&mut self, name: &str, text: &str, references: &[String]) -> Result<String>;
    /// Whether writes reach a store (false under `--eval`, where paths are only computed).
    fn writes(&self) -> bool;
}

/// Real files; a store under a root, or none (paths are then computed but nothing is written).
pub struct StoreIo {
    pub store: Option<LocalStore>,
    /// Where `/nix/store` paths are read from (the store's physical root), when known.
    pub root: Option<PathBuf>,
}

impl StoreIo {
    /// Nothing is written; store paths are read under `root` if given.
    pub fn read_only(root: Option<&Path>) -> StoreIo {
        StoreIo {
            store: None,
            root: root.map(Path::to_path_buf),
        }
    }

    pub fn with_store(store: LocalStore) -> StoreIo {
        StoreIo {
            store: Some(store),
            root: None,
        }
    }
}

fn kind_of(meta: &std::fs::Metadata) -> FileKind {
    let t = meta.file_type();
    if t.is_symlink() {
        FileKind::Symlink
    } else if t.is_dir() {
        FileKind::Directory
    } else if t.is_file() {
        FileKind::Regular
    } else {
        FileKind::Unknown
    }
}

/// Copies the chosen parts of `src` into `dst` (which must not exist), keeping symlinks as links.
fn copy_filtered(src: &Path, dst: &Path, rel: &Path, only: &HashSet<PathBuf>) -> Result<()> {
    let meta = std::fs::symlink_metadata(src).with_context(|| format!("reading {}", src.display()))?;
    match kind_of(&meta) {
        FileKind::Directory => {
            std::fs::create_dir(dst)?;
            let mut names: Vec<_> = std::fs::read_dir(src)?
                .filter_map(|e| e.ok())
                .map(|e| e.file_name())
                .collect();
            names.sort();
            for name in names {
                let child_rel = rel.join(&name);
                if only.contains(&child_rel) {
                    copy_filtered(&src.join(&name), &dst.join(&name), &child_rel, only)?;
                }
            }
        }
        FileKind::Symlink => std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?,
        _ => {
            std::fs::copy(src, dst)?;
            use std::os::unix::fs::PermissionsExt;
            let exec = meta.permissions().mode() & 0o100 != 0;
            std::fs::set_permissions(dst, std::fs::Permissions::from_mode(if exec { 0o755 } else { 0o644 }))?;
        }
    }
    Ok(())
}

impl EvalIo for StoreIo {
    fn read_file(&self, path: &Path) -> io::Result<Vec<u8>> {
        std::fs::read(self.real(path))
    }

    fn is_dir(&self, path: &Path) -> bool {
        self.real(path).is_dir()
    }

    fn exists(&self, path: &Path) -> bool {
        self.real(path).symlink_metadata().is_ok()
    }

    fn file_kind(&self, path: &Path) -> io::Result<FileKind> {
        Ok(kind_of(&std::fs::symlink_metadata(self.real(path))?))
    }

    fn read_dir(&self, path: &Path) -> io::Result<Vec<(String, FileKind)>> {
        let mut out = Vec::new();
        for entry in std::fs::read_dir(self.real(path))? {
            let entry = entry?;
            let kind = kind_of(&entry.path().symlink_metadata()?);
            out.push((entry.file_name().to_string_lossy().into_owned(), kind));
        }
        out.sort();
        Ok(out)
    }

    fn add_path(
        &mut self,
        path: &Path,
        name: &str,
        only: Option<&HashSet<PathBuf>>,
        recursive: bool,
    ) -> Result<String> {
        // A symlink at the top is followed: the store gets what it points at.
        let real = std::fs::canonicalize(self.real(path)).with_context(|| format!("reading {}", path.display()))?;
        // A filtered tree is staged first; the temporary directory lives as long as `staged`.
        let staged = match only {
            Some(only) => {
                let dir = tempfile::tempdir()?;
                let dst = dir.path().join("x");
                copy_filtered(&real, &dst, Path::new(""), only)?;
                Some((dir, dst))
            }
            None => None,
        };
        let source: &Path = staged.as_ref().map_or(real.as_path(), |(_, dst)| dst.as_path());
        if !recursive {
            // A flat add is a fixed-output path over the file's bytes; the store has no way to take one yet.
            if self.store.is_some() {
                anyhow::bail!(
                    "adding {} with recursive = false to the store is not supported yet (computing its path is)",
                    path.display()
                );
            }
            let bytes = std::fs::read(source).with_context(|| format!("reading {}", source.display()))?;
            let sp = crate::store::path::fixed_output_path(
                name,
                crate::store::path::FileIngestion::Flat,
                "sha256",
                &sha256(&bytes),
            )?;
            return Ok(sp.to_string());
        }
        match &mut self.store {
            Some(store) => Ok(store.add_path_named(source, name)?.to_string()),
            None => {
                let (digest, _) = nar::hash_path(source).with_context(|| format!("reading {}", source.display()))?;
                Ok(source_path(name, &digest, [], false)?.to_string())
            }
        }
    }

    fn add_text(&mut self, name: &str, text: &str, references: &[String]) -> Result<String> {
        let refs: Vec<StorePath> = references
            .iter()
            .map(|r| StorePath::parse(r))
            .collect::<std::result::Result<_, _>>()?;
        match &mut self.store {
            Some(store) => Ok(store.add_text(name, text.as_bytes(), &refs)?.to_string()),
            None => Ok(text_path(name, &sha256(text.as_bytes()), &refs)?.to_string()),
        }
    }

    fn writes(&self) -> bool {
        self.store.is_some()
    }
}

impl StoreIo {
    /// Store paths are read from the store's physical location.
    fn real(&self, path: &Path) -> PathBuf {
        match (&self.store, &self.root, path.to_str()) {
            (Some(store), _, Some(p)) if p.starts_with("/nix/store/") => store.real_path_of(p),
            (None, Some(root), Some(p)) if p.starts_with("/nix/store/") => root.join(&p[1..]),
            _ => path.to_path_buf(),
        }
    }
}
