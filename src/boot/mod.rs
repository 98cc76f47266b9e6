//! Booting: what goes into an initrd and how it finds its kernel modules.
//!
//! Owns the formats the kernel reads at boot (the newc cpio archive of an initramfs, the `modules.dep` index),
//! the stage-1 init (`stage1/`, a program of its own) and `builtin:initrd`, which puts them together.
//! Knows nothing of the Nix language or of disks.

pub mod cpio;
pub mod initrd;
pub mod kmod;

/// rixos' stage-1 init (`stage1/`), a static executable compiled by `build.rs`; initrds carry it as `/init`.
pub const STAGE1_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rixos-stage1"));
