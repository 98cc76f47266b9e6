//! `rixos image write`: puts an image (the live ISO, a disk image) onto a USB stick or disk, and proves it
//! arrived.
//!
//! Nothing is written before every check passed: the target is a block device (a regular file only when asked
//! for with `--to-file`); no partition of its disk is mounted, active swap or held by device mapper or a loop
//! device; the disk does not hold the running system (`/`, `/nix/store`, `/boot`, the live medium behind
//! `/iso` or behind the squashfs loop device at `/nix/.ro-store`); it is large enough and writable; the image
//! matches `IMAGE.sha256` when that file exists; and the user typed the device's name (or gave `--yes`). The
//! device is then opened `O_EXCL`, so the kernel refuses it if anything claimed it since. After writing, the
//! data is synced, the device's cached pages dropped, and the written range read back and compared, block by
//! block and as a whole, with the image's sha256.
//!
//! The checks are pure functions over a [`SystemView`] (parsed mountinfo and /proc/swaps, and the root of a
//! sysfs tree), so tests run them on fixture text and a fake sysfs. Knows nothing of how images are built.

use std::collections::BTreeSet;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufRead, IsTerminal, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use crate::progress::Progress;
pub use crate::progress::human_size;
use crate::store::hash::hex;

/// Images are copied and read back in blocks of this size.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// Test hook: when set to a byte offset, one byte of the target at that offset is flipped after writing and
/// before the read-back, so tests (and the VM tests) can see verification fail. Never set it otherwise.
pub const CORRUPT_AT_ENV: &str = "RIXOS_WRITE_CORRUPT_AT";

/// Mount points whose disks hold the running system: never a target.
const SYSTEM_MOUNT_POINTS: &[&str] = &[
    "/",
    "/nix",
    "/nix/store",
    "/nix/.ro-store",
    "/boot",
    "/boot/efi",
    "/efi",
    "/iso",
];

// linux/fs.h
const BLKGETSIZE64: u64 = 0x8008_1272;
const BLKFLSBUF: u64 = 0x1261;

/// Block devices are synced every this many bytes while writing, so the progress shown is what reached the
/// device rather than what the page cache took (a USB stick is much slower than RAM).
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// Why a target is refused. Every message names the device and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("{target} is not a block device but a {kind}; to write the image into a regular file, add --to-file")]
    NotBlockDevice { target: PathBuf, kind: &'static str },
    #[error("{target} is not a regular file but a {kind}; --to-file writes only regular files")]
    NotRegularFile { target: PathBuf, kind: &'static str },
    #[error("{device} holds the running system ({mount_point} is on {disk}); refusing to overwrite it")]
    RunningSystem {
        device: String,
        disk: String,
        mount_point: PathBuf,
    },
    #[error("{device} is in use: {member} is mounted at {mount_point}; unmount it first, or pick another device")]
    Mounted {
        device: String,
        member: String,
        mount_point: PathBuf,
    },
    #[error("{device} is in use: {member} is active swap; run swapoff on it first, or pick another device")]
    Swap { device: String, member: String },
    #[error("{device} is in use: {member} is held by {holder} (device mapper, RAID or loop); release it first")]
    Held {
        device: String,
        member: String,
        holder: String,
    },
    #[error("{device} is read-only (a write-protect switch, or the kernel set it read-only)")]
    ReadOnly { device: String },
    #[error("{device} is too small: it has {} ({size} bytes), the image needs {} ({needed} bytes)",
        human_size(*.size), human_size(*.needed))]
    TooSmall { device: String, size: u64, needed: u64 },
    #[error("cannot tell the size of {device} (no {name}/size in sysfs)")]
    UnknownSize { device: String, name: String },
    #[error("{device} is the image itself")]
    SameAsImage { device: String },
}

/// One line of /proc/self/mountinfo, the fields the checks use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The `st_dev` of files on the mount: the block device's number for disk file systems.
    pub devno: (u32, u32),
    pub mount_point: PathBuf,
    pub fs_type: String,
    pub source: String,
}

/// Parses /proc/self/mountinfo (proc(5)): `ID PARENT MAJ:MIN ROOT MOUNT_POINT OPTIONS [OPTIONAL...] - TYPE SOURCE
/// SUPER_OPTIONS`, with spaces and the like escaped as `\040`.
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>> {
    let mut mounts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let fields: Vec<&str> = line.split(' ').collect();
        let parsed = (|| {
            let (major, minor) = fields.get(2)?.split_once(':')?;
            let devno = (major.parse().ok()?, minor.parse().ok()?);
            let separator = fields.iter().skip(6).position(|f| *f == "-")? + 6;
            Some(Mount {
                devno,
                mount_point: PathBuf::from(unescape(fields.get(4)?)),
                fs_type: unescape(fields.get(separator + 1)?),
                source: unescape(fields.get(separator + 2)?),
            })
        })();
        match parsed {
            Some(mount) => mounts.push(mount),
            None => bail!("mountinfo line {} is malformed: {line:?}", number + 1),
        }
    }
    Ok(mounts)
}

/// The file names in /proc/swaps (after its header line): swap partitions, and swap files.
pub fn parse_swaps(text: &str) -> Vec<String> {
    text.lines()
        .filter(|line| !line.starts_with("Filename"))
        .filter_map(|line| line.split_whitespace().next())
        .map(unescape)
        .collect()
}

