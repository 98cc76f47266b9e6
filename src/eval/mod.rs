//! The Nix language. So far the front end: parsing with rnix plus the checks Nix makes at parse time. The
//! evaluator itself (issue 4) is still to come. Knows nothing of disks or images.

pub mod parse;
