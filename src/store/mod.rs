//! The Nix-compatible store: hashes, store paths, and the NAR archive format.
//!
//! Everything here reproduces Nix's formats byte for byte (../shared/docs/nix-formats.md), so Nix can check a
//! rixos store and binary caches interoperate. Knows nothing of the Nix language or of images.

pub mod build;
pub mod buildenv;
pub mod builtin;
pub mod db;
pub mod derivation;
pub mod gc;
pub mod hash;
pub mod local;
pub mod nar;
pub mod path;
pub mod profile;
pub mod registration;
pub mod resolve;