/// Undoes the kernel's octal escapes (`\040` for a space) in mountinfo and /proc/swaps fields.
fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        match (bytes[i], octal) {
            (b'\\', Some(d)) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits a Linux `dev_t` into major and minor (glibc's encoding, as the kernel's `new_encode_dev`).
pub fn split_devno(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

/// What the checks look at: the mounts, the active swap, and the block devices in sysfs. Block devices are
/// named by their kernel names (`sdb`, `sdb1`, `dm-0`, `loop0`).
#[derive(Debug, Clone)]
pub struct SystemView {
    /// The root of sysfs (`/sys`): `class/block/NAME`, `dev/block/MAJ:MIN`.
    pub sysfs: PathBuf,
    /// Where paths under `/dev/` are looked up (`/dev`).
    pub dev: PathBuf,
    pub mounts: Vec<Mount>,
    /// File names from /proc/swaps.
    pub swaps: Vec<String>,
}

impl SystemView {
    /// The running system's view: /proc/self/mountinfo, /proc/swaps, /sys and /dev.
    pub fn current() -> Result<SystemView> {
        let mountinfo = fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        // Without swap support the file is absent, and then nothing is swap.
        let swaps = fs::read_to_string("/proc/swaps").unwrap_or_default();
        Ok(SystemView {
            sysfs: PathBuf::from("/sys"),
            dev: PathBuf::from("/dev"),
            mounts: parse_mountinfo(&mountinfo).context("parsing /proc/self/mountinfo")?,
            swaps: parse_swaps(&swaps),
        })
    }

    fn class_dir(&self, name: &str) -> PathBuf {
        self.sysfs.join("class/block").join(name)
    }

    fn attribute(&self, name: &str, file: &str) -> Option<String> {
        let text = fs::read_to_string(self.class_dir(name).join(file)).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    fn names_in(&self, name: &str, dir: &str) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.class_dir(name).join(dir)) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// The block device with this number, through `/sys/dev/block/MAJ:MIN`; None for file systems without one
    /// (tmpfs, overlay, btrfs' anonymous numbers).
    pub fn name_of_devno(&self, (major, minor): (u32, u32)) -> Option<String> {
        let link = fs::read_link(self.sysfs.join(format!("dev/block/{major}:{minor}"))).ok()?;
        Some(link.file_name()?.to_string_lossy().into_owned())
    }

    /// The block device a path names: a device node (followed through links like /dev/disk/by-id/...), or,
    /// when there is no such node to look at, `/dev/NAME` and `/dev/mapper/NAME` by name.
    pub fn name_of_path(&self, path: &str) -> Option<String> {
        let path = path.strip_suffix(" (deleted)").unwrap_or(path);
        if !path.starts_with('/') {
            return None; // `tmpfs`, `overlay`, `none`: no device
        }
        let under_dev = path.strip_prefix("/dev/");
        let node = under_dev.map_or_else(|| PathBuf::from(path), |rest| self.dev.join(rest));
        if let Ok(meta) = fs::metadata(&node) {
            if meta.file_type().is_block_device() {
                return self.name_of_devno(split_devno(meta.rdev()));
            }
            return None;
        }
        let rest = under_dev?;
        if let Some(dm_name) = rest.strip_prefix("mapper/") {
            return self
                .names_in_class()
                .into_iter()
                .find(|n| self.attribute(n, "dm/name").as_deref() == Some(dm_name));
        }
        (!rest.contains('/') && self.class_dir(rest).exists()).then(|| rest.to_owned())
    }

    fn names_in_class(&self) -> Vec<String> {
        let mut names: Vec<String> = match fs::read_dir(self.sysfs.join("class/block")) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// The block device a mount is on: by its device number, else by its source.
    pub fn device_of_mount(&self, mount: &Mount) -> Option<String> {
        self.name_of_devno(mount.devno)
            .or_else(|| self.name_of_path(&mount.source))
    }

    fn is_partition(&self, name: &str) -> bool {
        self.class_dir(name).join("partition").exists()
    }

    /// The whole disk a partition belongs to (its parent directory in sysfs); a disk is its own.
    pub fn whole_disk(&self, name: &str) -> String {
        if self.is_partition(name)
            && let Ok(real) = fs::canonicalize(self.class_dir(name))
            && let Some(parent) = real.parent().and_then(Path::file_name)
        {
            return parent.to_string_lossy().into_owned();
        }
        name.to_owned()
    }

    /// A disk's partitions, by name.
    pub fn partitions(&self, disk: &str) -> Vec<String> {
        let Ok(real) = fs::canonicalize(self.class_dir(disk)) else {
            return Vec::new();
        };
        let mut names: Vec<String> = match fs::read_dir(&real) {
            Ok(entries) => entries
                .filter_map(|e| e.ok())
                .filter(|e| e.path().join("partition").exists())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => Vec::new(),
        };
        names.sort();
        names
    }

    /// Size in bytes, from sysfs (`size` counts 512-byte sectors whatever the device's sector size).
    pub fn size(&self, name: &str) -> Option<u64> {
        self.attribute(name, "size")?
            .parse::<u64>()
            .ok()
            .map(|sectors| sectors * 512)
    }

    fn read_only(&self, name: &str) -> bool {
        self.attribute(name, "ro").is_some_and(|ro| ro != "0")
    }

    /// The file behind a loop device, as the kernel gives it.
    fn loop_backing_file(&self, name: &str) -> Option<String> {
        self.attribute(name, "loop/backing_file")
    }

    /// The mount a path is on: the longest mount point above it (the last one mounted, when stacked).
    fn mount_containing(&self, path: &Path) -> Option<&Mount> {
        let mut best: Option<&Mount> = None;
        for mount in &self.mounts {
            if path.starts_with(&mount.mount_point)
                && best.is_none_or(|b| mount.mount_point.components().count() >= b.mount_point.components().count())
            {
                best = Some(mount);
            }
        }
        best
    }

    /// The whole disks a device stores its data on: itself, what device mapper builds it from (`slaves`), and
    /// for a loop device the disk its backing file is on.
    fn underlying_disks(&self, name: &str, found: &mut BTreeSet<String>) {
        let disk = self.whole_disk(name);
        if !found.insert(disk.clone()) {
            return;
        }
        for slave in self.names_in(name, "slaves") {
            self.underlying_disks(&slave, found);
        }
        if let Some(backing) = self.loop_backing_file(name) {
            let backing = backing.strip_suffix(" (deleted)").unwrap_or(&backing).to_owned();
            let device = self.name_of_path(&backing).or_else(|| {
                self.mount_containing(Path::new(&backing))
                    .and_then(|m| self.device_of_mount(m))
            });
            if let Some(device) = device {
                self.underlying_disks(&device, found);
            }
        }
    }

    /// The disks the running system lives on, each with the mount point that shows it.
    pub fn system_disks(&self) -> Vec<(String, PathBuf)> {
        let mut disks = Vec::new();
        for mount in &self.mounts {
            if !SYSTEM_MOUNT_POINTS.iter().any(|p| mount.mount_point == Path::new(p)) {
                continue;
            }
            let Some(device) = self.device_of_mount(mount) else {
                continue;
            };
            let mut found = BTreeSet::new();
            self.underlying_disks(&device, &mut found);
            for disk in found {
                disks.push((disk, mount.mount_point.clone()));
            }
        }
        disks
    }
}

/// A block device that passed the checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedDevice {
    /// The kernel's name (`sdb`).
    pub name: String,
    /// The whole disk it is or is a partition of.
    pub disk: String,
    pub size: u64,
}

/// The checks a block device must pass before anything is written to it: not (on) the disk of the running
/// system, no partition of its disk mounted, swap or held, writable, large enough.
pub fn check_block_device(view: &SystemView, name: &str, image_size: u64) -> Result<CheckedDevice, Refusal> {
    let device = format!("/dev/{name}");
    let disk = view.whole_disk(name);
    if let Some((system_disk, mount_point)) = view.system_disks().into_iter().find(|(d, _)| *d == disk) {
        return Err(Refusal::RunningSystem {
            device,
            disk: format!("/dev/{system_disk}"),
            mount_point,
        });
    }
    // The whole disk and every partition on it: an ISO mounted from the disk shows as the disk, even when
    // the target is one of its partitions.
    let mut family = vec![disk.clone()];
    family.extend(view.partitions(&disk));
    for mount in &view.mounts {
        if let Some(member) = view.device_of_mount(mount).filter(|m| family.contains(m)) {
            return Err(Refusal::Mounted {
                device,
                member: format!("/dev/{member}"),
                mount_point: mount.mount_point.clone(),
            });
        }
    }
    for swap in &view.swaps {
        if let Some(member) = view.name_of_path(swap).filter(|m| family.contains(m)) {
            return Err(Refusal::Swap {
                device,
                member: format!("/dev/{member}"),
            });
        }
    }
    for member in &family {
        if let Some(holder) = view.names_in(member, "holders").into_iter().next() {
            return Err(Refusal::Held {
                device,
                member: format!("/dev/{member}"),
                holder: format!("/dev/{holder}"),
            });
        }
    }
    // A loop device over a device node does not show in `holders`.
    for other in view.names_in_class() {
        if let Some(backing) = view.loop_backing_file(&other)
            && let Some(member) = view.name_of_path(&backing).filter(|m| family.contains(m))
        {
            return Err(Refusal::Held {
                device,
                member: format!("/dev/{member}"),
                holder: format!("/dev/{other}"),
            });
        }
    }
    if view.read_only(name) || view.read_only(&disk) {
        return Err(Refusal::ReadOnly { device });
    }
    let Some(size) = view.size(name) else {
        return Err(Refusal::UnknownSize {
            device,
            name: name.to_owned(),
        });
    };
    if size < image_size {
        return Err(Refusal::TooSmall {
            device,
            size,
            needed: image_size,
        });
    }
    Ok(CheckedDevice {
        name: name.to_owned(),
        disk,
        size,
    })
}

/// What is about to be destroyed, shown before asking.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceDescription {
    pub device: String,
    pub size: Option<u64>,
    pub vendor: Option<String>,
    pub model: Option<String>,
    /// For a partition, the disk it is on.
    pub partition_of: Option<String>,
    /// Partitions on the device, with their sizes.
    pub partitions: Vec<(String, Option<u64>)>,
}

pub fn describe(view: &SystemView, name: &str) -> DeviceDescription {
    let disk = view.whole_disk(name);
    let partitions = if disk == name {
        view.partitions(name)
            .into_iter()
            .map(|p| (view.size(&p), p))
            .map(|(size, p)| (p, size))
            .collect()
    } else {
        Vec::new()
    };
    DeviceDescription {
        device: format!("/dev/{name}"),
        size: view.size(name),
        vendor: view.attribute(&disk, "device/vendor"),
        model: view.attribute(&disk, "device/model"),
        partition_of: (disk != name).then(|| format!("/dev/{disk}")),
        partitions,
    }
}

impl fmt::Display for DeviceDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.device)?;
        match self.size {
            Some(size) => write!(f, ": {} ({size} bytes)", human_size(size))?,
            None => write!(f, ": size unknown")?,
        }
        let name: Vec<&str> = [&self.vendor, &self.model]
            .into_iter()
            .flatten()
            .map(String::as_str)
            .collect();
        if !name.is_empty() {
            write!(f, ", {}", name.join(" "))?;
        }
        if let Some(disk) = &self.partition_of {
            write!(f, ", a partition of {disk}")?;
        }
        if self.partitions.is_empty() {
            if self.partition_of.is_none() {
                write!(f, "\n  no partitions")?;
            }
        } else {
            write!(f, "\n  partitions:")?;
            for (partition, size) in &self.partitions {
                write!(f, " {partition} ({})", size.map_or("size unknown".into(), human_size))?;
            }
        }
        Ok(())
    }
}

