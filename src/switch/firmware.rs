//! The firmware's boot entry for the installed loader (`boot.loader.efi.canTouchEfiVariables`), added with
//! Debian's `efibootmgr` as `grub-install` and `bootctl install` do: when no entry of that label points at
//! the loader's file on the ESP, one is created, which efibootmgr puts first in `BootOrder`. An entry that is
//! already there is left as it is, with its place in the boot order (the user may have moved it).
//!
//! efibootmgr rather than writing `Boot####` variables by hand: it builds the EFI device path of the
//! partition (GPT signature, start, size), which firmware is strict about.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::boot::loader::EfiBootEntry;

/// A `Boot####` variable as `efibootmgr -v` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FirmwareEntry {
    /// The four hex digits of `Boot####`.
    pub number: String,
    pub label: String,
    /// The `File(...)` of its device path, when it has one (`\EFI\rixos\grubx64.efi`).
    pub file: Option<String>,
}

/// The entries of `efibootmgr -v`'s output.
pub fn parse_entries(text: &str) -> Vec<FirmwareEntry> {
    text.lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("Boot")?;
            let number = rest.get(..4)?;
            if !number.chars().all(|c| c.is_ascii_hexdigit()) {
                return None;
            }
            // `*` when the entry is active, a space when not; then a space.
            let rest = rest[4..].strip_prefix(['*', ' '])?.strip_prefix(' ')?;
            let (label, path) = rest.split_once('\t').unwrap_or((rest, ""));
            let file = path.find("File(").and_then(|at| {
                let inner = &path[at + 5..];
                inner.find(')').map(|end| inner[..end].to_string())
            });
            Some(FirmwareEntry {
                number: number.to_string(),
                label: label.trim_end().to_string(),
                file,
            })
        })
        .collect()
}

/// The entry for `wanted` among `entries`: same label and same file (firmware paths are case-insensitive).
pub fn find<'a>(entries: &'a [FirmwareEntry], wanted: &EfiBootEntry) -> Option<&'a FirmwareEntry> {
    entries.iter().find(|e| {
        e.label == wanted.label
            && e.file
                .as_deref()
                .is_some_and(|f| f.eq_ignore_ascii_case(&wanted.loader))
    })
}

/// The disk and partition number of the file system mounted at `esp` (`/dev/vda`, 1), from sysfs.
pub fn partition_of(esp: &Path) -> Result<(PathBuf, u32)> {
    let dev = std::fs::metadata(esp)
        .with_context(|| format!("reading {}", esp.display()))?
        .dev();
    let (major, minor) = (nix::sys::stat::major(dev), nix::sys::stat::minor(dev));
    let sys = PathBuf::from(format!("/sys/dev/block/{major}:{minor}"));
    let part = std::fs::read_to_string(sys.join("partition")).with_context(|| {
        format!(
            "{} is not on a disk partition (device {major}:{minor}): the firmware boots only from a partition",
            esp.display()
        )
    })?;
    let number: u32 = part
        .trim()
        .parse()
        .with_context(|| format!("{}/partition reads {part:?}", sys.display()))?;
    let real = std::fs::canonicalize(&sys).with_context(|| format!("resolving {}", sys.display()))?;
    let disk = real
        .parent()
        .and_then(Path::file_name)
        .with_context(|| format!("{} has no parent disk", real.display()))?;
    Ok((Path::new("/dev").join(disk), number))
}

/// Adds `wanted` to the firmware's boot entries with `efibootmgr` unless it is there; gives the new entry's
/// number when one was added.
pub fn ensure_entry(efibootmgr: &Path, wanted: &EfiBootEntry, esp: &Path) -> Result<Option<String>> {
    let list = |what: &str| -> Result<Vec<FirmwareEntry>> {
        let out = Command::new(efibootmgr)
            .arg("-v")
            .output()
            .with_context(|| format!("running {}", efibootmgr.display()))?;
        if !out.status.success() {
            bail!(
                "{what}: efibootmgr -v failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            );
        }
        Ok(parse_entries(&String::from_utf8_lossy(&out.stdout)))
    };
    let before = list("reading the firmware's boot entries")?;
    if find(&before, wanted).is_some() {
        return Ok(None);
    }
    let (disk, part) = partition_of(esp)?;
    let out = Command::new(efibootmgr)
        .args(["--quiet", "--create", "--disk"])
        .arg(&disk)
        .args([
            "--part",
            &part.to_string(),
            "--label",
            &wanted.label,
            "--loader",
            &wanted.loader,
        ])
        .output()
        .with_context(|| format!("running {}", efibootmgr.display()))?;
    if !out.status.success() {
        bail!(
            "adding the firmware boot entry {:?} for {} on {} partition {part}: efibootmgr failed ({}): {}",
            wanted.label,
            wanted.loader,
            disk.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    let after = list("checking the new firmware boot entry")?;
    let added = find(&after, wanted).with_context(|| {
        format!(
            "efibootmgr reported success but the firmware lists no entry {:?} for {}",
            wanted.label, wanted.loader
        )
    })?;
    Ok(Some(added.number.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// As efibootmgr 17 (Debian 12) prints it under OVMF, after an entry was added.
    const LISTED: &str = "BootCurrent: 0001\n\
        Timeout: 0 seconds\n\
        BootOrder: 0004,0001,0000,0002\n\
        Boot0000* UiApp\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(462caa21-7614-4503-836e-8ab6f4662331)\n\
        Boot0001* UEFI Misc Device\tPciRoot(0x0)/Pci(0x4,0x0){auto_created_boot_option}\n\
        Boot0002  EFI Internal Shell\tFvVol(7cb8bdc9-f8eb-4f34-aaea-3ee4af6516a1)/FvFile(7c04a583-9e3e-4f1c-ad65-e05268d0b4d1)\n\
        Boot0004* Linux Boot Manager\tHD(1,GPT,5e0b6d1c-0000-4000-8000-000000000001,0x800,0x80000)/File(\\EFI\\systemd\\systemd-bootx64.efi)\n";

    #[test]
    fn entries_are_read_with_their_labels_and_files() {
        let entries = parse_entries(LISTED);
        assert_eq!(entries.len(), 4);
        assert_eq!(entries[1].label, "UEFI Misc Device");
        assert_eq!(entries[1].file, None);
        assert_eq!(entries[2].number, "0002");
        assert_eq!(entries[2].label, "EFI Internal Shell");
        assert_eq!(entries[3].file.as_deref(), Some(r"\EFI\systemd\systemd-bootx64.efi"));
    }

    #[test]
    fn an_entry_is_found_by_label_and_file_whatever_the_case_of_the_file() {
        let entries = parse_entries(LISTED);
        let wanted = |label: &str, loader: &str| EfiBootEntry {
            label: label.into(),
            loader: loader.into(),
        };
        let cases = [
            ("Linux Boot Manager", r"\EFI\systemd\systemd-bootx64.efi", Some("0004")),
            ("Linux Boot Manager", r"\efi\SYSTEMD\systemd-bootx64.EFI", Some("0004")),
            ("Linux Boot Manager", r"\EFI\rixos\grubx64.efi", None),
            ("rixos", r"\EFI\systemd\systemd-bootx64.efi", None),
        ];
        for (label, loader, number) in cases {
            let found = find(&entries, &wanted(label, loader)).map(|e| e.number.as_str());
            assert_eq!(found, number, "{label} {loader}");
        }
    }
}
