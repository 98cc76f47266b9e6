//! The running system as the toplevel describes it: what is generated for systemd and udev from a
//! configuration (`units.rs`). Knows nothing of the Nix language or of disks.

pub mod units;

/// The system layer's builtin builders, for the store to run.
pub fn register_builders(builders: &mut crate::store::builtin::Builders) {
    builders.add("builtin:unit-tree", |b| units::build(b.drv, b.out()?, &|p| b.real(p)));
}
