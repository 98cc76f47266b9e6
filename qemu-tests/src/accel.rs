//! Choosing the accelerator: KVM only where it really works, TCG otherwise.
//!
//! `/dev/kvm` existing is not enough: nested or restricted hosts expose a node that creates VMs and then fails
//! as QEMU sets up the vCPU (seen here: "failed to set MSR 0x10a"). So the check asks the kernel for the API
//! version, creates a VM, and then runs QEMU itself with KVM for a moment, once per process.
//! `RIXOS_QEMU_ACCEL=kvm|tcg` overrides.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

const KVM_GET_API_VERSION: libc::c_ulong = 0xAE00;
const KVM_CREATE_VM: libc::c_ulong = 0xAE01;
const KVM_API_VERSION: libc::c_int = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Accel {
    Kvm,
    Tcg,
}

impl Accel {
    /// The accelerator for new machines: the override if set, else KVM when usable, else TCG.
    pub fn detect() -> Accel {
        match std::env::var("RIXOS_QEMU_ACCEL").as_deref() {
            Ok("kvm") => Accel::Kvm,
            Ok("tcg") => Accel::Tcg,
            _ if kvm_usable() => Accel::Kvm,
            _ => Accel::Tcg,
        }
    }

    pub(crate) fn qemu_args(self) -> [&'static str; 4] {
        match self {
            Accel::Kvm => ["-accel", "kvm", "-cpu", "host"],
            // `max` gives the guest every feature TCG can emulate (x86-64-v2 and up, which Debian's userland uses).
            Accel::Tcg => ["-accel", "tcg", "-cpu", "max"],
        }
    }
}

/// True when KVM really runs a machine here (decided once per process).
pub fn kvm_usable() -> bool {
    static USABLE: OnceLock<bool> = OnceLock::new();
    *USABLE.get_or_init(|| kvm_device_works() && qemu_runs_with_kvm())
}

/// The device answers with the API version QEMU speaks and can create a VM.
fn kvm_device_works() -> bool {
    let Ok(dev) = OpenOptions::new().read(true).write(true).open("/dev/kvm") else {
        return false;
    };
    // SAFETY: plain ioctls on a descriptor we own; the VM descriptor is closed by OwnedFd.
    unsafe {
        if libc::ioctl(dev.as_raw_fd(), KVM_GET_API_VERSION, 0) != KVM_API_VERSION {
            return false;
        }
        let vm = libc::ioctl(dev.as_raw_fd(), KVM_CREATE_VM, 0);
        if vm < 0 {
            return false;
        }
        drop(OwnedFd::from_raw_fd(vm));
    }
    true
}

/// Starts QEMU with KVM and no guest (SeaBIOS runs and finds nothing to boot), lets it run half a second and
/// asks whether it still runs. A vCPU setup failure ends QEMU before that.
fn qemu_runs_with_kvm() -> bool {
    let child = Command::new("qemu-system-x86_64")
        .args([
            "-accel",
            "kvm",
            "-cpu",
            "host",
            "-machine",
            "q35",
            "-m",
            "64",
            "-nodefaults",
            "-display",
            "none",
        ])
        .args(["-S", "-qmp", "stdio"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut child) = child else { return false };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return false;
    };
    let mut replies = BufReader::new(stdout).lines();
    let mut ask = |command: &str| -> Option<String> {
        writeln!(stdin, "{{\"execute\": \"{command}\"}}").ok()?;
        replies
            .find(|line| line.as_ref().map_or(true, |l| !l.contains("\"event\"")))
            .and_then(Result::ok)
    };
    let running = ask("qmp_capabilities").is_some() && ask("cont").is_some() && {
        std::thread::sleep(Duration::from_millis(500));
        ask("query-status").is_some_and(|status| status.contains("\"running\""))
    };
    let _ = ask("quit");
    let _ = child.kill();
    let _ = child.wait();
    running
}
