//! Garbage collection, following nix-collect-garbage: everything not reachable from a root is deleted.
//!
//! Roots: symlinks under `nix/var/nix/gcroots` (direct, or one level indirect as `gcroots/auto` links to
//! `result` symlinks elsewhere; a stale auto link is removed), the generations under `nix/var/nix/profiles`,
//! store paths named in `temproots/<pid>` files of running processes, and store paths running processes use
//! (`/proc/*/exe`, `cwd`, `root`, `fd/*`, `maps`, `environ`). Live = the closure of the roots, plus the
//! derivations that built live paths and their closures (Nix's keep-derivations default).
//!
//! Deletion first unregisters the dead paths in one transaction (referrers before references), then removes
//! their files, so a crash midway leaves unregistered files, which the store never trusts and the next
//! collection removes.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Component, Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha1::Digest;

use super::local::LocalStore;
use super::nar::remove_tree;
use super::path::{STORE_DIR, StorePath};

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    /// Deleted (or, in a dry run, deletable) store paths.
    pub deleted: Vec<StorePath>,
    /// Bytes their NARs held.
    pub freed_bytes: u64,
}

impl LocalStore {
    /// Checks that `link` may become a root's link (what `rixos build -o` makes): absent, or a symlink into the
    /// store, which is replaced; anything else is the user's and is refused, as Nix refuses it. Gives the
    /// link's absolute path, which the root names.
    pub fn check_perm_root(&self, link: &Path) -> Result<PathBuf> {
        let absolute = absolute_path(link)?;
        if absolute.starts_with(self.store_dir()) {
            bail!(
                "creating a garbage collector root ({}) in the store is forbidden (are you building inside the store?)",
                absolute.display()
            );
        }
        if let Ok(meta) = fs::symlink_metadata(&absolute) {
            // A link to a store path of any root (an earlier build with another --store) is a build's too.
            let into_store = meta.file_type().is_symlink()
                && fs::read_link(&absolute).is_ok_and(|target| {
                    target.starts_with(STORE_DIR)
                        || target
                            .parent()
                            .is_some_and(|p| p.ends_with(STORE_DIR.trim_start_matches('/')))
                });
            if !into_store {
                bail!(
                    "cannot create symlink '{}'; already exists and is not a link into the store (move it away, \
                     or name another link with -o)",
                    absolute.display()
                );
            }
        }
        Ok(absolute)
    }

    /// Points `link` at `path` (replacing an old link atomically) and registers it as an indirect root, as
    /// nix-build's out-links are: `gcroots/auto/<nix32 sha1 of the link's absolute path>` links to `link`, so
    /// the path lives while `link` points at it and the auto root goes when `link` does.
    pub fn add_perm_root(&self, path: &StorePath, link: &Path) -> Result<PathBuf> {
        let absolute = self.check_perm_root(link)?;
        replace_symlink(&self.real_path(path), &absolute)?;
        let digest = sha1::Sha1::digest(absolute.as_os_str().as_encoded_bytes());
        let auto = self
            .state_dir()
            .join("gcroots/auto")
            .join(super::hash::nix32_encode(&digest));
        replace_symlink(&absolute, &auto)?;
        Ok(absolute)
    }

    /// The store paths that are roots, each with what makes it one.
    pub fn roots(&self) -> Result<Vec<(StorePath, String)>> {
        let mut roots = Vec::new();
        let state = self.state_dir();
        for top in [state.join("gcroots"), state.join("profiles")] {
            self.symlink_roots(&top, &mut roots)?;
        }
        self.temporary_roots(&state.join("temproots"), &mut roots)?;
        self.process_roots(&mut roots)?;
        self.system_roots(&mut roots)?;
        roots.sort();
        roots.dedup();
        Ok(roots)
    }

    /// The store path a link target names (logically, `/nix/store/...`, or physically, as `rixos build`'s
    /// links do), if it is one of this store's valid paths.
    fn valid_store_path(&self, target: &str) -> Result<Option<StorePath>> {
        let physical = self.store_dir();
        let rest = match target
            .strip_prefix(STORE_DIR)
            .or_else(|| target.strip_prefix(physical.to_str()?))
        {
            Some(rest) if rest.is_empty() || rest.starts_with('/') => rest,
            _ => return Ok(None),
        };
        let base = rest.trim_start_matches('/').split('/').next().unwrap_or_default();
        match StorePath::from_base_name(base) {
            Ok(path) if self.db().is_valid(&path)? => Ok(Some(path)),
            _ => Ok(None),
        }
    }

