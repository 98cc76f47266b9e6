//! A repair pass over a FAT image the `fatfs` crate (0.3.6, the newest published) wrote: its `create_dir`
//! puts a long-name entry before each of a new directory's `.` and `..` entries, and on FAT32 gives `..` of
//! a directory in the root the root's cluster instead of 0. Firmware and Linux read such directories, but
//! `fsck.vfat` rewrites them, and the FAT specification wants `.` and `..` in the first two slots. Each
//! directory is walked from the root and its first slots are rewritten in place: `.`, `..`, then the two
//! freed slots marked deleted. FAT32's count of free clusters, which fatfs leaves unknown, is written too.
//! Deterministic, so images stay reproducible.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};

use anyhow::{Context, Result, bail};

const ENTRY: usize = 32;
const ATTR_LFN: u8 = 0x0f;
const ATTR_DIRECTORY: u8 = 0x10;
const DELETED: u8 = 0xe5;

struct Geometry {
    bytes_per_sector: u64,
    sectors_per_cluster: u64,
    fat_offset: u64,
    fat_bits: u32,
    /// Where the fixed root directory of FAT12/16 is, and its size.
    root_region: Option<(u64, u64)>,
    root_cluster: u32,
    data_offset: u64,
    clusters: u64,
}

impl Geometry {
    fn read(boot: &[u8]) -> Result<Geometry> {
        let u16_at = |at: usize| u16::from_le_bytes([boot[at], boot[at + 1]]) as u64;
        let u32_at = |at: usize| u32::from_le_bytes([boot[at], boot[at + 1], boot[at + 2], boot[at + 3]]) as u64;
        let bytes_per_sector = u16_at(11);
        let sectors_per_cluster = boot[13] as u64;
        if bytes_per_sector == 0 || sectors_per_cluster == 0 {
            bail!("not a FAT boot sector");
        }
        let reserved = u16_at(14);
        let fats = boot[16] as u64;
        let root_entries = u16_at(17);
        let total = if u16_at(19) != 0 { u16_at(19) } else { u32_at(32) };
        let fat_size = if u16_at(22) != 0 { u16_at(22) } else { u32_at(36) };
        let root_sectors = (root_entries * ENTRY as u64).div_ceil(bytes_per_sector);
        let data_sector = reserved + fats * fat_size + root_sectors;
        let clusters = total.saturating_sub(data_sector) / sectors_per_cluster;
        let fat_bits = if clusters < 4085 {
            12
        } else if clusters < 65525 {
            16
        } else {
            32
        };
        Ok(Geometry {
            bytes_per_sector,
            sectors_per_cluster,
            fat_offset: reserved * bytes_per_sector,
            fat_bits,
            root_region: (fat_bits != 32).then(|| {
                (
                    (reserved + fats * fat_size) * bytes_per_sector,
                    root_sectors * bytes_per_sector,
                )
            }),
            root_cluster: if fat_bits == 32 { u32_at(44) as u32 } else { 0 },
            data_offset: data_sector * bytes_per_sector,
            clusters,
        })
    }

    fn cluster_size(&self) -> u64 {
        self.bytes_per_sector * self.sectors_per_cluster
    }

    fn cluster_offset(&self, cluster: u32) -> u64 {
        self.data_offset + (cluster as u64 - 2) * self.cluster_size()
    }
}

fn read_at(disk: &mut File, offset: u64, len: usize) -> Result<Vec<u8>> {
    let mut buf = vec![0; len];
    disk.seek(SeekFrom::Start(offset))?;
    disk.read_exact(&mut buf)?;
    Ok(buf)
}

fn next_cluster(disk: &mut File, g: &Geometry, cluster: u32) -> Result<Option<u32>> {
    let (value, end) = match g.fat_bits {
        12 => {
            let at = g.fat_offset + cluster as u64 * 3 / 2;
            let pair = read_at(disk, at, 2)?;
            let raw = u16::from_le_bytes([pair[0], pair[1]]) as u32;
            (
                if cluster.is_multiple_of(2) {
                    raw & 0xfff
                } else {
                    raw >> 4
                },
                0xff8,
            )
        }
        16 => {
            let b = read_at(disk, g.fat_offset + cluster as u64 * 2, 2)?;
            (u16::from_le_bytes([b[0], b[1]]) as u32, 0xfff8)
        }
        _ => {
            let b = read_at(disk, g.fat_offset + cluster as u64 * 4, 4)?;
            (u32::from_le_bytes([b[0], b[1], b[2], b[3]]) & 0x0fff_ffff, 0x0fff_fff8)
        }
    };
    Ok((value >= 2 && value < end).then_some(value))
}

/// The byte ranges (offset, length) a directory occupies: its cluster chain, or the fixed root region.
fn extents(disk: &mut File, g: &Geometry, cluster: u32) -> Result<Vec<(u64, u64)>> {
    if cluster == 0 {
        return Ok(g.root_region.into_iter().collect());
    }
    let mut out = Vec::new();
    let mut next = Some(cluster);
    while let Some(c) = next {
        if out.len() > 1 << 20 {
            bail!("a directory's cluster chain loops");
        }
        out.push((g.cluster_offset(c), g.cluster_size()));
        next = next_cluster(disk, g, c)?;
    }
    Ok(out)
}

