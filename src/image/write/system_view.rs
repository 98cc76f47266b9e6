//! What the checks look at, read from the running system or from fixtures: mounts (/proc/self/mountinfo),
//! active swap (/proc/swaps) and the block devices in sysfs, with the questions the checks ask of them.

use std::collections::BTreeSet;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

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

    pub(super) fn class_dir(&self, name: &str) -> PathBuf {
        self.sysfs.join("class/block").join(name)
    }

    pub(super) fn attribute(&self, name: &str, file: &str) -> Option<String> {
        let text = fs::read_to_string(self.class_dir(name).join(file)).ok()?;
        Some(text.trim().to_owned()).filter(|t| !t.is_empty())
    }

    pub(super) fn names_in(&self, name: &str, dir: &str) -> Vec<String> {
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

    pub(super) fn names_in_class(&self) -> Vec<String> {
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

    pub(super) fn is_partition(&self, name: &str) -> bool {
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

    pub(super) fn read_only(&self, name: &str) -> bool {
        self.attribute(name, "ro").is_some_and(|ro| ro != "0")
    }

    /// The file behind a loop device, as the kernel gives it.
    pub(super) fn loop_backing_file(&self, name: &str) -> Option<String> {
        self.attribute(name, "loop/backing_file")
    }

    /// The mount a path is on: the longest mount point above it (the last one mounted, when stacked).
    pub(super) fn mount_containing(&self, path: &Path) -> Option<&Mount> {
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
    pub(super) fn underlying_disks(&self, name: &str, found: &mut BTreeSet<String>) {
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

#[cfg(test)]
mod tests {
    use super::super::fake_sysfs::*;
    use super::*;

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
}
