//! `builtin:disk-image`: an installed system written into a disk image file (raw, or qcow2 through
//! `qemu-img`), rootless and bit-for-bit reproducible. One layout boots on BIOS and UEFI (`layout.rs`: GPT
//! with a BIOS boot partition, the ESP, the ext4 root); GRUB's BIOS images are embedded as grub-install would
//! (`grub_bios.rs`); the ESP holds what `boot::loader` installs for generation 1 (FAT32 through
//! `image::esp`); the root is `mkfs.ext4 -d` of a staged tree (`staging.rs`, `ext4.rs`); every identifier is
//! derived from the toplevel and the image's name (`ids.rs`).
//!
//! The derivation's attributes: `toplevel`, `imageName` (the file's name without extension), `format` (`raw` or
//! `qcow2`), `diskSize` (`auto` or MiB), `espSize` (MiB, default 256), `channel` (a store path or ""),
//! `configurationFiles` (lines `PLACE<TAB>STORE-FILE`, PLACE relative to `/`), `sourceDateEpoch`. The output
//! directory holds `<imageName>.img` or `<imageName>.qcow2` and its `.sha256` (sha256sum's format).
//!
//! Temporary files (the staged root, the ESP's tree and image, a raw image before its conversion) live in one
//! directory beside the output, removed when the build ends, also when it fails.

mod ext4;
pub mod grub_bios;
pub mod ids;
pub mod layout;
pub mod staging;

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::boot::loader::{Generation, install_files};
use crate::image::esp::{EspFile, EspLayout, EspSource, build_esp};
use crate::progress::Progress;
use crate::store::builtin::Builtin;
use crate::store::path::StorePath;
use crate::store::registration::{parse_registration, registration};
use ext4::{Ext4Options, make_ext4};
use ids::DiskIds;
use layout::{DiskLayout, MIB, write_partition_table};
use staging::{RootContents, Usage, stage_root};

/// The image formats this builder writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Raw,
    Qcow2,
}

impl Format {
    fn parse(text: &str) -> Result<Format> {
        match text {
            "raw" => Ok(Format::Raw),
            "qcow2" => Ok(Format::Qcow2),
            other => bail!("builtin:disk-image: format {other:?} is neither \"raw\" nor \"qcow2\""),
        }
    }

    fn extension(self) -> &'static str {
        match self {
            Format::Raw => "img",
            Format::Qcow2 => "qcow2",
        }
    }
}

/// What the image's root needs beyond its contents with `auto`: 30% of them, and 256 MiB for the file
/// system's own metadata (journal, inode tables) and the first writes of the booted system.
const AUTO_HEADROOM_PERCENT: u64 = 30;
const AUTO_EXTRA: u64 = 256 * MIB;
/// mke2fs makes one inode per this many bytes (inode_ratio of `ext4.rs`'s configuration).
const BYTES_PER_INODE: u64 = 16384;

