//! Live mode: the root is a tmpfs, and `/nix/store` an overlay of the store's squashfs (on the live medium,
//! or copied to RAM with `copytoram`) under a writable tmpfs, as NixOS's ISO does it.
//!
//! Layout before the switch: the medium at `/mnt-medium` (moved to `/mnt-root/iso` when kept), the squashfs
//! on a read-only, auto-clearing loop device at `/mnt-squash` (moved to `/mnt-root/nix/.ro-store` once the
//! overlay holds it), the copy in RAM at `/run/rixos-ram` (carried over with `/run`).

use std::ffi::c_ulong;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::path::Path;
use std::time::{Duration, Instant};

use super::devices::{self, DeviceScanner};
use super::log;
use super::mounting::{make_dir, mount_at, os_error};
use super::mountopts::{self, MS_RDONLY, MountOptions};
use super::spec::DeviceSpec;
use super::sys;

const MEDIUM: &str = "/mnt-medium";
const SQUASH: &str = "/mnt-squash";
const RAM_COPY: &str = "/run/rixos-ram";

/// What was mounted, for messages: `LABEL=RIXOS_ISO, /dev/sr0`.
pub(crate) fn mount_live_root(
    scanner: &mut DeviceScanner,
    medium_spec: &str,
    squashfs: &str,
    copy_to_ram: bool,
    timeout: Duration,
    new_root: &str,
) -> Result<String, String> {
    let spec = DeviceSpec::parse(medium_spec);
    let medium = devices::wait_for(scanner, &spec, "the live medium", timeout)?;
    mount_medium(&medium.node)?;
    let on_medium = format!("{MEDIUM}{squashfs}");
    let size = fs::metadata(&on_medium)
        .map_err(|e| format!("the store image {squashfs} is not on the live medium {spec} ({}): {}", medium.node, os_error(&e)))?
        .len();

    let backing = if copy_to_ram {
        let copy = copy_to_ram_disk(&on_medium, size)?;
        if let Err(e) = sys::unmount(MEDIUM) {
            log::info(&format!("unmounting the live medium failed ({}); it stays in use", os_error(&e)));
            sys::unmount_lazily(MEDIUM).map_err(|e| format!("detaching {MEDIUM} failed: {}", os_error(&e)))?;
        }
        copy
    } else {
        on_medium
    };

    let (loop_node, loop_device) = attach_loop(&backing)?;
    let read_only = MountOptions { flags: MS_RDONLY, data: String::new() };
    mount_at(&loop_node, SQUASH, "squashfs", &read_only)?;
    drop(loop_device); // the mount holds the loop device now; auto-clear detaches it when that goes

    let root_fs = mountopts::parse("mode=755");
    mount_at("tmpfs", new_root, "tmpfs", &root_fs)?;
    let rw_store = format!("{new_root}/nix/.rw-store");
    mount_at("tmpfs", &rw_store, "tmpfs", &root_fs)?;
    make_dir(&format!("{rw_store}/store"))?;
    make_dir(&format!("{rw_store}/work"))?;
    let overlay = mountopts::parse(&format!("lowerdir={SQUASH},upperdir={rw_store}/store,workdir={rw_store}/work"));
    mount_at("overlay", &format!("{new_root}/nix/store"), "overlay", &overlay)?;

    // Visible to stage 2 like NixOS's, instead of hidden in the deleted initramfs.
    let ro_store = format!("{new_root}/nix/.ro-store");
    make_dir(&ro_store)?;
    sys::move_mount(SQUASH, &ro_store).map_err(|e| format!("moving {SQUASH} to {ro_store}: {}", os_error(&e)))?;
    if !copy_to_ram {
        let iso = format!("{new_root}/iso");
        make_dir(&iso)?;
        sys::move_mount(MEDIUM, &iso).map_err(|e| format!("moving {MEDIUM} to {iso}: {}", os_error(&e)))?;
    }
    log::info(&format!(
        "live root: a tmpfs with the store from {squashfs} on {spec} ({}){}",
        medium.node,
        if copy_to_ram { ", copied to RAM" } else { "" }
    ));
    Ok(format!("live medium {spec}, {}", medium.node))
}

fn mount_medium(node: &str) -> Result<(), String> {
    let read_only = MountOptions { flags: MS_RDONLY, data: String::new() };
    let mut errors = Vec::new();
    for fstype in ["iso9660", "vfat"] {
        match mount_at(node, MEDIUM, fstype, &read_only) {
            Ok(()) => return Ok(()),
            Err(e) => errors.push(e),
        }
    }
    Err(format!("the live medium could not be mounted: {}", errors.join("; ")))
}

