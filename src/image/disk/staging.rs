//! The root file system's tree, staged in a directory for `mkfs.ext4 -d`: an installed system's root.
//!
//! - `/nix/store`: exactly the given closure, its files hard-linked from the physical store (copied when the
//!   store is on another file system or refuses links), its directories made anew with the store's modes.
//! - `/nix/var/nix/db`: the closure registered in Nix's schema, every registration time the build's epoch.
//! - `/nix/var/nix/profiles/system` -> `system-1-link` -> the toplevel; the channel (when given) as
//!   `/nix/var/nix/profiles/per-user/root/channels` and `/root/.nix-defexpr/channels`.
//! - the configuration's files where the derivation places them (`/etc/rixos/configuration.nix` and its
//!   imports); `/boot`: empty, where the ESP is mounted.
//!
//! Every entry outside the store gets the epoch as its mtime, so the tree does not depend on when it was made.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::ext4::BLOCK_SIZE;
use crate::store::db::{Database, PathInfo};
use crate::store::path::StorePath;

/// What goes onto the root file system.
#[derive(Debug)]
pub struct RootContents<'a> {
    /// The physical `/nix/store` the closure is taken from.
    pub store_dir: &'a Path,
    /// The store paths, each with its database record (registration time ignored).
    pub paths: &'a [PathInfo],
    pub toplevel: &'a StorePath,
    pub channel: Option<&'a StorePath>,
    /// The channel list (`nix/var/rixos/channels`: names and URLs) the machine updates from.
    pub channel_list: Option<&'a str>,
    /// Files placed outside the store: (path relative to `/`, the file here), e.g. the configuration.
    pub files: &'a [(String, PathBuf)],
    pub epoch: u64,
}

/// How much the staged tree needs on the file system, in bytes of whole blocks and inodes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    pub bytes: u64,
    pub inodes: u64,
}

impl Usage {
    fn add(&mut self, len: u64) {
        self.bytes += len.div_ceil(BLOCK_SIZE) * BLOCK_SIZE;
        self.inodes += 1;
    }
}

/// Stages `contents` under `root` (an empty directory).
pub fn stage_root(root: &Path, contents: &RootContents<'_>) -> Result<Usage> {
    let mut usage = Usage::default();
    let store = root.join("nix/store");
    fs::create_dir_all(&store).with_context(|| format!("creating {}", store.display()))?;
    let mut names: Vec<String> = contents.paths.iter().map(|info| info.path.base_name()).collect();
    names.sort();
    for name in &names {
        let from = contents.store_dir.join(name);
        link_tree(&from, &store.join(name), &mut usage)
            .with_context(|| format!("staging {} for the root file system", from.display()))?;
    }

    let state = root.join("nix/var/nix");
    for dir in ["gcroots/auto", "profiles/per-user/root", "temproots"] {
        make_dir(&state.join(dir))?;
    }
    let mut infos = contents.paths.to_vec();
    for info in &mut infos {
        info.registration_time = contents.epoch as i64;
    }
    Database::open(&state.join("db"))
        .and_then(|mut db| db.register(&infos))
        .context("registering the closure in the root file system's store database")?;

    let profiles = state.join("profiles");
    symlink(contents.toplevel.to_string(), profiles.join("system-1-link"))?;
    symlink("system-1-link", profiles.join("system"))?;
    make_dir(&root.join("root"))?;
    fs::set_permissions(root.join("root"), fs::Permissions::from_mode(0o700))?;
    if let Some(channel) = contents.channel {
        // A profile as `rixos channel` keeps it: `channels` -> `channels-1-link` -> the generation.
        symlink(channel.to_string(), profiles.join("per-user/root/channels-1-link"))?;
        symlink("channels-1-link", profiles.join("per-user/root/channels"))?;
        make_dir(&root.join("root/.nix-defexpr"))?;
        symlink(
            "/nix/var/nix/profiles/per-user/root/channels",
            root.join("root/.nix-defexpr/channels"),
        )?;
    }
    if let Some(list) = contents.channel_list {
        make_dir(&state.parent().expect("nix/var/nix").join("rixos"))?;
        fs::write(state.parent().expect("nix/var/nix").join("rixos/channels"), list)?;
    }
    make_dir(&root.join("etc/rixos"))?;
    for (place, source) in contents.files {
        place_file(root, place, source)?;
    }
    make_dir(&root.join("boot"))?;
    set_times_outside_store(root, &store, contents.epoch)?;
    Ok(usage)
}

