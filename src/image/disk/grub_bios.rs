//! GRUB for BIOS, installed as `grub-install` (its `grub-bios-setup`, GRUB's util/setup.c) installs it on a GPT
//! disk with a BIOS boot partition, without running it: boot.img becomes the MBR's code, pointing at core.img,
//! which is embedded at the start of the BIOS boot partition; diskboot (core.img's first sector) loads the rest
//! of core.img from the blocklist at its end. No Reed-Solomon codes are added (as `grub-install --no-rs-codes`):
//! the BIOS boot partition is GRUB's alone, so nothing overwrites the embedded image.
//!
//! Offsets from GRUB's include/grub/i386/pc/boot.h and kernel.h.

use anyhow::{Result, bail};

const SECTOR: usize = 512;
/// The BIOS parameter block that setup.c keeps from the disk's sector 0 (`GRUB_BOOT_MACHINE_BPB_START..END`).
const BPB: std::ops::Range<usize> = 0x3..0x5a;
/// boot.img's `kernel_sector`: the LBA (64-bit) of core.img's first sector.
pub const KERNEL_SECTOR: usize = 0x5c;
/// boot.img's `boot_drive`: 0xFF means "the drive the BIOS booted from".
pub const BOOT_DRIVE: usize = 0x64;
/// boot.img's jump over the boot-drive workaround; two NOPs enable it for hard disks, whose BIOSes may pass
/// a wrong drive number.
pub const DRIVE_CHECK: usize = 0x66;
/// From the Windows NT disk signature to the boot signature: the partition table setup.c keeps.
const PARTITION_TABLE: std::ops::Range<usize> = 0x1b8..0x1fe;
/// One blocklist entry of diskboot: start sector (u64), sector count (u16), load segment (u16).
const BLOCKLIST_ENTRY: usize = 12;
/// The first blocklist entry, at the end of core.img's first sector; further entries go downwards.
pub const FIRST_BLOCKLIST: usize = SECTOR - BLOCKLIST_ENTRY;
/// Where diskboot loads the sectors after itself: GRUB_BOOT_I386_PC_KERNEL_SEG + one sector in paragraphs.
pub const CORE_SEGMENT: u16 = 0x800 + (SECTOR as u16 >> 4);
/// kernel.h's GRUB_KERNEL_I386_PC_NO_REED_SOLOMON_LENGTH, inside core.img's second sector; 0xFFFF there means a
/// core.img of another GRUB version than setup.c knows.
const NO_REED_SOLOMON_LENGTH: usize = 0x14;

/// The disk's first sector and the sectors of the BIOS boot partition after installing GRUB.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BiosInstall {
    pub mbr: [u8; SECTOR],
    /// core.img with its blocklist set, padded to whole sectors: written at `core_lba`.
    pub core: Vec<u8>,
}

