//! rixos: build, install and convert Linux systems the NixOS way.
//!
//! Each part of the design (see ARCHITECTURE.md) is one module. Parts only talk through the types they export;
//! the command line in [`cli`] is the one place that ties them together.

pub mod alloc;
pub mod boot;
pub mod cli;
pub mod command;
pub mod eval;
pub mod host_cache;
pub mod image;
pub mod install;
pub mod modules;
pub mod pkgs;
pub mod progress;
pub mod qemu;
pub mod store;
pub mod switch;
pub mod system;
pub mod verbosity;

/// Every builtin builder rixos has: the store's own and those the layers above register.
pub fn builtin_builders() -> store::builtin::Builders {
    let mut builders = store::builtin::Builders::store();
    pkgs::register_builders(&mut builders);
    boot::register_builders(&mut builders);
    system::register_builders(&mut builders);
    image::register_builders(&mut builders);
    builders
}
