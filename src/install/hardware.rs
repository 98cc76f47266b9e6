//! `hardware-configuration.nix`: what this machine's hardware needs, found in sysfs and procfs as NixOS's
//! nixos-generate-config finds it. The drivers of its storage and USB controllers (each PCI device's bound
//! module), the disk drivers, QEMU's virtio drivers when the machine is a QEMU guest, KVM for the CPU, and the
//! file systems and swap partitions mounted under a root, by UUID. Sorted, so the installer's file and a later
//! `rixos generate-config` on the installed machine are the same text.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::plan::nix_string;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Hardware {
    pub initrd_available: BTreeSet<String>,
    pub initrd_modules: BTreeSet<String>,
    pub kernel_modules: BTreeSet<String>,
    /// (mount point, device, type), in mount point order.
    pub file_systems: Vec<(String, String, String)>,
    /// Swap partitions' devices.
    pub swaps: Vec<String>,
}

/// The modules NixOS's QEMU guest profile adds: virtio's disk, network and console drivers.
const QEMU_AVAILABLE: &[&str] = &["virtio_net", "virtio_pci", "virtio_mmio", "virtio_blk", "virtio_scsi"];
const QEMU_MODULES: &[&str] = &["virtio_balloon", "virtio_console", "virtio_rng"];
/// File systems that live on a disk.
const DISK_FILESYSTEMS: &[&str] = &["ext2", "ext3", "ext4", "xfs", "btrfs", "vfat", "f2fs"];

impl Hardware {
    /// The drivers this machine needs, from `sys` (`/sys`) and `cpuinfo` (`/proc/cpuinfo`'s text).
    pub fn drivers(sys: &Path, cpuinfo: &str) -> Hardware {
        let mut hw = Hardware::default();
        let mut qemu = false;
        for device in read_dir_sorted(&sys.join("bus/pci/devices")) {
            let class = read_trimmed(&device.join("class")).unwrap_or_default();
            let vendor = read_trimmed(&device.join("vendor")).unwrap_or_default();
            // Mass storage (0x01....), USB controllers (0x0c03..), FireWire (0x0c00..).
            let wanted = class.starts_with("0x01") || class.starts_with("0x0c03") || class.starts_with("0x0c00");
            if vendor == "0x1af4" {
                qemu = true;
            }
            if wanted
                && let Ok(module) = std::fs::read_link(device.join("driver/module"))
                && let Some(name) = module.file_name()
            {
                hw.initrd_available.insert(name.to_string_lossy().into_owned());
            }
        }
        for disk in read_dir_sorted(&sys.join("block")) {
            let name = disk
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let driver = if name.starts_with("sd") {
                "sd_mod"
            } else if name.starts_with("vd") {
                "virtio_blk"
            } else if name.starts_with("nvme") {
                "nvme"
            } else if name.starts_with("mmcblk") {
                "mmc_block"
            } else {
                continue;
            };
            hw.initrd_available.insert(driver.to_string());
        }
        let vendor = read_trimmed(&sys.join("class/dmi/id/sys_vendor")).unwrap_or_default();
        if vendor == "QEMU" || qemu {
            hw.initrd_available.extend(QEMU_AVAILABLE.iter().map(|m| m.to_string()));
            hw.initrd_modules.extend(QEMU_MODULES.iter().map(|m| m.to_string()));
        }
        let flags: BTreeSet<&str> = cpuinfo
            .lines()
            .find(|l| l.starts_with("flags"))
            .and_then(|l| l.split_once(':'))
            .map(|(_, f)| f.split_whitespace().collect())
            .unwrap_or_default();
        if flags.contains("vmx") {
            hw.kernel_modules.insert("kvm-intel".to_string());
        } else if flags.contains("svm") {
            hw.kernel_modules.insert("kvm-amd".to_string());
        }
        hw
    }

    /// This machine's drivers and the disk file systems and swap partitions mounted at and under `root`.
    pub fn detect(root: &Path) -> Result<Hardware> {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let mut hw = Hardware::drivers(Path::new("/sys"), &cpuinfo);
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").context("reading /proc/self/mountinfo")?;
        let uuids = by_uuid(Path::new("/dev/disk/by-uuid"));
        hw.file_systems = mounted_under(&mountinfo, root, &uuids);
        let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
        hw.swaps = swaps
            .lines()
            .skip(1)
            .filter(|l| l.split_whitespace().nth(1) == Some("partition"))
            .filter_map(|l| l.split_whitespace().next())
            .map(|dev| device_name(dev, &uuids))
            .collect();
        hw.swaps.sort();
        Ok(hw)
    }
}

