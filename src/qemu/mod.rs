//! QEMU on the host that runs rixos: which accelerator really boots Linux here ([`accel`]).
//!
//! The one place that decides KVM or TCG for every machine rixos starts or tells others to start: the demo,
//! the VM test harness, the benchmark scripts and build-vm's run script all ask it (`rixos qemu-accel`).
//! Knows nothing of the Nix language or the store: it is handed a kernel file and boots it.

pub mod accel;
