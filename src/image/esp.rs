//! The EFI system partition as a FAT image file, written with the `fatfs` crate: no mkfs.vfat, no mtools, no
//! mount. Files are created in sorted path order (parents first), every timestamp is the caller's epoch and the
//! volume id is taken from a hash of the contents, so the same files give the same bytes.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

/// What one file of the ESP holds.
#[derive(Debug, Clone)]
pub enum EspSource {
    /// These bytes (a generated `grub.cfg`, ...).
    Bytes(Vec<u8>),
    /// The contents of this host file (`BOOTX64.EFI` from the store, ...).
    File(PathBuf),
}

/// A file inside the ESP, at `path` (`/`-separated, relative, e.g. `EFI/BOOT/BOOTX64.EFI`).
#[derive(Debug, Clone)]
pub struct EspFile {
    pub path: String,
    pub source: EspSource,
}

/// What [`build_esp`] writes.
#[derive(Debug, Clone)]
pub struct EspLayout {
    pub files: Vec<EspFile>,
    /// Size of the image in bytes (a multiple of 512); `None` fits the files with some slack.
    pub size: Option<u64>,
    /// FAT volume label, at most 11 characters of `A-Z 0-9 _ -` (lower case is upper-cased).
    pub label: String,
    /// Seconds since the Unix epoch for every timestamp (clamped to FAT's 1980..=2107).
    pub epoch: u64,
}

/// The image [`build_esp`] wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EspImage {
    pub size: u64,
    pub volume_id: u32,
}

const MIB: u64 = 1 << 20;
/// From this size on an ESP image is FAT32.
pub const FAT32_FROM: u64 = 256 * MIB;

/// Writes the FAT image `output` (replacing it) with `layout`'s files.
pub fn build_esp(layout: &EspLayout, output: &Path) -> Result<EspImage> {
    let label = fat_label(&layout.label)?;
    let files = sorted_files(&layout.files)?;
    let mut sizes = BTreeMap::new();
    for (path, source) in &files {
        sizes.insert(path.as_str(), source_len(source)?);
    }
    let size = match layout.size {
        Some(size) if size % 512 != 0 || size < MIB => {
            bail!("ESP size {size} must be a multiple of 512 bytes and at least 1 MiB")
        }
        Some(size) => size,
        None => fitting_size(&sizes),
    };
    let volume_id = volume_id(&files, &label, size)?;

    let tmp = output.with_extension(format!("tmp-{}", std::process::id()));
    let result = write_image(&tmp, &files, &sizes, size, volume_id, label, layout.epoch);
    if let Err(err) = result {
        let _ = fs::remove_file(&tmp);
        return Err(err.context(format!("writing ESP image {}", output.display())));
    }
    fs::rename(&tmp, output).with_context(|| format!("renaming {} to {}", tmp.display(), output.display()))?;
    Ok(EspImage { size, volume_id })
}

fn write_image(
    tmp: &Path,
    files: &[(String, &EspSource)],
    sizes: &BTreeMap<&str, u64>,
    size: u64,
    volume_id: u32,
    label: [u8; 11],
    epoch: u64,
) -> Result<()> {
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(tmp)
        .with_context(|| format!("creating {}", tmp.display()))?;
    disk.set_len(size)?;
    let sectors = u32::try_from(size / 512).context("ESP image larger than FAT allows")?;
    let mut options = fatfs::FormatVolumeOptions::new()
        .total_sectors(sectors)
        .volume_id(volume_id)
        .volume_label(label);
    // A disk's ESP (256 MiB or more) is FAT32, which UEFI requires of system partitions; small ones (the ISO's
    // boot image) keep fatfs's choice by size.
    if size >= FAT32_FROM {
        options = options.fat_type(fatfs::FatType::Fat32);
    }
    fatfs::format_volume(&mut disk, options).context("formatting the FAT file system")?;
    disk.seek(SeekFrom::Start(0))?;
    {
        let options = fatfs::FsOptions::new()
            .time_provider(fixed_time(epoch))
            .update_accessed_date(false);
        let fs = fatfs::FileSystem::new(&mut disk, options).context("opening the new FAT file system")?;
        write_files(&fs.root_dir(), files, sizes, size)?;
        fs.unmount().context("closing the FAT file system")?;
    }
    super::fat_dots::repair(&mut disk).context("putting the FAT directories' . and .. entries in place")?;
    disk.sync_all()?;
    Ok(())
}