fn copy_to_ram_disk(source: &str, size: u64) -> Result<String, String> {
    // Room for the file and the tmpfs's own bookkeeping, no more: the rest of RAM is the system's.
    let tmpfs_size = size + 4 * 1024 * 1024;
    mount_at("tmpfs", RAM_COPY, "tmpfs", &mountopts::parse(&format!("mode=755,size={tmpfs_size}")))?;
    let name = Path::new(source).file_name().map_or("store.squashfs".into(), |n| n.to_string_lossy().into_owned());
    let target = format!("{RAM_COPY}/{name}");
    log::info(&format!("copying {source} ({} MiB) to RAM", size.div_ceil(1024 * 1024)));
    let started = Instant::now();
    fs::copy(source, &target).map_err(|e| format!("copying {source} to {target} failed: {}", os_error(&e)))?;
    log::info(&format!("copied to RAM in {} ms; the medium can be removed", started.elapsed().as_millis()));
    Ok(target)
}

// linux/loop.h
const LOOP_SET_FD: c_ulong = 0x4C00;
const LOOP_SET_STATUS64: c_ulong = 0x4C04;
const LOOP_CONFIGURE: c_ulong = 0x4C0A;
const LOOP_CTL_GET_FREE: c_ulong = 0x4C82;
const LO_FLAGS_READ_ONLY: u32 = 1;
const LO_FLAGS_AUTOCLEAR: u32 = 4;

#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    size_limit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; 64],
    crypt_name: [u8; 64],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

fn loop_info(file: &str) -> LoopInfo64 {
    let mut file_name = [0u8; 64];
    let bytes = file.as_bytes();
    let len = bytes.len().min(63);
    file_name[..len].copy_from_slice(&bytes[..len]);
    LoopInfo64 {
        device: 0,
        inode: 0,
        rdevice: 0,
        offset: 0,
        size_limit: 0,
        number: 0,
        encrypt_type: 0,
        encrypt_key_size: 0,
        flags: LO_FLAGS_READ_ONLY | LO_FLAGS_AUTOCLEAR,
        file_name,
        crypt_name: [0; 64],
        encrypt_key: [0; 32],
        init: [0; 2],
    }
}

/// Attaches `file` to a free loop device, read-only and auto-clearing. The returned handle must stay open
/// until the device is mounted: with auto-clear, closing the last opener detaches it.
fn attach_loop(file: &str) -> Result<(String, fs::File), String> {
    let control = fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/loop-control")
        .map_err(|e| format!("opening /dev/loop-control failed: {} (is the loop module in the initrd?)", os_error(&e)))?;
    let backing = fs::File::open(file).map_err(|e| format!("opening {file} failed: {}", os_error(&e)))?;
    let mut last_error = String::new();
    // Another opener may take the free device between asking and configuring it; ask again then.
    for _ in 0..5 {
        let number = sys::ioctl_with(control.as_raw_fd(), LOOP_CTL_GET_FREE, 0)
            .map_err(|e| format!("asking /dev/loop-control for a free loop device failed: {}", os_error(&e)))?;
        let node = format!("/dev/loop{number}");
        let device = open_when_there(&node)?;
        match configure_loop(&device, &backing, file) {
            Ok(()) => {
                log::debug(&format!("{file} is on {node}"));
                return Ok((node, device));
            }
            Err(e) if e.raw_os_error() == Some(16) => last_error = format!("{node} was taken (EBUSY)"),
            Err(e) => return Err(format!("attaching {file} to {node} failed: {}", os_error(&e))),
        }
    }
    Err(format!("attaching {file} to a loop device failed: {last_error}"))
}

/// devtmpfs makes the node as the device is added, which may be just after LOOP_CTL_GET_FREE returns.
fn open_when_there(node: &str) -> Result<fs::File, String> {
    let started = Instant::now();
    loop {
        match fs::File::open(node) {
            Ok(device) => return Ok(device),
            Err(e) if e.kind() == io::ErrorKind::NotFound && started.elapsed() < Duration::from_secs(2) => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) => return Err(format!("opening {node} failed: {}", os_error(&e))),
        }
    }
}

fn configure_loop(device: &fs::File, backing: &fs::File, file: &str) -> io::Result<()> {
    let config = LoopConfig { fd: backing.as_raw_fd() as u32, block_size: 0, info: loop_info(file), reserved: [0; 8] };
    match sys::ioctl_with(device.as_raw_fd(), LOOP_CONFIGURE, &config as *const LoopConfig as usize) {
        Ok(_) => Ok(()),
        // Kernels before 5.8 have no LOOP_CONFIGURE: the two-step way.
        Err(e) if matches!(e.raw_os_error(), Some(22) | Some(25)) => {
            sys::ioctl_with(device.as_raw_fd(), LOOP_SET_FD, backing.as_raw_fd() as usize)?;
            let info = loop_info(file);
            sys::ioctl_with(device.as_raw_fd(), LOOP_SET_STATUS64, &info as *const LoopInfo64 as usize).map(|_| ())
        }
        Err(e) => Err(e),
    }
}
