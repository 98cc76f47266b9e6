//! `rixos image write`: puts an image (the live ISO, a disk image) onto a USB stick or disk, and proves it
//! arrived.
//!
//! Nothing is written before every check passed: the target is a block device (a regular file only when asked
//! for with `--to-file`); no partition of its disk is mounted, active swap or held by device mapper or a loop
//! device; the disk does not hold the running system (`/`, `/nix/store`, `/boot`, the live medium behind
//! `/iso` or behind the squashfs loop device at `/nix/.ro-store`); it is large enough and writable; the image
//! matches `IMAGE.sha256` when that file exists; and the user typed the device's name (or gave `--yes`). The
//! device is then opened `O_EXCL`, so the kernel refuses it if anything claimed it since. After writing, the
//! data is synced, the device's cached pages dropped, and the written range read back and compared, block by
//! block and as a whole, with the image's sha256.
//!
//! The checks are pure functions over a [`SystemView`] (parsed mountinfo and /proc/swaps, and the root of a
//! sysfs tree), so tests run them on fixture text and a fake sysfs. Knows nothing of how images are built.
//!
//! By topic: `checks.rs` (the checks, why a target is refused, what the user confirms), `system_view.rs`
//! (mounts, swap and sysfs), `image_file.rs` (the image and its `.sha256`), `target.rs` (the device or file,
//! opened for writing), `copy.rs` (writing and reading back); `write_image` here ties them together.

mod checks;
mod copy;
#[cfg(test)]
mod fake_sysfs;
mod image_file;
mod system_view;
mod target;

use std::fs;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};

pub use self::checks::{CheckedDevice, DeviceDescription, Refusal, check_block_device, confirms, describe};
use self::copy::copy_and_verify;
pub use self::copy::{CORRUPT_AT_ENV, corrupt_at_from_env};
use self::image_file::open_image;
pub use self::image_file::parse_sha256_file;
pub use self::system_view::{Mount, SystemView, parse_mountinfo, parse_swaps, split_devno};
pub use self::target::{Target, classify_target};
use self::target::{open_block_device, open_target_file};
pub use crate::progress::human_size;

/// Images are copied and read back in blocks of this size.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Write into a regular file instead of a block device.
    pub to_file: bool,
    /// Do not ask: the user already confirmed (the checks still run).
    pub yes: bool,
    /// The test hook of [`CORRUPT_AT_ENV`].
    pub corrupt_at: Option<u64>,
}

/// Where the user's answer comes from.
pub struct Prompt<'a> {
    pub input: Box<dyn BufRead + 'a>,
    /// Whether the input is a terminal: without one, nothing is destroyed without `--yes`.
    pub terminal: bool,
}

impl Prompt<'_> {
    /// Stdin.
    pub fn stdin() -> Prompt<'static> {
        Prompt {
            input: Box::new(io::stdin().lock()),
            terminal: io::stdin().is_terminal(),
        }
    }
}

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteReport {
    pub bytes: u64,
    pub sha256: [u8; 32],
    pub elapsed: Duration,
}

/// `rixos image write IMAGE TARGET`: checks, asks, writes, verifies. Errors name the device.
pub fn write_image(image: &Path, target: &Path, options: &WriteOptions, prompt: Prompt<'_>) -> Result<WriteReport> {
    let shown = target.display().to_string();
    let image = open_image(image)?;
    let target = classify_target(target, options.to_file)?;
    let written = match &target {
        Target::Block { path, devno } => {
            let name = checked_block_device(path, *devno, image.size)?.name;
            if !options.yes {
                let view = SystemView::current()?;
                let description = describe(&view, &name);
                ask(
                    &format!("{description}\nEverything on {} will be destroyed.", description.device),
                    &name,
                    path,
                    prompt,
                )?;
                // Anything may have been mounted while the user read the question.
                checked_block_device(path, *devno, image.size)?;
            }
            let file = open_block_device(path, *devno, &name, image.size)?;
            copy_and_verify(&image, file, &format!("/dev/{name}"), true, options)
        }
        Target::File { path, exists } => {
            let existing_size = if *exists {
                fs::metadata(path).map(|m| m.len()).unwrap_or(0)
            } else {
                0
            };
            if existing_size > 0 && !options.yes {
                let name = path
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| shown.clone());
                let question = format!(
                    "{shown}: a file of {}; it will be overwritten.",
                    human_size(existing_size)
                );
                ask(&question, &name, path, prompt)?;
            }
            let file = open_target_file(path, &image)?;
            copy_and_verify(&image, file, &shown, false, options)
        }
    };
    written.with_context(|| format!("writing {} to {shown}", image.path.display()))
}

