//! Handing over to stage 2, as switch_root(8) does: move the API filesystems into the new root, free the
//! initramfs's RAM by deleting its files, make the new root `/` and exec stage 2 there.
//!
//! Deleting never crosses into another filesystem (st_dev compared), and only happens when `/` really is
//! the initramfs (ramfs/tmpfs) and this is PID 1, so a mistaken run elsewhere cannot wipe a disk.

use std::fs;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use super::log;
use super::sys;
use super::utab;

const RAMFS_MAGIC: i64 = 0x8584_58f6;
const TMPFS_MAGIC: i64 = 0x0102_1994;

/// Filesystems stage 1 mounted that stage 2 expects to find already there.
const CARRIED_OVER: [&str; 4] = ["/dev", "/proc", "/sys", "/run"];

/// Switches to `new_root` and execs `init` (a path inside it). Returns only on failure.
pub(crate) fn switch_and_exec(new_root: &str, init: &str) -> String {
    for mount_point in CARRIED_OVER {
        let target = format!("{new_root}{mount_point}");
        if let Err(e) = fs::create_dir_all(&target) {
            return format!("creating {target} to move {mount_point} there failed: {e}");
        }
        if let Err(e) = sys::move_mount(mount_point, &target) {
            return format!("moving {mount_point} to {target} failed: {e}");
        }
    }
    mark_initrd_mounts(new_root);
    if let Err(e) = std::env::set_current_dir(new_root) {
        return format!("changing into {new_root} failed: {e}");
    }
    free_initramfs(new_root);
    if let Err(e) = sys::move_mount(".", "/") {
        return format!("moving {new_root} to / failed: {e}");
    }
    if let Err(e) = std::os::unix::fs::chroot(".") {
        return format!("chroot into the new root failed: {e}");
    }
    if let Err(e) = std::env::set_current_dir("/") {
        return format!("changing into the new / failed: {e}");
    }
    log::info(&format!(
        "starting stage 2 ({init}) after {} ms",
        sys::since_boot().as_millis()
    ));
    let error = Command::new(init).arg0(init).exec();
    format!("executing stage 2 {init} failed: {error}")
}

/// Writes /run/mount/utab (in the new root) so systemd leaves the filesystems mounted here alone until its
/// very last step at shutdown. Failing costs only messages at shutdown, so it is only reported.
fn mark_initrd_mounts(new_root: &str) {
    // /proc has just moved into the new root.
    let written = fs::read_to_string(format!("{new_root}/proc/self/mountinfo")).and_then(|mountinfo| {
        let lines = utab::initrd_mounts(&mountinfo, new_root, &CARRIED_OVER);
        fs::create_dir_all(format!("{new_root}/run/mount"))?;
        fs::write(format!("{new_root}/run/mount/utab"), lines)
    });
    if let Err(e) = written {
        log::info(&format!("could not mark the initrd's mounts in /run/mount/utab: {e}"));
    }
}

fn free_initramfs(new_root: &str) {
    if std::process::id() != 1 {
        log::info("not PID 1: leaving the initramfs's files alone");
        return;
    }
    match sys::filesystem_type("/") {
        Ok(RAMFS_MAGIC | TMPFS_MAGIC) => {}
        Ok(other) => {
            log::info(&format!(
                "/ is not an initramfs (filesystem type {other:#x}): leaving its files alone"
            ));
            return;
        }
        Err(e) => {
            log::info(&format!("cannot tell what / is ({e}): leaving its files alone"));
            return;
        }
    }
    let root_device = match fs::symlink_metadata("/") {
        Ok(md) => md.dev(),
        Err(e) => {
            log::info(&format!("cannot stat /: {e}"));
            return;
        }
    };
    let mut tally = Tally::default();
    remove_children(Path::new("/"), root_device, Path::new(new_root), &mut tally);
    log::debug(&format!(
        "freed the initramfs: {} entries deleted, {} could not be",
        tally.deleted, tally.failed
    ));
}

#[derive(Default)]
struct Tally {
    deleted: usize,
    failed: usize,
}

/// Deletes what is under `dir` on the device `device`, skipping mount points and `keep`.
fn remove_children(dir: &Path, device: u64, keep: &Path, tally: &mut Tally) {
    let Ok(entries) = fs::read_dir(dir) else {
        tally.failed += 1;
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path == keep {
            continue;
        }
        let Ok(md) = fs::symlink_metadata(&path) else { continue };
        if md.dev() != device {
            continue; // a mount point: another filesystem's files are not ours to delete
        }
        let result: io::Result<()> = if md.is_dir() {
            remove_children(&path, device, keep, tally);
            fs::remove_dir(&path)
        } else {
            fs::remove_file(&path)
        };
        match result {
            Ok(()) => tally.deleted += 1,
            Err(_) => tally.failed += 1,
        }
    }
}
