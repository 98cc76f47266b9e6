//! A harness that boots images under `qemu-system-x86_64` and drives them like a person at the console would.
//!
//! - [`Machine::builder`] describes a machine: firmware (SeaBIOS or OVMF with a private variable store), media
//!   (CD-ROM, USB stick, virtio disk, NVMe), a direct kernel boot, user-mode networking with port forwards.
//! - A started [`Machine`] offers the serial console ([`Machine::wait_for`], [`Machine::send_line`]) and QMP
//!   ([`Machine::screenshot`], [`Machine::power_button`], [`Machine::reset`]), and [`Machine::kill`] as a power
//!   cut.
//! - KVM is used only where it really works ([`accel::kvm_usable`]); otherwise TCG.
//! - [`rixos`]: the workspace's `rixos` binary and commands typed at a booted system's shell.
//!
//! Invariant: no QEMU process outlives its [`Machine`]. Dropping it (also while a test panics) kills and reaps
//! the process, and the kernel kills it too if the thread that started it dies (`PR_SET_PDEATHSIG`).

pub mod accel;
pub mod assets;
mod machine;
mod qmp;
pub mod rixos;
mod serial;

pub use machine::{DirectBoot, Firmware, GuestForward, Machine, MachineBuilder, MachineError, MediumKind};
