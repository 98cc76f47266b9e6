//! `rixos install`: install onto a disk from the live system, unattended from an answer file; and
//! `rixos generate-config`: this machine's hardware-configuration.nix, as nixos-generate-config writes it.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use super::configuration::{Configuration, SystemBuild, build_system};
use crate::install::answers::Answers;
use crate::install::hardware::{Hardware, hardware_configuration};
use crate::install::plan::{Firmware, Ids, Plan};
use crate::install::{disks, run, wizard};

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// The answer file (TOML, or JSON when it ends in .json): the disk, layout, swap, hostname, users, keys.
    /// Without it, a wizard asks (on a terminal).
    #[arg(long, value_name = "FILE")]
    answers: Option<PathBuf>,
    /// Show the disks and what the install would destroy and create; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Do not ask for the disk's name before erasing it.
    #[arg(long)]
    yes: bool,
}

pub fn install(store: &Path, args: &InstallArgs) -> Result<()> {
    let given = args.answers.as_deref().map(Answers::read).transpose()?;
    if given.is_none() && !std::io::stdin().is_terminal() {
        bail!("no answer file (--answers FILE) and no terminal for the wizard; nothing was written");
    }
    let found = disks::scan()?;
    println!("Disks:");
    for disk in &found {
        match &disk.unavailable {
            Some(reason) => println!("  {}  unavailable: {reason}", disk.title()),
            None => println!("  {}", disk.title()),
        }
        for part in &disk.partitions {
            println!("      {part}");
        }
    }
    let wizard = given.is_none();
    let answers = match given {
        Some(answers) => answers,
        None => {
            println!();
            wizard::ask(&found, Firmware::of_this_machine())?
        }
    };
    let disk = disks::choose(&found, &answers)?;
    let closure = run::estimate_closure_bytes().unwrap_or(1 << 30);
    let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
    let hardware = Hardware::drivers(
        Path::new("/sys"),
        &std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default(),
    );
    let mut plan = Plan::new(
        &answers,
        disk,
        closure,
        Firmware::of_this_machine(),
        &cmdline,
        hardware,
        Ids::random()?,
    )?;
    plan.state_version = std::fs::read_to_string("/run/current-system/stateVersion")
        .ok()
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty());
    println!();
    print!("{}", plan.summary());
    if args.dry_run {
        println!("This was a dry run: nothing was written.");
        return Ok(());
    }
    if !args.yes {
        confirm(&plan)?;
    }
    if wizard {
        save_answers(&answers)?;
    }
    let build = |configuration: &Path| {
        let built = build_system(
            store,
            &SystemBuild {
                configuration: Configuration::File(configuration),
                extra_modules: &[],
                attr: "toplevel",
                out_link: None,
                show_trace: false,
            },
        )?;
        built
            .into_iter()
            .next()
            .map(|b| b.path)
            .context("the system's build gave no output")
    };
    run::install(&plan, &build)?;
    println!(
        "rixos is installed on {}. Its configuration is /etc/rixos/configuration.nix there; remove the \
         installation medium and reboot.",
        plan.disk.path.display()
    );
    Ok(())
}

/// Offers to keep the wizard's answers as an answer file, for the next machine.
fn save_answers(answers: &Answers) -> Result<()> {
    let save = dialoguer::Confirm::new()
        .with_prompt("Save these answers as an answer file (passwords hashed) for unattended installs?")
        .default(false)
        .interact()?;
    if !save {
        return Ok(());
    }
    let path: String = dialoguer::Input::new()
        .with_prompt("Save to")
        .default("/root/rixos-answers.toml".into())
        .interact_text()?;
    std::fs::write(&path, wizard::answer_file(answers)?).with_context(|| format!("writing {path}"))?;
    println!("The answers are in {path}: `rixos install --answers {path}` installs the same again.");
    Ok(())
}

