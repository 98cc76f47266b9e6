//! `rixos system`: nixos-rebuild's verbs. `build`, `dry-build` and `build-vm` make or describe a toplevel
//! anywhere; `switch`, `boot`, `test` and `dry-activate` move the running machine to the configuration
//! (`crate::switch`); `list-generations` and `delete-generations` manage the system profile.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};

use super::configuration::{Configuration, SystemBuild, build_system, instantiate_system};
use crate::store::path::StorePath;
use crate::store::profile::Profile;
use crate::switch::{Action, switch_to_configuration, system_profile};

/// The configuration a machine rebuilds from, as /etc/nixos/configuration.nix for NixOS.
pub const MACHINE_CONFIGURATION: &str = "/etc/rixos/configuration.nix";

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Evaluate the configuration and build the system; link `result` to it and print its store path.
    Build(SystemBuildArgs),
    /// Evaluate the configuration and print what building it would build and download, building nothing.
    DryBuild(ConfigArgs),
    /// Build the system as a QEMU guest: `result/bin/run-<hostname>-vm` boots it with the store shared
    /// read-only and a disk image made on first start (QEMU_OPTS and QEMU_KERNEL_PARAMS add to QEMU's
    /// arguments and the kernel's command line).
    BuildVm(SystemBuildArgs),
    /// Build the configuration, make it the system profile's next generation and the boot default, and
    /// activate it now.
    Switch(SwitchArgs),
    /// Build the configuration and make it the next generation and the boot default, without activating it.
    Boot(SwitchArgs),
    /// Build and activate the configuration without making it a generation: the next boot is unchanged.
    Test(SwitchArgs),
    /// Print what switching to the configuration would stop, restart, reload and start and which /etc
    /// entries it would change; change nothing.
    DryActivate(SwitchArgs),
    /// List the generations of the system profile: number, build date, version, which is current and which
    /// is booted.
    ListGenerations,
    /// Delete generations of the system profile: numbers, `old` (all but the current one) or an age such as
    /// `30d`; `rixos gc` then frees their paths and the next switch drops their menu entries.
    DeleteGenerations(DeleteArgs),
}

#[derive(Debug, Args)]
pub struct ConfigArgs {
    /// The configuration.
    #[arg(short = 'c', long = "config", value_name = "FILE", default_value = MACHINE_CONFIGURATION)]
    pub config: PathBuf,
    /// Show the chain of evaluation frames that led to an error.
    #[arg(long)]
    pub show_trace: bool,
}

#[derive(Debug, Args)]
pub struct SystemBuildArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Name of the symlink to the system (default `result`).
    #[arg(short = 'o', long = "out-link", default_value = "result")]
    pub out_link: PathBuf,
}

#[derive(Debug, Args)]
pub struct SwitchArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Go back to the previous generation instead of building (switch and boot make it the profile's current
    /// one; test and dry-activate only activate or describe it).
    #[arg(long)]
    pub rollback: bool,
    /// Update the channels first (`rixos channel --update`).
    #[arg(long, conflicts_with = "rollback")]
    pub upgrade: bool,
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// Generation numbers, `old`, or an age (`30d`).
    #[arg(required = true, value_name = "N|old|AGE")]
    pub which: Vec<String>,
}

impl SystemCommand {
    pub fn run(&self, root: &Path) -> Result<()> {
        match self {
            SystemCommand::Build(args) => build(root, args, &[], "toplevel"),
            SystemCommand::BuildVm(args) => build(root, args, &["<rixos/nixos/qemu-vm.nix>"], "vm"),
            SystemCommand::DryBuild(args) => dry_build(root, args),
            SystemCommand::Switch(args) => switch(root, args, Action::Switch),
            SystemCommand::Boot(args) => switch(root, args, Action::Boot),
            SystemCommand::Test(args) => switch(root, args, Action::Test),
            SystemCommand::DryActivate(args) => switch(root, args, Action::DryActivate),
            SystemCommand::ListGenerations => list_generations(root),
            SystemCommand::DeleteGenerations(args) => delete_generations(root, args),
        }
    }
}

/// Modules the running machine's own toplevel says it is rebuilt with (`rebuild-modules`: the disk image's
/// layout and bootloader, say), for builds of its configuration in its own store.
fn machine_modules(root: &Path) -> Vec<String> {
    if root != Path::new("/") {
        return Vec::new();
    }
    let text = std::fs::read_to_string("/run/current-system/rebuild-modules").unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_string)
        .collect()
}

fn system_build<'a>(
    config: &'a ConfigArgs,
    extra: &'a [&'a str],
    attr: &'a str,
    out_link: Option<PathBuf>,
) -> SystemBuild<'a> {
    SystemBuild {
        configuration: Configuration::File(&config.config),
        extra_modules: extra,
        attr,
        out_link,
        show_trace: config.show_trace,
    }
}

fn with_machine_modules<'a>(root: &Path, extra: &[&'a str], owned: &'a mut Vec<String>) -> Vec<&'a str> {
    *owned = machine_modules(root);
    let mut all: Vec<&str> = extra.to_vec();
    all.extend(owned.iter().map(String::as_str));
    all
}

fn build(root: &Path, args: &SystemBuildArgs, extra: &[&str], attr: &str) -> Result<()> {
    let mut owned = Vec::new();
    let extra = with_machine_modules(root, extra, &mut owned);
    let built = build_system(
        root,
        &system_build(&args.config, &extra, attr, Some(args.out_link.clone())),
    )?;
    for output in built {
        println!("{}", output.path);
    }
    Ok(())
}

