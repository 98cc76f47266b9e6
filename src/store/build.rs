//! Realising derivations: build each `.drv` of a graph in dependency order, reusing valid outputs, each in a
//! sandbox, and register the outputs atomically.
//!
//! The sandbox: new mount, PID, IPC and UTS namespaces, and a new network namespace unless the derivation is
//! fixed-output; a chroot holding only the input closure (bind-mounted read-only), a private `/build`, a
//! minimal `/dev` and `/proc`; the builder runs as an unprivileged uid with the environment Nix gives builders.
//! Outputs are written in the chroot, checked (fixed-output hashes), scanned for references, canonicalised,
//! moved into the store and registered in one transaction. Nothing is registered for a failed build; a build
//! directory of a dead process is removed when the store is next opened.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{CStr, CString};
use std::fs::{self, File};
use std::io::{BufRead, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt, chown};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, anyhow, bail};
use nix::sched::CloneFlags;
use nix::sys::prctl::set_pdeathsig;
use nix::sys::signal::Signal;
use sha2::{Digest, Sha256};

use super::builtin::Builtin;
use super::db::PathInfo;
use super::derivation::Derivation;
use super::hash::{hex, nix32_encode};
use super::local::{LocalStore, canonicalise, now};
use super::nar;
use super::nar::remove_tree;
use super::path::{STORE_DIR, StorePath};

/// The unprivileged user and group builders run as (Nix's first nixbld user has these ids by convention).
pub const BUILD_UID: u32 = 30001;
pub const BUILD_GID: u32 = 30000;
/// How many log lines a failed build shows.
const LOG_TAIL: usize = 25;

/// What a build would need, found by [`LocalStore::missing`].
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Missing {
    /// Derivations whose outputs are not valid and would be built.
    pub build: Vec<StorePath>,
    /// Fixed-output downloads that would be fetched.
    pub download: Vec<StorePath>,
}

impl LocalStore {
    /// Builds `drv_path` and everything it needs that is not valid yet; returns its outputs.
    pub fn realise(&mut self, drv_path: &StorePath) -> Result<BTreeMap<String, StorePath>> {
        let drv = self.read_derivation(drv_path)?;
        let outputs = output_paths(&drv)?;
        // Valid outputs need nothing else, so shared inputs are not walked again and again.
        if self.all_valid(&outputs)? {
            return Ok(outputs);
        }
        for input in drv.input_drvs.keys() {
            let input = StorePath::parse(input)?;
            self.realise(&input)
                .with_context(|| format!("building {input}, needed by {drv_path}"))?;
        }
        // One builder per output at a time, across processes; whoever waited finds the outputs valid.
        let _locks = outputs
            .values()
            .map(|out| PathLock::acquire(&self.lock_path(out)))
            .collect::<Result<Vec<_>>>()?;
        if self.all_valid(&outputs)? {
            return Ok(outputs);
        }
        if !self.quiet {
            eprintln!("building '{drv_path}'...");
        }
        self.build(drv_path, &drv, &outputs, None)?;
        Ok(outputs)
    }