/// Each `/dev/disk/by-uuid` link by the device it names.
fn by_uuid(dir: &Path) -> Vec<(PathBuf, String)> {
    let mut out = Vec::new();
    for entry in read_dir_sorted(dir) {
        if let Ok(device) = std::fs::canonicalize(&entry) {
            out.push((device, entry.display().to_string()));
        }
    }
    out
}

fn device_name(device: &str, uuids: &[(PathBuf, String)]) -> String {
    let real = std::fs::canonicalize(device).unwrap_or_else(|_| PathBuf::from(device));
    uuids
        .iter()
        .find(|(d, _)| *d == real)
        .map(|(_, name)| name.clone())
        .unwrap_or_else(|| device.to_string())
}

/// The disk file systems of `mountinfo` at and under `root` (bind mounts left out), their devices by UUID.
fn mounted_under(mountinfo: &str, root: &Path, uuids: &[(PathBuf, String)]) -> Vec<(String, String, String)> {
    let mut found: std::collections::BTreeMap<String, (String, String)> = Default::default();
    for line in mountinfo.lines() {
        let Some((left, right)) = line.split_once(" - ") else {
            continue;
        };
        let fields: Vec<&str> = left.split(' ').collect();
        let theirs: Vec<&str> = right.split(' ').collect();
        let (Some(source_root), Some(point), Some(fstype), Some(source)) =
            (fields.get(3), fields.get(4), theirs.first(), theirs.get(1))
        else {
            continue;
        };
        if *source_root != "/" || !DISK_FILESYSTEMS.contains(fstype) || !source.starts_with("/dev/") {
            continue;
        }
        let point = unescape(point);
        let Ok(relative) = Path::new(&point).strip_prefix(root) else {
            continue;
        };
        let at = format!("/{}", relative.display());
        found.insert(at, (device_name(source, uuids), fstype.to_string()));
    }
    found.into_iter().map(|(at, (dev, fs))| (at, dev, fs)).collect()
}

/// mountinfo writes space, tab, newline and backslash as octal escapes.
fn unescape(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            let digits: String = chars.clone().take(3).collect();
            if let Ok(byte) = u8::from_str_radix(&digits, 8) {
                out.push(byte as char);
                chars.nth(2);
                continue;
            }
        }
        out.push(c);
    }
    out
}

fn read_trimmed(path: &Path) -> Option<String> {
    std::fs::read_to_string(path).ok().map(|s| s.trim().to_string())
}

fn read_dir_sorted(dir: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    entries
}

fn list(items: &BTreeSet<String>) -> String {
    if items.is_empty() {
        return "[ ]".to_string();
    }
    let inner: Vec<String> = items.iter().map(|i| nix_string(i)).collect();
    format!("[ {} ]", inner.join(" "))
}