/// Whether a typed answer names the device: its kernel name, `/dev/NAME`, or the path given on the command
/// line.
pub fn confirms(answer: &str, name: &str, given: &Path) -> bool {
    let answer = answer.trim();
    !answer.is_empty() && (answer == name || answer == format!("/dev/{name}") || Path::new(answer) == given)
}

/// The sha256 `IMAGE.sha256` gives for an image called `image_name`, from sha256sum's format (`HASH  NAME`,
/// `HASH *NAME`) or BSD's (`SHA256 (NAME) = HASH`). With several entries the image's own is used; a single
/// entry is taken whatever name it gives (images get renamed).
pub fn parse_sha256_file(text: &str, image_name: &str) -> Result<[u8; 32]> {
    let mut entries = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (hash, name) = if let Some(rest) = line.strip_prefix("SHA256 (") {
            let (name, hash) = rest
                .rsplit_once(") = ")
                .with_context(|| format!("malformed line {line:?}"))?;
            (hash.trim(), name)
        } else {
            let (hash, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (hash, name.trim_start().trim_start_matches('*'))
        };
        let digest = decode_sha256(hash).with_context(|| format!("{hash:?} is not a sha256 in line {line:?}"))?;
        entries.push((digest, name.to_owned()));
    }
    let base = |name: &str| Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned());
    match entries.as_slice() {
        [] => bail!("no sha256 in it"),
        [(digest, _)] => Ok(*digest),
        _ => match entries
            .iter()
            .find(|(_, name)| base(name).as_deref() == Some(image_name))
        {
            Some((digest, _)) => Ok(*digest),
            None => bail!("it has {} entries and none for {image_name}", entries.len()),
        },
    }
}

fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A block device, by the path given and its number.
    Block { path: PathBuf, devno: (u32, u32) },
    /// A regular file (`--to-file`), created when missing.
    File { path: PathBuf, exists: bool },
}

fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_block_device() {
        "block device"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// What the path given names: a block device, or with `to_file` a regular file (or none yet).
pub fn classify_target(path: &Path, to_file: bool) -> Result<Target> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound && to_file => {
            return Ok(Target::File {
                path: path.to_owned(),
                exists: false,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("{} does not name a device", path.display())),
    };
    let file_type = meta.file_type();
    match (to_file, file_type.is_block_device(), file_type.is_file()) {
        (false, true, _) => Ok(Target::Block {
            path: path.to_owned(),
            devno: split_devno(meta.rdev()),
        }),
        (false, false, _) => Err(Refusal::NotBlockDevice {
            target: path.to_owned(),
            kind: kind_of(file_type),
        }
        .into()),
        (true, _, true) => Ok(Target::File {
            path: path.to_owned(),
            exists: true,
        }),
        (true, _, false) => Err(Refusal::NotRegularFile {
            target: path.to_owned(),
            kind: kind_of(file_type),
        }
        .into()),
    }
}

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Write into a regular file instead of a block device.
    pub to_file: bool,
    /// Do not ask: the user already confirmed (the checks still run).
    pub yes: bool,
    /// The test hook of [`CORRUPT_AT_ENV`].
    pub corrupt_at: Option<u64>,
}

/// [`CORRUPT_AT_ENV`], when set.
pub fn corrupt_at_from_env() -> Result<Option<u64>> {
    match std::env::var(CORRUPT_AT_ENV) {
        Ok(text) => {
            Ok(Some(text.trim().parse().with_context(|| {
                format!("{CORRUPT_AT_ENV}={text:?} is not a byte offset")
            })?))
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {CORRUPT_AT_ENV}")),
    }
}

/// Where the user's answer comes from.
pub struct Prompt<'a> {
    pub input: Box<dyn BufRead + 'a>,
    /// Whether the input is a terminal: without one, nothing is destroyed without `--yes`.
    pub terminal: bool,
}

