//! A store on the local file system: `ROOT/nix/store` for contents, `ROOT/nix/var/nix` for state, as Nix lays
//! out a chroot store, so `nix-store --store ROOT` reads it too.
//!
//! Adding a path never leaves a partial store path: contents are written under a staging name in the store
//! directory (`.rixos-staging-<pid>-<n>`, never a valid store path name), canonicalised, renamed into place,
//! and only then registered, in one transaction. Staging left by a killed process is removed on next open.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::io::{self, Read};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::builtin::Builders;
use super::db::{Database, PathInfo};
use super::hash::{hex, nix32_encode};
use super::nar::{self, remove_tree};
use super::path::{STORE_DIR, StorePath, source_path};
use super::resolve::resolve_with;

/// Where the store lives on a host that is not a rixos system (DESIGN.md): never the host's own /nix.
pub const DEFAULT_ROOT: &str = "/var/lib/rixos/root";

/// On a booted rixos system the store is mounted read-only (stage 2 does that, as NixOS does). For a command
/// that writes to `/`'s store as root, this process gets a mount namespace of its own in which the store is
/// writable, as nix-daemon does; elsewhere (or if the remount is refused, as on a VM's 9p store) nothing changes.
pub fn make_root_store_writable(root: &Path) {
    use nix::mount::{MsFlags, mount};
    use nix::sys::statvfs::{FsFlags, statvfs};
    let store = Path::new("/nix/store");
    let read_only = statvfs(store).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY));
    if root != Path::new("/") || !read_only || !nix::unistd::geteuid().is_root() {
        return;
    }
    const NONE: Option<&str> = None;
    let private = nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWNS)
        .and_then(|()| mount(NONE, "/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE));
    if private.is_err() {
        return;
    }
    // Stage 2's read-only bind mount is dropped, not remounted: under it the store is the same mount as the
    // state directory builds run in, so finished outputs are renamed into place (a rename never crosses
    // mounts, even of one file system).
    // Only a bind of the root's own store (same device as the state directory): a store of another file
    // system (a VM's 9p share, a live system's overlay) is the store itself, and stays.
    let device = |p: &str| {
        std::fs::metadata(p)
            .map(|m| std::os::unix::fs::MetadataExt::dev(&m))
            .ok()
    };
    if device("/nix/store").is_some() && device("/nix/store") == device("/nix/var/nix") {
        let _ = nix::mount::umount2(store, nix::mount::MntFlags::MNT_DETACH);
    }
    if statvfs(store).is_ok_and(|st| st.flags().contains(FsFlags::ST_RDONLY)) {
        let _ = mount(NONE, store, NONE, MsFlags::MS_REMOUNT | MsFlags::MS_BIND, NONE);
    }
}

/// The store a command uses without `--store`: on a booted rixos system (it has `/run/current-system` and a
/// store database at `/nix/var/nix/db`) the system's own, `/`; elsewhere `/var/lib/rixos/root`.
pub fn default_root() -> PathBuf {
    let own = Path::new("/run/current-system").exists() && Path::new("/nix/var/nix/db/db.sqlite").exists();
    PathBuf::from(if own { "/" } else { DEFAULT_ROOT })
}

const STAGING_PREFIX: &str = ".rixos-staging-";
static STAGING_COUNTER: AtomicU64 = AtomicU64::new(0);

pub struct LocalStore {
    pub(crate) root: PathBuf,
    db: Database,
    /// Print only errors (no "building ..." lines).
    pub quiet: bool,
    /// The builtin builders realising can run: the store's own unless the layers above add theirs.
    builders: Builders,
}

impl LocalStore {
    /// Opens the store under `root`, creating it if needed: for commands that write to it.
    pub fn open(root: &Path) -> Result<LocalStore> {
        let state = root.join("nix/var/nix");
        for dir in [
            root.join("nix/store"),
            state.join("gcroots/auto"),
            state.join("profiles"),
            state.join("temproots"),
        ] {
            fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        }
        let db = Database::open(&state.join("db"))?;
        let store = LocalStore {
            root: root.to_path_buf(),
            db,
            quiet: crate::verbosity::quiet(),
            builders: Builders::store(),
        };
        store.remove_entries_of_dead_processes(&store.store_dir(), |name| {
            name.strip_prefix(STAGING_PREFIX)
                .and_then(|rest| rest.split('-').next())
        })?;
        store.remove_entries_of_dead_processes(&store.state_dir().join("builds"), |name| name.rsplit('-').next())?;
        Ok(store)
    }

    /// Opens the store under `root`, which must exist: for commands that only read it (or delete from it), so
    /// a mistyped `--store` is an error instead of a new, empty store.
    pub fn open_existing(root: &Path) -> Result<LocalStore> {
        require_store(root)?;
        LocalStore::open(root)
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub(crate) fn db_mut(&mut self) -> &mut Database {
        &mut self.db
    }

    /// Registers paths moved into the store as valid, in one transaction, once what they hold is on disk: the
    /// store's file system is synced first (one `syncfs`), so a power cut never leaves a registered path whose
    /// files the page cache had not written yet (which Nix risks unless `fsync-store-paths` is set).
    pub(crate) fn register_durably(&mut self, infos: &[PathInfo]) -> Result<()> {
        if infos.is_empty() {
            return Ok(());
        }
        let dir = self.store_dir();
        let handle = std::fs::File::open(&dir).with_context(|| format!("opening {}", dir.display()))?;
        nix::unistd::syncfs(&handle).with_context(|| format!("syncing the file system of {}", dir.display()))?;
        self.db.register(infos)?;
        Ok(())
    }

    /// `ROOT/nix/var/nix`: database, roots, profiles, logs, build directories.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("nix/var/nix")
    }

    /// The physical location of a store path.
    pub fn real_path(&self, path: &StorePath) -> PathBuf {
        self.root.join(STORE_DIR.trim_start_matches('/')).join(path.base_name())
    }

    /// Where a logical path (`/nix/store/<name>/...`) is on disk.
    pub fn real_path_of(&self, logical: &str) -> PathBuf {
        super::resolve::real_under(&self.root, logical)
    }

    /// The file a logical path (`/nix/store/<name>/...`) names, its links followed step by step inside this
    /// store as they would resolve on the machine the store belongs to.
    pub fn resolve(&self, logical: &str) -> Result<PathBuf> {
        resolve_with(logical, &|p| self.real_path_of(p))
    }

    /// Lets realising run `builders` (the store's own and those of the layers above).
    pub fn set_builders(&mut self, builders: Builders) {
        self.builders = builders;
    }

    pub(crate) fn builders(&self) -> &Builders {
        &self.builders
    }

    /// The physical store directory, `ROOT/nix/store`.
    pub(crate) fn store_dir(&self) -> PathBuf {
        self.root.join(STORE_DIR.trim_start_matches('/'))
    }

    /// Removes the entries of `dir` that `owner` attributes to a process that no longer runs: staging trees
    /// (`.rixos-staging-<pid>-<n>`) and build directories (`<drv hash>-<pid>`) left by a kill.
    fn remove_entries_of_dead_processes(&self, dir: &Path, owner: impl Fn(&str) -> Option<&str>) -> Result<()> {
        let Ok(entries) = fs::read_dir(dir) else { return Ok(()) };
        for entry in entries {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(pid) = owner(&name) else { continue };
            if !Path::new("/proc").join(pid).exists() {
                remove_tree(&entry.path()).with_context(|| format!("removing stale {}", entry.path().display()))?;
            }
        }
        Ok(())
    }

    /// The lock file of a store path being built (`<path>.lock`, as Nix names it), held while its builder runs.
    pub(crate) fn lock_path(&self, path: &StorePath) -> PathBuf {
        self.store_dir().join(format!("{}.lock", path.base_name()))
    }

    /// A fresh staging name in the store directory; never a valid store path name.
    fn staging_path(&self) -> PathBuf {
        let counter = STAGING_COUNTER.fetch_add(1, Ordering::Relaxed);
        self.store_dir()
            .join(format!("{STAGING_PREFIX}{}-{counter}", std::process::id()))
    }

    /// Moves a finished, canonical tree to `path`'s place. Something already there but not registered is
    /// what a killed process left behind: it is removed, never trusted.
    pub(crate) fn move_into_place(&self, staging: &Path, path: &StorePath) -> Result<()> {
        let target = self.real_path(path);
        if target.symlink_metadata().is_ok() {
            remove_tree(&target).with_context(|| format!("removing the unregistered {}", target.display()))?;
        }
        match fs::rename(staging, &target) {
            // Builds run in the state directory, which need not be on the store's file system (a live
            // system's store is an overlay over its medium, its state on the RAM root): the tree is copied
            // (as a NAR, so in canonical form) to a staging name beside its place first, then renamed.
            Err(e) if e.raw_os_error() == Some(nix::libc::EXDEV) => {
                let beside = self.staging_path();
                let moved = self
                    .copy_and_hash(staging, &beside)
                    .and_then(|_| fs::rename(&beside, &target).map_err(Into::into));
                if moved.is_err() {
                    let _ = remove_tree(&beside);
                }
                moved.with_context(|| format!("moving into place at {}", target.display()))?;
                remove_tree(staging).with_context(|| format!("removing {}", staging.display()))
            }
            other => other.with_context(|| format!("moving into place at {}", target.display())),
        }
    }

    /// Copies `source` into the store like `nix-store --add`: a `source` path named after its file name, content
    /// addressed by its NAR hash, with no references.
    pub fn add_path(&mut self, source: &Path) -> Result<StorePath> {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .with_context(|| format!("{} has no usable file name", source.display()))?;
        self.add_path_named(source, name)
    }

    /// Like `add_path`, with the store path named `name` (`builtins.path`, `filterSource`).
    pub fn add_path_named(&mut self, source: &Path, name: &str) -> Result<StorePath> {
        super::path::check_name(name)?;
        let staging = self.staging_path();
        let added = self.copy_and_hash(source, &staging).and_then(|(digest, size)| {
            let path = source_path(name, &digest, [], false)?;
            let ca = format!("fixed:r:sha256:{}", nix32_encode(&digest));
            self.install(&staging, &path, &digest, size, Vec::new(), ca)?;
            Ok(path)
        });
        if added.is_err() {
            let _ = remove_tree(&staging);
        }
        added.with_context(|| format!("adding {} to the store", source.display()))
    }

    /// Writes a text file into the store like `builtins.toFile`: a `text` path over its contents and
    /// references, which must be valid already.
    pub fn add_text(&mut self, name: &str, contents: &[u8], references: &[StorePath]) -> Result<StorePath> {
        let digest = super::hash::sha256(contents);
        let path = super::path::text_path(name, &digest, references)?;
        for reference in references {
            if !self.db.is_valid(reference)? {
                bail!("{path} would refer to {reference}, which is not valid in this store");
            }
        }
        if self.db.is_valid(&path)? {
            return Ok(path);
        }
        let staging = self.staging_path();
        let written = (|| -> Result<()> {
            fs::write(&staging, contents).with_context(|| format!("writing {}", staging.display()))?;
            canonicalise(&staging)?;
            let (nar_digest, size) = nar::hash_path(&staging)?;
            let ca = format!("text:sha256:{}", nix32_encode(&digest));
            self.install(&staging, &path, &nar_digest, size, references.to_vec(), ca)
        })();
        if written.is_err() {
            let _ = remove_tree(&staging);
        }
        written.with_context(|| format!("adding the text file {name} to the store"))?;
        Ok(path)
    }

    /// One pass over the source: its NAR is hashed while it is restored into `staging`.
    fn copy_and_hash(&self, source: &Path, staging: &Path) -> Result<([u8; 32], u64)> {
        let (reader, writer) = io::pipe()?;
        let source_owned = source.to_path_buf();
        let dumper = std::thread::spawn(move || nar::dump(&source_owned, writer));
        let mut tee = HashingReader {
            inner: reader,
            hasher: Sha256::new(),
            size: 0,
        };
        let restored = nar::restore(&mut tee, staging);
        // The dump's own error (an unreadable file, say) explains a failed restore better than "truncated".
        match dumper.join() {
            Ok(Ok(())) => restored?,
            Ok(Err(e)) => return Err(e.into()),
            Err(_) => bail!("the archiver thread panicked"),
        }
        Ok((tee.hasher.finalize().into(), tee.size))
    }

    /// Canonicalises `staging`, moves it to `path` and registers it with its NAR hash, references and content
    /// address. A valid `path` already there wins.
    fn install(
        &mut self,
        staging: &Path,
        path: &StorePath,
        nar_digest: &[u8; 32],
        nar_size: u64,
        references: Vec<StorePath>,
        ca: String,
    ) -> Result<()> {
        if self.db.is_valid(path)? && self.real_path(path).symlink_metadata().is_ok() {
            remove_tree(staging)?;
            return Ok(());
        }
        canonicalise(staging)?;
        self.move_into_place(staging, path)?;
        self.register_durably(&[PathInfo {
            path: path.clone(),
            nar_hash: format!("sha256:{}", hex(nar_digest)),
            nar_size,
            registration_time: now(),
            deriver: None,
            references,
            ca: Some(ca),
        }])?;
        Ok(())
    }

    /// The closure of `paths`: they and everything they reference, directly or not, each path after everything
    /// it references, in the order `nix-store -qR` prints (a depth-first walk over paths sorted by name).
    pub fn requisites(&self, paths: &[StorePath]) -> Result<Vec<StorePath>> {
        // Each path's references, asked of the database once and used for both the closure and the order.
        let mut closure: BTreeMap<StorePath, Vec<StorePath>> = BTreeMap::new();
        let mut todo: Vec<StorePath> = paths.to_vec();
        while let Some(path) = todo.pop() {
            if closure.contains_key(&path) {
                continue;
            }
            if !self.db.is_valid(&path)? {
                bail!("{path} is not valid in this store");
            }
            let references = self.db.references(&path)?;
            todo.extend(references.iter().cloned());
            closure.insert(path, references);
        }
        let mut order = Vec::with_capacity(closure.len());
        let mut done = BTreeSet::new();
        for path in closure.keys() {
            visit_references_first(path, &closure, &mut done, &mut order);
        }
        Ok(order)
    }

    /// Checks every valid path exists (and, with `check_contents`, still has its recorded NAR hash). Returns
    /// each damaged path with a line saying what is wrong.
    pub fn verify(&self, check_contents: bool) -> Result<Vec<(StorePath, String)>> {
        let mut problems = Vec::new();
        for path in self.db.all_paths()? {
            if let Some(problem) = self.check_path(&path, check_contents)? {
                problems.push((path, problem));
            }
        }
        Ok(problems)
    }

    /// What is wrong with one valid path, if anything.
    pub fn check_path(&self, path: &StorePath, check_contents: bool) -> Result<Option<String>> {
        let real = self.real_path(path);
        if real.symlink_metadata().is_err() {
            return Ok(Some(format!(
                "{path} is registered but missing from {}",
                real.display()
            )));
        }
        if check_contents {
            let info = self
                .db
                .info(path)?
                .with_context(|| format!("{path} is not valid in this store"))?;
            let (digest, _) = nar::hash_path(&real)?;
            let actual = format!("sha256:{}", hex(&digest));
            if actual != info.nar_hash {
                return Ok(Some(format!(
                    "{path} was modified: expected hash {}, got {actual}",
                    info.nar_hash
                )));
            }
        }
        Ok(None)
    }
}

/// Fails unless a store exists under `root` (its `nix/store` directory), naming the root and the option.
pub fn require_store(root: &Path) -> Result<()> {
    let store = root.join(STORE_DIR.trim_start_matches('/'));
    if !store.is_dir() {
        bail!(
            "no store at {} (no {}); check --store (or RIXOS_STORE)",
            root.display(),
            store.display()
        );
    }
    Ok(())
}

fn visit_references_first(
    path: &StorePath,
    closure: &BTreeMap<StorePath, Vec<StorePath>>,
    done: &mut BTreeSet<StorePath>,
    order: &mut Vec<StorePath>,
) {
    if !done.insert(path.clone()) {
        return;
    }
    for reference in &closure[path] {
        if reference != path {
            visit_references_first(reference, closure, done, order);
        }
    }
    order.push(path.clone());
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

struct HashingReader<R> {
    inner: R,
    hasher: Sha256,
    size: u64,
}

impl<R: Read> Read for HashingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }
}

