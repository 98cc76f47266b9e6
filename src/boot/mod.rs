//! Booting: what goes into an initrd and how it finds its kernel modules.
//!
//! Owns the formats the kernel reads at boot (the newc cpio archive of an initramfs, the `modules.dep` index).
//! Knows nothing of the Nix language or of disks.

pub mod cpio;
pub mod kmod;
