//! Where the image goes: a block device, or with `--to-file` a regular file, and opening it for writing
//! (`O_EXCL` for a device, which the kernel refuses while anything holds it).

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::{FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::checks::Refusal;
use super::image_file::Image;
use super::system_view::split_devno;

// BLKGETSIZE64: the device's size in bytes (linux/fs.h, _IOR(0x12, 114, size_t)).
nix::ioctl_read!(blk_get_size64, 0x12, 114, u64);

/// Where the image goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// A block device, by the path given and its number.
    Block { path: PathBuf, devno: (u32, u32) },
    /// A regular file (`--to-file`), created when missing.
    File { path: PathBuf, exists: bool },
}

pub(super) fn kind_of(file_type: fs::FileType) -> &'static str {
    if file_type.is_block_device() {
        "block device"
    } else if file_type.is_file() {
        "regular file"
    } else if file_type.is_dir() {
        "directory"
    } else if file_type.is_char_device() {
        "character device"
    } else if file_type.is_fifo() {
        "fifo"
    } else if file_type.is_socket() {
        "socket"
    } else {
        "special file"
    }
}

/// What the path given names: a block device, or with `to_file` a regular file (or none yet).
pub fn classify_target(path: &Path, to_file: bool) -> Result<Target> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound && to_file => {
            return Ok(Target::File {
                path: path.to_owned(),
                exists: false,
            });
        }
        Err(e) => return Err(e).with_context(|| format!("{} does not name a device", path.display())),
    };
    let file_type = meta.file_type();
    match (to_file, file_type.is_block_device(), file_type.is_file()) {
        (false, true, _) => Ok(Target::Block {
            path: path.to_owned(),
            devno: split_devno(meta.rdev()),
        }),
        (false, false, _) => Err(Refusal::NotBlockDevice {
            target: path.to_owned(),
            kind: kind_of(file_type),
        }
        .into()),
        (true, _, true) => Ok(Target::File {
            path: path.to_owned(),
            exists: true,
        }),
        (true, _, false) => Err(Refusal::NotRegularFile {
            target: path.to_owned(),
            kind: kind_of(file_type),
        }
        .into()),
    }
}

pub(super) fn open_block_device(path: &Path, devno: (u32, u32), name: &str, image_size: u64) -> Result<File> {
    let device = format!("/dev/{name}");
    // O_EXCL on a block device: the kernel refuses it while mounted, held or opened O_EXCL elsewhere.
    let file = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_EXCL | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
            bail!("{device} is busy: the kernel says something holds it (mounted, or opened by another program)")
        }
        Err(e) => return Err(e).with_context(|| format!("opening {device} for writing")),
    };
    // The path could have been swapped for another device since the checks.
    let meta = file.metadata().with_context(|| format!("reading {device}"))?;
    if !meta.file_type().is_block_device() || split_devno(meta.rdev()) != devno {
        bail!(
            "{} changed while it was checked: it no longer is {device}",
            path.display()
        );
    }
    let mut size = 0u64;
    // SAFETY: BLKGETSIZE64 writes one u64 through the pointer, which points at `size`.
    unsafe { blk_get_size64(file.as_raw_fd(), &mut size) }
        .map_err(io::Error::from)
        .with_context(|| format!("asking {device} for its size"))?;
    if size < image_size {
        return Err(Refusal::TooSmall {
            device,
            size,
            needed: image_size,
        }
        .into());
    }
    Ok(file)
}

pub(super) fn open_target_file(path: &Path, image: &Image) -> Result<File> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .custom_flags(libc::O_CLOEXEC)
        .open(path)
        .with_context(|| format!("opening {} for writing", path.display()))?;
    let meta = file.metadata()?;
    let image_meta = fs::metadata(&image.path)?;
    if meta.dev() == image_meta.dev() && meta.ino() == image_meta.ino() {
        return Err(Refusal::SameAsImage {
            device: path.display().to_string(),
        }
        .into());
    }
    if !meta.is_file() {
        return Err(Refusal::NotRegularFile {
            target: path.to_owned(),
            kind: kind_of(meta.file_type()),
        }
        .into());
    }
    file.set_len(0)
        .with_context(|| format!("truncating {}", path.display()))?;
    Ok(file)
}
