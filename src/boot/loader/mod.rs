//! Bootloaders of installed systems: from the generations of the system profile and each one's `boot.json`
//! (`spec.rs`), the files of the ESP (= `/boot`): GRUB's menu and EFI image (`grub.rs`) or systemd-boot's
//! configuration, entries and EFI binary (`systemd_boot.rs`), and the kernels and initrds, copied once per
//! distinct store path. `files.rs` writes them atomically and removes what no generation needs any more, so the
//! image builder, the installer and switch share it. GRUB's BIOS images are not files of the ESP: they are
//! handed back for whoever writes the disk (MBR and BIOS boot partition).
//!
//! Knows nothing of the Nix language or of disks: the modules produce `boot.json`, the caller names the ESP
//! directory and resolves store paths.

pub mod files;
pub mod grub;
pub mod menu;
pub mod spec;
pub mod systemd_boot;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::store::path::STORE_DIR;
use files::{Content, EspFile};
use menu::MenuEntry;
use spec::{BootSpec, LoaderKind};

/// One generation of the system profile.
#[derive(Debug, Clone)]
pub struct Generation {
    pub number: u32,
    /// The toplevel's logical store path (`/nix/store/...-system`).
    pub toplevel: String,
    /// When it was made (Unix seconds); the menu shows its date.
    pub created: u64,
}

/// What `install_files` leaves to the caller.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Installed {
    /// GRUB's BIOS images (`boot.img` for the MBR, `core.img` for the BIOS boot partition), here, when the
    /// loader is GRUB with a BIOS device.
    pub bios: Option<(PathBuf, PathBuf)>,
    /// The firmware boot entry to add (`efibootmgr`), when `boot.loader.efi.canTouchEfiVariables`.
    pub efi_boot_entry: Option<EfiBootEntry>,
    /// Older generations left out of the menu, each with the reason (their boot.json could not be read).
    pub left_out: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EfiBootEntry {
    pub label: String,
    /// The loader's path on the ESP as the firmware writes it (`\EFI\rixos\grubx64.efi`).
    pub loader: String,
}

/// What the ESP holds for `generations` and what is left to the caller, computed without writing anything.
#[derive(Debug, Clone)]
pub struct Plan {
    /// In the order they are written: kernels and loaders first, the menu last.
    pub files: Vec<EspFile>,
    pub installed: Installed,
}