    fn symlink_roots(&self, dir: &Path, roots: &mut Vec<(StorePath, String)>) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry?;
            let link = entry.path();
            let kind = entry.file_type()?;
            if kind.is_dir() {
                self.symlink_roots(&link, roots)?;
                continue;
            }
            if !kind.is_symlink() {
                continue;
            }
            let target = fs::read_link(&link)?;
            let shown = link.display().to_string();
            if let Some(path) = self.valid_store_path(&target.to_string_lossy())? {
                roots.push((path, shown));
                continue;
            }
            // Indirect: the link names another link (a `result` somewhere); follow that one level.
            let absolute = if target.is_absolute() {
                target.clone()
            } else {
                link.parent().unwrap_or(dir).join(&target)
            };
            match fs::read_link(&absolute) {
                Ok(second) => {
                    if let Some(path) = self.valid_store_path(&second.to_string_lossy())? {
                        roots.push((path, format!("{shown} -> {}", absolute.display())));
                    }
                }
                Err(_)
                    if fs::symlink_metadata(&absolute).is_err()
                        && link.starts_with(self.state_dir().join("gcroots/auto")) =>
                {
                    // The `result` link is gone: the auto root is stale.
                    fs::remove_file(&link).with_context(|| format!("removing the stale root {shown}"))?;
                }
                Err(_) => {}
            }
        }
        Ok(())
    }

    /// The running system's generations (`run/current-system`, `run/booted-system` under the store's root):
    /// on a machine whose store is `/`, what runs now and what it booted stay, profile or not.
    fn system_roots(&self, roots: &mut Vec<(StorePath, String)>) -> Result<()> {
        for link in SYSTEM_ROOTS {
            let link = self.root.join(link);
            if let Ok(target) = fs::read_link(&link)
                && let Some(path) = self.valid_store_path(&target.to_string_lossy())?
            {
                roots.push((path, link.display().to_string()));
            }
        }
        Ok(())
    }

    fn temporary_roots(&self, dir: &Path, roots: &mut Vec<(StorePath, String)>) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else {
            return Ok(());
        };
        for entry in entries {
            let entry = entry?;
            let pid = entry.file_name().to_string_lossy().into_owned();
            if !Path::new("/proc").join(&pid).exists() {
                let _ = fs::remove_file(entry.path());
                continue;
            }
            let text = fs::read_to_string(entry.path()).unwrap_or_default();
            for line in text.split(['\n', '\0']).filter(|l| !l.is_empty()) {
                if let Some(path) = self.valid_store_path(line)? {
                    roots.push((path, format!("temporary root of process {pid}")));
                }
            }
        }
        Ok(())
    }

    /// Store paths in use by running processes, found by their names in what /proc shows of each process.
    fn process_roots(&self, roots: &mut Vec<(StorePath, String)>) -> Result<()> {
        let Ok(processes) = fs::read_dir("/proc") else {
            return Ok(());
        };
        let own = std::process::id().to_string();
        for process in processes.flatten() {
            let pid = process.file_name().to_string_lossy().into_owned();
            if !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
                continue;
            }
            let base = process.path();
            let mut texts: Vec<Vec<u8>> = Vec::new();
            for link in ["exe", "cwd", "root"] {
                if let Ok(target) = fs::read_link(base.join(link)) {
                    texts.push(target.into_os_string().into_encoded_bytes());
                }
            }
            if let Ok(fds) = fs::read_dir(base.join("fd")) {
                for fd in fds.flatten() {
                    if let Ok(target) = fs::read_link(fd.path()) {
                        texts.push(target.into_os_string().into_encoded_bytes());
                    }
                }
            }
            for file in ["maps", "environ"] {
                if let Ok(bytes) = fs::read(base.join(file)) {
                    texts.push(bytes);
                }
            }
            for text in texts {
                for path in self.store_paths_in(&text)? {
                    roots.push((path, format!("in use by process {pid}")));
                }
            }
        }
        Ok(())
    }

    /// Valid store paths named anywhere in `bytes` (also under a chroot store's physical prefix, which ends in
    /// `/nix/store/` too).
    fn store_paths_in(&self, bytes: &[u8]) -> Result<Vec<StorePath>> {
        let needle = format!("{STORE_DIR}/");
        let mut found = Vec::new();
        let mut start = 0;
        while let Some(at) = find(&bytes[start..], needle.as_bytes()) {
            let begin = start + at + needle.len();
            let end = bytes[begin..]
                .iter()
                .position(|b| !(b.is_ascii_alphanumeric() || b"+-._?=".contains(b)))
                .map_or(bytes.len(), |p| begin + p);
            if let Ok(base) = std::str::from_utf8(&bytes[begin..end])
                && let Ok(path) = StorePath::from_base_name(base)
                && self.db().is_valid(&path)?
            {
                found.push(path);
            }
            start = end.max(begin);
        }
        Ok(found)
    }

    /// Everything that must stay: the roots' closure and, for each live path, its deriver's closure.
    pub fn live_paths(&self) -> Result<BTreeSet<StorePath>> {
        let roots: Vec<StorePath> = self.roots()?.into_iter().map(|(path, _)| path).collect();
        let mut live: BTreeSet<StorePath> = BTreeSet::new();
        let mut added = self.requisites(&roots)?;
        // Each round looks only at the paths the previous one added.
        while !added.is_empty() {
            let mut derivers = Vec::new();
            for path in &added {
                live.insert(path.clone());
            }
            for path in &added {
                if let Some(deriver) = self.db().deriver(path)?
                    && !live.contains(&deriver)
                    && self.db().is_valid(&deriver)?
                {
                    derivers.push(deriver);
                }
            }
            added = self
                .requisites(&derivers)?
                .into_iter()
                .filter(|p| !live.contains(p))
                .collect();
        }
        Ok(live)
    }

    /// Deletes every valid path that is not live (or only reports them with `dry_run`), then removes files in
    /// the store directory that are not registered at all.
    pub fn collect_garbage(&mut self, dry_run: bool) -> Result<GcReport> {
        self.refuse_unregistered_store()?;
        let live = self.live_paths()?;
        let dead: Vec<StorePath> = self
            .db()
            .all_paths()?
            .into_iter()
            .filter(|p| !live.contains(p))
            .collect();
        self.delete_paths(&dead, dry_run)
    }

    /// `store delete`: deletes `paths`, refusing any that is still alive (a root or reachable from one) or
    /// still referenced by a path that stays.
    pub fn delete_checked(&mut self, paths: &[StorePath]) -> Result<GcReport> {
        let live = self.live_paths()?;
        let doomed: BTreeSet<&StorePath> = paths.iter().collect();
        for path in paths {
            if !self.db().is_valid(path)? {
                anyhow::bail!("{path} is not valid in this store");
            }
            if live.contains(path) {
                anyhow::bail!(
                    "cannot delete path '{path}' since it is still alive (see `rixos gc --dry-run` for roots)"
                );
            }
            for referrer in self.db().referrers(path)? {
                if &referrer != path && !doomed.contains(&referrer) {
                    anyhow::bail!("cannot delete path '{path}': {referrer} still refers to it");
                }
            }
        }
        self.delete_paths(paths, false)
    }

    fn delete_paths(&mut self, dead: &[StorePath], dry_run: bool) -> Result<GcReport> {
        let mut report = GcReport::default();
        for path in dead {
            if let Some(info) = self.db().info(path)? {
                report.freed_bytes += info.nar_size;
            }
        }
        report.deleted = dead.to_vec();
        if dry_run {
            return Ok(report);
        }
        if is_read_only(&self.store_dir()) {
            // A VM's store shared read-only by its host: nothing here can be deleted, and what is not in this
            // machine's database is the host's.
            if !dead.is_empty() {
                bail!(
                    "cannot delete {} store paths: {} is on a read-only file system",
                    dead.len(),
                    self.store_dir().display()
                );
            }
            if !self.quiet {
                eprintln!(
                    "{} is read-only: entries not in this store's database are left alone",
                    self.store_dir().display()
                );
            }
            return Ok(report);
        }
        self.db_mut().unregister(dead)?;
        for path in dead {
            let real = self.real_path(path);
            remove_tree(&real).with_context(|| format!("deleting {}", real.display()))?;
            remove_lock_unless_held(&self.lock_path(path));
        }
        self.remove_unregistered()?;
        Ok(report)
    }

    /// Removes entries of the store directory that are not valid paths (left by a crash between unregistering
    /// and deleting, or between moving into place and registering) and lock files nobody holds. Dot files
    /// (staging, in use) are left.
    fn remove_unregistered(&self) -> Result<()> {
        for entry in fs::read_dir(self.store_dir())? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if name.ends_with(".lock") {
                remove_lock_unless_held(&entry.path());
                continue;
            }
            let registered = match StorePath::from_base_name(&name) {
                Ok(path) => self.db().is_valid(&path)?,
                Err(_) => false,
            };
            if !registered && !remove_lock_unless_held(&self.store_dir().join(format!("{name}.lock"))) {
                remove_tree(&entry.path()).with_context(|| format!("deleting {}", entry.path().display()))?;
            }
        }
        Ok(())
    }
}