/// Makes a tree look as Nix's store requires: mtime 1, files 0444 (0555 if executable), directories 0555, no
/// setuid/setgid/sticky bits, owned by root.
pub fn canonicalise(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).with_context(|| format!("reading {}", path.display()))?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            canonicalise(&entry?.path())?;
        }
    }
    if !meta.file_type().is_symlink() {
        let mode = if meta.mode() & 0o100 != 0 { 0o555 } else { 0o444 };
        fs::set_permissions(path, fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", path.display()))?;
    }
    if meta.uid() != 0 || meta.gid() != 0 {
        std::os::unix::fs::lchown(path, Some(0), Some(0)).with_context(|| format!("chown {}", path.display()))?;
    }
    let one = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1);
    set_symlink_mtime(path, one).with_context(|| format!("setting the mtime of {}", path.display()))
}

fn set_symlink_mtime(path: &Path, time: std::time::SystemTime) -> io::Result<()> {
    use nix::sys::stat::{UtimensatFlags, utimensat};
    let secs = time.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let when = nix::sys::time::TimeSpec::new(secs as nix::libc::time_t, 0);
    utimensat(
        nix::fcntl::AT_FDCWD,
        path,
        &when,
        &when,
        UtimensatFlags::NoFollowSymlink,
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leftovers_of_a_killed_add_are_cleaned_up_and_the_add_succeeds() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        let source = dir.path().join("pkg");
        fs::create_dir_all(source.join("bin")).unwrap();
        fs::write(source.join("bin/tool"), "x").unwrap();
        let path = LocalStore::open(&root).unwrap().add_path(&source).unwrap();
        let real = root.join("nix/store").join(path.base_name());

        // What a kill -9 mid-add leaves: a read-only staging tree of a dead process, and the store path itself
        // moved into place but never registered (the database was reset here to stand for that).
        let stale = root.join("nix/store").join(format!("{STAGING_PREFIX}4194305-0"));
        fs::create_dir_all(stale.join("d")).unwrap();
        canonicalise(&stale).unwrap();
        fs::remove_file(root.join("nix/var/nix/db/db.sqlite")).unwrap();
        crate::store::nar::make_writable(&real).unwrap();
        fs::write(real.join("bin/junk"), "").unwrap();

        let mut store = LocalStore::open(&root).unwrap();
        assert!(!stale.exists(), "stale staging survived");
        assert_eq!(store.add_path(&source).unwrap(), path);
        assert!(!real.join("bin/junk").exists(), "the unregistered leftover was trusted");
        assert!(store.verify(true).unwrap().is_empty());
    }
}