fn make_dir(dir: &Path) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// `to` as a copy of the store entry `from`: directories made (entries in sorted order), files hard-linked,
/// symlinks made anew (links to other users' symlinks are refused under fs.protected_hardlinks).
fn link_tree(from: &Path, to: &Path, usage: &mut Usage) -> Result<()> {
    let meta = fs::symlink_metadata(from).with_context(|| format!("reading {}", from.display()))?;
    let kind = meta.file_type();
    if kind.is_symlink() {
        let target = fs::read_link(from)?;
        symlink(&target, to).with_context(|| format!("creating the link {}", to.display()))?;
        // mke2fs copies the link's own mtime: the store's (1), not the moment it was made here.
        set_mtime(to, mtime_of(&meta))?;
        usage.add(if target.as_os_str().len() < 60 {
            0
        } else {
            target.as_os_str().len() as u64
        });
    } else if kind.is_dir() {
        fs::create_dir(to).with_context(|| format!("creating {}", to.display()))?;
        let mut entries = fs::read_dir(from)?
            .map(|e| e.map(|e| e.file_name()))
            .collect::<io::Result<Vec<_>>>()?;
        entries.sort();
        for entry in entries {
            link_tree(&from.join(&entry), &to.join(&entry), usage)?;
        }
        fs::set_permissions(to, meta.permissions())?;
        usage.add(BLOCK_SIZE * entries_blocks(&meta));
        set_mtime(to, mtime_of(&meta))?;
    } else {
        if let Err(err) = fs::hard_link(from, to) {
            // Another file system (EXDEV) or a store the user may not link from (EPERM): a copy.
            if !matches!(err.raw_os_error(), Some(libc::EXDEV) | Some(libc::EPERM)) {
                return Err(err).with_context(|| format!("linking {} to {}", from.display(), to.display()));
            }
            fs::copy(from, to).with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
            set_mtime(to, mtime_of(&meta))?;
        }
        usage.add(meta.len());
    }
    Ok(())
}

/// A directory's size on the host in blocks, at least one.
fn entries_blocks(meta: &fs::Metadata) -> u64 {
    meta.len().div_ceil(BLOCK_SIZE).max(1)
}

fn mtime_of(meta: &fs::Metadata) -> u64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime().max(0) as u64
}

/// Copies `source` to `place` (relative to `root`, plain names only), 0644 or 0755 when executable.
fn place_file(root: &Path, place: &str, source: &Path) -> Result<()> {
    let relative = Path::new(place);
    if place.is_empty()
        || !relative
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        bail!("configurationFiles: {place:?} is not a relative path of plain names");
    }
    if relative.starts_with("nix") {
        bail!("configurationFiles: {place:?} would be inside /nix, which holds only the store and its state");
    }
    let target = root.join(relative);
    if let Some(parent) = target.parent() {
        make_dir(parent)?;
    }
    fs::copy(source, &target).with_context(|| format!("copying {} to /{place}", source.display()))?;
    let executable = fs::metadata(source)?.permissions().mode() & 0o111 != 0;
    fs::set_permissions(
        &target,
        fs::Permissions::from_mode(if executable { 0o755 } else { 0o644 }),
    )?;
    Ok(())
}

/// Every entry of `root` outside `store` (and `root` itself) gets `epoch` as its atime and mtime, children
/// before their directories.
fn set_times_outside_store(root: &Path, store: &Path, epoch: u64) -> Result<()> {
    fn walk(dir: &Path, store: &Path, epoch: u64) -> Result<()> {
        for entry in fs::read_dir(dir)? {
            let path: PathBuf = entry?.path();
            if path == store {
                continue;
            }
            if fs::symlink_metadata(&path)?.is_dir() {
                walk(&path, store, epoch)?;
            }
            set_mtime(&path, epoch)?;
        }
        Ok(())
    }
    walk(root, store, epoch)?;
    // /nix/store's own mtime too: its entries were made now.
    set_mtime(store, epoch)?;
    set_mtime(root, epoch)
}

