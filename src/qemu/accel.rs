//! KVM or TCG, decided by booting Linux.
//!
//! `/dev/kvm` existing, creating a VM, even QEMU running for a while with it: none of that shows KVM works.
//! A nested, paravirtualised KVM passes all three and then never runs a guest kernel far enough to print a
//! line. So the decision boots a real kernel under KVM with a tiny initrd (rixos' stage-1 init, which in this
//! initrd only prints a marker and powers off) and takes KVM only if the marker shows within
//! [`PROBE_TIMEOUT`]; otherwise TCG, which always works. The answer is cached per boot of the host (keyed by
//! its boot id and the QEMU binary), so the probe runs once; `RIXOS_QEMU_ACCEL=kvm|tcg` overrides it all.

use std::ffi::{OsStr, OsString};
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::boot::cpio::Initramfs;

/// Overrides the decision: `kvm` or `tcg`.
pub const OVERRIDE_VAR: &str = "RIXOS_QEMU_ACCEL";
/// The QEMU binary to start (default `qemu-system-x86_64` on PATH).
pub const QEMU_VAR: &str = "RIXOS_QEMU";
/// Where the decision is cached (default /var/cache/rixos/qemu-accel as root, else the user's cache).
pub const CACHE_VAR: &str = "RIXOS_QEMU_ACCEL_CACHE";
/// How long a guest may take under KVM to reach the marker. A working KVM boots the probe in a second or
/// two, a broken one never does; the probe costs this much only on hosts where KVM does not work.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(15);
/// What the probe's init prints once Linux runs it.
const MARKER: &str = "rixos-accel-probe: userspace reached";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    pub fn name(self) -> &'static str {
        match self {
            Accel::Kvm => "kvm",
            Accel::Tcg => "tcg",
        }
    }

    pub fn parse(name: &str) -> Option<Accel> {
        match name {
            "kvm" => Some(Accel::Kvm),
            "tcg" => Some(Accel::Tcg),
            _ => None,
        }
    }

    /// QEMU's arguments for this accelerator and the CPU model that goes with it.
    pub fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            // `max` gives the guest every feature TCG can emulate (x86-64-v2 and up, which Debian's userland uses).
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

impl fmt::Display for Accel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a decision came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `RIXOS_QEMU_ACCEL`.
    Override,
    /// An earlier probe on this boot of the host.
    Cached,
    /// A probe just now.
    Probed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub accel: Accel,
    /// Why, in a sentence a user can act on.
    pub why: String,
    pub source: Source,
}

/// The QEMU binary machines are started with.
pub fn qemu_binary() -> OsString {
    std::env::var_os(QEMU_VAR).unwrap_or_else(|| "qemu-system-x86_64".into())
}

/// The accelerator for machines started now: the override, else the cached answer for this boot of the host,
/// else a probe with `kernel` (or the first kernel [`probe_kernel`] finds).
pub fn decide(kernel: Option<&Path>) -> Result<Decision> {
    if let Some(value) = std::env::var_os(OVERRIDE_VAR) {
        let value = value.to_string_lossy();
        let accel = Accel::parse(&value).with_context(|| format!("{OVERRIDE_VAR}={value}: expected `kvm` or `tcg`"))?;
        return Ok(Decision {
            accel,
            why: format!("{OVERRIDE_VAR}={value}"),
            source: Source::Override,
        });
    }
    let cache = cache_file();
    let key = cache_key();
    if let Some(decision) = read_cache(&cache, &key) {
        return Ok(decision);
    }
    // One probe at a time: tests start several machines at once, and each would otherwise boot its own.
    let _lock = lock(&cache);
    if let Some(decision) = read_cache(&cache, &key) {
        return Ok(decision);
    }
    let (accel, why) = probe_kvm(&qemu_binary(), Path::new("/dev/kvm"), kernel);
    // A cache that cannot be written only costs the next caller another probe.
    let _ = write_cache(&cache, &key, accel, &why);
    Ok(Decision {
        accel,
        why,
        source: Source::Probed,
    })
}

/// Whether KVM (the device `kvm_device`, normally /dev/kvm) boots Linux with `qemu`, and why not when it
/// does not.
pub fn probe_kvm(qemu: &OsStr, kvm_device: &Path, kernel: Option<&Path>) -> (Accel, String) {
    if let Err(e) = OpenOptions::new().read(true).write(true).open(kvm_device) {
        return (
            Accel::Tcg,
            format!("{} cannot be used ({e}); TCG it is", kvm_device.display()),
        );
    }
    let kernel = match kernel.map(Path::to_path_buf).or_else(probe_kernel) {
        Some(kernel) => kernel,
        None => {
            return (
                Accel::Tcg,
                "no Linux kernel to test KVM with (scripts/setup unpacks one into /var/cache/rixos/test-kernel); \
                 TCG it is"
                    .to_string(),
            );
        }
    };
    match probe(qemu, Accel::Kvm, &kernel, PROBE_TIMEOUT) {
        Ok(ProbeOutcome::Reached { after }) => (
            Accel::Kvm,
            format!(
                "{} booted to its first program under KVM in {:.1} s",
                kernel.display(),
                after.as_secs_f64()
            ),
        ),
        Ok(outcome) => (Accel::Tcg, format!("KVM does not run Linux here: {outcome}; TCG it is")),
        Err(e) => (Accel::Tcg, format!("KVM could not be tried: {e:#}; TCG it is")),
    }
}