/// Writes the boot files of `generations` into `esp` (the directory that is, or becomes, the ESP's root) and
/// removes those an earlier install wrote that no generation needs any more. `resolve` gives the file here of
/// a logical store path, links followed. The newest generation's `boot.json` decides the loader.
pub fn install_files(
    generations: &[Generation],
    esp: &Path,
    resolve: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<Installed> {
    install_files_with_default(generations, None, esp, resolve)
}

/// As [`install_files`], with `default` (a generation's number; the newest when `None`) booted when nobody
/// chooses: the system profile's current generation, which is older than the newest after a rollback.
pub fn install_files_with_default(
    generations: &[Generation],
    default: Option<u32>,
    esp: &Path,
    resolve: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<Installed> {
    install(generations, default, esp, resolve, files::apply)
}

/// As [`install_files_with_default`], onto the mounted ESP of a running machine, synced file by file
/// ([`files::apply_durably`]).
pub fn install_on_mounted_esp(
    generations: &[Generation],
    default: Option<u32>,
    esp: &Path,
    resolve: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<Installed> {
    install(generations, default, esp, resolve, files::apply_durably)
}

fn install(
    generations: &[Generation],
    default: Option<u32>,
    esp: &Path,
    resolve: &dyn Fn(&str) -> Result<PathBuf>,
    apply: fn(&Path, &[EspFile]) -> Result<()>,
) -> Result<Installed> {
    let plan = plan_with_default(generations, default, resolve)?;
    apply(esp, &plan.files)?;
    Ok(plan.installed)
}

/// The files for `generations`: the newest first, as many as the loader's `configurationLimit` allows.
pub fn plan(generations: &[Generation], resolve: &dyn Fn(&str) -> Result<PathBuf>) -> Result<Plan> {
    plan_with_default(generations, None, resolve)
}

/// As [`plan`], with the default generation given (it decides the loader and is always listed).
pub fn plan_with_default(
    generations: &[Generation],
    default: Option<u32>,
    resolve: &dyn Fn(&str) -> Result<PathBuf>,
) -> Result<Plan> {
    let mut newest_first: Vec<&Generation> = generations.iter().collect();
    newest_first.sort_by_key(|g| std::cmp::Reverse(g.number));
    if let Some(pair) = newest_first.windows(2).find(|w| w[0].number == w[1].number) {
        bail!(
            "generation {} is listed twice ({} and {})",
            pair[0].number,
            pair[0].toplevel,
            pair[1].toplevel
        );
    }
    let Some(first) = newest_first.first() else {
        bail!("no generation to boot: the system profile is empty (build and switch to a system first)");
    };
    let newest = match default {
        Some(number) => *newest_first
            .iter()
            .find(|g| g.number == number)
            .with_context(|| format!("the default generation {number} is not among the generations"))?,
        None => *first,
    };
    let newest_spec = read_spec(newest, resolve)?;
    let loader = newest_spec.loader.clone();
    let limit = loader.configuration_limit.unwrap_or(usize::MAX).max(1);
    let mut installed = Installed::default();
    let mut booted = vec![(newest, newest_spec)];
    for generation in newest_first
        .iter()
        .filter(|g| g.number != newest.number)
        .take(limit - 1)
    {
        match read_spec(generation, resolve) {
            Ok(spec) => booted.push((generation, spec)),
            Err(e) => installed.left_out.push(format!("{e:#}")),
        }
    }
    // The menu lists generations newest first; the default is found by its number.
    booted.sort_by_key(|(g, _)| std::cmp::Reverse(g.number));
    let (kernel_dir, suffix) = match loader.kind {
        LoaderKind::None => {
            return Ok(Plan {
                files: Vec::new(),
                installed,
            });
        }
        LoaderKind::Grub => ("kernels", ""),
        LoaderKind::SystemdBoot => ("EFI/rixos", ".efi"),
    };
    let mut files = Vec::new();
    let mut entries = Vec::new();
    for (generation, spec) in &booted {
        let mut place = |logical: &str| -> Result<String> {
            let path = format!("{kernel_dir}/{}{suffix}", esp_name(logical)?);
            if !files.iter().any(|f: &EspFile| f.path == path) {
                let source = resolve(logical).with_context(|| format!("generation {}", generation.number))?;
                files.push(EspFile {
                    path: path.clone(),
                    content: Content::StoreFile(source),
                });
            }
            Ok(format!("/{path}"))
        };
        let kernel = place(&spec.kernel)?;
        let initrd = place(&spec.initrd)?;
        let mut options = vec![format!("init={}/init", generation.toplevel)];
        options.extend(spec.kernel_params.iter().cloned());
        entries.push(MenuEntry {
            number: generation.number,
            date: menu::date_of(generation.created),
            label: spec.label.clone(),
            kernel,
            initrd,
            options,
        });
    }
    let store_file = |logical: &str| resolve(logical).map(Content::Copy);
    match loader.kind {
        LoaderKind::Grub => {
            let grub = &loader.grub;
            if let Some((boot_img, core_img)) = &grub.bios {
                installed.bios = Some((resolve(boot_img)?, resolve(core_img)?));
            }
            if let Some(efi) = &grub.efi {
                files.push(EspFile {
                    path: "EFI/rixos/grubx64.efi".into(),
                    content: store_file(efi)?,
                });
                if grub.efi_install_as_removable {
                    // Where firmware looks when it has no boot entry: removable media, a disk new to it.
                    files.push(EspFile {
                        path: "EFI/BOOT/BOOTX64.EFI".into(),
                        content: store_file(efi)?,
                    });
                }
                if loader.can_touch_efi_variables {
                    installed.efi_boot_entry = Some(EfiBootEntry {
                        label: "rixos".into(),
                        loader: r"\EFI\rixos\grubx64.efi".into(),
                    });
                }
            }
            files.push(EspFile {
                path: "grub/grub.cfg".into(),
                content: Content::Text(grub::grub_cfg(&entries, newest.number, &loader)),
            });
        }
        LoaderKind::SystemdBoot => {
            let efi = loader.systemd_boot.efi.as_deref().with_context(|| {
                format!(
                    "{}/boot.json: the loader is systemd-boot but rixos.loader.systemd-boot.efi is null",
                    newest.toplevel
                )
            })?;
            // As `bootctl install`: its own place, and the fallback path firmware boots without an entry.
            files.push(EspFile {
                path: "EFI/systemd/systemd-bootx64.efi".into(),
                content: store_file(efi)?,
            });
            files.push(EspFile {
                path: "EFI/BOOT/BOOTX64.EFI".into(),
                content: store_file(efi)?,
            });
            for entry in &entries {
                let path = format!("loader/entries/{}", systemd_boot::entry_file_name(entry.number));
                files.push(EspFile {
                    path,
                    content: Content::Text(systemd_boot::entry_conf(entry)),
                });
            }
            let conf = systemd_boot::loader_conf(newest.number, &loader);
            files.push(EspFile {
                path: "loader/loader.conf".into(),
                content: Content::Text(conf),
            });
            if loader.can_touch_efi_variables {
                installed.efi_boot_entry = Some(EfiBootEntry {
                    label: "Linux Boot Manager".into(),
                    loader: r"\EFI\systemd\systemd-bootx64.efi".into(),
                });
            }
        }
        LoaderKind::None => unreachable!("returned above"),
    }
    Ok(Plan { files, installed })
}

fn read_spec(generation: &Generation, resolve: &dyn Fn(&str) -> Result<PathBuf>) -> Result<BootSpec> {
    let logical = format!("{}/boot.json", generation.toplevel);
    let read = || -> Result<BootSpec> {
        let file = resolve(&logical)?;
        let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
        BootSpec::parse(&text, &logical)
    };
    read().with_context(|| format!("generation {} ({})", generation.number, generation.toplevel))
}

/// A store file's name on the ESP: its store path's name (hash included, so one name is one content), then,
/// for a file inside it, the file's own name.
fn esp_name(logical: &str) -> Result<String> {
    let rest = logical
        .strip_prefix(STORE_DIR)
        .and_then(|r| r.strip_prefix('/'))
        .with_context(|| format!("{logical} is not in {STORE_DIR}: boot.json names only store files"))?;
    let (top, inner) = rest.split_once('/').unwrap_or((rest, ""));
    Ok(match inner.rsplit('/').find(|p| !p.is_empty()) {
        Some(file) => format!("{top}-{file}"),
        None => top.to_string(),
    })
}

#[cfg(test)]
mod tests;