fn write_files<T: fatfs::ReadWriteSeek>(
    root: &fatfs::Dir<'_, T>,
    files: &[(String, &EspSource)],
    sizes: &BTreeMap<&str, u64>,
    size: u64,
) -> Result<()> {
    {
        let mut made = BTreeSet::new();
        for (path, source) in files {
            let parts: Vec<&str> = path.split('/').collect();
            for depth in 1..parts.len() {
                let dir = parts[..depth].join("/");
                if made.insert(dir.clone()) {
                    root.create_dir(&dir)
                        .with_context(|| format!("creating directory {dir}"))?;
                }
            }
            let mut file = root.create_file(path).with_context(|| format!("creating {path}"))?;
            let written = match source {
                EspSource::Bytes(bytes) => file.write_all(bytes).map(|()| bytes.len() as u64),
                EspSource::File(host) => {
                    let mut input = File::open(host).with_context(|| format!("opening {}", host.display()))?;
                    io::copy(&mut input, &mut file)
                }
            }
            .map_err(|err| out_of_space_hint(err, size))
            .with_context(|| format!("writing {path}"))?;
            if written != sizes[path.as_str()] {
                bail!("{path}: its source changed size while being copied");
            }
            file.flush()?;
        }
    }
    Ok(())
}

fn out_of_space_hint(err: io::Error, size: u64) -> anyhow::Error {
    let full = err.to_string().contains("No space");
    let err = anyhow::Error::new(err);
    if full {
        err.context(format!(
            "the ESP image of {size} bytes is too small; give a larger size or none"
        ))
    } else {
        err
    }
}

/// Paths checked and sorted; directories are made in this order, so the entries' order is fixed.
fn sorted_files(files: &[EspFile]) -> Result<Vec<(String, &EspSource)>> {
    let mut sorted = BTreeMap::new();
    for file in files {
        let path = file.path.trim_start_matches('/');
        if path.is_empty()
            || path
                .split('/')
                .any(|part| part.is_empty() || part == "." || part == "..")
        {
            bail!("ESP path {:?} is not a relative path of plain names", file.path);
        }
        if sorted.insert(path.to_string(), &file.source).is_some() {
            bail!("ESP path {path} given twice");
        }
    }
    for path in sorted.keys() {
        if sorted.keys().any(|other| other.starts_with(&format!("{path}/"))) {
            bail!("ESP path {path} is both a file and a directory");
        }
    }
    Ok(sorted.into_iter().collect())
}

fn source_len(source: &EspSource) -> Result<u64> {
    Ok(match source {
        EspSource::Bytes(bytes) => bytes.len() as u64,
        EspSource::File(host) => fs::metadata(host)
            .with_context(|| format!("reading {}", host.display()))?
            .len(),
    })
}

/// Every file rounded up to 4 KiB clusters, one cluster per directory, 5% and 1 MiB for the FATs, reserved
/// sectors and root directory, rounded up to whole MiB.
fn fitting_size(sizes: &BTreeMap<&str, u64>) -> u64 {
    let dirs: BTreeSet<&str> = sizes
        .keys()
        .flat_map(|path| path.match_indices('/').map(|(i, _)| &path[..i]))
        .collect();
    let data: u64 = sizes.values().map(|len| len.div_ceil(4096) * 4096).sum::<u64>() + dirs.len() as u64 * 4096;
    (data + data / 20 + MIB).div_ceil(MIB) * MIB
}