/// `builtin:disk-image` (see the module documentation).
pub fn build(b: &Builtin<'_>) -> Result<()> {
    let env = |key: &str| -> Result<&str> {
        let value = b.env(key);
        if value.is_empty() {
            bail!("builtin:disk-image needs `{key}`");
        }
        Ok(value)
    };
    // From the derivation, not the environment: the same store path must always mean the same bytes.
    let epoch: u64 = env("sourceDateEpoch")?
        .parse()
        .context("builtin:disk-image: sourceDateEpoch is not a number of seconds")?;
    let toplevel = StorePath::parse(env("toplevel")?).context("builtin:disk-image: toplevel")?;
    let name = env("imageName")?;
    if name.contains('/') || name.starts_with('.') {
        bail!("builtin:disk-image: imageName {name:?} must be a plain file name");
    }
    let format = Format::parse(env("format")?)?;
    let esp_size = match b.env("espSize") {
        "" => layout::MIN_ESP_SIZE,
        text => mib(text, "espSize")?,
    };
    let disk_size = match env("diskSize")? {
        "auto" => None,
        text => Some(mib(text, "diskSize")?),
    };
    let channel = match b.env("channel") {
        "" => None,
        path => Some(StorePath::parse(path).context("builtin:disk-image: channel")?),
    };
    let files = placed_files(b.env("configurationFiles"), &|p| b.resolve(p))?;

    let target = b.out()?;
    fs::create_dir_all(target).with_context(|| format!("creating {}", target.display()))?;
    let work = tempfile::Builder::new()
        .prefix(".disk-image-")
        .tempdir_in(target.parent().unwrap_or(target))
        .context("creating the disk image's temporary directory")?;

    // The root file system's tree: the closure of the system and its channel, registered.
    let mut roots = vec![toplevel.clone()];
    roots.extend(channel.iter().cloned());
    let closure = b.store.requisites(&roots)?;
    let infos = parse_registration(&registration(b.store, &closure)?, "the closure's registration")?;
    let staged = work.path().join("root");
    fs::create_dir(&staged)?;
    let progress = Progress::stage("staging the root file system");
    let usage = stage_root(
        &staged,
        &RootContents {
            store_dir: &b.real("/nix/store"),
            paths: &infos,
            toplevel: &toplevel,
            channel: channel.as_ref(),
            channel_list: Some(b.env("channelList")).filter(|l| !l.is_empty()),
            files: &files,
            epoch,
        },
    )?;
    progress.finish();

    // The ESP: what the bootloader of generation 1 needs.
    let esp_tree = work.path().join("esp");
    fs::create_dir(&esp_tree)?;
    let generation = Generation {
        number: 1,
        toplevel: toplevel.to_string(),
        created: epoch,
    };
    let installed = install_files(&[generation], &esp_tree, &|p| b.resolve(p))
        .context("installing the bootloader's files for the ESP")?;
    let esp_image = work.path().join("esp.img");
    build_esp(
        &EspLayout {
            files: tree_files(&esp_tree)?,
            size: Some(esp_size),
            label: layout::ESP_NAME.to_string(),
            epoch,
        },
        &esp_image,
    )
    .context("writing the EFI system partition")?;

    let disk_size = match disk_size {
        Some(size) => size,
        None => auto_disk_size(usage, esp_size),
    };
    let layout = DiskLayout::new(disk_size, esp_size)?;
    let needed = needed_bytes(usage);
    if layout.root.bytes() < needed {
        bail!(
            "diskSize {} MiB is too small: the root file system needs about {} MiB for the closure; give a \
             larger image.diskSize or \"auto\"",
            disk_size / MIB,
            needed.div_ceil(MIB) + layout.root.offset() / MIB + 1
        );
    }

    let file_name = format!("{name}.{}", format.extension());
    let raw = match format {
        Format::Raw => target.join(&file_name),
        Format::Qcow2 => work.path().join(format!("{name}.img")),
    };
    let ids = DiskIds::new(&toplevel.to_string(), name);
    write_raw_image(
        &raw,
        &layout,
        &ids,
        &staged,
        &esp_image,
        installed.bios.as_ref(),
        epoch,
        work.path(),
    )?;
    fs::remove_dir_all(&staged).ok();

    let image = target.join(&file_name);
    if format == Format::Qcow2 {
        let progress = Progress::stage("converting to qcow2");
        crate::command::run(
            Command::new("qemu-img")
                .args(["convert", "-q", "-f", "raw", "-O", "qcow2"])
                .arg(&raw)
                .arg(&image),
        )
        .context("converting the disk image to qcow2 (qemu-img, Debian's qemu-utils)")?;
        progress.finish();
    }
    let (sha256, size) = crate::image::iso::sha256_file(&image)?;
    let checksum = target.join(format!("{file_name}.sha256"));
    fs::write(&checksum, format!("{sha256}  {file_name}\n"))
        .with_context(|| format!("writing {}", checksum.display()))?;
    if !crate::verbosity::quiet() {
        // The file's name only: its path here is inside the build's staging directory.
        eprintln!("{file_name}: {} MiB, sha256 {sha256}", size >> 20);
    }
    Ok(())
}