    /// Downloads, `jobs` at a time, every `builtin:fetchurl` output that building `drvs` will need and that is
    /// not valid yet (each in its own connection to the store; the usual per-output locks keep them apart).
    /// Building then finds them valid. The first failure is reported once all downloads have ended.
    pub fn fetch_ahead(&self, drvs: &[StorePath], jobs: usize) -> Result<()> {
        let fetches = self.missing(drvs)?.download;
        let total = fetches.len();
        let queue = std::sync::Mutex::new(fetches);
        let failures = std::sync::Mutex::new(Vec::new());
        let (root, builders) = (self.root.clone(), self.builders());
        let progress =
            (total > 0 && !self.quiet).then(|| crate::progress::Progress::items("downloading", total as u64));
        std::thread::scope(|scope| {
            for _ in 0..jobs.max(1) {
                scope.spawn(|| {
                    let mut store = match LocalStore::open(&root) {
                        Ok(s) => s,
                        Err(e) => return failures.lock().expect("no panics while locked").push(e),
                    };
                    store.quiet = true;
                    store.set_builders(builders.clone());
                    loop {
                        let Some(next) = queue.lock().expect("no panics while locked").pop() else {
                            break;
                        };
                        let result = store.realise(&next);
                        if let Some(progress) = &progress {
                            progress.done_one(next.name().trim_end_matches(".drv"));
                        }
                        if let Err(e) = result {
                            failures.lock().expect("no panics while locked").push(e);
                        }
                    }
                });
            }
        });
        if let Some(progress) = progress {
            progress.finish();
        }
        match failures.into_inner().expect("threads ended").into_iter().next() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// What building `drvs` would do, doing nothing: the derivations that would be built and the downloads
    /// (`builtin:fetchurl` outputs) that would be fetched, each once, sorted (as `nix-build --dry-run`).
    pub fn missing(&self, drvs: &[StorePath]) -> Result<Missing> {
        let mut todo: Vec<StorePath> = drvs.to_vec();
        let mut seen = std::collections::HashSet::new();
        let mut missing = Missing::default();
        while let Some(drv_path) = todo.pop() {
            if !seen.insert(drv_path.clone()) {
                continue;
            }
            let drv = self.read_derivation(&drv_path)?;
            if self.all_valid(&output_paths(&drv)?)? {
                continue;
            }
            if drv.builder == "builtin:fetchurl" && drv.fixed_output().is_some() {
                missing.download.push(drv_path);
                continue;
            }
            missing.build.push(drv_path);
            for input in drv.input_drvs.keys() {
                todo.push(StorePath::parse(input)?);
            }
        }
        missing.build.sort();
        missing.download.sort();
        Ok(missing)
    }

    /// The outputs `drv_path` declares, by name.
    pub fn derivation_outputs(&self, drv_path: &StorePath) -> Result<BTreeMap<String, StorePath>> {
        output_paths(&self.read_derivation(drv_path)?)
    }

    fn read_derivation(&self, drv_path: &StorePath) -> Result<Derivation> {
        if !self.db().is_valid(drv_path)? {
            bail!("{drv_path} is not a valid path in this store");
        }
        let real = self.real_path(drv_path);
        let text = fs::read_to_string(&real).with_context(|| format!("reading {}", real.display()))?;
        Ok(Derivation::parse(&text, &drv_path.to_string())?)
    }

    fn all_valid(&self, outputs: &BTreeMap<String, StorePath>) -> Result<bool> {
        for out in outputs.values() {
            if !self.db().is_valid(out)? {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn build(
        &mut self,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        repair: Option<&StorePath>,
    ) -> Result<()> {
        let closure = self.input_closure(drv_path, drv)?;
        let build_dir = self
            .builds_dir()
            .join(format!("{}-{}", drv_path.hash_part(), std::process::id()));
        let result = self.build_in(&build_dir, drv_path, drv, outputs, &closure, repair);
        let cleaned = remove_tree(&build_dir);
        result?;
        cleaned.with_context(|| format!("removing the build directory {}", build_dir.display()))
    }

    fn build_in(
        &mut self,
        build_dir: &Path,
        drv_path: &StorePath,
        drv: &Derivation,
        outputs: &BTreeMap<String, StorePath>,
        closure: &[StorePath],
        repair: Option<&StorePath>,
    ) -> Result<()> {
        let sandbox = Sandbox::prepare(self, build_dir, closure)?;
        let log_path = self.log_path(drv_path);
        fs::create_dir_all(log_path.parent().expect("logs live in a directory"))?;
        let log = File::create(&log_path).with_context(|| format!("creating the build log {}", log_path.display()))?;

        let mut env: BTreeMap<String, String> = drv.env.clone();
        // As in Nix, the derivation may set these four; the build directory variables are always the sandbox's.
        for (key, value) in [
            ("PATH", "/path-not-set"),
            ("HOME", "/homeless-shelter"),
            ("NIX_STORE", STORE_DIR),
            ("NIX_BUILD_CORES", "1"),
        ] {
            env.entry(key.to_string()).or_insert_with(|| value.to_string());
        }
        for (key, value) in [
            ("NIX_BUILD_TOP", "/build"),
            ("TMPDIR", "/build"),
            ("TEMPDIR", "/build"),
            ("TMP", "/build"),
            ("TEMP", "/build"),
            ("PWD", "/build"),
            ("NIX_LOG_FD", "2"),
            ("TERM", "xterm-256color"),
        ] {
            env.insert(key.to_string(), value.to_string());
        }
        let store_dir = sandbox.root.join(STORE_DIR.trim_start_matches('/'));
        if drv.builder.starts_with("builtin:") {
            let outputs = outputs
                .iter()
                .map(|(name, path)| (name.clone(), store_dir.join(path.base_name())))
                .collect();
            let build = Builtin {
                store: self,
                drv_path,
                drv,
                outputs,
            };
            self.builders().run(&build)?;
        } else {
            check_platform(drv_path, drv)?;
            let network = drv.fixed_output().is_some();
            // Under -v the builder's lines also go to stderr as they come, prefixed with the derivation's name.
            let echo = crate::verbosity::verbose().then(|| drv_path.name().trim_end_matches(".drv").to_string());
            let status = sandbox.run(&drv.builder, &drv.args, &env, log, network, echo)?;
            if !status.success() {
                bail!(
                    "builder for '{drv_path}' failed with {status}; last log lines:\n{}\nfull log: {}",
                    log_tail(&log_path),
                    log_path.display()
                );
            }
        }
        // Check, scan, canonicalise and move every output; register them together.
        let mut candidates: Vec<StorePath> = closure.to_vec();
        candidates.extend(outputs.values().cloned());
        let mut infos = Vec::new();
        for (name, path) in outputs {
            let built = sandbox
                .root
                .join(STORE_DIR.trim_start_matches('/'))
                .join(path.base_name());
            if fs::symlink_metadata(&built).is_err() {
                bail!("builder for '{drv_path}' did not produce its output {name:?} ({path})");
            }
            canonicalise(&built)?;
            let references = scan_references(&built, &candidates)?;
            let (digest, size) = nar::hash_path(&built)?;
            let ca = match drv.fixed_output() {
                Some(fixed) => Some(check_fixed_output(drv_path, &built, fixed, &digest)?),
                None => None,
            };
            let nar_hash = format!("sha256:{}", hex(&digest));
            if let Some(damaged) = repair {
                // Repair replaces one damaged output, and only with what the database says it held.
                if damaged != path {
                    continue;
                }
                let recorded = self.db().info(path)?.map(|i| i.nar_hash).unwrap_or_default();
                if recorded != nar_hash {
                    bail!(
                        "cannot repair {path}: rebuilding it gave {nar_hash}, but it was registered as {recorded} \
                         (the build is not reproducible)"
                    );
                }
            }
            self.move_into_place(&built, path)?;
            infos.push(PathInfo {
                path: path.clone(),
                nar_hash,
                nar_size: size,
                registration_time: now(),
                deriver: Some(drv_path.clone()),
                references,
                ca,
            });
        }
        if repair.is_none() {
            self.register_durably(&infos)?;
        }
        Ok(())
    }

    /// The input closure of a derivation: its sources and the outputs it uses of each input derivation, with
    /// everything they reference.
    fn input_closure(&self, drv_path: &StorePath, drv: &Derivation) -> Result<Vec<StorePath>> {
        let mut inputs: Vec<StorePath> = drv
            .input_srcs
            .iter()
            .map(|s| StorePath::parse(s))
            .collect::<Result<_, _>>()?;
        for (input_drv, wanted) in &drv.input_drvs {
            let input = self.read_derivation(&StorePath::parse(input_drv)?)?;
            let produced = output_paths(&input)?;
            for output in wanted {
                let path = produced
                    .get(output)
                    .ok_or_else(|| anyhow!("{input_drv} has no output {output:?}, which {drv_path} needs"))?;
                inputs.push(path.clone());
            }
        }
        self.requisites(&inputs)
    }

    /// Rebuilds a damaged output from the derivation that built it and puts it back, if the rebuild gives
    /// the contents the database recorded.
    pub fn repair_path(&mut self, path: &StorePath) -> Result<()> {
        let info = self
            .db()
            .info(path)?
            .with_context(|| format!("{path} is not valid in this store"))?;
        let Some(deriver) = info.deriver.filter(|d| self.db().is_valid(d).unwrap_or(false)) else {
            bail!("cannot repair {path}: it was added, not built, so rixos cannot recreate it (add it again)");
        };
        let drv = self.read_derivation(&deriver)?;
        for input in drv.input_drvs.keys() {
            self.realise(&StorePath::parse(input)?)?;
        }
        // Inputs that are gone must come back first, or the sandbox has nothing to mount.
        for input in self.input_closure(&deriver, &drv)? {
            if fs::symlink_metadata(self.real_path(&input)).is_err() {
                self.repair_path(&input)
                    .with_context(|| format!("repairing {input}, an input of {path}"))?;
            }
        }
        let outputs = output_paths(&drv)?;
        let _locks = outputs
            .values()
            .map(|out| PathLock::acquire(&self.lock_path(out)))
            .collect::<Result<Vec<_>>>()?;
        if !self.quiet {
            eprintln!("repairing '{path}' by building '{deriver}'...");
        }
        self.build(&deriver, &drv, &outputs, Some(path))
    }

    fn builds_dir(&self) -> PathBuf {
        self.state_dir().join("builds")
    }

    /// Where the log of `drv_path`'s last build is kept.
    pub fn log_path(&self, drv_path: &StorePath) -> PathBuf {
        self.state_dir()
            .join("log/drvs")
            .join(format!("{}.log", drv_path.base_name()))
    }
}

/// Builds only for the platforms this machine runs, as Nix refuses others.
fn check_platform(drv_path: &StorePath, drv: &Derivation) -> Result<()> {
    if !["x86_64-linux", "i686-linux"].contains(&drv.system.as_str()) {
        bail!(
            "{drv_path} is for the platform {:?}, but this machine builds x86_64-linux (and i686-linux)",
            drv.system
        );
    }
    Ok(())
}

/// Attempts at a download before giving up, and the pause before the first retry (doubled each time).
const FETCH_ATTEMPTS: u32 = 4;
const FETCH_BACKOFF: std::time::Duration = std::time::Duration::from_millis(500);

/// Downloads `url` (http, https or file) to `target`, streaming. A broken transfer is retried, resuming where
/// it stopped when the server answers a range request (and starting over when it does not).
pub(crate) fn fetch_url(url: &str, target: &Path) -> Result<()> {
    if let Some(path) = url.strip_prefix("file://") {
        let mut file = File::create(target).with_context(|| format!("creating {}", target.display()))?;
        let mut source = File::open(path).with_context(|| format!("opening {path}"))?;
        std::io::copy(&mut source, &mut file)?;
        return Ok(());
    }
    let mut file = File::create(target).with_context(|| format!("creating {}", target.display()))?;
    let mut done: u64 = 0;
    let mut last_error = None;
    for attempt in 0..FETCH_ATTEMPTS {
        if attempt > 0 {
            std::thread::sleep(FETCH_BACKOFF * 2u32.pow(attempt - 1));
        }
        let mut request = ureq::get(url);
        if done > 0 {
            request = request.header("Range", &format!("bytes={done}-"));
        }
        let response = match request.call() {
            Ok(r) => r,
            Err(e @ ureq::Error::StatusCode(404)) => return Err(e.into()),
            Err(e) => {
                last_error = Some(anyhow::Error::from(e));
                continue;
            }
        };
        if done > 0 && response.status() != 206 {
            // The server ignored the range: start again from the beginning.
            file = File::create(target)?;
            done = 0;
        }
        let mut reader = response.into_body().into_reader();
        let mut buf = vec![0u8; 1 << 16];
        let copied = (|| -> std::io::Result<()> {
            loop {
                let n = reader.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                std::io::Write::write_all(&mut file, &buf[..n])?;
                done += n as u64;
            }
        })();
        match copied {
            Ok(()) => {
                file.sync_all()?;
                return Ok(());
            }
            Err(e) => last_error = Some(e.into()),
        }
    }
    Err(last_error.expect("an attempt failed")).with_context(|| format!("after {FETCH_ATTEMPTS} attempts"))
}

/// The output paths a derivation declares.
fn output_paths(drv: &Derivation) -> Result<BTreeMap<String, StorePath>> {
    drv.outputs
        .iter()
        .map(|(name, out)| Ok((name.clone(), StorePath::parse(&out.path)?)))
        .collect()
}

fn log_tail(log: &Path) -> String {
    let lines: Vec<String> = File::open(log)
        .map(|f| BufReader::new(f).lines().map_while(Result::ok).collect())
        .unwrap_or_default();
    let tail = &lines[lines.len().saturating_sub(LOG_TAIL)..];
    if tail.is_empty() {
        return "  | (the builder printed nothing)".to_string();
    }
    tail.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

/// An exclusive lock on a file, held while the value lives (flock, released by the kernel if the process dies).
/// Dropping it deletes the file while the lock is still held, as Nix does, so no lock files are left behind;
/// a process that was waiting then holds a lock on a deleted file, sees it has no links left, and locks the
/// file now at the path instead.
pub(crate) struct PathLock {
    path: PathBuf,
    _file: nix::fcntl::Flock<File>,
}

impl PathLock {
    pub(crate) fn acquire(path: &Path) -> Result<PathLock> {
        loop {
            let file = fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(path)
                .with_context(|| format!("opening the lock {}", path.display()))?;
            let file = nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
                .map_err(|(_, errno)| std::io::Error::from(errno))
                .with_context(|| format!("locking {}", path.display()))?;
            let links = file
                .metadata()
                .with_context(|| format!("reading the lock {}", path.display()))?
                .nlink();
            if links > 0 {
                return Ok(PathLock {
                    path: path.to_path_buf(),
                    _file: file,
                });
            }
        }
    }
}

impl Drop for PathLock {
    fn drop(&mut self) {
        // Only the holder deletes the file, so the name still refers to the file this lock is on.
        let _ = fs::remove_file(&self.path);
    }
}

/// Verifies a fixed output's hash; returns its content address for the database.
fn check_fixed_output(
    drv_path: &StorePath,
    built: &Path,
    fixed: &super::derivation::Output,
    nar_digest: &[u8; 32],
) -> Result<String> {
    let (recursive, algo) = match fixed.hash_algo.strip_prefix("r:") {
        Some(algo) => (true, algo),
        None => (false, fixed.hash_algo.as_str()),
    };
    if algo != "sha256" {
        bail!("{drv_path}: fixed outputs with {algo} hashes are not supported yet (only sha256)");
    }
    let got: [u8; 32] = if recursive {
        *nar_digest
    } else {
        let mut file = File::open(built).with_context(|| format!("{drv_path}: a flat fixed output must be a file"))?;
        let mut hasher = Sha256::new();
        std::io::copy(&mut file, &mut hasher)?;
        hasher.finalize().into()
    };
    if hex(&got) != fixed.hash {
        bail!(
            "hash mismatch in fixed-output derivation '{drv_path}':\n  specified: sha256:{}\n  got:       sha256:{}",
            fixed.hash,
            hex(&got)
        );
    }
    Ok(format!(
        "fixed:{}sha256:{}",
        if recursive { "r:" } else { "" },
        nix32_encode(&got)
    ))
}

/// Which of `candidates` the tree at `path` mentions (by hash part) in file contents or symlink targets.
fn scan_references(path: &Path, candidates: &[StorePath]) -> Result<Vec<StorePath>> {
    let wanted: HashSet<Vec<u8>> = candidates.iter().map(|c| c.hash_part().into_bytes()).collect();
    let mut found: HashSet<Vec<u8>> = HashSet::new();
    scan_tree(path, &wanted, &mut found)?;
    let mut references: Vec<StorePath> = candidates
        .iter()
        .filter(|c| found.contains(c.hash_part().as_bytes()))
        .cloned()
        .collect();
    references.sort();
    references.dedup();
    Ok(references)
}

fn scan_tree(path: &Path, wanted: &HashSet<Vec<u8>>, found: &mut HashSet<Vec<u8>>) -> Result<()> {
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        for entry in fs::read_dir(path)? {
            scan_tree(&entry?.path(), wanted, found)?;
        }
    } else if meta.file_type().is_symlink() {
        scan_bytes(fs::read_link(path)?.as_os_str().as_bytes(), wanted, found);
    } else {
        // Read in chunks that overlap by a hash part's length, so no hash is split between two reads.
        let mut file = File::open(path)?;
        let mut buffer = vec![0u8; 1 << 20];
        let mut kept = 0;
        loop {
            let n = file.read(&mut buffer[kept..])?;
            if n == 0 {
                break;
            }
            let end = kept + n;
            scan_bytes(&buffer[..end], wanted, found);
            kept = end.min(31);
            buffer.copy_within(end - kept..end, 0);
        }
    }
    Ok(())
}

/// Whether a byte is one of Nix32's digits (a store path's hash part is 32 of them).
const IS_NIX32: [bool; 256] = {
    let mut table = [false; 256];
    let digits = b"0123456789abcdfghijklmnpqrsvwxyz";
    let mut i = 0;
    while i < digits.len() {
        table[digits[i] as usize] = true;
        i += 1;
    }
    table
};

/// Notes each wanted hash part found in `bytes`. As Nix's scanner: a window of 32 is checked from its end, and
/// a byte outside the alphabet moves the window past it, so most of a binary file is skipped 32 bytes at a time.
fn scan_bytes(bytes: &[u8], wanted: &HashSet<Vec<u8>>, found: &mut HashSet<Vec<u8>>) {
    const LEN: usize = 32;
    let mut i = 0;
    'windows: while i + LEN <= bytes.len() {
        for j in (0..LEN).rev() {
            if !IS_NIX32[bytes[i + j] as usize] {
                i += j + 1;
                continue 'windows;
            }
        }
        let candidate = &bytes[i..i + LEN];
        if wanted.contains(candidate) {
            found.insert(candidate.to_vec());
        }
        i += 1;
    }
}

/// The chroot a builder runs in, laid out on disk before the builder starts.
struct Sandbox {
    root: PathBuf,
    /// (host source, target inside the root, read-only)
    binds: Vec<(PathBuf, PathBuf, bool)>,
}

impl Sandbox {
    fn prepare(store: &LocalStore, build_dir: &Path, closure: &[StorePath]) -> Result<Sandbox> {
        if fs::symlink_metadata(build_dir).is_ok() {
            remove_tree(build_dir)?;
        }
        let root = build_dir.join("root");
        let store_dir = root.join(STORE_DIR.trim_start_matches('/'));
        for dir in ["build", "dev", "proc", "etc", "tmp"] {
            fs::create_dir_all(root.join(dir))?;
        }
        fs::create_dir_all(&store_dir)?;
        // The builder creates its outputs here: writable by the build group, sticky like Nix's store.
        chown(&store_dir, Some(0), Some(BUILD_GID))?;
        fs::set_permissions(&store_dir, fs::Permissions::from_mode(0o1775))?;
        chown(root.join("build"), Some(BUILD_UID), Some(BUILD_GID))?;
        fs::set_permissions(root.join("build"), fs::Permissions::from_mode(0o700))?;
        fs::set_permissions(root.join("tmp"), fs::Permissions::from_mode(0o1777))?;
        fs::write(
            root.join("etc/passwd"),
            format!(
                "root:x:0:0:Nix build user:/build:/noshell\nnixbld:x:{BUILD_UID}:{BUILD_GID}:Nix build user:/build:/noshell\n\
                 nobody:x:65534:65534:Nobody:/:/noshell\n"
            ),
        )?;
        fs::write(
            root.join("etc/group"),
            format!("root:x:0:\nnixbld:!:{BUILD_GID}:\nnogroup:x:65534:\n"),
        )?;
        fs::write(root.join("etc/hosts"), "127.0.0.1 localhost\n::1 localhost\n")?;

        let mut binds = Vec::new();
        for device in ["null", "zero", "full", "random", "urandom", "tty"] {
            let target = root.join("dev").join(device);
            File::create(&target)?;
            binds.push((Path::new("/dev").join(device), target, false));
        }
        std::os::unix::fs::symlink("/proc/self/fd", root.join("dev/fd"))?;
        for (i, name) in ["stdin", "stdout", "stderr"].iter().enumerate() {
            std::os::unix::fs::symlink(format!("/proc/self/fd/{i}"), root.join("dev").join(name))?;
        }
        for path in closure {
            let source = store.real_path(path);
            let target = store_dir.join(path.base_name());
            let meta = fs::symlink_metadata(&source).with_context(|| {
                format!("input {path} is registered but missing from the store (rixos store verify --repair)")
            })?;
            if meta.is_dir() {
                fs::create_dir(&target)?;
            } else {
                File::create(&target)?;
            }
            binds.push((source, target, true));
        }
        Ok(Sandbox { root, binds })
    }

    /// Runs the builder in the sandbox and waits for it; its stdout and stderr go to `log` and, with `echo`,
    /// to rixos' stderr too, each line prefixed with `echo`.
    fn run(
        &self,
        builder: &str,
        args: &[String],
        env: &BTreeMap<String, String>,
        log: File,
        network: bool,
        echo: Option<String>,
    ) -> Result<std::process::ExitStatus> {
        // Everything the child needs is made before fork: after it only async-signal-safe calls are allowed.
        let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(|_| anyhow!("NUL in {}", p.display()));
        let binds: Vec<(CString, CString, bool)> = self
            .binds
            .iter()
            .map(|(s, t, ro)| Ok((c(s)?, c(t)?, *ro)))
            .collect::<Result<_>>()?;
        let root = c(&self.root)?;
        let proc_dir = c(&self.root.join("proc"))?;
        let mut flags =
            CloneFlags::CLONE_NEWNS | CloneFlags::CLONE_NEWPID | CloneFlags::CLONE_NEWIPC | CloneFlags::CLONE_NEWUTS;
        if !network {
            flags |= CloneFlags::CLONE_NEWNET;
        }
        let mut command = Command::new(builder);
        command.args(args).env_clear().envs(env).stdin(Stdio::null());
        let echoing = match echo {
            None => {
                command.stdout(log.try_clone()?).stderr(log);
                None
            }
            Some(prefix) => {
                let (reader, writer) = std::io::pipe()?;
                command.stdout(writer.try_clone()?).stderr(writer);
                Some(std::thread::spawn(move || echo_lines(reader, log, &prefix)))
            }
        };
        // SAFETY: the closure only makes raw system calls on data prepared above.
        unsafe {
            command.pre_exec(move || enter_sandbox(flags, &binds, &root, &proc_dir));
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("starting the builder {builder}"))?;
        // The command holds the pipe's writing end: closed here, so the echo ends when the builder's do.
        drop(command);
        let status = child.wait()?;
        if let Some(thread) = echoing {
            thread
                .join()
                .map_err(|_| anyhow!("the thread copying the builder's output panicked"))??;
        }
        Ok(status)
    }
}

/// Copies a builder's output to its log, and each line to stderr after `prefix> `.
fn echo_lines(reader: std::io::PipeReader, mut log: File, prefix: &str) -> Result<()> {
    let mut reader = BufReader::new(reader);
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        std::io::Write::write_all(&mut log, &line)?;
        let text = String::from_utf8_lossy(&line);
        eprintln!("{prefix}> {}", text.trim_end_matches('\n'));
    }
}

/// Runs in the forked child before exec. New namespaces, then a second fork so the builder is PID 1 of its PID
/// namespace (the first child only waits and passes the exit status on), then mounts, chroot and the build uid.
/// Only async-signal-safe calls: nix's wrappers take the C strings prepared before the fork as they are.
fn enter_sandbox(
    flags: CloneFlags,
    binds: &[(CString, CString, bool)],
    root: &CString,
    proc_dir: &CString,
) -> std::io::Result<()> {
    use nix::mount::{MsFlags, mount};
    use nix::sys::wait::{WaitStatus, waitpid};
    use nix::unistd::{ForkResult, Gid, Uid};
    const NONE: Option<&CStr> = None;

    set_pdeathsig(Signal::SIGKILL)?;
    nix::sched::unshare(flags)?;
    // SAFETY: this process is the single-threaded child of a fork; the parent below only waits and exits.
    if let ForkResult::Parent { child } = unsafe { nix::unistd::fork() }? {
        let code = loop {
            match waitpid(child, None) {
                Ok(WaitStatus::Exited(_, code)) => break code,
                Ok(WaitStatus::Signaled(_, signal, _)) => break 128 + signal as i32,
                Ok(_) | Err(nix::errno::Errno::EINTR) => continue,
                Err(_) => break 127,
            }
        };
        // SAFETY: _exit ends the process without running atexit handlers, as a forked child must (nix has no
        // wrapper for it).
        unsafe { nix::libc::_exit(code) };
    }
    set_pdeathsig(Signal::SIGKILL)?;
    mount(NONE, c"/", NONE, MsFlags::MS_REC | MsFlags::MS_PRIVATE, NONE)?;
    for (source, target, read_only) in binds {
        mount(
            Some(source.as_c_str()),
            target.as_c_str(),
            NONE,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            NONE,
        )?;
        if *read_only {
            let remount = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY | MsFlags::MS_REC;
            mount(NONE, target.as_c_str(), NONE, remount, NONE)?;
        }
    }
    mount(
        Some(c"proc"),
        proc_dir.as_c_str(),
        Some(c"proc"),
        MsFlags::empty(),
        NONE,
    )?;
    nix::unistd::sethostname("localhost")?;
    nix::unistd::chroot(root.as_c_str())?;
    nix::unistd::chdir(c"/build")?;
    nix::unistd::setgroups(&[])?;
    nix::unistd::setgid(Gid::from_raw(BUILD_GID))?;
    nix::unistd::setuid(Uid::from_raw(BUILD_UID))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hash_parts_are_found_wherever_they_stand() {
        let a = "0123456789abcdfghijklmnpqrsvwxyz";
        let b = "zyxwvsrqpnmlkjihgfdcba9876543210";
        let wanted: std::collections::HashSet<Vec<u8>> = [a, b].iter().map(|h| h.as_bytes().to_vec()).collect();
        for (text, expect) in [
            (a.to_string(), vec![a]),
            (format!("\0\x01/nix/store/{a}-x\n"), vec![a]),
            (format!("xx{a}"), vec![a]),
            (format!("{a}{b}"), vec![a, b]),
            (format!("0{b}0"), vec![b]),
            (format!("-{}-", &a[1..]), vec![]),
            (format!("{}e{}", &a[..16], &a[16..]), vec![]),
        ] {
            let mut found = std::collections::HashSet::new();
            super::scan_bytes(text.as_bytes(), &wanted, &mut found);
            let mut found: Vec<String> = found.into_iter().map(|f| String::from_utf8(f).unwrap()).collect();
            found.sort();
            let mut expect: Vec<String> = expect.into_iter().map(str::to_string).collect();
            expect.sort();
            assert_eq!(found, expect, "in {text:?}");
        }
    }

    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;

    #[test]
    fn a_lock_deleted_by_its_holder_is_taken_anew_by_a_waiter() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.lock");
        let first = super::PathLock::acquire(&path).unwrap();
        let waiter = {
            let path = path.clone();
            std::thread::spawn(move || {
                let second = super::PathLock::acquire(&path).unwrap();
                // The waiter must hold the file now at the path, not the one the first holder deleted.
                let at_path = std::fs::metadata(&path).map(|m| m.ino()).ok();
                (at_path, second._file.metadata().unwrap().ino())
            })
        };
        // Long enough for the waiter to open the first file and block on it.
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
        let (at_path, held) = waiter.join().unwrap();
        assert_eq!(at_path, Some(held), "the waiter locked a deleted file");
        assert!(!path.exists(), "the lock file outlived its holders");
    }

    #[test]
    fn a_broken_download_is_retried_and_resumed_where_it_stopped() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            let mut requests = Vec::new();
            for (n, stream) in listener.incoming().take(2).enumerate() {
                let mut stream = stream.unwrap();
                let mut head = Vec::new();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line.trim().is_empty() {
                        break;
                    }
                    head.push(line.trim().to_ascii_lowercase());
                }
                requests.push(head);
                if n == 0 {
                    // Promise ten bytes, send four, hang up.
                    stream
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123")
                        .unwrap();
                } else {
                    stream
                        .write_all(
                            b"HTTP/1.1 206 Partial Content\r\nContent-Length: 6\r\nConnection: close\r\n\r\n456789",
                        )
                        .unwrap();
                }
            }
            requests
        });
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("file");
        super::fetch_url(&format!("http://127.0.0.1:{port}/file"), &target).unwrap();
        assert_eq!(std::fs::read(&target).unwrap(), b"0123456789");
        let requests = server.join().unwrap();
        assert!(
            !requests[0].iter().any(|h| h.starts_with("range:")),
            "{:?}",
            requests[0]
        );
        assert!(requests[1].iter().any(|h| h == "range: bytes=4-"), "{:?}", requests[1]);
    }
}