pub(super) fn set_mtime(path: &Path, secs: u64) -> Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    let time = nix::sys::time::TimeSpec::new(secs as nix::libc::time_t, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &time,
        &time,
        UtimensatFlags::NoFollowSymlink,
    )
    .with_context(|| format!("setting the mtime of {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::local::LocalStore;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn stages_the_closure_the_database_profiles_channel_and_configuration() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalStore::open(&dir.path().join("store")).unwrap();
        let source = dir.path().join("src");
        fs::create_dir_all(source.join("bin")).unwrap();
        fs::write(source.join("bin/hello"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(source.join("bin/hello"), fs::Permissions::from_mode(0o755)).unwrap();
        symlink("hello", source.join("bin/hi")).unwrap();
        let toplevel = store.add_path(&source).unwrap();
        let channel = store.add_text("channel", b"{}", &[]).unwrap();
        let config = dir.path().join("config");
        fs::create_dir_all(&config).unwrap();
        fs::write(config.join("configuration.nix"), "{ imports = [ ./modules/a.nix ]; }").unwrap();
        fs::write(config.join("a.nix"), "{ }").unwrap();
        let files = [
            (
                "etc/rixos/configuration.nix".to_string(),
                config.join("configuration.nix"),
            ),
            ("etc/rixos/modules/a.nix".to_string(), config.join("a.nix")),
        ];

        let paths: Vec<PathInfo> = [&toplevel, &channel]
            .iter()
            .map(|p| store.db().info(p).unwrap().unwrap())
            .collect();
        let root = dir.path().join("root");
        fs::create_dir(&root).unwrap();
        let epoch = 1_700_000_000;
        let usage = stage_root(
            &root,
            &RootContents {
                store_dir: &store.real_path_of("/nix/store"),
                paths: &paths,
                toplevel: &toplevel,
                channel: Some(&channel),
                channel_list: Some("file:///mirror/dists/bookworm debian\n"),
                files: &files,
                epoch,
            },
        )
        .unwrap();
        assert!(usage.inodes >= 5, "{usage:?}");

        let staged = root.join("nix/store").join(toplevel.base_name());
        let hello = staged.join("bin/hello");
        assert_eq!(fs::read_to_string(&hello).unwrap(), "#!/bin/sh\n");
        let original = store.real_path(&toplevel).join("bin/hello");
        assert_eq!(
            fs::metadata(&hello).unwrap().ino(),
            fs::metadata(&original).unwrap().ino(),
            "hard-linked"
        );
        assert_eq!(fs::read_link(staged.join("bin/hi")).unwrap(), Path::new("hello"));
        assert_eq!(
            fs::symlink_metadata(staged.join("bin/hi")).unwrap().mtime(),
            1,
            "a link made anew keeps the store's mtime"
        );
        assert_eq!(
            fs::symlink_metadata(&staged).unwrap().mtime(),
            1,
            "the store's mtime is kept"
        );

        let profiles = root.join("nix/var/nix/profiles");
        assert_eq!(
            fs::read_link(profiles.join("system")).unwrap(),
            Path::new("system-1-link")
        );
        assert_eq!(
            fs::read_link(profiles.join("system-1-link")).unwrap(),
            Path::new(&toplevel.to_string())
        );
        assert_eq!(
            fs::symlink_metadata(profiles.join("system-1-link")).unwrap().mtime(),
            epoch as i64
        );
        assert_eq!(
            fs::read_link(profiles.join("per-user/root/channels")).unwrap(),
            Path::new("channels-1-link")
        );
        assert_eq!(
            fs::read_link(profiles.join("per-user/root/channels-1-link")).unwrap(),
            Path::new(&channel.to_string())
        );
        assert_eq!(
            fs::read_to_string(root.join("nix/var/rixos/channels")).unwrap(),
            "file:///mirror/dists/bookworm debian\n"
        );
        assert!(
            fs::symlink_metadata(root.join("root/.nix-defexpr/channels"))
                .unwrap()
                .is_symlink()
        );
        assert_eq!(fs::read_to_string(root.join("etc/rixos/modules/a.nix")).unwrap(), "{ }");
        assert_eq!(
            fs::metadata(root.join("etc/rixos/configuration.nix")).unwrap().mode() & 0o777,
            0o644
        );
        assert!(fs::read_dir(root.join("boot")).unwrap().next().is_none());
        assert_eq!(fs::metadata(root.join("etc")).unwrap().mtime(), epoch as i64);

        // The staged store's database knows exactly the closure, registered at the epoch.
        let staged_store = LocalStore::open_existing(&root).unwrap();
        let mut valid = staged_store.db().all_paths().unwrap();
        valid.sort();
        let mut expected = vec![toplevel.clone(), channel.clone()];
        expected.sort();
        assert_eq!(valid, expected);
        let info = staged_store.db().info(&toplevel).unwrap().unwrap();
        assert_eq!(info.registration_time, epoch as i64);
        assert!(staged_store.verify(true).unwrap().is_empty());
    }
}
