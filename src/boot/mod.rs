//! Booting: what goes into an initrd and how it finds its kernel modules.
//!
//! Owns the formats the kernel reads at boot (the newc cpio archive of an initramfs, the `modules.dep` index),
//! the stage-1 init (`stage1/`, a program of its own) and `builtin:initrd`, which puts them together.
//! Knows nothing of the Nix language or of disks.

pub mod cpio;
pub mod initrd;
pub mod kmod;
pub mod loader;

/// rixos' stage-1 init (`stage1/`), a static executable compiled by `build.rs`; initrds carry it as `/init`.
pub const STAGE1_INIT: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/rixos-stage1"));

/// The boot layer's builtin builders, for the store to run.
pub fn register_builders(builders: &mut crate::store::builtin::Builders) {
    builders.add("builtin:initrd", |b| initrd::build(b.drv, b.out()?, &|p| b.real(p)));
}

/// The stage-1 init's pure parts (configuration, command line, device specs, superblocks, partition tables,
/// mount options, lustration, paths inside the new root, fsck results), compiled here too so `cargo test`
/// runs their tests; the init itself is built by `build.rs`.
#[cfg(test)]
#[allow(dead_code)] // what only the init itself uses
mod stage1 {
    #[path = "../stage1/cmdline.rs"]
    mod cmdline;
    #[path = "../stage1/config.rs"]
    mod config;
    #[path = "../stage1/fsck.rs"]
    mod fsck;
    #[path = "../stage1/lustrate.rs"]
    mod lustrate;
    #[path = "../stage1/mountopts.rs"]
    mod mountopts;
    #[path = "../stage1/parttable.rs"]
    mod parttable;
    #[path = "../stage1/rootpath.rs"]
    mod rootpath;
    #[path = "../stage1/spec.rs"]
    mod spec;
    #[path = "../stage1/superblock.rs"]
    mod superblock;
    #[path = "../stage1/utab.rs"]
    mod utab;
}
