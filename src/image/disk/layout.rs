//! Where each partition of a disk image lies, and its GUID partition table (the `gpt` crate) with a protective
//! MBR. One layout boots on both firmware kinds, as NixOS's hybrid images: a BIOS boot partition for GRUB's
//! core.img, the ESP (mounted at /boot) and the root file system filling the rest. Every partition starts on
//! a MiB boundary.

use std::collections::BTreeMap;
use std::fs::File;

use anyhow::{Context, Result, bail};
use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition::Partition;
use gpt::partition_types;

use super::ids::DiskIds;

pub const SECTOR: u64 = 512;
pub const MIB: u64 = 1 << 20;
/// The BIOS boot partition's size: core.img needs well under 100 KiB, GRUB's documentation asks for 1 MiB.
pub const BIOS_BOOT_SIZE: u64 = MIB;
/// The smallest ESP: from this size on `image::esp` writes FAT32, which UEFI requires of system partitions.
pub const MIN_ESP_SIZE: u64 = crate::image::esp::FAT32_FROM;
/// The partition labels, as the interface of issue 16 fixes them (fileSystems names the file systems' labels).
pub const BIOS_NAME: &str = "bios";
pub const ESP_NAME: &str = "ESP";
pub const ROOT_NAME: &str = "rixos";

/// A run of sectors on the disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Extent {
    pub first_lba: u64,
    pub sectors: u64,
}

impl Extent {
    pub fn offset(&self) -> u64 {
        self.first_lba * SECTOR
    }

    /// Its size in bytes (`bytes`, not `len`: an extent is never empty, so it has no `is_empty`).
    pub fn bytes(&self) -> u64 {
        self.sectors * SECTOR
    }

    fn last_lba(&self) -> u64 {
        self.first_lba + self.sectors - 1
    }
}

/// The three partitions of a disk of `disk_size` bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskLayout {
    pub disk_size: u64,
    pub bios: Extent,
    pub esp: Extent,
    pub root: Extent,
}

impl DiskLayout {
    /// The layout of a disk of `disk_size` bytes (whole MiB) with an ESP of `esp_size` bytes (whole MiB): the
    /// first MiB holds the MBR and the primary GPT, the last MiB the backup GPT.
    pub fn new(disk_size: u64, esp_size: u64) -> Result<DiskLayout> {
        if !disk_size.is_multiple_of(MIB) || !esp_size.is_multiple_of(MIB) {
            bail!("disk size {disk_size} and ESP size {esp_size} must be whole MiB");
        }
        if esp_size < MIN_ESP_SIZE {
            bail!(
                "an ESP of {} MiB is too small: give espSize at least {} (MiB), so FAT32 fits",
                esp_size / MIB,
                MIN_ESP_SIZE / MIB
            );
        }
        let extent = |start: u64, len: u64| Extent {
            first_lba: start / SECTOR,
            sectors: len / SECTOR,
        };
        let bios = extent(MIB, BIOS_BOOT_SIZE);
        let esp = extent(MIB + BIOS_BOOT_SIZE, esp_size);
        let root_start = esp.offset() + esp.bytes();
        let root_end = disk_size.saturating_sub(MIB);
        if root_end < root_start + 16 * MIB {
            bail!(
                "a disk of {} MiB leaves no room for the root file system after the ESP of {} MiB",
                disk_size / MIB,
                esp_size / MIB
            );
        }
        Ok(DiskLayout {
            disk_size,
            bios,
            esp,
            root: extent(root_start, root_end - root_start),
        })
    }
}