/// `path` made absolute against the current directory, with `.` and `..` resolved by name, not by following
/// links (as Nix's `absPath` and `canonPath`), so the root names the path the user typed.
fn absolute_path(path: &Path) -> Result<PathBuf> {
    let joined = std::env::current_dir()
        .context("reading the current directory")?
        .join(path);
    let mut out = PathBuf::new();
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            other => out.push(other),
        }
    }
    Ok(out)
}

/// Makes `link` a symlink to `target` in one rename, so it is never missing and never half made.
fn replace_symlink(target: &Path, link: &Path) -> Result<()> {
    let name = link.file_name().context("a link needs a file name")?;
    let temporary = link.with_file_name(format!(".{}_{}", std::process::id(), name.to_string_lossy()));
    let _ = fs::remove_file(&temporary);
    std::os::unix::fs::symlink(target, &temporary)
        .with_context(|| format!("making the link {}", temporary.display()))?;
    fs::rename(&temporary, link).map_err(|e| {
        let _ = fs::remove_file(&temporary);
        anyhow::Error::from(e).context(format!("making the link {}", link.display()))
    })
}

impl LocalStore {
    /// A store whose database records nothing while its directory holds store paths was never registered
    /// (a live ISO's or a VM's store before `store load-db`, or a lost database): collecting it would delete
    /// everything, the running system included.
    fn refuse_unregistered_store(&self) -> Result<()> {
        if !self.db().all_paths()?.is_empty() {
            return Ok(());
        }
        let Ok(entries) = fs::read_dir(self.store_dir()) else {
            return Ok(());
        };
        let present = entries
            .flatten()
            .filter(|e| StorePath::from_base_name(&e.file_name().to_string_lossy()).is_ok())
            .count();
        if present > 0 {
            bail!(
                "the store's database ({}) records no paths, but {} holds {present}: refusing to collect garbage, \
                 which would delete them all; register them first (`rixos --store {} store load-db < REGISTRATION`, \
                 e.g. a closure-info's `registration`)",
                self.state_dir().join("db").display(),
                self.store_dir().display(),
                self.root.display()
            );
        }
        Ok(())
    }
}