impl Prompt<'_> {
    /// Stdin.
    pub fn stdin() -> Prompt<'static> {
        Prompt {
            input: Box::new(io::stdin().lock()),
            terminal: io::stdin().is_terminal(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub bytes: u64,
    pub sha256: [u8; 32],
    pub elapsed: Duration,
}

/// The image to write: a regular file, checked against `IMAGE.sha256` when that exists.
struct Image {
    path: PathBuf,
    size: u64,
    /// From `IMAGE.sha256`, already compared with the image.
    expected: Option<[u8; 32]>,
}

fn open_image(path: &Path) -> Result<Image> {
    let meta = fs::metadata(path).with_context(|| format!("reading the image {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "the image {} is not a regular file but a {}",
            path.display(),
            kind_of(meta.file_type())
        );
    }
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = PathBuf::from(sidecar);
    let expected = match fs::read_to_string(&sidecar) {
        Ok(text) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let expected = parse_sha256_file(&text, &name).with_context(|| format!("reading {}", sidecar.display()))?;
            let actual = sha256_of_file(path, meta.len())?;
            if actual != expected {
                bail!(
                    "the image {} does not match {}: its sha256 is {}, the file says {}; the download is damaged or \
                     the files do not belong together; nothing was written",
                    path.display(),
                    sidecar.display(),
                    hex(&actual),
                    hex(&expected)
                );
            }
            Some(expected)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", sidecar.display())),
    };
    Ok(Image {
        path: path.to_owned(),
        size: meta.len(),
        expected,
    })
}

fn sha256_of_file(path: &Path, size: u64) -> Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("opening the image {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut file, &mut buffer).with_context(|| format!("reading the image {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        done += n as u64;
    }
    if done != size {
        bail!(
            "the image {} changed size while being read ({size} bytes, then {done})",
            path.display()
        );
    }
    Ok(hasher.finalize().into())
}

/// Reads until the buffer is full or the file ends.
fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// `rixos image write IMAGE TARGET`: checks, asks, writes, verifies. Errors name the device.
pub fn write_image(image: &Path, target: &Path, options: &WriteOptions, prompt: Prompt<'_>) -> Result<WriteReport> {
    let shown = target.display().to_string();
    let image = open_image(image)?;
    let target = classify_target(target, options.to_file)?;
    let written = match &target {
        Target::Block { path, devno } => {
            let name = checked_block_device(path, *devno, image.size)?.name;
            if !options.yes {
                let view = SystemView::current()?;
                let description = describe(&view, &name);
                ask(
                    &format!("{description}\nEverything on {} will be destroyed.", description.device),
                    &name,
                    path,
                    prompt,
                )?;
                // Anything may have been mounted while the user read the question.
                checked_block_device(path, *devno, image.size)?;
            }
            let file = open_block_device(path, *devno, &name, image.size)?;
            copy_and_verify(&image, file, &format!("/dev/{name}"), true, options)
        }
        Target::File { path, exists } => {
            let existing_size = if *exists {
                fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            if existing_size > 0 && !options.yes {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| shown.clone());
                let question = format!(
                    "{shown}: a file of {}; it will be overwritten.",
                    human_size(existing_size)
                );
                ask(&question, &name, path, prompt)?;
            }
            let file = open_target_file(path, &image)?;
            copy_and_verify(&image, file, &shown, false, options)
        }
    };
    written.with_context(|| format!("writing {} to {shown}", image.path.display()))
}

/// Runs the checks on the running system for the device at `path`.
fn checked_block_device(path: &Path, devno: (u32, u32), image_size: u64) -> Result<CheckedDevice> {
    let view = SystemView::current()?;
    let Some(name) = view.name_of_devno(devno) else {
        bail!(
            "{} (block device {}:{}) is not in /sys/dev/block",
            path.display(),
            devno.0,
            devno.1
        );
    };
    Ok(check_block_device(&view, &name, image_size)?)
}

fn ask(question: &str, name: &str, given: &Path, mut prompt: Prompt<'_>) -> Result<()> {
    if !prompt.terminal {
        bail!(
            "refusing to overwrite {} without confirmation: stdin is not a terminal; add --yes to write anyway",
            given.display()
        );
    }
    let accepted = if given == Path::new(&format!("/dev/{name}")) || given == Path::new(name) {
        name.to_owned()
    } else {
        format!("{name} or {}", given.display())
    };
    eprint!("{question}\nType {accepted} to go on, anything else stops: ");
    io::stderr().flush().ok();
    let mut answer = String::new();
    prompt.input.read_line(&mut answer).context("reading the answer")?;
    if !confirms(&answer, name, given) {
        bail!("stopped: {:?} is not {name}; nothing was written", answer.trim());
    }
    Ok(())
}

fn open_block_device(path: &Path, devno: (u32, u32), name: &str, image_size: u64) -> Result<File> {
    let device = format!("/dev/{name}");
    // O_EXCL on a block device: the kernel refuses it while mounted, held or opened O_EXCL elsewhere.
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            bail!("{device} is busy: the kernel says something holds it (mounted, or opened by another program)")
        }
        Err(e) => return Err(e).with_context(|| format!("opening {device} for writing")),
    };
    // The path could have been swapped for another device since the checks.
    let meta = file.metadata().with_context(|| format!("reading {device}"))?;
    if !meta.file_type().is_block_device() || split_devno(meta.rdev()) != devno {
        bail!(
            "{} changed while it was checked: it no longer is {device}",
            path.display()
        );
    }
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points at `size`.
    if unsafe { libc::ioctl(file.as_raw_fd(), BLKGETSIZE64 as _, &mut size as *mut u64) } != 0 {
        return Err(io::Error::last_os_error()).with_context(|| format!("asking {device} for its size"));
    }
    if size < image_size {
        return Err(Refusal::TooSmall {
            device,
            size,
            needed: image_size,
        }
        .into());
    }
    Ok(file)
}

fn open_target_file(path: &Path, image: &Image) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))?;
    let meta = file.metadata()?;
    let image_meta = fs::metadata(&image.path)?;
    if meta.dev() == image_meta.dev() && meta.ino() == image_meta.ino() {
        return Err(Refusal::SameAsImage {
            device: path.display().to_string(),
        }
        .into());
    }
    if !meta.is_file() {
        return Err(Refusal::NotRegularFile {
            target: path.to_owned(),
            kind: kind_of(meta.file_type()),
        }
        .into());
    }
    file.set_len(0)
        .with_context(|| format!("truncating {}", path.display()))?;
    Ok(file)
}

