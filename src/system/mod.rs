//! The running system as the toplevel describes it: what is generated for systemd and udev from a
//! configuration (`units.rs`). Knows nothing of the Nix language or of disks.

pub mod units;