/// The file's text.
pub fn hardware_configuration(hw: &Hardware) -> String {
    let mut s = String::from(
        "# This machine's hardware, found by `rixos generate-config`: its file systems and the drivers its disks\n\
         # and controllers need. Run `rixos generate-config` again after changing them rather than editing this.\n\
         { config, lib, ... }:\n{\n",
    );
    let _ = writeln!(
        s,
        "  boot.initrd.availableKernelModules = {};",
        list(&hw.initrd_available)
    );
    let _ = writeln!(s, "  boot.initrd.kernelModules = {};", list(&hw.initrd_modules));
    let _ = writeln!(s, "  boot.kernelModules = {};", list(&hw.kernel_modules));
    s.push('\n');
    for (at, device, fstype) in &hw.file_systems {
        let options = if fstype == "vfat" {
            " options = [ \"fmask=0077\" \"dmask=0077\" ];"
        } else {
            ""
        };
        let _ = writeln!(
            s,
            "  fileSystems.{} = {{ device = {}; fsType = {};{options} }};",
            nix_string(at),
            nix_string(device),
            nix_string(fstype)
        );
    }
    let swaps: Vec<String> = hw
        .swaps
        .iter()
        .map(|d| format!("{{ device = {}; }}", nix_string(d)))
        .collect();
    if swaps.is_empty() {
        let _ = writeln!(s, "\n  swapDevices = [ ];");
    } else {
        let _ = writeln!(s, "\n  swapDevices = [ {} ];", swaps.join(" "));
    }
    s.push_str("}\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn drivers_come_from_the_pci_devices_disks_and_cpu() {
        let sys = tempfile::tempdir().unwrap();
        let pci = sys.path().join("bus/pci/devices");
        let module_dir = sys.path().join("module");
        for (slot, class, vendor, module) in [
            ("0000:00:01.1", "0x010180", "0x8086", Some("ata_piix")),
            ("0000:00:04.0", "0x010000", "0x1af4", Some("virtio_pci")),
            ("0000:00:05.0", "0x0c0330", "0x1b36", Some("xhci_pci")),
            ("0000:00:02.0", "0x030000", "0x1234", Some("bochs")),
            ("0000:00:06.0", "0x010601", "0x8086", None),
        ] {
            let dev = pci.join(slot);
            std::fs::create_dir_all(dev.join("driver")).unwrap();
            std::fs::write(dev.join("class"), format!("{class}\n")).unwrap();
            std::fs::write(dev.join("vendor"), format!("{vendor}\n")).unwrap();
            if let Some(module) = module {
                std::fs::create_dir_all(module_dir.join(module)).unwrap();
                symlink(module_dir.join(module), dev.join("driver/module")).unwrap();
            }
        }
        std::fs::create_dir_all(sys.path().join("block/vda")).unwrap();
        std::fs::create_dir_all(sys.path().join("block/loop0")).unwrap();
        let hw = Hardware::drivers(sys.path(), "vendor_id : AuthenticAMD\nflags : fpu svm sse\n");
        let available: Vec<&str> = hw.initrd_available.iter().map(String::as_str).collect();
        assert_eq!(
            available,
            [
                "ata_piix",
                "virtio_blk",
                "virtio_mmio",
                "virtio_net",
                "virtio_pci",
                "virtio_scsi",
                "xhci_pci"
            ],
            "the display driver is no boot driver; virtio means a QEMU guest"
        );
        assert!(hw.initrd_modules.contains("virtio_console"));
        assert_eq!(hw.kernel_modules.iter().collect::<Vec<_>>(), ["kvm-amd"]);
    }

    #[test]
    fn file_systems_under_the_root_by_uuid_without_binds_or_virtual_ones() {
        let mountinfo = "\
22 1 254:3 / /mnt rw,relatime shared:1 - ext4 /dev/vda3 rw\n\
23 22 254:2 / /mnt/boot rw shared:2 - vfat /dev/vda2 rw,fmask=0077\n\
24 22 254:3 /nix/store /mnt/nix/store ro shared:1 - ext4 /dev/vda3 rw\n\
25 1 0:5 / /mnt/proc rw - proc proc rw\n\
26 1 254:17 / /srv/data rw - xfs /dev/vdb1 rw\n\
27 22 254:18 / /mnt/home\\040dir rw - xfs /dev/vdb2 rw\n";
        let uuids = vec![(PathBuf::from("/dev/vda3"), "/dev/disk/by-uuid/1234".to_string())];
        let found = mounted_under(mountinfo, Path::new("/mnt"), &uuids);
        assert_eq!(
            found,
            [
                (
                    "/".to_string(),
                    "/dev/disk/by-uuid/1234".to_string(),
                    "ext4".to_string()
                ),
                ("/boot".to_string(), "/dev/vda2".to_string(), "vfat".to_string()),
                ("/home dir".to_string(), "/dev/vdb2".to_string(), "xfs".to_string()),
            ]
        );
        let text = hardware_configuration(&Hardware {
            file_systems: found,
            swaps: vec!["/dev/disk/by-uuid/5678".into()],
            ..Hardware::default()
        });
        assert!(text.contains("fileSystems.\"/boot\" = { device = \"/dev/vda2\"; fsType = \"vfat\"; options = [ \"fmask=0077\" \"dmask=0077\" ]; };"), "{text}");
        assert!(
            text.contains("swapDevices = [ { device = \"/dev/disk/by-uuid/5678\"; } ];"),
            "{text}"
        );
        assert!(text.contains("boot.initrd.kernelModules = [ ];"), "{text}");
    }
}