/// Runs the checks on the running system for the device at `path`.
fn checked_block_device(path: &Path, devno: (u32, u32), image_size: u64) -> Result<CheckedDevice> {
    let view = SystemView::current()?;
    let Some(name) = view.name_of_devno(devno) else {
        bail!(
            "{} (block device {}:{}) is not in /sys/dev/block",
            path.display(),
            devno.0,
            devno.1
        );
    };
    Ok(check_block_device(&view, &name, image_size)?)
}

fn ask(question: &str, name: &str, given: &Path, mut prompt: Prompt<'_>) -> Result<()> {
    if !prompt.terminal {
        bail!(
            "refusing to overwrite {} without confirmation: stdin is not a terminal; add --yes to write anyway",
            given.display()
        );
    }
    let accepted = if given == Path::new(&format!("/dev/{name}")) || given == Path::new(name) {
        name.to_owned()
    } else {
        format!("{name} or {}", given.display())
    };
    eprint!("{question}\nType {accepted} to go on, anything else stops: ");
    io::stderr().flush().ok();
    let mut answer = String::new();
    prompt.input.read_line(&mut answer).context("reading the answer")?;
    if !confirms(&answer, name, given) {
        bail!("stopped: {:?} is not {name}; nothing was written", answer.trim());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use sha2::{Digest, Sha256};

    use super::*;
    use crate::store::hash::hex;

    // Real writes, into files with --to-file.

    /// An image of two and a bit blocks, so the last block is short, with bytes that differ by position.
    fn image_in(dir: &Path) -> (PathBuf, Vec<u8>) {
        let data: Vec<u8> = (0..2 * BLOCK_SIZE + 12_345).map(|i| (i * 7 + i / 4096) as u8).collect();
        let path = dir.join("rixos.iso");
        fs::write(&path, &data).unwrap();
        (path, data)
    }

    fn to_file() -> WriteOptions {
        WriteOptions {
            to_file: true,
            yes: true,
            corrupt_at: None,
        }
    }

    fn no_input() -> Prompt<'static> {
        Prompt {
            input: Box::new(io::empty()),
            terminal: false,
        }
    }

    #[test]
    fn an_image_is_written_into_a_file_and_verified() {
        let dir = tempfile::tempdir().unwrap();
        let (image, data) = image_in(dir.path());
        let target = dir.path().join("stick.img");
        let report = write_image(&image, &target, &to_file(), no_input()).unwrap();
        assert_eq!(report.bytes, data.len() as u64);
        assert_eq!(report.sha256, <[u8; 32]>::from(Sha256::digest(&data)));
        assert_eq!(fs::read(&target).unwrap(), data);

        // Over a longer existing file, with a matching IMAGE.sha256: the file ends where the image does.
        fs::write(&target, vec![1u8; 3 * BLOCK_SIZE]).unwrap();
        fs::write(
            dir.path().join("rixos.iso.sha256"),
            format!("{}  rixos.iso\n", hex(&report.sha256)),
        )
        .unwrap();
        write_image(&image, &target, &to_file(), no_input()).unwrap();
        assert_eq!(fs::read(&target).unwrap(), data);
    }

    #[test]
    fn a_corrupted_read_back_fails_naming_the_offset() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        let target = dir.path().join("stick.img");
        let offset = BLOCK_SIZE as u64 + 1000;
        let options = WriteOptions {
            corrupt_at: Some(offset),
            ..to_file()
        };
        let err = write_image(&image, &target, &options, no_input()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("differs from the image at byte 4195304 (block 1 of 4 MiB at byte 4194304)"),
            "{text}"
        );
        assert!(
            text.contains(&format!("writing {} to {}", image.display(), target.display())),
            "{text}"
        );

        let options = WriteOptions {
            corrupt_at: Some(1 << 40),
            ..to_file()
        };
        let err = write_image(&image, &target, &options, no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("outside the"), "{err:#}");
    }

    #[test]
    fn a_wrong_sha256_file_is_refused_before_writing() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        fs::write(
            dir.path().join("rixos.iso.sha256"),
            format!("{}  rixos.iso\n", "0".repeat(64)),
        )
        .unwrap();
        let target = dir.path().join("stick.img");
        fs::write(&target, b"precious").unwrap();
        let err = write_image(&image, &target, &to_file(), no_input()).unwrap_err();
        let text = format!("{err:#}");
        assert!(
            text.contains("does not match") && text.contains("nothing was written"),
            "{text}"
        );
        assert_eq!(fs::read(&target).unwrap(), b"precious");
        let missing = dir.path().join("new.img");
        assert!(write_image(&image, &missing, &to_file(), no_input()).is_err());
        assert!(!missing.exists());

        fs::write(dir.path().join("rixos.iso.sha256"), "not a hash\n").unwrap();
        let err = write_image(&image, &target, &to_file(), no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("rixos.iso.sha256"), "{err:#}");
        assert_eq!(fs::read(&target).unwrap(), b"precious");
    }

    #[test]
    fn targets_that_are_not_block_devices_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (image, _) = image_in(dir.path());
        let file = dir.path().join("stick.img");
        fs::write(&file, b"precious").unwrap();
        let options = WriteOptions {
            to_file: false,
            ..to_file()
        };
        let err = write_image(&image, &file, &options, no_input()).unwrap_err();
        assert!(
            matches!(
                err.downcast_ref::<Refusal>(),
                Some(Refusal::NotBlockDevice {
                    kind: "regular file",
                    ..
                })
            ),
            "{err:#}"
        );
        assert!(
            format!("{err:#}").contains("stick.img is not a block device but a regular file"),
            "{err:#}"
        );
        let err = write_image(&image, dir.path(), &options, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a block device but a directory"),
            "{err:#}"
        );
        let err = write_image(&image, &dir.path().join("missing"), &options, no_input()).unwrap_err();
        assert!(format!("{err:#}").contains("does not name a device"), "{err:#}");
        let err = write_image(&image, Path::new("/dev/null"), &options, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("not a block device but a character device"),
            "{err:#}"
        );
        // --to-file writes only files, never devices, and never the image over itself.
        let err = write_image(&image, Path::new("/dev/null"), &to_file(), no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("--to-file writes only regular files"),
            "{err:#}"
        );
        let err = write_image(&image, &image, &to_file(), no_input()).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Refusal>(), Some(Refusal::SameAsImage { .. })),
            "{err:#}"
        );
        assert_eq!(fs::read(&file).unwrap(), b"precious");
    }

    #[test]
    fn overwriting_needs_the_name_typed_or_yes() {
        let dir = tempfile::tempdir().unwrap();
        let (image, data) = image_in(dir.path());
        let file = dir.path().join("stick.img");
        fs::write(&file, b"precious").unwrap();
        let ask = WriteOptions {
            yes: false,
            ..to_file()
        };
        let err = write_image(&image, &file, &ask, no_input()).unwrap_err();
        assert!(
            format!("{err:#}").contains("stdin is not a terminal; add --yes"),
            "{err:#}"
        );
        let wrong = Prompt {
            input: Box::new(&b"yes\n"[..]),
            terminal: true,
        };
        let err = write_image(&image, &file, &ask, wrong).unwrap_err();
        assert!(
            format!("{err:#}").contains("stopped: \"yes\" is not stick.img; nothing was written"),
            "{err:#}"
        );
        assert_eq!(fs::read(&file).unwrap(), b"precious");
        let right = Prompt {
            input: Box::new(&b"stick.img\n"[..]),
            terminal: true,
        };
        write_image(&image, &file, &ask, right).unwrap();
        assert_eq!(fs::read(&file).unwrap(), data);
        // A new file destroys nothing: no question.
        write_image(&image, &dir.path().join("new.img"), &ask, no_input()).unwrap();
    }
}