/// GRUB's boot.img merged into the disk's current first sector `mbr` (the protective MBR, whose partition table
/// stays) and core.img set up to be loaded from `core_lba`, the first of `room` sectors (the BIOS boot partition).
pub fn install(boot_img: &[u8], core_img: &[u8], mbr: &[u8; SECTOR], core_lba: u64, room: u64) -> Result<BiosInstall> {
    if boot_img.len() != SECTOR {
        bail!(
            "GRUB's boot.img is {} bytes, not {SECTOR}: is it i386-pc's boot.img?",
            boot_img.len()
        );
    }
    if core_img.len() < 2 * SECTOR {
        bail!(
            "GRUB's core.img is only {} bytes: is it a grub-mkimage -O i386-pc image?",
            core_img.len()
        );
    }
    let sectors = core_img.len().div_ceil(SECTOR);
    if sectors as u64 > room {
        bail!(
            "GRUB's core.img ({sectors} sectors) does not fit the BIOS boot partition ({room} sectors): \
             build it with fewer modules"
        );
    }
    let no_rs = &core_img[SECTOR + NO_REED_SOLOMON_LENGTH..SECTOR + NO_REED_SOLOMON_LENGTH + 2];
    if no_rs == [0xff, 0xff] {
        bail!("GRUB's core.img is of another version than its boot.img expects (no Reed-Solomon length)");
    }

    let mut boot = [0; SECTOR];
    boot.copy_from_slice(boot_img);
    boot[BPB].copy_from_slice(&mbr[BPB]);
    boot[DRIVE_CHECK..DRIVE_CHECK + 2].copy_from_slice(&[0x90, 0x90]);
    boot[PARTITION_TABLE].copy_from_slice(&mbr[PARTITION_TABLE]);
    boot[BOOT_DRIVE] = 0xff;
    boot[KERNEL_SECTOR..KERNEL_SECTOR + 8].copy_from_slice(&core_lba.to_le_bytes());

    let mut core = core_img.to_vec();
    core.resize(sectors * SECTOR, 0);
    // Clear grub-mkimage's default blocklist (entries going down from the sector's end until an empty one).
    let mut entry = FIRST_BLOCKLIST;
    while blocklist_len(&core, entry) != 0 {
        core[entry..entry + BLOCKLIST_ENTRY].fill(0);
        if entry < BLOCKLIST_ENTRY {
            bail!("GRUB's core.img has no blocklist terminator in its first sector");
        }
        entry -= BLOCKLIST_ENTRY;
    }
    // The sectors after the first are contiguous: one entry, then the terminator below it.
    if sectors > 1 {
        let rest = u16::try_from(sectors - 1).map_err(|_| anyhow::anyhow!("GRUB's core.img is too large"))?;
        let first = &mut core[FIRST_BLOCKLIST..SECTOR];
        first[0..8].copy_from_slice(&(core_lba + 1).to_le_bytes());
        first[8..10].copy_from_slice(&rest.to_le_bytes());
        first[10..12].copy_from_slice(&CORE_SEGMENT.to_le_bytes());
    }
    core[FIRST_BLOCKLIST - BLOCKLIST_ENTRY..FIRST_BLOCKLIST].fill(0);
    Ok(BiosInstall { mbr: boot, core })
}

/// Installs GRUB's BIOS images on the GPT disk `device` (a block device or an image file): core.img at the
/// start of its BIOS boot partition, boot.img merged into its first sector. Only what differs is written
/// (core.img first, the MBR last, so a crash between leaves the old boot.img pointing at a complete core.img
/// of either version); returns whether anything was.
pub fn install_on_device(device: &std::path::Path, boot_img: &[u8], core_img: &[u8]) -> Result<bool> {
    use anyhow::Context;
    use std::io::{Read, Seek, SeekFrom, Write};
    let disk = gpt::GptConfig::new()
        .writable(false)
        .open(device)
        .with_context(|| format!("reading the GUID partition table of {}", device.display()))?;
    let bios = disk
        .partitions()
        .values()
        .find(|p| p.part_type_guid == gpt::partition_types::BIOS)
        .with_context(|| {
            format!(
                "{} has no BIOS boot partition for GRUB's core.img (boot.loader.grub.device names the disk GRUB \
                 boots BIOS machines from; set it to \"nodev\" for UEFI only)",
                device.display()
            )
        })?;
    let (first, room) = (bios.first_lba, bios.last_lba + 1 - bios.first_lba);
    drop(disk);
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(device)
        .with_context(|| format!("opening {}", device.display()))?;
    let mut mbr = [0; SECTOR];
    file.read_exact(&mut mbr)
        .with_context(|| format!("reading the first sector of {}", device.display()))?;
    let done = install(boot_img, core_img, &mbr, first, room)?;
    let mut present = vec![0; done.core.len()];
    file.seek(SeekFrom::Start(first * SECTOR as u64))?;
    file.read_exact(&mut present)
        .with_context(|| format!("reading the BIOS boot partition of {}", device.display()))?;
    if present == done.core && mbr == done.mbr {
        return Ok(false);
    }
    let written = (|| -> std::io::Result<()> {
        if present != done.core {
            file.seek(SeekFrom::Start(first * SECTOR as u64))?;
            file.write_all(&done.core)?;
            file.sync_data()?;
        }
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&done.mbr)?;
        file.sync_data()
    })();
    written.with_context(|| format!("writing GRUB's BIOS images to {}", device.display()))?;
    Ok(true)
}

