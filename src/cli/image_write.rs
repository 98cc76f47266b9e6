//! `rixos image write IMAGE DEVICE`: puts an image (the live ISO) onto a USB stick or disk after checking that
//! nothing on it is in use and that it is not the running system's, asks for the device's name, then reads
//! what was written back and compares it with the image (`src/image/write/`).

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::image::write::{self, Prompt, WriteOptions};

#[derive(Debug, Args)]
pub struct ImageWriteArgs {
    /// The image to write, e.g. the live ISO; IMAGE.sha256 next to it, when it exists,
    /// is checked first.
    #[arg(value_name = "IMAGE")]
    pub image: PathBuf,
    /// The disk to overwrite, e.g. /dev/sdb or /dev/disk/by-id/usb-...; everything on it is destroyed.
    #[arg(value_name = "DEVICE")]
    pub device: PathBuf,
    /// Do not ask to type the device's name (every safety check still runs).
    #[arg(short, long)]
    pub yes: bool,
    /// Write into a regular file (created when missing) instead of a block device.
    #[arg(long)]
    pub to_file: bool,
}

pub fn run(args: &ImageWriteArgs) -> Result<()> {
    let options = WriteOptions {
        to_file: args.to_file,
        yes: args.yes,
        corrupt_at: write::corrupt_at_from_env()?,
    };
    write::write_image(&args.image, &args.device, &options, Prompt::stdin())?;
    Ok(())
}
