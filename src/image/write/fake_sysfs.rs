//! Test fixtures for the checks: a fake sysfs tree with a machine's disks, and mountinfo of an installed and
//! of a live system.

use std::fs;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use super::system_view::{SystemView, parse_mountinfo, parse_swaps};

/// A sysfs tree in a tempdir: disks under devices/virtual/block, linked from class/block and dev/block.
pub struct FakeSys {
    dir: tempfile::TempDir,
}

impl FakeSys {
    pub fn new() -> FakeSys {
        let sys = FakeSys {
            dir: tempfile::tempdir().unwrap(),
        };
        fs::create_dir_all(sys.root().join("class/block")).unwrap();
        fs::create_dir_all(sys.root().join("dev/block")).unwrap();
        fs::create_dir_all(sys.dir.path().join("dev")).unwrap();
        sys
    }

    pub fn root(&self) -> PathBuf {
        self.dir.path().join("sys")
    }

    pub fn add(&self, relative: &str, name: &str, devno: (u32, u32), sectors: u64) {
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
    pub fn disk(&self, name: &str, major: u32, first_minor: u32, sectors: u64, partitions: &[(u32, u64)]) {
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

    pub fn set(&self, name: &str, file: &str, text: &str) {
        let path = self.root().join("class/block").join(name).join(file);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, text).unwrap();
    }

    pub fn link(&self, from: &str, dir: &str, to: &str) {
        symlink(
            format!("../../{to}"),
            self.root().join("class/block").join(from).join(dir).join(to),
        )
        .unwrap();
    }

    pub fn view(&self, mountinfo: &str, swaps: &str) -> SystemView {
        SystemView {
            sysfs: self.root(),
            dev: self.dir.path().join("dev"),
            mounts: parse_mountinfo(mountinfo).unwrap(),
            swaps: parse_swaps(swaps),
        }
    }
}

pub const GIB: u64 = 1024 * 1024 * 1024;

/// sda (the installed system's disk), sdb (a 16 GiB USB stick with one partition), sdc (a 2 GiB one),
/// nvme0n1 (a second disk, with LVM on p1), loop0 and loop1.
pub fn machine() -> FakeSys {
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
pub const INSTALLED: &str = "\
22 1 8:2 / / rw,relatime shared:1 - ext4 /dev/sda2 rw
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
24 22 0:22 / /sys rw,nosuid shared:3 - sysfs sysfs rw
25 22 0:5 / /dev rw,nosuid shared:4 - devtmpfs devtmpfs rw,size=4096k
26 22 8:1 / /boot rw,relatime shared:5 - vfat /dev/sda1 rw,fmask=0022
27 22 0:25 / /run rw,nosuid,nodev shared:6 - tmpfs tmpfs rw,mode=755
";

/// A live system booted from sdb: the medium at /iso, the squashfs on loop0 at /nix/.ro-store, an
/// overlay at /nix/store.
pub const LIVE: &str = "\
22 1 0:20 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755
23 22 0:21 / /proc rw,nosuid shared:2 - proc proc rw
26 22 8:16 / /iso ro,relatime shared:5 - iso9660 /dev/sdb ro
27 22 7:0 / /nix/.ro-store ro,relatime shared:6 - squashfs /dev/loop0 ro
28 22 0:30 / /nix/.rw-store rw,relatime shared:7 - tmpfs tmpfs rw,mode=755
29 22 0:31 / /nix/store rw,relatime shared:8 - overlay overlay rw,lowerdir=/nix/.ro-store,upperdir=/nix/.rw-store/store
";

/// A live system whose squashfs is a file on sdb1, mounted at /data.
pub const LIVE_FROM_DATA: &str = "\
22 1 0:20 / / rw,relatime shared:1 - tmpfs tmpfs rw,mode=755
26 22 8:17 / /data rw,relatime shared:5 - ext4 /dev/sdb1 rw
27 22 7:0 / /nix/.ro-store ro,relatime shared:6 - squashfs /dev/loop0 ro
29 22 0:31 / /nix/store rw,relatime shared:8 - overlay overlay rw,lowerdir=/nix/.ro-store
";

pub const NO_SWAP: &str = "Filename\t\t\t\tType\t\tSize\t\tUsed\t\tPriority\n";
