//! The image assembler: turns files already built into the store into bootable image files, rootless (no
//! loop devices, no mounts, no root) and byte-for-byte reproducible from the same inputs.
//!
//! - [`squashfs`]: a squashfs of a store closure (libsquashfs through a minimal hand-written binding), the
//!   lower layer of a live system's `/nix/store`.
//! - [`esp`]: a FAT image for the EFI system partition (the `fatfs` crate).
//! - [`disk`]: `builtin:disk-image`, an installed system as a raw or qcow2 disk image (GPT, GRUB for BIOS,
//!   the ESP, an ext4 root made by `mkfs.ext4 -d`).
//! - [`iso`]: an ISO 9660 image with Rock Ridge and Joliet, El Torito boot for BIOS and UEFI, hybrid MBR/GPT so
//!   the same file boots from a CD or a USB stick on both firmware kinds (libisoburn's xorriso, in-process
//!   through the in-tree `xorriso-sys`), with a `sha256sum`-format checksum file beside it.
//! - [`live_iso`]: `builtin:iso-image`, the three above put together for a system's closure.
//! - [`write`]: `rixos image write`, putting a built image onto a USB stick or disk and reading it back.
//!
//! Invariants: every timestamp written is one the caller gives (the `SOURCE_DATE_EPOCH` of the build);
//! entries are written in sorted order; identifiers (FAT volume id, GPT GUIDs) are derived from hashes of the
//! inputs; nothing of the host (time, user, hostname, library versions) ends up in an image.
//!
//! This part knows nothing of the Nix language, evaluation or derivations: it is handed physical paths, store
//! path names and bytes, and writes files. Choosing what goes into an image is the caller's business.

pub mod disk;
pub mod esp;
mod fat_dots;
pub mod iso;
mod libsquashfs;
pub mod live_iso;
pub mod squashfs;
pub mod write;

/// Civil date and time (UTC) of seconds since the Unix epoch: (year, month, day, hour, minute, second).
/// Howard Hinnant's days-to-civil algorithm; images need it for FAT and ISO 9660 timestamps.
pub(crate) fn utc_civil(epoch: u64) -> (u64, u64, u64, u64, u64, u64) {
    let days = epoch / 86_400;
    let secs = epoch % 86_400;
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    let (year, month, day) = (year as u64, month as u64, day as u64);
    (year, month, day, secs / 3600, secs / 60 % 60, secs % 60)
}

/// The image layer's builtin builders, for the store to run.
pub fn register_builders(builders: &mut crate::store::builtin::Builders) {
    builders.add("builtin:iso-image", |b| {
        live_iso::build(b.drv, b.out()?, b.store, &|p| b.real(p))
    });
    builders.add("builtin:disk-image", disk::build);
}

/// Fails loudly when a host tool a test needs is missing, naming the Debian package that provides it.
#[cfg(test)]
pub(crate) fn require_tool(tool: &str, package: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()))
        .unwrap_or(false);
    let hint = format!("this test needs `{tool}`: install the Debian package {package} (scripts/setup)");
    assert!(found, "{hint}");
}

#[cfg(test)]
mod tests {
    use super::utc_civil;

    #[test]
    fn civil_dates() {
        assert_eq!(utc_civil(0), (1970, 1, 1, 0, 0, 0));
        assert_eq!(utc_civil(1_700_000_000), (2023, 11, 14, 22, 13, 20));
        assert_eq!(utc_civil(951_782_400), (2000, 2, 29, 0, 0, 0));
        assert_eq!(utc_civil(4_102_444_799), (2099, 12, 31, 23, 59, 59));
    }
}
