//! Packages from Debian's signed archive, turned into self-contained store paths.

pub mod channel;
pub mod control;
pub mod deb;
pub mod index;
pub mod set;
pub mod unpack;
pub mod version;
