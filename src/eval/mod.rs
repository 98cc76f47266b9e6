//! The Nix language: parsing (rnix plus Nix's parse-time checks), compiling to a resolved expression tree,
//! lazy evaluation, the builtins, and printing values. Knows nothing of disks or images: files and the store
//! are reached through `io::EvalIo`.

pub mod builtins;
pub mod compile;
pub mod derivation;
pub mod error;
#[allow(clippy::module_inception)]
pub mod eval;
pub mod flakeref;
pub mod io;
pub mod json;
pub mod parse;
pub mod print;
pub mod regex;
pub mod session;
pub mod value;
pub mod xml;