/// Writes the protective MBR and both GPTs of `layout` into `disk` (already `layout.disk_size` long), with
/// the disk and partition GUIDs of `ids`.
pub fn write_partition_table(disk: &mut File, layout: &DiskLayout, ids: &DiskIds) -> Result<()> {
    let mut gpt = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut *disk, Some(ids.uuid("disk")))
        .context("starting the GUID partition table")?;
    let partition = |name: &str, kind: partition_types::Type, extent: Extent| Partition {
        part_type_guid: kind,
        part_guid: ids.uuid(&format!("partition {name}")),
        first_lba: extent.first_lba,
        last_lba: extent.last_lba(),
        flags: 0,
        name: name.to_string(),
    };
    let partitions = BTreeMap::from([
        (1, partition(BIOS_NAME, partition_types::BIOS, layout.bios)),
        (2, partition(ESP_NAME, partition_types::EFI, layout.esp)),
        (3, partition(ROOT_NAME, partition_types::LINUX_FS, layout.root)),
    ]);
    gpt.update_partitions(partitions).context("laying out the partitions")?;
    gpt.write().context("writing the GUID partition table")?;
    let sectors = u32::try_from(layout.disk_size / SECTOR - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(sectors)
        .overwrite_lba0(disk)
        .context("writing the protective MBR")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::require_tool;
    use std::process::Command;

    fn table_of(size_mib: u64, esp_mib: u64) -> (tempfile::TempDir, std::path::PathBuf, DiskLayout) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let layout = DiskLayout::new(size_mib * MIB, esp_mib * MIB).unwrap();
        let mut file = File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(layout.disk_size).unwrap();
        let ids = DiskIds::new("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system", "rixos");
        write_partition_table(&mut file, &layout, &ids).unwrap();
        (dir, path, layout)
    }

    #[test]
    fn sgdisk_and_sfdisk_read_back_the_layout() {
        require_tool("sgdisk", "gdisk");
        require_tool("sfdisk", "fdisk");
        let (_dir, path, layout) = table_of(600, 256);
        let ids = DiskIds::new("/nix/store/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-system", "rixos");
        let out = Command::new("sgdisk").arg("-v").arg(&path).output().unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.contains("No problems found"), "sgdisk -v: {text}");

        let out = Command::new("sfdisk").arg("-d").arg(&path).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let dump = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(dump.contains("label: gpt"), "{dump}");
        let disk_guid = ids.uuid("disk").to_string().to_uppercase();
        assert!(dump.contains(&format!("label-id: {disk_guid}")), "{dump}");
        let expected = [
            (layout.bios, "21686148-6449-6E6F-744E-656564454649", "bios"),
            (layout.esp, "C12A7328-F81F-11D2-BA4B-00A0C93EC93B", "ESP"),
            (layout.root, "0FC63DAF-8483-4772-8E79-3D69D8477DE4", "rixos"),
        ];
        for (n, (extent, kind, name)) in expected.iter().enumerate() {
            let guid = ids.uuid(&format!("partition {name}")).to_string().to_uppercase();
            let line = format!(
                "disk.img{} : start={:>12}, size={:>12}, type={kind}, uuid={guid}, name=\"{name}\"",
                n + 1,
                extent.first_lba,
                extent.sectors
            );
            assert!(dump.contains(&line), "expected {line:?} in\n{dump}");
        }
        assert_eq!(
            layout.root.offset() + layout.root.bytes(),
            599 * MIB,
            "the last MiB holds the backup GPT"
        );

        // The protective MBR covers the whole disk with one 0xEE partition.
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes[0x1be + 4], 0xee);
        assert_eq!(&bytes[0x1fe..0x200], &[0x55, 0xaa]);
    }

    #[test]
    fn the_same_inputs_give_the_same_table() {
        let (_a, first, _) = table_of(300, 256);
        let (_b, second, _) = table_of(300, 256);
        assert!(std::fs::read(first).unwrap() == std::fs::read(second).unwrap());
    }

    #[test]
    fn refuses_sizes_that_do_not_fit() {
        for (disk, esp, expected) in [
            (300, 128, "too small: give espSize at least 256"),
            (270, 256, "leaves no room for the root file system"),
        ] {
            let error = DiskLayout::new(disk * MIB, esp * MIB).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
    }
}