fn dry_build(root: &Path, args: &ConfigArgs) -> Result<()> {
    let mut owned = Vec::new();
    let extra = with_machine_modules(root, &[], &mut owned);
    let drvs = instantiate_system(root, &system_build(args, &extra, "toplevel", None))?;
    let store = crate::store::local::LocalStore::open(root)?;
    let missing = store.missing(&drvs)?;
    if missing.build.is_empty() && missing.download.is_empty() {
        eprintln!("nothing to build or download: the system is in the store");
    }
    if !missing.build.is_empty() {
        eprintln!("these {} derivations would be built:", missing.build.len());
        for drv in &missing.build {
            println!("  {drv}");
        }
    }
    if !missing.download.is_empty() {
        eprintln!("these {} paths would be downloaded:", missing.download.len());
        for drv in &missing.download {
            for out in store.derivation_outputs(drv)?.values() {
                println!("  {out}");
            }
        }
    }
    Ok(())
}

fn switch(root: &Path, args: &SwitchArgs, action: Action) -> Result<()> {
    if root != Path::new("/") {
        bail!(
            "rixos system switch, boot, test and dry-activate change the machine they run on; run them on the \
             rixos system itself, without --store (the store given is {})",
            root.display()
        );
    }
    // Held from before the build to the end of activation: two switches never interleave.
    let _lock = match action {
        Action::DryActivate => None,
        _ => Some(crate::switch::lock::SwitchLock::take(&root.join("run/rixos"))?),
    };
    let profile = system_profile(root);
    if args.upgrade {
        super::channel::update_all(root)?;
    }
    let toplevel = if args.rollback {
        rollback_target(&profile, action)?
    } else {
        let mut owned = Vec::new();
        let extra = with_machine_modules(root, &[], &mut owned);
        let built = build_system(root, &system_build(&args.config, &extra, "toplevel", None))?;
        let toplevel = built
            .into_iter()
            .next()
            .context("the configuration built no toplevel")?
            .path;
        if matches!(action, Action::Switch | Action::Boot) {
            let number = profile.add_generation(&toplevel)?;
            profile.switch(number)?;
            // On disk before the boot menu names it the default.
            if let Some(dir) = profile.path().parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("syncing {}", dir.display()))?;
            }
            eprintln!("generation {number} of the system: {toplevel}");
        }
        toplevel
    };
    switch_to_configuration(root, &toplevel.to_string(), action)
}

/// The generation `--rollback` goes to: the newest older than the current one. `switch` and `boot` make it
/// current; `test` and `dry-activate` leave the profile alone.
fn rollback_target(profile: &Profile, action: Action) -> Result<StorePath> {
    let number = match action {
        Action::Switch | Action::Boot => profile.rollback()?,
        Action::Test | Action::DryActivate => {
            let current = profile.current()?.context("the system profile does not exist")?;
            profile
                .generations()?
                .iter()
                .rev()
                .find(|g| g.number < current)
                .with_context(|| format!("the system has no generation older than the current one ({current})"))?
                .number
        }
    };
    let generation = profile
        .generations()?
        .into_iter()
        .find(|g| g.number == number)
        .context("the generation went missing")?;
    eprintln!("rolling back to generation {number}: {}", generation.target);
    Ok(generation.target)
}

fn list_generations(root: &Path) -> Result<()> {
    let profile = system_profile(root);
    let current = profile.current()?;
    let booted = std::fs::canonicalize(root.join("run/booted-system")).ok();
    let generations = profile.generations()?;
    if generations.is_empty() {
        bail!("the system profile {} has no generations", profile.path().display());
    }
    println!("Generation  Build date           Version     Kernel");
    for g in generations.iter().rev() {
        let secs = g
            .created
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let top = crate::store::resolve::real_under(root, &g.target.to_string());
        let version = std::fs::read_to_string(top.join("rixos-version")).unwrap_or_default();
        let version = version.split_whitespace().nth(1).unwrap_or("?").to_string();
        let kernel = std::fs::read_link(top.join("kernel-modules"))
            .ok()
            .and_then(|_| std::fs::read_dir(top.join("kernel-modules")).ok())
            .and_then(|mut d| d.next())
            .and_then(|e| e.ok())
            .map_or("?".to_string(), |e| e.file_name().to_string_lossy().into_owned());
        let mut marks = Vec::new();
        if Some(g.number) == current {
            marks.push("current");
        }
        if booted.as_deref() == std::fs::canonicalize(&top).ok().as_deref() {
            marks.push("booted");
        }
        println!(
            "{:<11} {} {:<11} {:<22} {}",
            g.number,
            date_time(secs),
            version,
            kernel,
            marks.join(", ")
        );
    }
    Ok(())
}

fn date_time(secs: u64) -> String {
    let day = crate::boot::loader::menu::date_of(secs);
    let rest = secs % 86_400;
    format!("{day} {:02}:{:02}:{:02}", rest / 3600, rest / 60 % 60, rest % 60)
}

fn delete_generations(root: &Path, args: &DeleteArgs) -> Result<()> {
    let profile = system_profile(root);
    let mut doomed: Vec<u64> = Vec::new();
    for which in &args.which {
        if which == "old" {
            doomed.extend(profile.old_generations()?);
        } else if let Ok(number) = which.parse::<u64>() {
            if !profile.generations()?.iter().any(|g| g.number == number) {
                bail!("the system has no generation {number} (see `rixos system list-generations`)");
            }
            doomed.push(number);
        } else {
            let age = crate::store::profile::parse_age(which)
                .with_context(|| format!("{which:?} is neither a generation number, `old` nor an age like 30d"))?;
            doomed.extend(profile.generations_older_than(age, std::time::SystemTime::now())?);
        }
    }
    doomed.sort_unstable();
    doomed.dedup();
    profile.delete_generations(&doomed)?;
    for number in &doomed {
        eprintln!("deleted generation {number}");
    }
    if doomed.is_empty() {
        eprintln!("no generation to delete");
    }
    Ok(())
}
