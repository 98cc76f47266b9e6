//! rixos stage 1: `/init` of the initrd, PID 1 until stage 2 takes over. It does what NixOS's
//! stage-1-init.sh does, as one static program: load the kernel modules, find and check the root, mount it
//! and the other filesystems needed for boot (or assemble a live root from a squashfs), and switch to it.
//!
//! Built by `build.rs` with one plain rustc call: std only, no crates, the few libc calls declared in
//! `sys.rs`. The pure parts (`config`, `cmdline`, `spec`, `superblock`, `parttable`, `mountopts`, and the
//! std-only `lustrate`, `rootpath`, `fsck`, `utab`) use nothing but std and each other, so the rixos library can
//! include them with `#[path]` and run their tests; everything that touches the running system is in the
//! other files. Whatever fails ends in `rescue`, never in PID 1 exiting.

// The test harness replaces `main`, so the boot-time code is unused there.
#![cfg_attr(test, allow(dead_code))]

mod boot;
mod cmdline;
mod config;
mod devices;
mod fsck;
mod live;
mod log;
mod lustrate;
mod mounting;
mod mountopts;
mod parttable;
mod rescue;
mod rootpath;
mod spec;
mod superblock;
mod switch_root;
mod sys;
mod utab;

/// Present only in the initrd `rixos qemu-accel` boots to find out whether an accelerator really runs Linux:
/// its contents are the marker to print, after which the machine powers off.
const ACCEL_PROBE_MARKER: &str = "/etc/rixos-accel-probe";

fn main() {
    if let Ok(marker) = std::fs::read_to_string(ACCEL_PROBE_MARKER) {
        sys::ensure_console();
        println!("{}", marker.trim());
        sys::power_off_now();
    }
    rescue::install_panic_hook();
    let stopped = boot::run();
    rescue::fail(&stopped.message, stopped.policy)
}
