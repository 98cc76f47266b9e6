//! The checks a block device must pass before anything is written to it, why one is refused, and what the
//! user is shown (and must confirm) before it is overwritten.

use std::fmt;
use std::path::{Path, PathBuf};

use super::system_view::SystemView;
use crate::progress::human_size;

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

#[cfg(test)]
mod tests {
    use super::super::fake_sysfs::*;
    use super::*;

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
}
