//! Copying the image onto the target and reading it back: synced as it goes, the device's cached pages dropped
//! before the read-back, which is compared block by block and as a whole with what was written.

use std::fs::File;
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::image_file::{Image, read_full};
use super::{BLOCK_SIZE, WriteOptions, WriteReport};
use crate::progress::{Progress, human_size};
use crate::store::hash::hex;

/// Test hook: when set to a byte offset, one byte of the target at that offset is flipped after writing and
/// before the read-back, so tests (and the VM tests) can see verification fail. Never set it otherwise.
pub const CORRUPT_AT_ENV: &str = "RIXOS_WRITE_CORRUPT_AT";

// BLKFLSBUF: flush the block device's buffers (linux/fs.h, _IO(0x12, 97)).
nix::ioctl_none!(blk_flsbuf, 0x12, 97);

/// Block devices are synced every this many bytes while writing, so the progress shown is what reached the
/// device rather than what the page cache took (a USB stick is much slower than RAM).
const SYNC_EVERY: u64 = 64 * 1024 * 1024;

/// [`CORRUPT_AT_ENV`], when set.
pub fn corrupt_at_from_env() -> Result<Option<u64>> {
    match std::env::var(CORRUPT_AT_ENV) {
        Ok(text) => {
            Ok(Some(text.trim().parse().with_context(|| {
                format!("{CORRUPT_AT_ENV}={text:?} is not a byte offset")
            })?))
        }
        Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("reading {CORRUPT_AT_ENV}")),
    }
}

pub(super) fn copy_and_verify(
    image: &Image,
    target: File,
    shown: &str,
    block: bool,
    options: &WriteOptions,
) -> Result<WriteReport> {
    let started = Instant::now();
    let mut source = File::open(&image.path).with_context(|| format!("opening the image {}", image.path.display()))?;
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut hasher = Sha256::new();
    let mut block_hashes: Vec<[u8; 32]> = Vec::new();
    let mut written = 0u64;
    let mut since_sync = 0u64;
    let progress = Progress::bytes(format!("writing {shown}"), image.size);
    loop {
        let n = read_full(&mut source, &mut buffer)
            .with_context(|| format!("reading the image {}", image.path.display()))?;
        if n == 0 {
            break;
        }
        if written + n as u64 > image.size {
            bail!("the image {} grew while being written", image.path.display());
        }
        target
            .write_all_at(&buffer[..n], written)
            .with_context(|| format!("writing {shown} at byte {written}"))?;
        hasher.update(&buffer[..n]);
        block_hashes.push(Sha256::digest(&buffer[..n]).into());
        written += n as u64;
        since_sync += n as u64;
        if block && since_sync >= SYNC_EVERY {
            target.sync_data().with_context(|| format!("syncing {shown}"))?;
            since_sync = 0;
        }
        progress.set(written);
    }
    progress.finish();
    if written != image.size {
        bail!(
            "the image {} shrank while being written ({} bytes, then {written})",
            image.path.display(),
            image.size
        );
    }
    let sha256: [u8; 32] = hasher.finalize().into();
    if let Some(expected) = image.expected
        && expected != sha256
    {
        bail!(
            "the image {} changed while being written: its sha256 no longer matches its .sha256 file",
            image.path.display()
        );
    }
    target.sync_all().with_context(|| format!("syncing {shown}"))?;

    if let Some(offset) = options.corrupt_at {
        corrupt_one_byte(&target, offset, written, shown)?;
    }
    drop_cached_pages(&target, block, shown);

    let progress = Progress::bytes(format!("verifying {shown}"), written);
    let mut readback = Sha256::new();
    let mut offset = 0u64;
    for (index, expected) in block_hashes.iter().enumerate() {
        let n = (written - offset).min(BLOCK_SIZE as u64) as usize;
        target
            .read_exact_at(&mut buffer[..n], offset)
            .with_context(|| format!("reading {shown} back at byte {offset}"))?;
        readback.update(&buffer[..n]);
        if <[u8; 32]>::from(Sha256::digest(&buffer[..n])) != *expected {
            drop(progress);
            let at = first_difference(&image.path, &buffer[..n], offset).unwrap_or(offset);
            bail!(
                "verification failed: what {shown} gives back differs from the image at byte {at} (block {index} of \
                 {} MiB at byte {offset}); the device may be failing or counterfeit (smaller than it claims)",
                BLOCK_SIZE / (1024 * 1024)
            );
        }
        offset += n as u64;
        progress.set(offset);
    }
    progress.finish();
    let readback: [u8; 32] = readback.finalize().into();
    if readback != sha256 {
        bail!(
            "verification failed: {shown} differs from the image: sha256 {} read back, {} written",
            hex(&readback),
            hex(&sha256)
        );
    }
    if !crate::verbosity::quiet() {
        eprintln!(
            "wrote {} to {shown} and read it back: sha256 {}",
            human_size(written),
            hex(&sha256)
        );
    }
    Ok(WriteReport {
        bytes: written,
        sha256,
        elapsed: started.elapsed(),
    })
}

/// The test hook: flips the byte at `offset` in the written range, and syncs it.
fn corrupt_one_byte(target: &File, offset: u64, written: u64, shown: &str) -> Result<()> {
    if offset >= written {
        bail!("{CORRUPT_AT_ENV}={offset} is outside the {written} bytes written");
    }
    let mut byte = [0u8];
    target
        .read_exact_at(&mut byte, offset)
        .with_context(|| format!("reading {shown} at byte {offset}"))?;
    byte[0] ^= 0xff;
    target
        .write_all_at(&byte, offset)
        .with_context(|| format!("writing {shown} at byte {offset}"))?;
    target.sync_all().with_context(|| format!("syncing {shown}"))?;
    eprintln!("test hook {CORRUPT_AT_ENV}: flipped the byte at {offset} of {shown}");
    Ok(())
}

/// Drops the target's cached pages so the read-back comes from the device, not from memory: BLKFLSBUF for a
/// block device (it needs CAP_SYS_ADMIN, which writing a disk usually comes with), and
/// `POSIX_FADV_DONTNEED`, which drops clean pages of any file.
fn drop_cached_pages(target: &File, block: bool, shown: &str) {
    let fd = target.as_raw_fd();
    // SAFETY: BLKFLSBUF takes no argument; fd is open for the whole call.
    if let Err(e) = if block {
        unsafe { blk_flsbuf(fd) }.map(drop)
    } else {
        Ok(())
    } {
        eprintln!("note: could not flush the buffers of {shown} ({e}); the read-back may partly come from the cache");
    }
    let _ = nix::fcntl::posix_fadvise(target, 0, 0, nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED);
}

/// The offset of the first byte in `got` (read back at `offset`) that differs from the image.
fn first_difference(image: &Path, got: &[u8], offset: u64) -> Option<u64> {
    let file = File::open(image).ok()?;
    let mut want = vec![0u8; got.len()];
    file.read_exact_at(&mut want, offset).ok()?;
    got.iter()
        .zip(&want)
        .position(|(a, b)| a != b)
        .map(|i| offset + i as u64)
}
