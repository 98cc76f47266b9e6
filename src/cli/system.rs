//! `rixos system build`: a configuration.nix to its system toplevel in the store (like nixos-rebuild build).

use std::path::{Path, PathBuf};

use anyhow::Result;
use clap::{Args, Subcommand};

use super::configuration::{Configuration, SystemBuild, build_system};

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Evaluate the configuration and build the system; link `result` to it and print its store path.
    Build(SystemBuildArgs),
    /// Build the system as a QEMU guest: `result/bin/run-<hostname>-vm` boots it with the store shared
    /// read-only and a disk image made on first start (QEMU_OPTS and QEMU_KERNEL_PARAMS add to QEMU's
    /// arguments and the kernel's command line).
    BuildVm(SystemBuildArgs),
}

#[derive(Debug, Args)]
pub struct SystemBuildArgs {
    /// The configuration (default ./configuration.nix).
    #[arg(
        short = 'c',
        long = "config",
        value_name = "FILE",
        default_value = "configuration.nix"
    )]
    pub config: PathBuf,
    /// Name of the symlink to the system (default `result`).
    #[arg(short = 'o', long = "out-link", default_value = "result")]
    pub out_link: PathBuf,
    /// Show the chain of evaluation frames that led to an error.
    #[arg(long)]
    pub show_trace: bool,
}

impl SystemCommand {
    pub fn run(&self, root: &Path) -> Result<()> {
        let (args, extra, attr): (_, &[&str], _) = match self {
            SystemCommand::Build(args) => (args, &[], "toplevel"),
            SystemCommand::BuildVm(args) => (args, &["<rixos/nixos/qemu-vm.nix>"], "vm"),
        };
        let built = build_system(
            root,
            &SystemBuild {
                configuration: Configuration::File(&args.config),
                extra_modules: extra,
                attr,
                out_link: args.out_link.clone(),
                show_trace: args.show_trace,
            },
        )?;
        for output in built {
            println!("{}", output.path);
        }
        Ok(())
    }
}
