//! `rixos image build` (a configuration to a bootable image, like nixos-generators) and `rixos image write`
//! (an image onto a USB stick, checked and verified: `image_write.rs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::configuration::{Configuration, SystemBuild, build_system};
use super::image_write;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image of a configuration (the minimal live ISO, or the system installed on a disk); link the
    /// output directory, which holds the image (`<name>.iso`, `.img` or `.qcow2`) and its `.sha256`.
    Build(ImageBuildArgs),
    /// Write an image onto a USB stick or disk, refusing disks in use, and verify it.
    Write(image_write::ImageWriteArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    /// A hybrid live ISO (BIOS and UEFI, CD and USB stick) with a console system.
    IsoMinimal,
    /// A raw disk image of the system installed (BIOS and UEFI): `<name>.img`.
    Raw,
    /// The same disk as a qcow2 file: `<name>.qcow2`.
    Qcow2,
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    #[arg(long, value_enum)]
    pub format: ImageFormat,
    /// The configuration (default: the format's own, images/iso-minimal.nix or images/raw.nix).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where to link the output directory.
    #[arg(short = 'o', long = "out-link", value_name = "DIR", default_value = "result")]
    pub out: PathBuf,
    /// Show the chain of evaluation frames that led to an error.
    #[arg(long)]
    pub show_trace: bool,
}

impl ImageCommand {
    pub fn run(&self, root: &Path) -> Result<()> {
        match self {
            ImageCommand::Build(args) => build_image(root, args),
            ImageCommand::Write(args) => image_write::run(args),
        }
    }
}

fn build_image(root: &Path, args: &ImageBuildArgs) -> Result<()> {
    // A user's configuration becomes an image by adding the format's module; without one, the format's own
    // configuration (which imports that module).
    let (module, default, attr) = match args.format {
        ImageFormat::IsoMinimal => (
            "<rixos/nixos/iso-image.nix>",
            "<rixos/images/iso-minimal.nix>",
            "isoImage",
        ),
        ImageFormat::Raw => ("<rixos/nixos/disk-image.nix>", "<rixos/images/raw.nix>", "rawImage"),
        ImageFormat::Qcow2 => ("<rixos/nixos/disk-image.nix>", "<rixos/images/raw.nix>", "qcow2Image"),
    };
    let mut extra: Vec<String> = Vec::new();
    let configuration = match &args.config {
        Some(config) => {
            extra.push(module.to_string());
            Configuration::File(config)
        }
        None if args.format == ImageFormat::IsoMinimal => Configuration::Builtin(default),
        None => {
            extra.push(module.to_string());
            Configuration::Builtin(default)
        }
    };
    // The machine (installed from the image, or the live system an install runs on) gets the channels this
    // build used, so it rebuilds from the same package set.
    let option = if module.ends_with("disk-image.nix>") {
        "image"
    } else {
        "isoImage"
    };
    if let Some(channels) = channels_generation(root)? {
        extra.push(format!("{{ {option}.channel = \"{channels}\"; }}"));
        // And the list it updates them from, as a Nix string (URLs hold no quote or `${`).
        let list = crate::pkgs::channel::Channels::new(root).list_text()?;
        if !list.contains(['"', '\\', '$']) {
            extra.push(format!(
                "{{ {option}.channelList = \"{}\"; }}",
                list.replace('\n', "\\n")
            ));
        }
    }
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    let built = build_system(
        root,
        &SystemBuild {
            configuration,
            extra_modules: &extra,
            attr,
            out_link: Some(args.out.clone()),
            show_trace: args.show_trace,
        },
    )?;
    // The files as the user can open them: through the link, not at their place in the store's root.
    for output in built {
        let Some(link) = output.link else { continue };
        let mut files: Vec<PathBuf> = std::fs::read_dir(&link)
            .with_context(|| format!("reading the image directory {}", link.display()))?
            .flatten()
            .map(|e| link.join(e.file_name()))
            .collect();
        files.sort();
        for file in files {
            println!("{}", file.display());
        }
    }
    Ok(())
}

/// The store path of the current channels generation (`profiles/per-user/root/channels`), if there is one.
fn channels_generation(root: &Path) -> Result<Option<String>> {
    let profile = crate::pkgs::channel::Channels::new(root).profile();
    let Ok(generation) = std::fs::read_link(profile.path()) else {
        return Ok(None);
    };
    let generation = profile
        .path()
        .parent()
        .expect("a profile lives in a directory")
        .join(generation);
    let target = std::fs::read_link(&generation).with_context(|| format!("reading {}", generation.display()))?;
    let name = target.file_name().with_context(|| {
        format!(
            "{} points at {}, not a store path",
            generation.display(),
            target.display()
        )
    })?;
    Ok(Some(format!(
        "{}/{}",
        crate::store::path::STORE_DIR,
        name.to_string_lossy()
    )))
}
