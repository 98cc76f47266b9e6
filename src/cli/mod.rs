//! The command line: one clap-derive struct per command, dispatching into the library. Only commands that work
//! are exposed.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod channel;
mod configuration;
mod gc;
mod image;
mod image_write;
mod install;
mod instantiate;
mod options;
mod qemu_accel;
mod store;
mod system;

/// Build, install and convert Linux systems the NixOS way.
#[derive(Debug, Parser)]
#[command(name = "rixos", version, about, long_about = None)]
pub struct Cli {
    /// Also show the commands run and builders' output as it comes.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Print only errors.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// Physical root of the store: contents in ROOT/nix/store, state in ROOT/nix/var/nix. Default: / on a
    /// booted rixos system (its own store), else /var/lib/rixos/root.
    #[arg(long, global = true, env = "RIXOS_STORE", value_name = "ROOT")]
    pub store: Option<std::path::PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Work with store paths and NAR archives (like nix-store and nix-hash).
    #[command(subcommand)]
    Store(store::StoreCommand),
    /// Manage the Debian channels the package set comes from (like nix-channel).
    Channel(channel::ChannelArgs),
    /// Search the options of the system configuration; `--json` prints them all, `--html DIR` writes a page.
    Options(options::OptionsArgs),
    /// Build systems from configuration.nix (like nixos-rebuild).
    #[command(subcommand)]
    System(system::SystemCommand),
    /// Build bootable images (`image build --format iso-minimal`) and write them to USB sticks (`image write`).
    #[command(subcommand)]
    Image(image::ImageCommand),
    /// Install onto a disk from the live system, unattended from an answer file (like nixos-install with a
    /// partitioner in front); `--dry-run` shows what would be destroyed and created.
    Install(install::InstallArgs),
    /// Write /etc/rixos/hardware-configuration.nix (and a configuration.nix if there is none) for this
    /// machine, as nixos-generate-config.
    GenerateConfig(install::GenerateConfigArgs),
    /// Evaluate Nix expressions and write derivations (like nix-instantiate).
    Instantiate(instantiate::InstantiateArgs),
    /// Evaluate an expression and build the derivations it gives; link `result` to the output (like nix-build).
    Build(instantiate::BuildArgs),
    /// Delete old generations (-d, --delete-older-than) and unreachable store paths (like nix-collect-garbage).
    Gc(gc::GcArgs),
    /// Say which QEMU accelerator boots Linux here: KVM only if a real kernel reaches its first program under
    /// it (decided once per boot of the host, cached), else TCG; `RIXOS_QEMU_ACCEL=kvm|tcg` overrides.
    QemuAccel(qemu_accel::QemuAccelArgs),
    /// What a toplevel's `bin/switch-to-configuration ACTION` runs: move this machine to TOPLEVEL
    /// (switch, boot, test or dry-activate), as `rixos system switch` does after building.
    #[command(hide = true)]
    SwitchToConfiguration {
        /// The toplevel's store path.
        toplevel: String,
        /// switch, boot, test or dry-activate.
        action: String,
    },
}

pub fn main() -> ExitCode {
    quiet_on_closed_stdout();
    let cli = Cli::parse();
    crate::verbosity::set(crate::verbosity::Verbosity::from_flags(cli.quiet, cli.verbose));
    let store = cli.store.clone().unwrap_or_else(crate::store::local::default_root);
    crate::store::local::make_root_store_writable(&store);
    let result = match cli.command {
        Command::Store(command) => command.run(&store),
        Command::Gc(args) => gc::run(&store, &args),
        Command::Channel(args) => channel::run(&store, &args),
        Command::System(command) => command.run(&store),
        Command::Image(command) => command.run(&store),
        Command::Options(args) => options::run(&store, &args),
        Command::Instantiate(args) => instantiate::instantiate(&store, &args),
        Command::Build(args) => instantiate::build(&store, &args),
        Command::QemuAccel(args) => qemu_accel::run(&args),
        Command::Install(args) => install::install(&store, &args),
        Command::GenerateConfig(args) => install::generate_config(&args),
        Command::SwitchToConfiguration { toplevel, action } => switch_to_configuration(&toplevel, &action),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// `rixos ... | head` closes the pipe early: rixos then stops as other tools do (the shell's status 141), not with
/// a panic message. SIGPIPE itself stays ignored, so rixos' own pipes (NAR streams between threads, builders)
/// keep failing as errors that clean up, never as a kill.
fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or_default();
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

fn switch_to_configuration(toplevel: &str, action: &str) -> anyhow::Result<()> {
    let action = crate::switch::Action::parse(action)?;
    let root = std::path::Path::new("/");
    let _lock = match action {
        crate::switch::Action::DryActivate => None,
        _ => Some(crate::switch::lock::SwitchLock::take(&root.join("run/rixos"))?),
    };
    crate::switch::switch_to_configuration(root, toplevel, action)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