fn first_cluster(entry: &[u8]) -> u32 {
    (u16::from_le_bytes([entry[20], entry[21]]) as u32) << 16 | u16::from_le_bytes([entry[26], entry[27]]) as u32
}

/// Repairs the image at `disk` (see the module's documentation).
pub fn repair(disk: &mut File) -> Result<()> {
    let boot = read_at(disk, 0, 512).context("reading the FAT boot sector")?;
    let g = Geometry::read(&boot)?;
    let root = if g.fat_bits == 32 { g.root_cluster } else { 0 };
    // Directories to walk: (first cluster, whether it is the root, whether its parent is the root).
    let mut todo = vec![(root, true, false)];
    let mut seen = std::collections::HashSet::new();
    while let Some((dir, is_root, parent_is_root)) = todo.pop() {
        if !seen.insert(dir) {
            bail!("the FAT image's directory tree has a loop at cluster {dir}");
        }
        let mut first = true;
        'extents: for (offset, len) in extents(disk, &g, dir)? {
            let mut data = read_at(disk, offset, len as usize)?;
            if first && !is_root {
                fix_dots(&mut data, parent_is_root);
                disk.seek(SeekFrom::Start(offset))?;
                disk.write_all(&data[..(4 * ENTRY).min(data.len())])?;
            }
            first = false;
            for entry in data.chunks(ENTRY) {
                match entry[0] {
                    0 => break 'extents,
                    DELETED => continue,
                    _ => {}
                }
                if entry[11] == ATTR_LFN || entry[11] & ATTR_DIRECTORY == 0 || entry[0] == b'.' {
                    continue;
                }
                let child = first_cluster(entry);
                if child >= 2 {
                    todo.push((child, false, is_root));
                }
            }
        }
    }
    if g.fat_bits == 32 {
        write_free_count(disk, &g, &boot)?;
    }
    disk.sync_all()?;
    Ok(())
}

/// FAT32's FSInfo sector with the number of free clusters and the first free one, which fatfs leaves
/// "unknown" and fsck.vfat then reports.
fn write_free_count(disk: &mut File, g: &Geometry, boot: &[u8]) -> Result<()> {
    let fsinfo = u16::from_le_bytes([boot[48], boot[49]]) as u64;
    if fsinfo == 0 || fsinfo == 0xffff {
        return Ok(());
    }
    let at = fsinfo * g.bytes_per_sector;
    let sector = read_at(disk, at, 512)?;
    if sector[..4] != *b"RRaA" || sector[484..488] != *b"rrAa" {
        return Ok(());
    }
    let fat = read_at(disk, g.fat_offset, ((g.clusters + 2) * 4) as usize)?;
    let free: Vec<u32> = (2..g.clusters as u32 + 2)
        .filter(|&c| {
            let i = c as usize * 4;
            u32::from_le_bytes([fat[i], fat[i + 1], fat[i + 2], fat[i + 3]]) & 0x0fff_ffff == 0
        })
        .collect();
    let next = free.first().copied().unwrap_or(0xffff_ffff);
    disk.seek(SeekFrom::Start(at + 488))?;
    disk.write_all(&(free.len() as u32).to_le_bytes())?;
    disk.write_all(&next.to_le_bytes())?;
    Ok(())
}

/// `[LFN, ., LFN, .., ...]` becomes `[., .., deleted, deleted, ...]`; `..` of a directory in the root points
/// at cluster 0.
fn fix_dots(data: &mut [u8], parent_is_root: bool) {
    if data.len() < 4 * ENTRY {
        return;
    }
    let slot = |i: usize| i * ENTRY..(i + 1) * ENTRY;
    let is_sfn = |d: &[u8], i: usize, name: &[u8; 11]| d[slot(i)][..11] == name[..] && d[slot(i)][11] != ATTR_LFN;
    let (dot, dotdot) = (*b".          ", *b"..         ");
    if data[slot(0)][11] == ATTR_LFN
        && is_sfn(data, 1, &dot)
        && data[slot(2)][11] == ATTR_LFN
        && is_sfn(data, 3, &dotdot)
    {
        let one: Vec<u8> = data[slot(1)].to_vec();
        let three: Vec<u8> = data[slot(3)].to_vec();
        let two: Vec<u8> = data[slot(2)].to_vec();
        data[slot(0)].copy_from_slice(&one);
        data[slot(1)].copy_from_slice(&three);
        data[slot(2)].copy_from_slice(&two);
        data[2 * ENTRY] = DELETED;
        data[3 * ENTRY] = DELETED;
    }
    let dotdot_slot = if is_sfn(data, 1, &dotdot) { Some(1) } else { None };
    if let (Some(i), true) = (dotdot_slot, parent_is_root) {
        let s = slot(i);
        data[s.start + 20..s.start + 22].fill(0);
        data[s.start + 26..s.start + 28].fill(0);
    }
}