fn blocklist_len(core: &[u8], entry: usize) -> u16 {
    u16::from_le_bytes([core[entry + 8], core[entry + 9]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::require_tool;
    use std::path::Path;

    /// A boot.img and core.img shaped as GRUB's: the core's first sector ends with a default blocklist.
    fn fake_images(core_sectors: usize) -> (Vec<u8>, Vec<u8>) {
        let boot: Vec<u8> = (0..SECTOR).map(|i| (i % 251) as u8).collect();
        let mut core = vec![0x11; core_sectors * SECTOR - 100];
        core[FIRST_BLOCKLIST..FIRST_BLOCKLIST + 8].copy_from_slice(&2u64.to_le_bytes());
        core[FIRST_BLOCKLIST + 8..FIRST_BLOCKLIST + 10].copy_from_slice(&((core_sectors - 1) as u16).to_le_bytes());
        core[FIRST_BLOCKLIST + 10..SECTOR].copy_from_slice(&CORE_SEGMENT.to_le_bytes());
        core[FIRST_BLOCKLIST - BLOCKLIST_ENTRY..FIRST_BLOCKLIST].fill(0);
        core[SECTOR + NO_REED_SOLOMON_LENGTH..SECTOR + NO_REED_SOLOMON_LENGTH + 2].copy_from_slice(&[0x20, 0x01]);
        (boot, core)
    }

    fn protective_mbr() -> [u8; SECTOR] {
        let mut mbr = [0; SECTOR];
        mbr[0x1b8..0x1bc].copy_from_slice(&[1, 2, 3, 4]);
        mbr[0x1be..0x1ce].copy_from_slice(&[0, 0, 2, 0, 0xee, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0xff, 0xff, 0x0f, 0]);
        mbr[0x1fe] = 0x55;
        mbr[0x1ff] = 0xaa;
        mbr
    }

    #[test]
    fn patches_the_fields_setup_c_patches() {
        let (boot, core) = fake_images(60);
        let mbr = protective_mbr();
        let done = install(&boot, &core, &mbr, 2048, 2048).unwrap();

        // boot.img's code up to the BPB and after it, the partition table of the disk, its fields set.
        assert_eq!(&done.mbr[..3], &boot[..3]);
        assert_eq!(&done.mbr[BPB], &mbr[BPB], "the disk's BPB area is kept");
        assert_eq!(&done.mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8], &2048u64.to_le_bytes());
        assert_eq!(done.mbr[BOOT_DRIVE], 0xff);
        assert_eq!(&done.mbr[DRIVE_CHECK..DRIVE_CHECK + 2], &[0x90, 0x90]);
        assert_eq!(&done.mbr[0x68..0x1b8], &boot[0x68..0x1b8]);
        assert_eq!(
            &done.mbr[0x1b8..0x1fe],
            &mbr[0x1b8..0x1fe],
            "the partition table is kept"
        );
        assert_eq!(&done.mbr[0x1fe..], &boot[0x1fe..], "boot.img's signature");

        // core.img: padded, one blocklist entry for sectors 2..60 loaded at 0x820, then a terminator.
        assert_eq!(done.core.len(), 60 * SECTOR);
        let entry = &done.core[FIRST_BLOCKLIST..SECTOR];
        assert_eq!(&entry[0..8], &2049u64.to_le_bytes());
        assert_eq!(&entry[8..10], &59u16.to_le_bytes());
        assert_eq!(&entry[10..12], &0x820u16.to_le_bytes());
        assert!(done.core[FIRST_BLOCKLIST - 12..FIRST_BLOCKLIST].iter().all(|b| *b == 0));
        assert_eq!(&done.core[..FIRST_BLOCKLIST - 12], &core[..FIRST_BLOCKLIST - 12]);
        assert_eq!(&done.core[SECTOR..core.len()], &core[SECTOR..]);
        assert!(done.core[core.len()..].iter().all(|b| *b == 0));
    }

    /// On a disk image laid out as rixos' images: core.img lands in the BIOS boot partition, the MBR keeps
    /// its partition table, and installing the same images again writes nothing.
    #[test]
    fn installs_on_a_gpt_disk_once() {
        use crate::image::disk::ids::DiskIds;
        use crate::image::disk::layout::{DiskLayout, write_partition_table};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("disk.img");
        let size = 300 * 1024 * 1024;
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.set_len(size).unwrap();
        let layout = DiskLayout::new(size, 256 * 1024 * 1024).unwrap();
        write_partition_table(&mut file, &layout, &DiskIds::new("test", "test")).unwrap();
        drop(file);
        let before = std::fs::read(&path).unwrap();
        let (boot, core) = fake_images(60);
        assert!(install_on_device(&path, &boot, &core).unwrap());
        let after = std::fs::read(&path).unwrap();
        let first = layout.bios.first_lba as usize * SECTOR;
        assert_eq!(
            &after[first..first + FIRST_BLOCKLIST - 12],
            &core[..FIRST_BLOCKLIST - 12]
        );
        assert_eq!(
            &after[0x1b8..0x1fe],
            &before[0x1b8..0x1fe],
            "the partition table is kept"
        );
        assert_eq!(
            &after[KERNEL_SECTOR..KERNEL_SECTOR + 8],
            &layout.bios.first_lba.to_le_bytes()
        );
        assert_eq!(&after[SECTOR..first], &before[SECTOR..first], "the GPT is untouched");
        assert!(
            !install_on_device(&path, &boot, &core).unwrap(),
            "nothing differs the second time"
        );
        let error = install_on_device(Path::new("/dev/null"), &boot, &core).unwrap_err();
        assert!(format!("{error:#}").contains("/dev/null"), "{error:#}");
    }

    #[test]
    fn refuses_images_that_are_not_grubs_or_do_not_fit() {
        let (boot, core) = fake_images(60);
        let mbr = protective_mbr();
        for (boot, core, room, expected) in [
            (&boot[..100], &core[..], 2048, "boot.img is 100 bytes"),
            (&boot[..], &core[..600], 2048, "core.img is only 600 bytes"),
            (
                &boot[..],
                &core[..],
                40,
                "does not fit the BIOS boot partition (40 sectors)",
            ),
        ] {
            let error = install(boot, core, &mbr, 2048, room).unwrap_err().to_string();
            assert!(error.contains(expected), "{error}");
        }
        let mut other = core.clone();
        other[SECTOR + NO_REED_SOLOMON_LENGTH..SECTOR + NO_REED_SOLOMON_LENGTH + 2].copy_from_slice(&[0xff, 0xff]);
        let error = install(&boot, &other, &mbr, 2048, 2048).unwrap_err().to_string();
        assert!(error.contains("another version"), "{error}");
    }

    /// Debian's boot.img and a core.img from grub-mkimage: the fields are where this module writes them.
    #[test]
    fn installs_debians_grub_images() {
        require_tool("grub-mkimage", "grub-common");
        let modules = std::path::Path::new("/usr/lib/grub/i386-pc");
        assert!(
            modules.join("boot.img").is_file(),
            "this test needs grub-pc-bin (scripts/setup)"
        );
        let dir = tempfile::tempdir().unwrap();
        let core_path = dir.path().join("core.img");
        let status = std::process::Command::new("grub-mkimage")
            .args(["-O", "i386-pc", "-p", "(,gpt2)/grub", "-o"])
            .arg(&core_path)
            .args(["biosdisk", "part_gpt", "fat", "normal"])
            .status()
            .unwrap();
        assert!(status.success());
        let boot = std::fs::read(modules.join("boot.img")).unwrap();
        let core = std::fs::read(&core_path).unwrap();
        let sectors = core.len().div_ceil(SECTOR);
        assert_eq!(
            blocklist_len(&core, FIRST_BLOCKLIST) as usize,
            sectors - 1,
            "grub-mkimage's default"
        );
        // The code boot.img jumps over at DRIVE_CHECK is a short jump (0xEB), as setup.c expects.
        assert_eq!(boot[DRIVE_CHECK], 0xeb);
        let done = install(&boot, &core, &protective_mbr(), 2048, 2048).unwrap();
        assert_eq!(&done.core[FIRST_BLOCKLIST..FIRST_BLOCKLIST + 8], &2049u64.to_le_bytes());
        assert_eq!(blocklist_len(&done.core, FIRST_BLOCKLIST) as usize, sectors - 1);
        assert_eq!(&done.mbr[KERNEL_SECTOR..KERNEL_SECTOR + 8], &2048u64.to_le_bytes());
    }
}
