//! Which filesystem is on a device, with its label and UUID, read from the device's first bytes the way
//! blkid reads them: ext2/3/4, iso9660, vfat, squashfs and swap.
//!
//! Pure: works on a byte buffer (the first `PROBE_BYTES` of the device, or fewer if it is smaller); never
//! panics on short or garbage input.

/// How much of a device to read: enough for the iso9660 primary volume descriptor at 32 KiB.
pub(crate) const PROBE_BYTES: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Filesystem {
    pub(crate) fstype: &'static str,
    pub(crate) label: Option<String>,
    pub(crate) uuid: Option<String>,
}

/// The filesystem in `head`, if one is recognised.
pub(crate) fn probe(head: &[u8]) -> Option<Filesystem> {
    // iso9660 first: a hybrid ISO also has an MBR (and sometimes a FAT boot sector) at the start.
    iso9660(head)
        .or_else(|| ext(head))
        .or_else(|| squashfs(head))
        .or_else(|| swap(head))
        .or_else(|| vfat(head))
}

fn bytes(head: &[u8], at: usize, len: usize) -> Option<&[u8]> {
    head.get(at..at.checked_add(len)?)
}

fn le16(head: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(bytes(head, at, 2)?.try_into().ok()?))
}

fn le32(head: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(bytes(head, at, 4)?.try_into().ok()?))
}

/// A NUL-padded label; `None` when empty.
fn c_label(raw: &[u8]) -> Option<String> {
    let end = raw.iter().position(|&b| b == 0).unwrap_or(raw.len());
    let label = String::from_utf8_lossy(&raw[..end]).into_owned();
    (!label.is_empty()).then_some(label)
}

/// A space-padded label (iso9660, FAT); `None` when blank.
fn padded_label(raw: &[u8]) -> Option<String> {
    let label = String::from_utf8_lossy(raw).trim_end_matches([' ', '\0']).to_string();
    (!label.is_empty()).then_some(label)
}