/// The user types the disk's name (`vda` or `/dev/vda`) to go on; anything else stops before a write.
fn confirm(plan: &Plan) -> Result<()> {
    let name = &plan.disk.name;
    println!("Type the disk's name ({name}) to erase it and install, anything else to stop:");
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .context("reading the confirmation")?;
    let typed = line.trim();
    if typed == name || typed == plan.disk.path.to_string_lossy() {
        return Ok(());
    }
    bail!(
        "the confirmation {typed:?} is not the disk's name {name:?}; nothing was written to {}",
        plan.disk.path.display()
    )
}

#[derive(Debug, Args)]
pub struct GenerateConfigArgs {
    /// The root of the system the files are for: its file systems are those mounted at and under it, and the
    /// files go to ROOT/etc/rixos.
    #[arg(long, value_name = "DIR", default_value = "/")]
    root: PathBuf,
    /// Print hardware-configuration.nix instead of writing anything.
    #[arg(long)]
    show_hardware_config: bool,
}

pub fn generate_config(args: &GenerateConfigArgs) -> Result<()> {
    let root = std::fs::canonicalize(&args.root).with_context(|| format!("the root {}", args.root.display()))?;
    let hardware = hardware_configuration(&Hardware::detect(&root)?);
    if args.show_hardware_config {
        print!("{hardware}");
        return Ok(());
    }
    let dir = root.join("etc/rixos");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    // As nixos-generate-config: the hardware file is always rewritten, the user's configuration never.
    let hardware_file = dir.join("hardware-configuration.nix");
    write_replacing(&hardware_file, &hardware)?;
    println!("writing {}", hardware_file.display());
    let configuration = dir.join("configuration.nix");
    if configuration.exists() {
        println!("{} exists, left alone", configuration.display());
    } else {
        let release = std::fs::read_to_string("/run/current-system/stateVersion").unwrap_or_default();
        write_replacing(
            &configuration,
            &configuration_template(Firmware::of_this_machine(), release.trim()),
        )?;
        println!("writing {}", configuration.display());
    }
    Ok(())
}

/// Writes through a temporary file and a rename, so a reader never sees half a file.
fn write_replacing(path: &Path, text: &str) -> Result<()> {
    let temporary = path.with_extension("nix.tmp");
    std::fs::write(&temporary, text).with_context(|| format!("writing {}", temporary.display()))?;
    std::fs::rename(&temporary, path).with_context(|| format!("writing {}", path.display()))
}

/// A configuration to start from: the bootloader this firmware needs, the rest commented out.
fn configuration_template(firmware: Firmware, release: &str) -> String {
    let loader = match firmware {
        Firmware::Uefi => {
            "  # systemd-boot on the ESP mounted at /boot.\n  boot.loader.systemd-boot.enable = true;\n  \
             boot.loader.efi.canTouchEfiVariables = true;\n"
        }
        Firmware::Bios => {
            "  # GRUB in the MBR of the boot disk: name it (by /dev/disk/by-id, which does not change).\n  \
             boot.loader.grub.enable = true;\n  # boot.loader.grub.device = \"/dev/disk/by-id/...\";\n"
        }
    };
    let state = if release.is_empty() {
        String::new()
    } else {
        format!(
            "\n  # The release this machine's stateful data was made with; leave it as it is when upgrading.\n  \
             system.stateVersion = \"{release}\";\n"
        )
    };
    format!(
        "# This machine's configuration. Change it, then run `rixos system switch`; `rixos options QUERY`\n\
         # finds every option.\n\
         {{ config, lib, pkgs, ... }}:\n{{\n  imports = [ ./hardware-configuration.nix ];\n\n{loader}\n  \
         # networking.hostName = \"rixos\";\n  networking.useDHCP = true;\n  # time.timeZone = \"Europe/Paris\";\n\n  \
         # users.users.alice = {{ isNormalUser = true; extraGroups = [ \"wheel\" ]; }};\n  \
         # services.openssh.enable = true;\n{state}}}\n"
    )
}
