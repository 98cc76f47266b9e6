//! Mounting with errors that say what was tried and what to do: the source, target and type, the kernel's
//! reason, and for "unknown filesystem" the module that is probably missing from the initrd.

use std::fs;
use std::io;

use super::mountopts::MountOptions;
use super::sys;

/// The error's text without std's " (os error N)" suffix, as the messages quote it.
pub(crate) fn os_error(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// The kernel module that provides a filesystem, where its name differs.
fn module_for(fstype: &str) -> &str {
    match fstype {
        "ext2" | "ext3" => "ext4",
        "iso9660" => "isofs",
        "9p" => "9p (and 9pnet_virtio)",
        "virtiofs" => "virtiofs",
        other => other,
    }
}

pub(crate) fn make_dir(path: &str) -> Result<(), String> {
    fs::create_dir_all(path).map_err(|e| format!("creating the mount point {path} failed: {}", os_error(&e)))
}

/// mkdir -p the target, then mount.
pub(crate) fn mount_at(source: &str, target: &str, fstype: &str, options: &MountOptions) -> Result<(), String> {
    make_dir(target)?;
    sys::mount_fs(source, target, fstype, options.flags, &options.data).map_err(|e| {
        let hint = match e.raw_os_error() {
            // ENODEV: no such filesystem type; EINVAL is also what a filesystem without its driver gives.
            Some(19) | Some(22) => {
                format!(" (is the {} module in boot.initrd.availableKernelModules?)", module_for(fstype))
            }
            // ENXIO/ENOENT on the source: the device went away or the 9p tag is wrong.
            Some(2) | Some(6) => format!(" (does {source} exist?)"),
            _ => String::new(),
        };
        let with = if options.data.is_empty() { String::new() } else { format!(" with options {}", options.data) };
        format!("mounting {source} on {target} as {fstype}{with} failed: {}{hint}", os_error(&e))
    })
}
