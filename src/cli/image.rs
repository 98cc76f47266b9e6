//! `rixos image build` (a configuration to a bootable image, like nixos-generators) and `rixos image write`
//! (an image onto a USB stick, checked and verified: `image_write.rs`).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};

use super::configuration::{Configuration, SystemBuild, build_system};
use super::image_write;

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Build an image of a configuration (the minimal live ISO by default); link the output directory, which
    /// holds `<name>.iso` and `<name>.iso.sha256`.
    Build(ImageBuildArgs),
    /// Write an image onto a USB stick or disk, refusing disks in use, and verify it.
    Write(image_write::ImageWriteArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ImageFormat {
    /// A hybrid live ISO (BIOS and UEFI, CD and USB stick) with a console system.
    IsoMinimal,
}

#[derive(Debug, Args)]
pub struct ImageBuildArgs {
    #[arg(long, value_enum)]
    pub format: ImageFormat,
    /// The configuration (default: the format's own, images/iso-minimal.nix).
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
    let ImageFormat::IsoMinimal = args.format;
    // A user's configuration becomes a live ISO by adding the ISO module; without one, the format's own.
    let (configuration, extra): (_, &[&str]) = match &args.config {
        Some(config) => (Configuration::File(config), &["<rixos/nixos/iso-image.nix>"]),
        None => (Configuration::Builtin("<rixos/images/iso-minimal.nix>"), &[]),
    };
    let built = build_system(
        root,
        &SystemBuild {
            configuration,
            extra_modules: extra,
            attr: "isoImage",
            out_link: args.out.clone(),
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