/// 16 bytes as 8-4-4-4-12 lowercase hex, in byte order (ext4 and swap store UUIDs big-endian); all zeros
/// is no UUID.
pub(crate) fn uuid_string(raw: &[u8]) -> Option<String> {
    if raw.len() != 16 || raw.iter().all(|&b| b == 0) {
        return None;
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Some(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

const EXT_SUPERBLOCK: usize = 1024;

fn ext(head: &[u8]) -> Option<Filesystem> {
    let sb = bytes(head, EXT_SUPERBLOCK, 1024)?;
    if le16(sb, 56)? != 0xEF53 {
        return None;
    }
    let compat = le32(sb, 92)?;
    let incompat = le32(sb, 96)?;
    let ro_compat = le32(sb, 100)?;
    const COMPAT_HAS_JOURNAL: u32 = 0x4;
    const INCOMPAT_JOURNAL_DEV: u32 = 0x8;
    // What ext3 also has; anything beyond these (extents, 64bit, flex_bg, huge_file, ...) is ext4, as blkid says.
    const INCOMPAT_EXT3: u32 = 0x2 | 0x4 | 0x10; // filetype, recover, meta_bg
    const RO_COMPAT_EXT3: u32 = 0x1 | 0x2 | 0x4; // sparse_super, large_file, btree_dir
    let fstype = if incompat & INCOMPAT_JOURNAL_DEV != 0 {
        "jbd"
    } else if incompat & !INCOMPAT_EXT3 != 0 || ro_compat & !RO_COMPAT_EXT3 != 0 {
        "ext4"
    } else if compat & COMPAT_HAS_JOURNAL != 0 {
        "ext3"
    } else {
        "ext2"
    };
    Some(Filesystem {
        fstype,
        uuid: uuid_string(&sb[104..120]),
        label: c_label(&sb[120..136]),
    })
}

const ISO_PRIMARY_DESCRIPTOR: usize = 32 * 1024;

fn iso9660(head: &[u8]) -> Option<Filesystem> {
    let pvd = bytes(head, ISO_PRIMARY_DESCRIPTOR, 2048)?;
    if pvd[0] != 1 || &pvd[1..6] != b"CD001" {
        return None;
    }
    // blkid makes the UUID from the modification date, or the creation date when that is unset.
    let uuid = iso_date_uuid(&pvd[830..847]).or_else(|| iso_date_uuid(&pvd[813..830]));
    Some(Filesystem {
        fstype: "iso9660",
        label: padded_label(&pvd[40..72]),
        uuid,
    })
}

/// An iso9660 date (16 digits and a time zone byte) as `YYYY-MM-DD-HH-MM-SS-CC`; all zeros is unset.
fn iso_date_uuid(date: &[u8]) -> Option<String> {
    let digits = &date[..16];
    if digits.iter().all(|&b| b == b'0') && date[16] == 0 {
        return None;
    }
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let d = String::from_utf8_lossy(digits);
    Some(format!(
        "{}-{}-{}-{}-{}-{}-{}",
        &d[0..4],
        &d[4..6],
        &d[6..8],
        &d[8..10],
        &d[10..12],
        &d[12..14],
        &d[14..16]
    ))
}

fn vfat(head: &[u8]) -> Option<Filesystem> {
    let boot = bytes(head, 0, 512)?;
    if boot[510..512] != [0x55, 0xAA] {
        return None;
    }
    // The BIOS parameter block must be sane, or this is just an MBR.
    let bytes_per_sector = le16(boot, 0x0B)?;
    let sectors_per_cluster = boot[0x0D];
    let reserved_sectors = le16(boot, 0x0E)?;
    let fat_count = boot[0x10];
    if !matches!(bytes_per_sector, 512 | 1024 | 2048 | 4096)
        || !sectors_per_cluster.is_power_of_two()
        || reserved_sectors == 0
        || !matches!(fat_count, 1 | 2)
    {
        return None;
    }
    // FAT32 has no 16-bit FAT size and an extended boot record at 0x40; FAT12/16 have theirs at 0x24.
    let fat32 = le16(boot, 0x16)? == 0;
    let (signature_at, serial_at, label_at, type_at) = if fat32 {
        (0x42, 0x43, 0x47, 0x52)
    } else {
        (0x26, 0x27, 0x2B, 0x36)
    };
    // Boot code of an MBR can look like a parameter block; the type string that every formatter writes cannot.
    if !boot[type_at..type_at + 8].starts_with(b"FAT") {
        return None;
    }
    let has_extended_record = matches!(boot[signature_at], 0x28 | 0x29);
    let label = has_extended_record
        .then(|| padded_label(&boot[label_at..label_at + 11]))
        .flatten()
        .filter(|label| label != "NO NAME");
    let uuid = has_extended_record.then(|| {
        let serial = le32(boot, serial_at).unwrap_or(0);
        format!("{:04X}-{:04X}", serial >> 16, serial & 0xFFFF)
    });
    Some(Filesystem {
        fstype: "vfat",
        label,
        uuid,
    })
}

fn squashfs(head: &[u8]) -> Option<Filesystem> {
    (bytes(head, 0, 4)? == b"hsqs").then_some(Filesystem {
        fstype: "squashfs",
        label: None,
        uuid: None,
    })
}

/// Linux swap (version 1, 4 KiB pages): the signature ends the first page, the header follows the boot block.
fn swap(head: &[u8]) -> Option<Filesystem> {
    if bytes(head, 4096 - 10, 10)? != b"SWAPSPACE2" {
        return None;
    }
    let header = bytes(head, 1024, 64)?;
    Some(Filesystem {
        fstype: "swap",
        uuid: uuid_string(&header[12..28]),
        label: c_label(&header[28..44]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext_image(compat: u32, incompat: u32, ro_compat: u32) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        let sb = EXT_SUPERBLOCK;
        img[sb + 56..sb + 58].copy_from_slice(&0xEF53u16.to_le_bytes());
        img[sb + 92..sb + 96].copy_from_slice(&compat.to_le_bytes());
        img[sb + 96..sb + 100].copy_from_slice(&incompat.to_le_bytes());
        img[sb + 100..sb + 104].copy_from_slice(&ro_compat.to_le_bytes());
        let uuid: Vec<u8> = (0x10..0x20).collect();
        img[sb + 104..sb + 120].copy_from_slice(&uuid);
        img[sb + 120..sb + 125].copy_from_slice(b"rixos");
        img
    }

    #[test]
    fn ext_flavours() {
        // What mkfs.ext4 sets by default: has_journal, ext_attr, ...; filetype, extents, 64bit, flex_bg; ...
        let ext4 = probe(&ext_image(0x3c, 0x2c2, 0x46b)).unwrap();
        assert_eq!(
            ext4,
            Filesystem {
                fstype: "ext4",
                label: Some("rixos".into()),
                uuid: Some("10111213-1415-1617-1819-1a1b1c1d1e1f".into())
            }
        );
        assert_eq!(probe(&ext_image(0x3c, 0x2, 0x3)).unwrap().fstype, "ext3");
        assert_eq!(probe(&ext_image(0x38, 0x2, 0x3)).unwrap().fstype, "ext2");
        let mut unlabelled = ext_image(0x3c, 0x2, 0x3);
        unlabelled[EXT_SUPERBLOCK + 120..EXT_SUPERBLOCK + 136].fill(0);
        assert_eq!(probe(&unlabelled).unwrap().label, None);
    }

    fn iso_image(volume_id: &str, created: &[u8; 16], modified: &[u8; 16]) -> Vec<u8> {
        let mut img = vec![0u8; 40 * 1024];
        let pvd = ISO_PRIMARY_DESCRIPTOR;
        img[pvd] = 1;
        img[pvd + 1..pvd + 6].copy_from_slice(b"CD001");
        img[pvd + 40..pvd + 72].fill(b' ');
        img[pvd + 40..pvd + 40 + volume_id.len()].copy_from_slice(volume_id.as_bytes());
        img[pvd + 813..pvd + 829].copy_from_slice(created);
        img[pvd + 830..pvd + 846].copy_from_slice(modified);
        img
    }

    #[test]
    fn iso9660_label_and_date_uuid() {
        let img = iso_image("RIXOS_ISO", b"2024010203040506", b"2025111213141516");
        assert_eq!(
            probe(&img).unwrap(),
            Filesystem {
                fstype: "iso9660",
                label: Some("RIXOS_ISO".into()),
                uuid: Some("2025-11-12-13-14-15-16".into())
            }
        );
        let unmodified = iso_image("X", b"2024010203040506", b"0000000000000000");
        assert_eq!(
            probe(&unmodified).unwrap().uuid.as_deref(),
            Some("2024-01-02-03-04-05-06")
        );
    }

    fn fat_boot_sector(fat32: bool) -> Vec<u8> {
        let mut img = vec![0u8; 4096];
        img[0x0B..0x0D].copy_from_slice(&512u16.to_le_bytes());
        img[0x0D] = 8;
        img[0x0E..0x10].copy_from_slice(&32u16.to_le_bytes());
        img[0x10] = 2;
        img[510] = 0x55;
        img[511] = 0xAA;
        let (sig, serial, label, kind): (usize, usize, usize, usize) = if fat32 {
            (0x42, 0x43, 0x47, 0x52)
        } else {
            (0x26, 0x27, 0x2B, 0x36)
        };
        if !fat32 {
            img[0x16..0x18].copy_from_slice(&200u16.to_le_bytes());
        }
        img[sig] = 0x29;
        img[serial..serial + 4].copy_from_slice(&0x1234ABCDu32.to_le_bytes());
        img[label..label + 11].copy_from_slice(b"ESP        ");
        img[kind..kind + 8].copy_from_slice(if fat32 { b"FAT32   " } else { b"FAT16   " });
        img
    }

    #[test]
    fn vfat_both_layouts() {
        for fat32 in [true, false] {
            assert_eq!(
                probe(&fat_boot_sector(fat32)).unwrap(),
                Filesystem {
                    fstype: "vfat",
                    label: Some("ESP".into()),
                    uuid: Some("1234-ABCD".into())
                },
                "fat32: {fat32}"
            );
        }
        let mut no_name = fat_boot_sector(true);
        no_name[0x47..0x52].copy_from_slice(b"NO NAME    ");
        assert_eq!(probe(&no_name).unwrap().label, None);
    }

    #[test]
    fn an_mbr_is_not_fat() {
        let mut mbr = vec![0u8; 4096];
        mbr[440..444].copy_from_slice(&0xdeadbeefu32.to_le_bytes());
        mbr[510] = 0x55;
        mbr[511] = 0xAA;
        assert_eq!(probe(&mbr), None);
    }

    #[test]
    fn squashfs_and_swap() {
        let mut sq = vec![0u8; 4096];
        sq[..4].copy_from_slice(b"hsqs");
        assert_eq!(probe(&sq).unwrap().fstype, "squashfs");
        let mut sw = vec![0u8; 8192];
        sw[4086..4096].copy_from_slice(b"SWAPSPACE2");
        sw[1024 + 12..1024 + 28].copy_from_slice(&[0xab; 16]);
        sw[1024 + 28..1024 + 32].copy_from_slice(b"swap");
        let swap = probe(&sw).unwrap();
        assert_eq!(swap.fstype, "swap");
        assert_eq!(swap.label.as_deref(), Some("swap"));
        assert_eq!(swap.uuid.as_deref(), Some("abababab-abab-abab-abab-abababababab"));
    }

    #[test]
    fn short_or_empty_input() {
        assert_eq!(probe(&[]), None);
        assert_eq!(probe(&[0u8; 1500]), None);
        assert_eq!(probe(&vec![0u8; PROBE_BYTES]), None);
        let mut truncated = ext_image(0x3c, 0x2, 0x3);
        truncated.truncate(EXT_SUPERBLOCK + 100);
        assert_eq!(probe(&truncated), None);
    }
}