/// A kernel to probe with: the VM tests' (scripts/setup), the running rixos system's, or the host's own.
pub fn probe_kernel() -> Option<PathBuf> {
    // Newest first within a directory, as their names sort.
    let kernels_in = |dir: PathBuf| -> Vec<PathBuf> {
        let mut found: Vec<PathBuf> = fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                p.file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("vmlinuz"))
            })
            .collect();
        found.sort();
        found.reverse();
        found
    };
    let mut candidates = kernels_in(test_kernel_dir().join("current/boot"));
    candidates.push(PathBuf::from("/run/booted-system/kernel"));
    candidates.extend(kernels_in(PathBuf::from("/boot")));
    candidates.into_iter().find(|p| File::open(p).is_ok())
}

/// Where scripts/setup unpacks the Debian kernel the VM tests boot (`$RIXOS_TEST_KERNEL_DIR`).
pub fn test_kernel_dir() -> PathBuf {
    std::env::var_os("RIXOS_TEST_KERNEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/cache/rixos/test-kernel"))
}

/// How a probe boot ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProbeOutcome {
    /// The marker appeared this long after QEMU started.
    Reached { after: Duration },
    /// Nothing like the marker within the time; what the console showed last.
    TimedOut { waited: Duration, console: String },
    /// QEMU exited first.
    Ended {
        status: String,
        console: String,
        stderr: String,
    },
}

impl fmt::Display for ProbeOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown = |console: &str| match console.lines().rev().find(|l| !l.trim().is_empty()) {
            None => "the kernel printed nothing".to_string(),
            Some(last) => format!("its last line was {:?}", last.trim()),
        };
        match self {
            ProbeOutcome::Reached { after } => write!(f, "reached userspace in {:.1} s", after.as_secs_f64()),
            ProbeOutcome::TimedOut { waited, console } => {
                write!(
                    f,
                    "Linux did not reach userspace within {} s ({})",
                    waited.as_secs(),
                    shown(console)
                )
            }
            ProbeOutcome::Ended {
                status,
                console,
                stderr,
            } => {
                write!(f, "QEMU ended ({status}) before userspace ({})", shown(console))?;
                match stderr.trim() {
                    "" => Ok(()),
                    said => write!(f, "; QEMU said: {said}"),
                }
            }
        }
    }
}

