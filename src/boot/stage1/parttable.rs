//! A partition's PARTUUID (and GPT name) from its disk's partition table: GPT, or failing that an MBR.
//!
//! Pure: works on the disk's first bytes. GPT headers are looked for at LBA 1 with 512- and 4096-byte
//! sectors; `bytes_needed` says how much of the disk to read for the entries a header points at.

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PartitionInfo {
    pub(crate) partuuid: String,
    /// The GPT partition name; MBR partitions have none.
    pub(crate) partlabel: Option<String>,
}

/// Entries beyond this are not read (the usual table ends at 17 KiB); a header claiming more is garbage.
const MAX_TABLE_BYTES: u64 = 1024 * 1024;

struct GptHeader {
    entries_at: u64,
    entry_count: u32,
    entry_size: u32,
}

fn gpt_header(head: &[u8]) -> Option<GptHeader> {
    [512usize, 4096].into_iter().find_map(|sector| {
        let header = head.get(sector..sector + 92)?;
        if &header[..8] != b"EFI PART" {
            return None;
        }
        let entries_lba = u64::from_le_bytes(header[72..80].try_into().ok()?);
        let entry_count = u32::from_le_bytes(header[80..84].try_into().ok()?);
        let entry_size = u32::from_le_bytes(header[84..88].try_into().ok()?);
        if entry_size < 128 || entries_lba == 0 {
            return None;
        }
        Some(GptHeader {
            entries_at: entries_lba.checked_mul(sector as u64)?,
            entry_count,
            entry_size,
        })
    })
}

/// How many bytes from the start of the disk `partition` needs to see the whole table.
pub(crate) fn bytes_needed(head: &[u8]) -> usize {
    let fallback = 64 * 1024;
    let Some(gpt) = gpt_header(head) else { return fallback };
    let end = u64::from(gpt.entry_count)
        .checked_mul(u64::from(gpt.entry_size))
        .and_then(|len| len.checked_add(gpt.entries_at))
        .unwrap_or(u64::MAX);
    usize::try_from(end.min(MAX_TABLE_BYTES))
        .unwrap_or(fallback)
        .max(fallback)
}

/// Partition `number` (1-based, as in `/sys/class/block/X/partition`) of the disk starting with `head`.
pub(crate) fn partition(head: &[u8], number: u32) -> Option<PartitionInfo> {
    if number == 0 {
        return None;
    }
    if let Some(gpt) = gpt_header(head) {
        if number > gpt.entry_count {
            return None;
        }
        let at = gpt.entries_at + u64::from(number - 1) * u64::from(gpt.entry_size);
        let at = usize::try_from(at).ok()?;
        let entry = head.get(at..at.checked_add(128)?)?;
        if entry[..16].iter().all(|&b| b == 0) {
            return None; // an unused entry
        }
        return Some(PartitionInfo {
            partuuid: guid_string(&entry[16..32]),
            partlabel: utf16_name(&entry[56..128]),
        });
    }
    let mbr = head.get(..512)?;
    if mbr[510..512] != [0x55, 0xAA] {
        return None;
    }
    let signature = u32::from_le_bytes(mbr[440..444].try_into().ok()?);
    // Logical partitions (5 and up) are numbered on from the primary slots, and so named the same way.
    Some(PartitionInfo {
        partuuid: format!("{signature:08x}-{number:02x}"),
        partlabel: None,
    })
}

/// A GUID as stored on disk (first three fields little-endian, the rest in order), printed lowercase.
fn guid_string(raw: &[u8]) -> String {
    let d1 = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
    let d2 = u16::from_le_bytes([raw[4], raw[5]]);
    let d3 = u16::from_le_bytes([raw[6], raw[7]]);
    let tail: String = raw[8..16].iter().map(|b| format!("{b:02x}")).collect();
    format!("{d1:08x}-{d2:04x}-{d3:04x}-{}-{}", &tail[..4], &tail[4..])
}

fn utf16_name(raw: &[u8]) -> Option<String> {
    let units: Vec<u16> = raw
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .take_while(|&u| u != 0)
        .collect();
    let name = String::from_utf16_lossy(&units);
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    // The GUID 0fc63daf-8483-4772-8e79-3d69d8477de4 (Linux filesystem) as it is stored on disk.
    const LINUX_FS_TYPE: [u8; 16] = [
        0xaf, 0x3d, 0xc6, 0x0f, 0x83, 0x84, 0x72, 0x47, 0x8e, 0x79, 0x3d, 0x69, 0xd8, 0x47, 0x7d, 0xe4,
    ];

    fn gpt_disk(sector: usize, entries_lba: u64) -> Vec<u8> {
        let mut disk = vec![0u8; 64 * 1024];
        disk[510] = 0x55;
        disk[511] = 0xAA;
        disk[446 + 4] = 0xEE; // protective MBR
        let header = sector;
        disk[header..header + 8].copy_from_slice(b"EFI PART");
        disk[header + 72..header + 80].copy_from_slice(&entries_lba.to_le_bytes());
        disk[header + 80..header + 84].copy_from_slice(&128u32.to_le_bytes());
        disk[header + 84..header + 88].copy_from_slice(&128u32.to_le_bytes());
        let second = entries_lba as usize * sector + 128;
        disk[second..second + 16].copy_from_slice(&LINUX_FS_TYPE);
        disk[second + 16..second + 32].copy_from_slice(&LINUX_FS_TYPE);
        for (i, unit) in "root".encode_utf16().enumerate() {
            disk[second + 56 + 2 * i..second + 58 + 2 * i].copy_from_slice(&unit.to_le_bytes());
        }
        disk
    }

    #[test]
    fn gpt_partuuid_is_mixed_endian() {
        let disk = gpt_disk(512, 2);
        assert_eq!(
            partition(&disk, 2),
            Some(PartitionInfo {
                partuuid: "0fc63daf-8483-4772-8e79-3d69d8477de4".into(),
                partlabel: Some("root".into())
            })
        );
        assert_eq!(partition(&disk, 1), None, "unused entry");
        assert_eq!(partition(&disk, 129), None, "beyond the table");
        assert_eq!(partition(&disk, 0), None);
    }

    #[test]
    fn gpt_with_4k_sectors() {
        let disk = gpt_disk(4096, 2);
        assert_eq!(
            partition(&disk, 2).unwrap().partuuid,
            "0fc63daf-8483-4772-8e79-3d69d8477de4"
        );
    }

    #[test]
    fn entries_beyond_the_buffer() {
        let mut disk = gpt_disk(512, 2);
        disk[512 + 72..512 + 80].copy_from_slice(&1000u64.to_le_bytes());
        assert_eq!(bytes_needed(&disk), 1000 * 512 + 128 * 128);
        assert_eq!(partition(&disk, 2), None, "entries not in the buffer");
        assert_eq!(bytes_needed(&gpt_disk(512, 2)), 64 * 1024);
        assert_eq!(bytes_needed(&[]), 64 * 1024);
    }

    #[test]
    fn mbr_partuuid() {
        let mut disk = vec![0u8; 512];
        disk[440..444].copy_from_slice(&0x5e3c1a2bu32.to_le_bytes());
        disk[510] = 0x55;
        disk[511] = 0xAA;
        assert_eq!(
            partition(&disk, 1),
            Some(PartitionInfo {
                partuuid: "5e3c1a2b-01".into(),
                partlabel: None
            })
        );
        assert_eq!(partition(&disk, 11).unwrap().partuuid, "5e3c1a2b-0b");
        disk[511] = 0;
        assert_eq!(partition(&disk, 1), None);
    }
}
