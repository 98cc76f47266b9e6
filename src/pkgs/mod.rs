//! Packages from Debian's signed archive, turned into self-contained store paths.

pub mod channel;
pub mod control;
pub mod deb;
pub mod index;
pub mod set;
pub mod unpack;
pub mod version;

/// The package layer's builtin builders, for the store to run.
pub fn register_builders(builders: &mut crate::store::builtin::Builders) {
    builders.add("builtin:unpack-deb", |b| {
        unpack::build(b.drv, &b.outputs, &|p| b.real(p))
    });
}