/// Links to system generations that are roots, relative to the store's root.
const SYSTEM_ROOTS: [&str; 2] = ["run/current-system", "run/booted-system"];

/// Whether `dir` is on a file system mounted read-only.
fn is_read_only(dir: &Path) -> bool {
    use nix::sys::statvfs::{FsFlags, statvfs};
    statvfs(dir).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY))
}

/// True while another process holds the lock of a path being built (see `build.rs`'s `PathLock`). A lock
/// nobody holds (left by a crash or an older rixos) is deleted, under the lock, as its holder would have.
fn remove_lock_unless_held(lock: &Path) -> bool {
    let Ok(file) = fs::File::open(lock) else {
        return false;
    };
    // The lock, if taken, goes with the file.
    let Ok(_held) = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) else {
        return true;
    };
    let _ = fs::remove_file(lock);
    false
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::profile::Profile;

    fn add(store: &mut LocalStore, dir: &Path, name: &str) -> StorePath {
        let source = dir.join(name);
        fs::write(&source, name).unwrap();
        store.add_path(&source).unwrap()
    }

    #[test]
    fn the_running_and_booted_systems_and_the_system_profile_are_roots() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let mut store = LocalStore::open(&root).unwrap();
        let current = add(&mut store, dir.path(), "current");
        let booted = add(&mut store, dir.path(), "booted");
        let profiled = add(&mut store, dir.path(), "profiled");
        let garbage = add(&mut store, dir.path(), "garbage");
        fs::create_dir_all(root.join("run")).unwrap();
        std::os::unix::fs::symlink(current.to_string(), root.join("run/current-system")).unwrap();
        std::os::unix::fs::symlink(booted.to_string(), root.join("run/booted-system")).unwrap();
        Profile::new(store.state_dir().join("profiles/system"))
            .add_generation(&profiled)
            .unwrap();
        let report = store.collect_garbage(false).unwrap();
        assert_eq!(report.deleted, vec![garbage]);
        for kept in [current, booted, profiled] {
            assert!(
                store.db().is_valid(&kept).unwrap() && store.real_path(&kept).exists(),
                "{kept}"
            );
        }
    }

    #[test]
    fn a_store_whose_database_records_nothing_is_not_collected() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = LocalStore::open(dir.path()).unwrap();
        let present = store
            .store_dir()
            .join("00000000000000000000000000000000-running-system");
        fs::create_dir(&present).unwrap();
        let error = format!("{:#}", store.collect_garbage(false).unwrap_err());
        assert!(
            error.contains("records no paths") && error.contains("store load-db"),
            "{error}"
        );
        assert!(present.exists());
    }
}