fn copy_and_verify(
    image: &Image,
    target: File,
    shown: &str,
    block: bool,
    options: &WriteOptions,
) -> Result<WriteReport> {
    let started = Instant::now();
    let mut source = File::open(&image.path).with_context(|| format!("opening the image {}", image.path.display()))?;
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut hasher = Sha256::new();
    let mut block_hashes: Vec<[u8; 32]> = Vec::new();
    let mut written = 0u64;
    let mut since_sync = 0u64;
    let progress = Progress::bytes(format!("writing {shown}"), image.size);
    loop {
        let n = read_full(&mut source, &mut buffer)
            .with_context(|| format!("reading the image {}", image.path.display()))?;
        if n == 0 {
            break;
        }
        if written + n as u64 > image.size {
            bail!("the image {} grew while being written", image.path.display());
        }
        target
            .write_all_at(&buffer[..n], written)
            .with_context(|| format!("writing {shown} at byte {written}"))?;
        hasher.update(&buffer[..n]);
        block_hashes.push(Sha256::digest(&buffer[..n]).into());
        written += n as u64;
        since_sync += n as u64;
        if block && since_sync >= SYNC_EVERY {
            target.sync_data().with_context(|| format!("syncing {shown}"))?;
            since_sync = 0;
        }
        progress.set(written);
    }
    progress.finish();
    if written != image.size {
        bail!(
            "the image {} shrank while being written ({} bytes, then {written})",
            image.path.display(),
            image.size
        );
    }
    let sha256: [u8; 32] = hasher.finalize().into();
    if let Some(expected) = image.expected
        && expected != sha256
    {
        bail!(
            "the image {} changed while being written: its sha256 no longer matches its .sha256 file",
            image.path.display()
        );
    }
    target.sync_all().with_context(|| format!("syncing {shown}"))?;

    if let Some(offset) = options.corrupt_at {
        corrupt_one_byte(&target, offset, written, shown)?;
    }
    drop_cached_pages(&target, block, shown);

    let progress = Progress::bytes(format!("verifying {shown}"), written);
    let mut readback = Sha256::new();
    let mut offset = 0u64;
    for (index, expected) in block_hashes.iter().enumerate() {
        let n = (written - offset).min(BLOCK_SIZE as u64) as usize;
        target
            .read_exact_at(&mut buffer[..n], offset)
            .with_context(|| format!("reading {shown} back at byte {offset}"))?;
        readback.update(&buffer[..n]);
        if <[u8; 32]>::from(Sha256::digest(&buffer[..n])) != *expected {
            drop(progress);
            let at = first_difference(&image.path, &buffer[..n], offset).unwrap_or(offset);
            bail!(
                "verification failed: what {shown} gives back differs from the image at byte {at} (block {index} of \
                 {} MiB at byte {offset}); the device may be failing or counterfeit (smaller than it claims)",
                BLOCK_SIZE / (1024 * 1024)
            );
        }
        offset += n as u64;
        progress.set(offset);
    }
    progress.finish();
    let readback: [u8; 32] = readback.finalize().into();
    if readback != sha256 {
        bail!(
            "verification failed: {shown} differs from the image: sha256 {} read back, {} written",
            hex(&readback),
            hex(&sha256)
        );
    }
    if !crate::verbosity::quiet() {
        eprintln!(
            "wrote {} to {shown} and read it back: sha256 {}",
            human_size(written),
            hex(&sha256)
        );
    }
    Ok(WriteReport {
        bytes: written,
        sha256,
        elapsed: started.elapsed(),
    })
}

/// The test hook: flips the byte at `offset` in the written range, and syncs it.
fn corrupt_one_byte(target: &File, offset: u64, written: u64, shown: &str) -> Result<()> {
    if offset >= written {
        bail!("{CORRUPT_AT_ENV}={offset} is outside the {written} bytes written");
    }
    let mut byte = [0u8];
    target
        .read_exact_at(&mut byte, offset)
        .with_context(|| format!("reading {shown} at byte {offset}"))?;
    byte[0] ^= 0xff;
    target
        .write_all_at(&byte, offset)
        .with_context(|| format!("writing {shown} at byte {offset}"))?;
    target.sync_all().with_context(|| format!("syncing {shown}"))?;
    eprintln!("test hook {CORRUPT_AT_ENV}: flipped the byte at {offset} of {shown}");
    Ok(())
}

/// Drops the target's cached pages so the read-back comes from the device, not from memory: BLKFLSBUF for a
/// block device (it needs CAP_SYS_ADMIN, which writing a disk usually comes with), and
/// `POSIX_FADV_DONTNEED`, which drops clean pages of any file.
fn drop_cached_pages(target: &File, block: bool, shown: &str) {
    let fd = target.as_raw_fd();
    // SAFETY: BLKFLSBUF takes no argument; fd is open for the whole call.
    if block && unsafe { libc::ioctl(fd, BLKFLSBUF as _, 0) } != 0 {
        let e = io::Error::last_os_error();
        eprintln!("note: could not flush the buffers of {shown} ({e}); the read-back may partly come from the cache");
    }
    // SAFETY: plain system call on an open descriptor.
    unsafe { libc::posix_fadvise(fd, 0, 0, libc::POSIX_FADV_DONTNEED) };
}