/// Writes the raw disk `image`: the root file system, the ESP, the partition table, GRUB's BIOS images.
#[allow(clippy::too_many_arguments)]
fn write_raw_image(
    image: &Path,
    layout: &DiskLayout,
    ids: &DiskIds,
    staged: &Path,
    esp_image: &Path,
    bios: Option<&(PathBuf, PathBuf)>,
    epoch: u64,
    work: &Path,
) -> Result<()> {
    let mut disk = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(image)
        .with_context(|| format!("creating {}", image.display()))?;
    disk.set_len(layout.disk_size)?;
    // The file systems first: mke2fs may discard (punch) its own range, never the partition table's.
    let progress = Progress::stage("making the root file system");
    make_ext4(
        image,
        layout.root,
        staged,
        &Ext4Options {
            label: layout::ROOT_NAME,
            uuid: ids.uuid("ext4"),
            hash_seed: ids.uuid("ext4 hash seed"),
            epoch,
        },
        work,
    )?;
    progress.finish();
    copy_sparse(esp_image, &mut disk, layout.esp.offset()).context("copying the ESP into the disk image")?;
    write_partition_table(&mut disk, layout, ids)?;
    if let Some((boot_img, core_img)) = bios {
        let read = |path: &Path| fs::read(path).with_context(|| format!("reading GRUB's {}", path.display()));
        let mut mbr = [0; 512];
        disk.seek(SeekFrom::Start(0))?;
        disk.read_exact(&mut mbr)?;
        let done = grub_bios::install(
            &read(boot_img)?,
            &read(core_img)?,
            &mbr,
            layout.bios.first_lba,
            layout.bios.sectors,
        )?;
        disk.seek(SeekFrom::Start(0))?;
        disk.write_all(&done.mbr)?;
        disk.seek(SeekFrom::Start(layout.bios.offset()))?;
        disk.write_all(&done.core)?;
    }
    disk.sync_all()
        .with_context(|| format!("writing {}", image.display()))?;
    Ok(())
}

/// Copies the file `from` into `to` at `offset`, leaving its all-zero blocks unwritten (holes in a fresh file).
fn copy_sparse(from: &Path, to: &mut File, offset: u64) -> Result<()> {
    let mut input = File::open(from).with_context(|| format!("opening {}", from.display()))?;
    let mut buf = vec![0; 1 << 16];
    let mut at = offset;
    loop {
        let n = input.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        if buf[..n].iter().any(|b| *b != 0) {
            to.seek(SeekFrom::Start(at))?;
            to.write_all(&buf[..n])?;
        }
        at += n as u64;
    }
}

/// Every file under `dir` as an ESP file at its relative path.
fn tree_files(dir: &Path) -> Result<Vec<EspFile>> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<EspFile>) -> Result<()> {
        let mut entries: Vec<_> = fs::read_dir(dir)
            .with_context(|| format!("reading {}", dir.display()))?
            .collect::<std::io::Result<_>>()?;
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name().into_string().map_err(|name| {
                anyhow::anyhow!(
                    "the ESP's file {} has a name FAT cannot hold",
                    Path::new(&name).display()
                )
            })?;
            let path = format!("{prefix}{name}");
            if entry.file_type()?.is_dir() {
                walk(&entry.path(), &format!("{path}/"), out)?;
            } else {
                out.push(EspFile {
                    path,
                    source: EspSource::File(entry.path()),
                });
            }
        }
        Ok(())
    }
    let mut files = Vec::new();
    walk(dir, "", &mut files)?;
    Ok(files)
}

/// The placed files of `configurationFiles`: each line `PLACE<TAB>STORE-FILE`.
fn placed_files(text: &str, resolve: &dyn Fn(&str) -> Result<PathBuf>) -> Result<Vec<(String, PathBuf)>> {
    let mut files = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let Some((place, source)) = line.split_once('\t') else {
            bail!(
                "builtin:disk-image: configurationFiles line {}: {line:?} is not PLACE<TAB>STORE-FILE",
                n + 1
            );
        };
        let file = resolve(source).with_context(|| format!("configurationFiles line {}: {source}", n + 1))?;
        files.push((place.to_string(), file));
    }
    Ok(files)
}

fn mib(text: &str, what: &str) -> Result<u64> {
    match text.parse::<u64>() {
        Ok(n) if n > 0 => Ok(n * MIB),
        _ => bail!("builtin:disk-image: {what} {text:?} is not a positive number of MiB"),
    }
}

/// What the staged tree takes on ext4: its blocks, or its inodes at mke2fs's ratio when those are more.
fn needed_bytes(usage: Usage) -> u64 {
    usage.bytes.max(usage.inodes * BYTES_PER_INODE)
}

/// `auto`: the root holds the closure plus 30% and 256 MiB; the disk adds the ESP, the BIOS boot partition
/// and a MiB at each end for the partition tables.
fn auto_disk_size(usage: Usage, esp_size: u64) -> u64 {
    let needed = needed_bytes(usage);
    let root = (needed + needed * AUTO_HEADROOM_PERCENT / 100).div_ceil(MIB) * MIB + AUTO_EXTRA;
    MIB + layout::BIOS_BOOT_SIZE + esp_size + root + MIB
}

#[cfg(test)]
mod tests;
