//! Where rixos keeps what it learnt about this host and may forget at any time (the QEMU accelerator that
//! works, the store path of its own executable): `/var/cache/rixos` for root, the user's cache directory
//! otherwise. Nothing here is an input to a build; a missing or stale entry only costs recomputing it.

use std::path::PathBuf;

/// The directory for rixos' caches (not created here).
pub fn dir() -> PathBuf {
    if nix::unistd::geteuid().is_root() {
        return PathBuf::from("/var/cache/rixos");
    }
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir)
        .join("rixos")
}
