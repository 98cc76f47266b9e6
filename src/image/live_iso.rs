//! `builtin:iso-image`: a live ISO of a system toplevel, put together from the parts in this module: the
//! toplevel's closure as a squashfs (with `nix-path-registration`, the store database's view of it), a FAT ESP
//! holding GRUB's `BOOTX64.EFI`, and the ISO 9660 image with El Torito for BIOS and UEFI and hybrid MBR/GPT.
//!
//! The derivation's environment: `toplevel`, `volumeID`, `isoName`, `kernel`, `initrd` (store files),
//! `sourceDateEpoch`, `grubConfig` (the menu), `grubBios` (a directory with `eltorito.img` and `boot_hybrid.img`), `grubEfi` (a
//! directory with `BOOTX64.EFI`). The output directory holds `<isoName>.iso` and `<isoName>.iso.sha256`.
//! Every timestamp is `sourceDateEpoch` (SOURCE_DATE_EPOCH, from the derivation), so the same inputs give the
//! same bytes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use super::esp::{EspFile, EspLayout, EspSource, build_esp};
use super::iso::{BiosBoot, IsoFile, IsoLayout, build_iso};
use super::squashfs::{SquashfsLayout, build_squashfs};
use crate::progress::Progress;
use crate::store::derivation::Derivation;
use crate::store::local::LocalStore;
use crate::store::path::StorePath;
use crate::store::resolve::resolve_with;

/// Where the squashfs is on the ISO (stage 1's `live` line names it).
pub const SQUASHFS_PATH: &str = "rixos/store.squashfs";

/// Builds the ISO of `drv` into `target`; `real` maps a logical store path to its file here.
pub fn build(drv: &Derivation, target: &Path, store: &LocalStore, real: &dyn Fn(&str) -> PathBuf) -> Result<()> {
    let env = |key: &str| -> Result<&str> {
        drv.env
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
            .with_context(|| format!("builtin:iso-image needs `{key}`"))
    };
    // From the derivation, not the environment: the same store path must always mean the same bytes.
    let epoch: u64 = env("sourceDateEpoch")?
        .parse()
        .context("builtin:iso-image: sourceDateEpoch is not a number of seconds")?;
    let toplevel = StorePath::parse(env("toplevel")?)?;
    let name = env("isoName")?;
    let label = env("volumeID")?;
    let resolve = |logical: &str| -> Result<PathBuf> { resolve_with(logical, real) };
    std::fs::create_dir_all(target)?;
    let work = tempfile::tempdir_in(target.parent().unwrap_or(target))?;

    // The closure, as stage 1 will see it under /nix/store, and what the store database says of each path.
    // With the channel the system was built from (when given): the live system evaluates and installs from it.
    let mut roots = vec![toplevel.clone()];
    if let Some(channel) = drv.env.get("channel").filter(|c| !c.is_empty()) {
        roots.push(StorePath::parse(channel).context("builtin:iso-image: channel")?);
    }
    let closure = store.requisites(&roots)?;
    let registration = crate::store::registration::registration(store, &closure)?;
    let squashfs = work.path().join("store.squashfs");
    let mut layout = SquashfsLayout::new(
        store.real_path_of("/nix/store"),
        closure.iter().map(|p| p.base_name().to_string()).collect(),
        u32::try_from(epoch).unwrap_or(u32::MAX),
    );
    layout
        .extra_files
        .push(("nix-path-registration".to_string(), registration.into_bytes()));
    // The total (the closure's file contents) is known once the squashfs has scanned them: its first report.
    let mut progress = None;
    build_squashfs(&layout, &squashfs, |done, total| {
        progress
            .get_or_insert_with(|| Progress::bytes("squashfs of the closure", total))
            .set(done)
    })
    .context("writing the squashfs of the closure")?;
    if let Some(progress) = progress {
        progress.finish();
    }

    let grub_bios = resolve(env("grubBios")?)?;
    let grub_efi = resolve(env("grubEfi")?)?;
    let grub_config = resolve(env("grubConfig")?)?;
    let esp = work.path().join("efiboot.img");
    build_esp(
        &EspLayout {
            files: vec![
                EspFile {
                    path: "EFI/BOOT/BOOTX64.EFI".to_string(),
                    source: EspSource::File(grub_efi.join("BOOTX64.EFI")),
                },
                EspFile {
                    path: "EFI/BOOT/grub.cfg".to_string(),
                    source: EspSource::File(grub_config.clone()),
                },
            ],
            size: None,
            label: "RIXOS_EFI".to_string(),
            epoch,
        },
        &esp,
    )
    .context("writing the EFI system partition")?;

    let file = |path: &str, source: PathBuf| IsoFile {
        path: path.to_string(),
        source,
    };
    let eltorito = "boot/grub/i386-pc/eltorito.img";
    let progress = Progress::stage("writing the ISO");
    let image = build_iso(&IsoLayout {
        output: target.join(format!("{name}.iso")),
        volume_label: label.to_string(),
        files: vec![
            file("boot/bzImage", resolve(env("kernel")?)?),
            file("boot/initrd", resolve(env("initrd")?)?),
            file("boot/grub/grub.cfg", grub_config),
            file(eltorito, grub_bios.join("eltorito.img")),
            file("EFI/BOOT/BOOTX64.EFI", grub_efi.join("BOOTX64.EFI")),
            file(SQUASHFS_PATH, squashfs),
        ],
        bios: Some(BiosBoot {
            eltorito_image: eltorito.to_string(),
            hybrid_mbr: grub_bios.join("boot_hybrid.img"),
        }),
        efi_image: Some(esp),
        epoch,
    })
    .context("writing the ISO")?;
    progress.finish();
    if !crate::verbosity::quiet() {
        // The file's name only: its path here is inside the builder's sandbox, which the user cannot open
        // (`rixos image build` prints where it is through the out-link).
        eprintln!(
            "{}: {} MiB, sha256 {}",
            image.path.file_name().unwrap_or_default().to_string_lossy(),
            image.size >> 20,
            image.sha256
        );
    }
    Ok(())
}