fn fat_label(label: &str) -> Result<[u8; 11]> {
    let upper = label.to_ascii_uppercase();
    if upper.is_empty()
        || upper.len() > 11
        || !upper
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
    {
        bail!("FAT volume label {label:?} must be 1 to 11 characters of A-Z, 0-9, _ and -");
    }
    let mut out = [b' '; 11];
    out[..upper.len()].copy_from_slice(upper.as_bytes());
    Ok(out)
}

/// The first four bytes of a SHA-256 over the label, the size and every (path, length, contents) in order.
fn volume_id(files: &[(String, &EspSource)], label: &[u8; 11], size: u64) -> Result<u32> {
    let mut hash = Sha256::new();
    hash.update(label);
    hash.update(size.to_le_bytes());
    for (path, source) in files {
        hash.update(path.as_bytes());
        hash.update([0]);
        match source {
            EspSource::Bytes(bytes) => {
                hash.update((bytes.len() as u64).to_le_bytes());
                hash.update(bytes);
            }
            EspSource::File(host) => {
                let mut input = File::open(host).with_context(|| format!("opening {}", host.display()))?;
                hash.update(input.metadata()?.len().to_le_bytes());
                let mut buf = vec![0; 1 << 16];
                loop {
                    let n = input
                        .read(&mut buf)
                        .with_context(|| format!("reading {}", host.display()))?;
                    if n == 0 {
                        break;
                    }
                    hash.update(&buf[..n]);
                }
            }
        }
    }
    let digest = hash.finalize();
    Ok(u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]))
}

/// fatfs asks a `&'static` time provider; one is leaked per distinct epoch (a handful per process at most).
fn fixed_time(epoch: u64) -> &'static FixedTime {
    static PROVIDERS: Mutex<Option<HashMap<u64, &'static FixedTime>>> = Mutex::new(None);
    let mut providers = PROVIDERS.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    providers
        .get_or_insert_with(HashMap::new)
        .entry(epoch)
        .or_insert_with(|| Box::leak(Box::new(FixedTime::new(epoch))))
}

#[derive(Debug)]
struct FixedTime(fatfs::DateTime);

impl FixedTime {
    fn new(epoch: u64) -> Self {
        const FAT_FIRST: u64 = 315_532_800; // 1980-01-01 00:00:00
        const FAT_LAST: u64 = 4_354_819_198; // 2107-12-31 23:59:58
        let (year, month, day, hour, min, sec) = super::utc_civil(epoch.clamp(FAT_FIRST, FAT_LAST));
        FixedTime(fatfs::DateTime {
            date: fatfs::Date {
                year: year as u16,
                month: month as u16,
                day: day as u16,
            },
            time: fatfs::Time {
                hour: hour as u16,
                min: min as u16,
                sec: (sec & !1) as u16,
                millis: 0,
            },
        })
    }
}

