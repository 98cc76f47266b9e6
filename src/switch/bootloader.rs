//! The running machine's bootloader after a change of the system profile: the ESP's files for every
//! generation (`boot::loader`, written by rename, what no generation needs removed), and GRUB's BIOS images
//! on `boot.loader.grub.devices` when they differ from what is there, and the firmware's boot entry
//! (`firmware.rs`) when `boot.loader.efi.canTouchEfiVariables`.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::boot::loader::spec::{BootSpec, LoaderKind};
use crate::boot::loader::{Generation, install_on_mounted_esp};
use crate::store::profile::Profile;
use crate::store::resolve::resolve_under;

/// What installing did, for the user.
#[derive(Debug, Default)]
pub struct Report {
    /// The generations the menu lists, newest first.
    pub listed: Vec<u64>,
    /// Disks whose BIOS images were rewritten.
    pub bios_written: Vec<String>,
    /// Generations left out of the menu, with why.
    pub left_out: Vec<String>,
    /// The firmware boot entry added (`Boot####` and its label), when `canTouchEfiVariables`.
    pub efi_entry_added: Option<String>,
    /// What the user should know that did not stop the install.
    pub warnings: Vec<String>,
}

/// Installs the boot files of every generation of `profile` on the machine whose root is `root` (`/`).
pub fn install(root: &Path, profile: &Profile) -> Result<Report> {
    let generations: Vec<Generation> = profile
        .generations()?
        .into_iter()
        .map(|g| Generation {
            number: g.number as u32,
            toplevel: g.target.to_string(),
            created: g
                .created
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        })
        .collect();
    // The profile's current generation boots by default (older than the newest after a rollback).
    let current = profile.current()?.map(|n| n as u32);
    let Some(newest) = generations
        .iter()
        .find(|g| Some(g.number) == current)
        .or_else(|| generations.iter().max_by_key(|g| g.number))
    else {
        bail!(
            "the system profile {} has no generation to boot",
            profile.path().display()
        );
    };
    let resolve = |p: &str| resolve_under(root, p);
    let spec_file = resolve(&format!("{}/boot.json", newest.toplevel))?;
    let text = std::fs::read_to_string(&spec_file).with_context(|| format!("reading {}", spec_file.display()))?;
    let spec = BootSpec::parse(&text, &format!("{}/boot.json", newest.toplevel))?;
    let mut report = Report::default();
    if spec.loader.kind == LoaderKind::None {
        return Ok(report);
    }
    let esp = root.join(spec.loader.efi_sys_mount_point.trim_start_matches('/'));
    require_mounted(&esp)?;
    let installed = install_on_mounted_esp(&generations, Some(newest.number), &esp, &resolve)
        .with_context(|| format!("installing the boot files on {}", esp.display()))?;
    let limit = spec.loader.configuration_limit.unwrap_or(usize::MAX);
    let mut numbers: Vec<u64> = generations.iter().map(|g| g.number as u64).collect();
    numbers.sort_unstable_by(|a, b| b.cmp(a));
    numbers.truncate(limit.max(1));
    report.listed = numbers;
    report.left_out = installed.left_out;
    if let Some(wanted) = &installed.efi_boot_entry {
        match &spec.loader.efibootmgr {
            _ if !root.join("sys/firmware/efi").exists() => report.warnings.push(format!(
                "boot.loader.efi.canTouchEfiVariables is set but this machine did not boot with UEFI: no firmware \
                 boot entry for {} was added",
                wanted.loader
            )),
            None => report.warnings.push(format!(
                "the system has no efibootmgr: no firmware boot entry for {} was added",
                wanted.loader
            )),
            Some(efibootmgr) => {
                let program = resolve(efibootmgr)?;
                if let Some(number) = super::firmware::ensure_entry(&program, wanted, &esp)
                    .context("boot.loader.efi.canTouchEfiVariables")?
                {
                    report.efi_entry_added = Some(format!("Boot{number} {:?}", wanted.label));
                }
            }
        }
    }
    if let Some((boot_img, core_img)) = &installed.bios {
        let boot = std::fs::read(boot_img).with_context(|| format!("reading {}", boot_img.display()))?;
        let core = std::fs::read(core_img).with_context(|| format!("reading {}", core_img.display()))?;
        for device in &spec.loader.grub.devices {
            let path = device_path(root, device);
            if crate::image::disk::grub_bios::install_on_device(&path, &boot, &core)
                .with_context(|| format!("boot.loader.grub.device {device}"))?
            {
                report.bios_written.push(device.clone());
            }
        }
    }
    Ok(report)
}

fn device_path(root: &Path, device: &str) -> PathBuf {
    root.join(device.trim_start_matches('/'))
}

/// The ESP must be a file system of its own there: files written to the root's /boot would boot nothing.
fn require_mounted(esp: &Path) -> Result<()> {
    let here = std::fs::metadata(esp)
        .with_context(|| format!("the EFI system partition's mount point {} is missing", esp.display()))?;
    let parent = esp.parent().unwrap_or(Path::new("/"));
    let above = std::fs::metadata(parent).with_context(|| format!("reading {}", parent.display()))?;
    if here.dev() == above.dev() {
        bail!(
            "{} is not a mounted file system: mount the EFI system partition there (fileSystems.\"{}\") before \
             installing the bootloader",
            esp.display(),
            esp.display()
        );
    }
    Ok(())
}