/// Boots `kernel` with the probe initrd in `qemu` under `accel` and waits up to `timeout` for the marker.
pub fn probe(qemu: &OsStr, accel: Accel, kernel: &Path, timeout: Duration) -> Result<ProbeOutcome> {
    let dir = tempfile::Builder::new()
        .prefix("rixos-accel-probe")
        .tempdir()
        .context("a temporary directory")?;
    let initrd = dir.path().join("initrd");
    let mut archive = Initramfs::new(0);
    archive.char_device("dev/console", 0o600, 5, 1)?;
    archive.file("init", 0o755, crate::boot::STAGE1_INIT)?;
    archive.file("etc/rixos-accel-probe", 0o644, format!("{MARKER}\n"))?;
    archive.write_to(io::BufWriter::new(File::create(&initrd)?))?;

    let mut child = Command::new(qemu)
        .args(["-name", "rixos-accel-probe", "-machine", "q35", "-m", "256"])
        .args(accel.qemu_args())
        .args(["-nodefaults", "-display", "none", "-no-reboot", "-serial", "stdio"])
        .arg("-kernel")
        .arg(kernel)
        .arg("-initrd")
        .arg(&initrd)
        .args(["-append", "console=ttyS0 panic=-1"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", qemu.to_string_lossy()))?;
    let started = Instant::now();
    let console = collect(child.stdout.take());
    let stderr = collect(child.stderr.take());
    let text = |buffer: &Arc<Mutex<Vec<u8>>>| String::from_utf8_lossy(&buffer.lock().unwrap()).into_owned();
    let outcome = loop {
        if text(&console).contains(MARKER) {
            break ProbeOutcome::Reached {
                after: started.elapsed(),
            };
        }
        if let Some(status) = child.try_wait()? {
            // Output written just before the exit may still be in the pipe.
            std::thread::sleep(Duration::from_millis(100));
            if text(&console).contains(MARKER) {
                break ProbeOutcome::Reached {
                    after: started.elapsed(),
                };
            }
            break ProbeOutcome::Ended {
                status: describe(status),
                console: tail(&text(&console)),
                stderr: text(&stderr),
            };
        }
        if started.elapsed() >= timeout {
            break ProbeOutcome::TimedOut {
                waited: timeout,
                console: tail(&text(&console)),
            };
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop(&mut child);
    Ok(outcome)
}

fn describe(status: ExitStatus) -> String {
    match status.code() {
        Some(code) => format!("exit code {code}"),
        None => status.to_string(),
    }
}

/// The last few lines of console output, for messages.
fn tail(console: &str) -> String {
    let lines: Vec<&str> = console.lines().collect();
    lines[lines.len().saturating_sub(5)..].join("\n")
}

/// Reads a pipe into a buffer on a thread of its own, so QEMU never blocks on a full pipe.
fn collect(pipe: Option<impl Read + Send + 'static>) -> Arc<Mutex<Vec<u8>>> {
    let buffer = Arc::new(Mutex::new(Vec::new()));
    if let Some(mut pipe) = pipe {
        let writer = Arc::clone(&buffer);
        std::thread::spawn(move || {
            let mut chunk = [0u8; 4096];
            while let Ok(n) = pipe.read(&mut chunk) {
                if n == 0 {
                    break;
                }
                writer.lock().unwrap().extend_from_slice(&chunk[..n]);
            }
        });
    }
    buffer
}

fn stop(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

fn cache_file() -> PathBuf {
    match std::env::var_os(CACHE_VAR) {
        Some(path) => PathBuf::from(path),
        None => crate::host_cache::dir().join("qemu-accel"),
    }
}

/// What the answer depends on: this boot of the host and the QEMU binary.
fn cache_key() -> String {
    let boot_id = fs::read_to_string("/proc/sys/kernel/random/boot_id").unwrap_or_default();
    let qemu = qemu_binary();
    let resolved = which(&qemu).unwrap_or_else(|| PathBuf::from(&qemu));
    let identity = fs::metadata(&resolved)
        .map(|m| format!("{} {} {}", m.ino(), m.size(), m.mtime()))
        .unwrap_or_default();
    format!("boot {} qemu {} {identity}", boot_id.trim(), resolved.display())
}

fn which(program: &OsStr) -> Option<PathBuf> {
    let program = Path::new(program);
    if program.components().count() > 1 {
        return Some(program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

fn read_cache(path: &Path, key: &str) -> Option<Decision> {
    let text = fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    if lines.next()? != key {
        return None;
    }
    let accel = Accel::parse(lines.next()?)?;
    let why = lines.next().unwrap_or_default().to_string();
    Some(Decision {
        accel,
        why: format!("{why} (decided earlier on this boot; cached in {})", path.display()),
        source: Source::Cached,
    })
}

fn write_cache(path: &Path, key: &str, accel: Accel, why: &str) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir)?;
    }
    let partial = path.with_extension(format!("tmp-{}", std::process::id()));
    fs::write(&partial, format!("{key}\n{accel}\n{}\n", why.replace('\n', " ")))?;
    fs::rename(&partial, path)
}

/// An exclusive lock beside the cache file, released when dropped; `None` where none can be taken (the
/// probe then simply runs unserialised).
fn lock(cache: &Path) -> Option<nix::fcntl::Flock<File>> {
    fs::create_dir_all(cache.parent()?).ok()?;
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(cache.with_extension("lock"))
        .ok()?;
    // Released when dropped.
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive).ok()
}

/// `-accel ... -cpu ...` for a shell: what `rixos qemu-accel --qemu-args` prints.
pub fn shell_args(accel: Accel) -> String {
    accel.qemu_args().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_outcomes_say_what_the_console_showed() {
        let silent = ProbeOutcome::TimedOut {
            waited: Duration::from_secs(15),
            console: String::new(),
        };
        assert_eq!(
            silent.to_string(),
            "Linux did not reach userspace within 15 s (the kernel printed nothing)"
        );
        let ended = ProbeOutcome::Ended {
            status: "exit code 1".into(),
            console: String::new(),
            stderr: "qemu: failed to set MSR 0x10a\n".into(),
        };
        assert_eq!(
            ended.to_string(),
            "QEMU ended (exit code 1) before userspace (the kernel printed nothing); QEMU said: qemu: failed to set MSR 0x10a"
        );
    }

    #[test]
    fn a_cached_answer_counts_only_for_the_same_key() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("qemu-accel");
        write_cache(&cache, "boot A qemu q 1 2 3", Accel::Tcg, "KVM does not run Linux here").unwrap();
        let hit = read_cache(&cache, "boot A qemu q 1 2 3").unwrap();
        assert_eq!((hit.accel, hit.source), (Accel::Tcg, Source::Cached));
        assert!(
            hit.why.starts_with("KVM does not run Linux here (decided earlier"),
            "{}",
            hit.why
        );
        assert_eq!(read_cache(&cache, "boot B qemu q 1 2 3"), None);
    }
}