/// The offset of the first byte in `got` (read back at `offset`) that differs from the image.
fn first_difference(image: &Path, got: &[u8], offset: u64) -> Option<u64> {
    let file = File::open(image).ok()?;
    let mut want = vec![0u8; got.len()];
    file.read_exact_at(&mut want, offset).ok()?;
    got.iter()
        .zip(&want)
        .position(|(a, b)| a != b)
        .map(|i| offset + i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A sysfs tree in a tempdir: disks under devices/virtual/block, linked from class/block and dev/block.
    struct FakeSys {
        dir: tempfile::TempDir,
    }

    impl FakeSys {
        fn new() -> FakeSys {
            let sys = FakeSys {
                dir: tempfile::tempdir().unwrap(),
            };
            fs::create_dir_all(sys.root().join("class/block")).unwrap();
            fs::create_dir_all(sys.root().join("dev/block")).unwrap();
            fs::create_dir_all(sys.dir.path().join("dev")).unwrap();
            sys
        }

        fn root(&self) -> PathBuf {
            self.dir.path().join("sys")
        }

        fn add(&self, relative: &str, name: &str, devno: (u32, u32), sectors: u64) {
            let dir = self.root().join("devices/virtual/block").join(relative);
            fs::create_dir_all(dir.join("holders")).unwrap();
            fs::create_dir_all(dir.join("slaves")).unwrap();
            fs::write(dir.join("dev"), format!("{}:{}\n", devno.0, devno.1)).unwrap();
            fs::write(dir.join("size"), format!("{sectors}\n")).unwrap();
            fs::write(dir.join("ro"), "0\n").unwrap();
            let target = PathBuf::from("../../devices/virtual/block").join(relative);
            symlink(&target, self.root().join("class/block").join(name)).unwrap();
            symlink(&target, self.root().join(format!("dev/block/{}:{}", devno.0, devno.1))).unwrap();
        }

        /// A disk with partitions `(number, sectors)`, named as the kernel names them.
        fn disk(&self, name: &str, major: u32, first_minor: u32, sectors: u64, partitions: &[(u32, u64)]) {
            self.add(name, name, (major, first_minor), sectors);
            for (number, part_sectors) in partitions {
                let part = format!("{name}{number}");
                self.add(
                    &format!("{name}/{part}"),
                    &part,
                    (major, first_minor + number),
                    *part_sectors,
                );
                fs::write(
                    self.root().join("class/block").join(&part).join("partition"),
                    format!("{number}\n"),
                )
                .unwrap();
            }
        }

        fn set(&self, name: &str, file: &str, text: &str) {
            let path = self.root().join("class/block").join(name).join(file);
            fs::create_dir_all(path.parent().unwrap()).unwrap();
            fs::write(path, text).unwrap();
        }

        fn link(&self, from: &str, dir: &str, to: &str) {
            symlink(
                format!("../../{to}"),
                self.root().join("class/block").join(from).join(dir).join(to),
            )
            .unwrap();
        }

        fn view(&self, mountinfo: &str, swaps: &str) -> SystemView {
            SystemView {
                sysfs: self.root(),
                dev: self.dir.path().join("dev"),
                mounts: parse_mountinfo(mountinfo).unwrap(),
                swaps: parse_swaps(swaps),
            }
        }
    }

    const GIB: u64 = 1024 * 1024 * 1024;

    /// sda (the installed system's disk), sdb (a 16 GiB USB stick with one partition), sdc (a 2 GiB one),
    /// nvme0n1 (a second disk, with LVM on p1), loop0 and loop1.
    fn machine() -> FakeSys {
        let sys = FakeSys::new();
        sys.disk("sda", 8, 0, 500 * GIB / 512, &[(1, GIB / 512), (2, 499 * GIB / 512)]);
        sys.disk("sdb", 8, 16, 16 * GIB / 512, &[(1, 16 * GIB / 512 - 2048)]);
        sys.disk("sdc", 8, 32, 2 * GIB / 512, &[]);
        // NVMe partitions are named with a `p`.
        sys.add("nvme0n1", "nvme0n1", (259, 0), 100 * GIB / 512);
        sys.add("nvme0n1/nvme0n1p1", "nvme0n1p1", (259, 1), 100 * GIB / 512 - 2048);
        sys.set("nvme0n1p1", "partition", "1\n");
        sys.add("loop0", "loop0", (7, 0), 900 * 1024 * 1024 / 512);
        sys.add("loop1", "loop1", (7, 1), 0);
        sys.add("dm-0", "dm-0", (254, 0), 50 * GIB / 512);
        sys.set("dm-0", "dm/name", "vg-data\n");
        sys.set("sdb", "device/vendor", "SanDisk \n");
        sys.set("sdb", "device/model", "Cruzer Blade    \n");
        sys
    }

    /// The installed system: / on sda2, /boot on sda1.
    const INSTALLED: &str = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
24 22 0:22 / /sys rw,nosuid shared:3 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid shared:4 - devtmpfs devtmpfs rw,size=4096k
26 22 8:1 / /boot rw,relatime shared:5 - vfat /dev/sda1 rw,fmask=0022
27 22 0:25 / /run rw,nosuid,nodev shared:6 - tmpfs tmpfs rw,mode=755
";

    /// A live system booted from sdb: the medium at /iso, the squashfs on loop0 at /nix/.ro-store, an
    /// overlay at /nix/store.
    const LIVE: &str = "\
22 1 0:20 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
26 22 8:16 / /iso ro,relatime shared:5 - iso9660 /dev/sdb ro
27 22 7:0 / /nix/.ro-store ro,relatime shared:6 - squashfs /dev/loop0 ro
28 22 0:30 / /nix/.rw-store rw,relatime shared:7 - tmpfs tmpfs rw,mode=755
29 22 0:31 / /nix/store rw,relatime shared:8 - overlay overlay rw,lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store
";

    /// A live system whose squashfs is a file on sdb1, mounted at /data.
    const LIVE_FROM_DATA: &str = "\
22 1 0:20 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755
26 22 8:17 / /data rw,relatime shared:5 - ext4 /dev/sdb1 rw
27 22 7:0 / /nix/.ro-store ro,relatime shared:6 - squashfs /dev/loop0 ro
29 22 0:31 / /nix/store rw,relatime shared:8 - overlay overlay rw,lowerdir=/nix/.ro-store
";

    const NO_SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";

    enum Expect {
        Accepted,
        /// The refusal's variant, and a piece of its message.
        Refused(&'static str, &'static str),
    }

    struct Case {
        what: &'static str,
        mountinfo: String,
        swaps: &'static str,
        setup: fn(&FakeSys),
        target: &'static str,
        image_size: u64,
        expect: Expect,
    }

    fn case(what: &'static str, mountinfo: &str, target: &'static str, expect: Expect) -> Case {
        Case {
            what,
            mountinfo: mountinfo.to_owned(),
            swaps: NO_SWAP,
            setup: |_| {},
            target,
            image_size: GIB,
            expect,
        }
    }

    #[test]
    fn targets_are_refused_or_accepted_as_the_table_says() {
        let mounted_usb = format!("{INSTALLED}40 22 8:17 / /media/usb\\040stick rw - vfat /dev/sdb1 rw\n");
        let mounted_whole = format!("{INSTALLED}40 22 8:16 / /mnt rw - iso9660 /dev/sdb ro\n");
        let mounted_by_source = format!("{INSTALLED}40 22 0:44 / /mnt rw - btrfs /dev/sdb1 rw\n");
        let dm_root = "22 1 254:0 / / rw - ext4 /dev/mapper/vg-data rw\n".to_owned();
        let cases = vec![
            case("an unused stick", INSTALLED, "sdb", Expect::Accepted),
            case("a partition of an unused stick", INSTALLED, "sdb1", Expect::Accepted),
            case(
                "the disk of /",
                INSTALLED,
                "sda",
                Expect::Refused("RunningSystem", "/dev/sda holds the running system (/ is on /dev/sda)"),
            ),
            case(
                "a partition of the disk of /",
                INSTALLED,
                "sda1",
                Expect::Refused("RunningSystem", "/dev/sda1 holds"),
            ),
            case(
                "a disk with a mounted partition",
                &mounted_usb,
                "sdb",
                Expect::Refused(
                    "Mounted",
                    "/dev/sdb is in use: /dev/sdb1 is mounted at /media/usb stick",
                ),
            ),
            case(
                "a mounted partition",
                &mounted_usb,
                "sdb1",
                Expect::Refused("Mounted", "/dev/sdb1 is in use"),
            ),
            case(
                "a partition of a disk mounted whole",
                &mounted_whole,
                "sdb1",
                Expect::Refused("Mounted", "/dev/sdb1 is in use: /dev/sdb is mounted at /mnt"),
            ),
            case(
                "a partition mounted with an anonymous device number",
                &mounted_by_source,
                "sdb",
                Expect::Refused("Mounted", "/dev/sdb1 is mounted at /mnt"),
            ),
            Case {
                swaps: "Filename\tType\tSize\tUsed\tPriority\n/dev/sdb1  partition\t8388604\t0\t-2\n",
                ..case(
                    "a disk with active swap",
                    INSTALLED,
                    "sdb",
                    Expect::Refused("Swap", "/dev/sdb is in use: /dev/sdb1 is active swap"),
                )
            },
            Case {
                setup: |sys| {
                    sys.link("sdb1", "holders", "dm-0");
                    sys.link("dm-0", "slaves", "sdb1");
                },
                ..case(
                    "a disk under device mapper",
                    INSTALLED,
                    "sdb",
                    Expect::Refused("Held", "/dev/sdb1 is held by /dev/dm-0"),
                )
            },
            Case {
                setup: |sys| sys.set("loop1", "loop/backing_file", "/dev/sdc\n"),
                ..case(
                    "a disk behind a loop device",
                    INSTALLED,
                    "sdc",
                    Expect::Refused("Held", "/dev/sdc is held by /dev/loop1"),
                )
            },
            Case {
                setup: |sys| sys.link("dm-0", "slaves", "nvme0n1p1"),
                ..case(
                    "the disk under a device-mapper root",
                    &dm_root,
                    "nvme0n1",
                    Expect::Refused(
                        "RunningSystem",
                        "/dev/nvme0n1 holds the running system (/ is on /dev/nvme0n1)",
                    ),
                )
            },
            Case {
                setup: |sys| sys.set("loop0", "loop/backing_file", "/iso/rixos.squashfs\n"),
                ..case(
                    "the live medium, mounted at /iso",
                    LIVE,
                    "sdb",
                    Expect::Refused("RunningSystem", "(/iso is on /dev/sdb)"),
                )
            },
            Case {
                setup: |sys| sys.set("loop0", "loop/backing_file", "/iso/rixos.squashfs\n"),
                ..case(
                    "the live medium's partition",
                    LIVE,
                    "sdb1",
                    Expect::Refused("RunningSystem", "/dev/sdb1 holds the running system"),
                )
            },
            Case {
                setup: |sys| sys.set("loop0", "loop/backing_file", "/data/images/rixos.squashfs\n"),
                ..case(
                    "the medium behind the squashfs loop device",
                    LIVE_FROM_DATA,
                    "sdb",
                    Expect::Refused("RunningSystem", "(/nix/.ro-store is on /dev/sdb)"),
                )
            },
            Case {
                setup: |sys| sys.set("loop0", "loop/backing_file", "/run/rixos-ram/rixos.squashfs\n"),
                ..case(
                    "a live medium the store was copied to RAM from",
                    &LIVE
                        .lines()
                        .filter(|l| !l.contains("/iso"))
                        .map(|l| format!("{l}\n"))
                        .collect::<String>(),
                    "sdb",
                    Expect::Accepted,
                )
            },
            Case {
                image_size: 3 * GIB,
                ..case(
                    "a stick smaller than the image",
                    INSTALLED,
                    "sdc",
                    Expect::Refused(
                        "TooSmall",
                        "/dev/sdc is too small: it has 2.0 GiB (2147483648 bytes), the image needs 3.0 GiB",
                    ),
                )
            },
            Case {
                image_size: 2 * GIB,
                ..case(
                    "a stick exactly as large as the image",
                    INSTALLED,
                    "sdc",
                    Expect::Accepted,
                )
            },
            Case {
                setup: |sys| sys.set("sdc", "ro", "1\n"),
                ..case(
                    "a write-protected stick",
                    INSTALLED,
                    "sdc",
                    Expect::Refused("ReadOnly", "/dev/sdc is read-only"),
                )
            },
            Case {
                setup: |sys| sys.set("sdb", "ro", "1\n"),
                ..case(
                    "a partition of a write-protected stick",
                    INSTALLED,
                    "sdb1",
                    Expect::Refused("ReadOnly", "/dev/sdb1 is read-only"),
                )
            },
        ];
        let mut failures = Vec::new();
        for case in cases {
            let sys = machine();
            (case.setup)(&sys);
            let view = sys.view(&case.mountinfo, case.swaps);
            let result = check_block_device(&view, case.target, case.image_size);
            match (&case.expect, &result) {
                (Expect::Accepted, Ok(checked)) if checked.name == case.target => {}
                (Expect::Refused(variant, message), Err(refusal))
                    if format!("{refusal:?}").starts_with(variant) && refusal.to_string().contains(message) => {}
                _ => failures.push(format!("{}: got {result:?}", case.what)),
            }
        }
        assert!(failures.is_empty(), "{}", failures.join("\n"));
    }

    #[test]
    fn devices_are_found_by_number_and_by_name() {
        let sys = machine();
        let view = sys.view(INSTALLED, NO_SWAP);
        assert_eq!(view.name_of_devno((8, 17)).as_deref(), Some("sdb1"));
        assert_eq!(view.name_of_devno((0, 21)), None);
        assert_eq!(view.name_of_path("/dev/sdb1").as_deref(), Some("sdb1"));
        assert_eq!(view.name_of_path("/dev/mapper/vg-data").as_deref(), Some("dm-0"));
        assert_eq!(view.name_of_path("/dev/disk/by-id/nothing"), None);
        assert_eq!(view.name_of_path("/iso/rixos.squashfs"), None);
        assert_eq!(view.whole_disk("sdb1"), "sdb");
        assert_eq!(view.whole_disk("sdb"), "sdb");
        assert_eq!(view.partitions("sda"), ["sda1", "sda2"]);
        assert_eq!(view.size("sdc"), Some(2 * GIB));
        assert_eq!(
            view.system_disks(),
            [
                ("sda".to_owned(), PathBuf::from("/")),
                ("sda".to_owned(), PathBuf::from("/boot"))
            ]
        );
        assert_eq!(split_devno(libc::makedev(259, 70000)), (259, 70000));
    }

    #[test]
    fn mountinfo_and_swaps_are_parsed() {
        let mounts = parse_mountinfo(
            "36 35 98:0 /mnt1 /mnt\\0402 rw,noatime master:1 shared:3 - ext3 /dev/my\\040disk rw,errors=continue\n\n",
        )
        .unwrap();
        assert_eq!(
            mounts,
            [Mount {
                devno: (98, 0),
                mount_point: "/mnt 2".into(),
                fs_type: "ext3".into(),
                source: "/dev/my disk".into()
            }]
        );
        let err = parse_mountinfo("36 35 98:0 /mnt1 /mnt2 rw\n").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        assert_eq!(
            parse_swaps(
                "Filename  Type  Size  Used  Priority\n/dev/sda3 partition 100 0 -2\n/swap\\040file file 10 0 -3\n"
            ),
            ["/dev/sda3", "/swap file"]
        );
        assert_eq!(parse_swaps(""), Vec::<String>::new());
    }

    #[test]
    fn the_description_shows_what_will_be_destroyed() {
        let sys = machine();
        let view = sys.view(INSTALLED, NO_SWAP);
        assert_eq!(
            describe(&view, "sdb").to_string(),
            "/dev/sdb: 16.0 GiB (17179869184 bytes), SanDisk Cruzer Blade\n  partitions: sdb1 (16.0 GiB)"
        );
        assert_eq!(
            describe(&view, "sdc").to_string(),
            "/dev/sdc: 2.0 GiB (2147483648 bytes)\n  no partitions"
        );
        assert!(
            describe(&view, "sdb1")
                .to_string()
                .contains(", a partition of /dev/sdb")
        );
        assert!(confirms("sdb\n", "sdb", Path::new("/dev/sdb")));
        assert!(confirms(" /dev/sdb ", "sdb", Path::new("/dev/sdb")));
        assert!(confirms(
            "/dev/disk/by-id/usb-x",
            "sdb",
            Path::new("/dev/disk/by-id/usb-x")
        ));
        assert!(!confirms("yes", "sdb", Path::new("/dev/sdb")));
        assert!(!confirms("sdb1", "sdb", Path::new("/dev/sdb")));
        assert!(!confirms("", "sdb", Path::new("")));
    }

    #[test]
    fn sha256_files_are_read_in_both_formats() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  other.iso\n{b} *dir/rixos.iso\n");
        assert_eq!(parse_sha256_file(&text, "rixos.iso").unwrap(), [0xbb; 32]);
        assert!(
            parse_sha256_file(&text, "third.iso")
                .unwrap_err()
                .to_string()
                .contains("none for third.iso")
        );
        assert_eq!(
            parse_sha256_file(&format!("{a}  renamed.iso\n"), "rixos.iso").unwrap(),
            [0xaa; 32]
        );
        assert_eq!(parse_sha256_file(&format!("{a}\n"), "rixos.iso").unwrap(), [0xaa; 32]);
        assert_eq!(
            parse_sha256_file(&format!("SHA256 (rixos.iso) = {a}\n"), "rixos.iso").unwrap(),
            [0xaa; 32]
        );
        assert!(parse_sha256_file("xyz  rixos.iso\n", "rixos.iso").is_err());
        assert!(parse_sha256_file("\n", "rixos.iso").is_err());
    }

    // Real writes, into files with --to-file.

    /// An image of two and a bit blocks, so the last block is short, with bytes that differ by position.
    fn image_in(dir: &Path) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..2 * BLOCK_SIZE + 12_345).map(|i| (i * 7 + i / 4096) as u8).collect();
        let path = dir.join("rixos.iso");
        fs::write(&path, &data).unwrap();
        (path, data)
    }

    fn to_file() -> WriteOptions {
        WriteOptions {
            to_file: true,
            yes: true,
            corrupt_at: None,
        }
    }

    fn no_input() -> Prompt<'static> {
        Prompt {
            input: Box::new(io::empty()),
            terminal: false,
        }
    }

    #[test]
    fn an_image_is_written_into_a_file_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (image, data) = image_in(dir.path());
        let target = dir.path().join("stick.img");
        let report = write_image(&image, &target, &to_file(), no_input()).unwrap();
        assert_eq!(report.bytes, data.len() as u64);
        assert_eq!(report.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(fs::read(&target).unwrap(), data);

        // Over a longer existing file, with a matching IMAGE.sha256: the file ends where the image does.
        fs::write(&target, vec![1u8; 3 * BLOCK_SIZE]).unwrap();
        fs::write(
            dir.path().join("rixos.iso.sha256"),
            format!("{}  rixos.iso\n", hex(&report.sha256)),
        )
        .unwrap();
        write_image(&image, &target, &to_file(), no_input()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), data);
    }

    #[test]
    fn a_corrupted_read_back_fails_naming_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        let target = dir.path().join("stick.img");
        let offset = BLOCK_SIZE as u64 + 1000;
        let options = WriteOptions {
            corrupt_at: Some(offset),
            ..to_file()
        };
        let err = write_image(&image, &target, &options, no_input()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("differs from the image at byte 4195304 (block 1 of 4 MiB at byte 4194304)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("writing {} to {}", image.display(), target.display())),
            "{text}"
        );

        let options = WriteOptions {
            corrupt_at: Some(1 << 40),
            ..to_file()
        };
        let err = write_image(&image, &target, &options, no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("outside the"), "{err:#}");
    }

    #[test]
    fn a_wrong_sha256_file_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        fs::write(
            dir.path().join("rixos.iso.sha256"),
            format!("{}  rixos.iso\n", "0".repeat(64)),
        )
        .unwrap();
        let target = dir.path().join("stick.img");
        fs::write(&target, b"precious").unwrap();
        let err = write_image(&image, &target, &to_file(), no_input()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("does not match") && text.contains("nothing was written"),
            "{text}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        let missing = dir.path().join("new.img");
        assert!(write_image(&image, &missing, &to_file(), no_input()).is_err());
        assert!(!missing.exists());

        fs::write(dir.path().join("rixos.iso.sha256"), "not a hash\n").unwrap();
        let err = write_image(&image, &target, &to_file(), no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("rixos.iso.sha256"), "{err:#}");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn targets_that_are_not_block_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        let file = dir.path().join("stick.img");
        fs::write(&file, b"precious").unwrap();
        let options = WriteOptions {
            to_file: false,
            ..to_file()
        };
        let err = write_image(&image, &file, &options, no_input()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Refusal>(),
                Some(Refusal::NotBlockDevice {
                    kind: "regular file",
                    ..
                })
            ),
            "{err:#}"
        );
        assert!(
            format!("{err:#}").contains("stick.img is not a block device but a regular file"),
            "{err:#}"
        );
        let err = write_image(&image, dir.path(), &options, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a block device but a directory"),
            "{err:#}"
        );
        let err = write_image(&image, &dir.path().join("missing"), &options, no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("does not name a device"), "{err:#}");
        let err = write_image(&image, Path::new("/dev/null"), &options, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a block device but a character device"),
            "{err:#}"
        );
        // --to-file writes only files, never devices, and never the image over itself.
        let err = write_image(&image, Path::new("/dev/null"), &to_file(), no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("--to-file writes only regular files"),
            "{err:#}"
        );
        let err = write_image(&image, &image, &to_file(), no_input()).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Refusal>(), Some(Refusal::SameAsImage { .. })),
            "{err:#}"
        );
        assert_eq!(fs::read(&file).unwrap(), b"precious");
    }

    #[test]
    fn overwriting_needs_the_name_typed_or_yes() {
        let dir = tempfile::tempdir().unwrap();
        let (image, data) = image_in(dir.path());
        let file = dir.path().join("stick.img");
        fs::write(&file, b"precious").unwrap();
        let ask = WriteOptions {
            yes: false,
            ..to_file()
        };
        let err = write_image(&image, &file, &ask, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("stdin is not a terminal; add --yes"),
            "{err:#}"
        );
        let wrong = Prompt {
            input: Box::new(&b"yes\n"[..]),
            terminal: true,
        };
        let err = write_image(&image, &file, &ask, wrong).unwrap_err();
        assert!(
            format!("{err:#}").contains("stopped: \"yes\" is not stick.img; nothing was written"),
            "{err:#}"
        );
        assert_eq!(fs::read(&file).unwrap(), b"precious");
        let right = Prompt {
            input: Box::new(&b"stick.img\n"[..]),
            terminal: true,
        };
        write_image(&image, &file, &ask, right).unwrap();
        assert_eq!(fs::read(&file).unwrap(), data);
        // A new file destroys nothing: no question.
        write_image(&image, &dir.path().join("new.img"), &ask, no_input()).unwrap();
    }
}