impl fatfs::TimeProvider for FixedTime {
    fn get_current_date(&self) -> fatfs::Date {
        self.0.date
    }
    fn get_current_date_time(&self) -> fatfs::DateTime {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::require_tool;
    use std::process::Command;

    fn layout(dir: &Path) -> EspLayout {
        let efi = dir.join("BOOTX64.EFI");
        fs::write(&efi, vec![0x4d; 300_000]).unwrap();
        EspLayout {
            files: vec![
                EspFile {
                    path: "EFI/BOOT/grub.cfg".into(),
                    source: EspSource::Bytes(b"configfile /boot/grub/grub.cfg\n".to_vec()),
                },
                EspFile {
                    path: "EFI/BOOT/BOOTX64.EFI".into(),
                    source: EspSource::File(efi),
                },
                EspFile {
                    path: "loader/entries/a-rather-long-file-name.conf".into(),
                    source: EspSource::Bytes(vec![b'x'; 10]),
                },
            ],
            size: None,
            label: "efiboot".into(),
            epoch: 1_700_000_000,
        }
    }

    #[test]
    fn mtools_reads_it_and_two_runs_are_identical() {
        require_tool("mdir", "mtools");
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.img"), dir.path().join("b.img"));
        let first = build_esp(&layout(dir.path()), &a).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        let second = build_esp(&layout(dir.path()), &b).unwrap();
        assert_eq!(first, second);
        assert_eq!(first.size, 2 * MIB);
        assert_eq!(fs::read(&a).unwrap(), fs::read(&b).unwrap(), "two runs differ");

        let out = Command::new("mdir")
            .args(["-i"])
            .arg(&a)
            .args(["-/", "-a", "::"])
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        let listing = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "mdir failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(listing.contains("Volume in drive : is EFIBOOT"), "{listing}");
        assert!(
            listing.contains("BOOTX64  EFI    300000 2023-11-14  22:13"),
            "{listing}"
        );
        assert!(listing.contains("grub.cfg"), "{listing}");
        assert!(listing.contains("a-rather-long-file-name.conf"), "{listing}");

        let out = Command::new("mtype")
            .arg("-i")
            .arg(&a)
            .arg("::EFI/BOOT/grub.cfg")
            .env("MTOOLS_SKIP_CHECK", "1")
            .output()
            .unwrap();
        assert_eq!(String::from_utf8_lossy(&out.stdout), "configfile /boot/grub/grub.cfg\n");
    }

    /// dosfstools' checker finds nothing to fix, on a FAT12 boot image and a FAT32 disk ESP with nested
    /// directories (fatfs alone leaves long-name entries before `.` and `..`).
    #[test]
    fn fsck_vfat_finds_nothing_to_fix() {
        require_tool("fsck.vfat", "dosfstools");
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small.img");
        build_esp(&layout(dir.path()), &small).unwrap();
        let mut big = layout(dir.path());
        big.size = Some(300 * MIB);
        big.files.push(EspFile {
            path: "kernels/nested/deeper/a-long-kernel-name-vmlinuz".into(),
            source: EspSource::Bytes(vec![7; 5000]),
        });
        let large = dir.path().join("large.img");
        build_esp(&big, &large).unwrap();
        let again = dir.path().join("again.img");
        build_esp(&big, &again).unwrap();
        assert!(
            fs::read(&large).unwrap() == fs::read(&again).unwrap(),
            "two FAT32 images differ"
        );
        for image in [&small, &large] {
            let out = Command::new("fsck.vfat").arg("-n").arg(image).output().unwrap();
            let said = String::from_utf8_lossy(&out.stdout);
            assert!(
                out.status.success() && said.lines().count() <= 2,
                "fsck.vfat -n {}:\n{said}{}",
                image.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }

    #[test]
    fn content_changes_the_volume_id() {
        let dir = tempfile::tempdir().unwrap();
        let mut other = layout(dir.path());
        let first = build_esp(&other, &dir.path().join("a.img")).unwrap();
        other.files[0].source = EspSource::Bytes(b"changed".to_vec());
        let second = build_esp(&other, &dir.path().join("b.img")).unwrap();
        assert_ne!(first.volume_id, second.volume_id);
    }

    #[test]
    fn bad_layouts_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("x.img");
        let mut bad = layout(dir.path());
        bad.label = "much too long label".into();
        assert!(
            build_esp(&bad, &out)
                .unwrap_err()
                .to_string()
                .contains("1 to 11 characters")
        );
        let mut bad = layout(dir.path());
        bad.files.push(EspFile {
            path: "EFI/../x".into(),
            source: EspSource::Bytes(vec![]),
        });
        assert!(build_esp(&bad, &out).unwrap_err().to_string().contains("plain names"));
        let mut bad = layout(dir.path());
        bad.size = Some(MIB);
        bad.files.push(EspFile {
            path: "big".into(),
            source: EspSource::Bytes(vec![0; 2 * MIB as usize]),
        });
        let err = format!("{:#}", build_esp(&bad, &out).unwrap_err());
        assert!(err.contains("too small"), "{err}");
        assert!(!out.exists() && !dir.path().join(format!("x.tmp-{}", std::process::id())).exists());
    }
}
