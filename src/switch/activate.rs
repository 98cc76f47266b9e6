//! `switch-to-configuration`: moves the running machine to a toplevel. `switch` and `boot` first install the
//! bootloader for every generation of the system profile; `boot` stops there. Then the plan (`plan.rs`) from
//! the running units, the old unit directory and the new one; `dry-activate` prints it with the /etc entries
//! that would change and stops. Otherwise: stop, run the toplevel's `activate` (the new /etc by one rename,
//! users, `/run/current-system`), reload or re-execute systemd, then reload, restart and start; units that
//! failed are named and make the switch fail. The start and restart lists are kept in /run/rixos while the
//! switch runs, so a switch interrupted after stopping units starts them the next time. File systems and swap
//! come from the two generations' /etc/fstab (`fstab.rs`): unmounted, remounted or mounted again.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::plan::{Plan, plan};
use super::systemctl::Systemctl;
use super::{bootloader, fstab};
use crate::store::profile::Profile;
use crate::store::resolve::resolve_under;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Bootloader, then activation now.
    Switch,
    /// Bootloader only: the change comes with the next boot.
    Boot,
    /// Activation only: the next boot is unchanged.
    Test,
    /// Print what activation would do; change nothing.
    DryActivate,
}

impl Action {
    pub fn parse(text: &str) -> Result<Action> {
        Ok(match text {
            "switch" => Action::Switch,
            "boot" => Action::Boot,
            "test" => Action::Test,
            "dry-activate" => Action::DryActivate,
            other => bail!("unknown action {other:?}: switch, boot, test or dry-activate"),
        })
    }
}

/// The system profile of the machine at `root`.
pub fn system_profile(root: &Path) -> Profile {
    Profile::new(root.join("nix/var/nix/profiles/system"))
}

/// Moves the machine whose root is `root` (`/`) to `toplevel` (a logical store path) by `action`.
pub fn switch_to_configuration(root: &Path, toplevel: &str, action: Action) -> Result<()> {
    let top = resolve_under(root, toplevel).with_context(|| format!("finding the system {toplevel}"))?;
    require_rixos(root)?;
    if matches!(action, Action::Switch | Action::Boot) {
        let report = bootloader::install(root, &system_profile(root)).context("installing the bootloader")?;
        if !report.listed.is_empty() {
            let listed: Vec<String> = report.listed.iter().map(u64::to_string).collect();
            eprintln!("updated the boot menu: generations {}", listed.join(", "));
        }
        for device in &report.bios_written {
            eprintln!("installed GRUB's BIOS images on {device}");
        }
        if let Some(entry) = &report.efi_entry_added {
            eprintln!("added the firmware boot entry {entry}, first in the boot order");
        }
        for left in &report.left_out {
            eprintln!("warning: left out of the boot menu: {left}");
        }
        for warning in &report.warnings {
            eprintln!("warning: {warning}");
        }
    }
    if action == Action::Boot {
        return Ok(());
    }
    let run_dir = root.join("run/rixos");
    let systemctl = Systemctl::of(&top);
    let loaded = systemctl.loaded_units()?;
    let mut plan = plan(
        &root.join("etc/systemd/system"),
        &top.join("etc/systemd/system"),
        &loaded,
    )?;
    let pending = Pending::new(&run_dir);
    pending.merge_into(&mut plan, &top.join("etc/systemd/system"));
    let mounted: BTreeSet<String> = loaded
        .iter()
        .filter(|u| u.active == "active" && u.name.ends_with(".mount"))
        .map(|u| u.name.clone())
        .collect();
    let file_systems = fstab::changes(
        &fstab::parse(&std::fs::read_to_string(root.join("etc/fstab")).unwrap_or_default()),
        &fstab::parse(&std::fs::read_to_string(top.join("etc/fstab")).unwrap_or_default()),
        &mounted,
    );
    plan.stop.extend(file_systems.stop);
    plan.start.extend(file_systems.start);
    plan.reload.extend(file_systems.reload);
    let etc = etc_changes(root, &top)?;
    if action == Action::DryActivate {
        print_plan(&plan);
        for device in &file_systems.swapoff {
            eprintln!("would stop swap device: {device}");
        }
        print_etc(&etc, true);
        return Ok(());
    }
    pending.record(&plan)?;
    let before: BTreeMap<String, String> = loaded.iter().map(|u| (u.name.clone(), u.active.clone())).collect();
    let mut errors = Vec::new();

    let stop_only: Vec<&String> = plan.stop.difference(&plan.start).collect();
    let stop_for_restart: Vec<&String> = plan.stop.intersection(&plan.start).collect();
    show("stopping the following units", &stop_only);
    show(
        "stopping the following units until activation is done",
        &stop_for_restart,
    );
    let stop: Vec<&String> = plan.stop.iter().collect();
    if let Err(e) = systemctl.act("stop", &stop) {
        errors.push(format!("{e:#}"));
    }
    for device in &file_systems.swapoff {
        eprintln!("stopping swap device: {device}");
        if let Err(e) = swapoff(root, device) {
            errors.push(format!("{e:#}"));
        }
    }

    let reexec = systemd_changed(root, &top);
    print_etc(&etc, false);
    eprintln!("activating the configuration...");
    match std::process::Command::new(top.join("activate")).status() {
        Ok(status) if status.success() => {}
        Ok(status) => errors.push(format!("the activation script {toplevel}/activate failed ({status})")),
        Err(e) => errors.push(format!("running {toplevel}/activate: {e}")),
    }
    eprintln!("{} systemd", if reexec { "re-executing" } else { "reloading" });
    systemctl.reload_manager(reexec)?;

    let reload: Vec<&String> = plan.reload.iter().collect();
    show("reloading the following units", &reload);
    if let Err(e) = systemctl.act("reload-or-restart", &reload) {
        errors.push(format!("{e:#}"));
    }
    let restarted = plan.restarted();
    show("restarting the following units", &restarted.iter().collect::<Vec<_>>());
    let restart: Vec<&String> = plan.restart.iter().collect();
    if let Err(e) = systemctl.act("restart", &restart) {
        errors.push(format!("{e:#}"));
    }
    let shown_start: Vec<&String> = plan
        .shown_start()
        .into_iter()
        .filter(|u| !plan.stop.contains(*u))
        .collect();
    show("starting the following units", &shown_start);
    let start: Vec<&String> = plan.start.iter().collect();
    if let Err(e) = systemctl.act("start", &start) {
        errors.push(format!("{e:#}"));
    }
    pending.clear();

    // Units started or restarted here that are still coming up are waited for, briefly: a service that
    // fails right after it was started counts as failed by this switch.
    let touched: BTreeSet<String> = plan
        .start
        .iter()
        .chain(&plan.restart)
        .chain(&plan.reload)
        .cloned()
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while Instant::now() < deadline
        && touched.iter().any(|u| {
            matches!(
                systemctl.active_state(u).as_str(),
                "activating" | "reloading" | "deactivating"
            )
        })
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(500));
    let after = systemctl.loaded_units()?;
    let failed: Vec<String> = after
        .iter()
        .filter(|u| u.active == "failed")
        .filter(|u| before.get(&u.name).map(String::as_str) != Some("failed") || touched.contains(&u.name))
        .map(|u| u.name.clone())
        .collect();
    let new_units: Vec<&String> = after
        .iter()
        .filter(|u| u.active == "active" && !plan.quiet.contains(&u.name))
        .filter(|u| {
            !matches!(
                before.get(&u.name).map(String::as_str),
                Some("active" | "activating" | "reloading")
            )
        })
        .filter(|u| !plan.start.contains(&u.name) && !plan.restart.contains(&u.name) && !plan.new.contains(&u.name))
        .filter(|u| u.name.ends_with(".service") || u.name.ends_with(".socket") || u.name.ends_with(".timer"))
        .map(|u| &u.name)
        .collect();
    show("the following new units were started", &new_units);
    if !failed.is_empty() {
        errors.push(format!(
            "the following units failed: {} (see `systemctl status {}` and `journalctl -u {}`); the system \
             stays on this generation: `rixos system switch --rollback` returns to the previous one",
            failed.join(", "),
            failed[0],
            failed[0]
        ));
    }
    if !errors.is_empty() {
        bail!("{}", errors.join("\n"));
    }
    Ok(())
}

/// Turns a swap device off with the running system's swapoff (util-linux, in the `mount` package).
fn swapoff(root: &Path, device: &str) -> Result<()> {
    let program = root.join("run/current-system/sw/sbin/swapoff");
    let program = if program.exists() {
        program
    } else {
        PathBuf::from("swapoff")
    };
    let status = std::process::Command::new(&program)
        .arg(device)
        .status()
        .with_context(|| format!("running {}", program.display()))?;
    if !status.success() {
        bail!("swapoff {device} failed ({status})");
    }
    Ok(())
}

fn show(what: &str, units: &[&String]) {
    if !units.is_empty() {
        let names: Vec<&str> = units.iter().map(|u| u.as_str()).collect();
        eprintln!("{what}: {}", names.join(", "));
    }
}

/// The plan as dry-activate shows it, in the words the switch itself prints as it goes.
fn print_plan(plan: &Plan) {
    let w = "would ";
    let stop_only: Vec<&String> = plan.stop.difference(&plan.start).collect();
    show(&format!("{w}stop the following units"), &stop_only);
    for (unit, why) in &plan.kept {
        eprintln!("{w}NOT restart the changed unit {unit} ({why})");
    }
    eprintln!("{w}activate the configuration");
    show(
        &format!("{w}reload the following units"),
        &plan.reload.iter().collect::<Vec<_>>(),
    );
    show(
        &format!("{w}restart the following units"),
        &plan.restarted().iter().collect::<Vec<_>>(),
    );
    let start: Vec<&String> = plan
        .shown_start()
        .into_iter()
        .filter(|u| !plan.stop.contains(*u))
        .collect();
    show(&format!("{w}start the following units"), &start);
}

/// `/etc` entries that differ between the running generation and the new one: added, removed, changed.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EtcChanges {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub changed: Vec<String>,
}

fn print_etc(changes: &EtcChanges, would: bool) {
    let w = if would { "would " } else { "" };
    for (what, list) in [
        ("add", &changes.added),
        ("remove", &changes.removed),
        ("change", &changes.changed),
    ] {
        if !list.is_empty() {
            let paths: Vec<String> = list.iter().map(|p| format!("/etc/{p}")).collect();
            eprintln!("{w}{what} in /etc: {}", paths.join(" "));
        }
    }
}

fn etc_changes(root: &Path, top: &Path) -> Result<EtcChanges> {
    // The running machine: logical store paths are the files, so links are followed as they are.
    let old = std::fs::canonicalize(root.join("etc/static")).ok();
    let new = std::fs::canonicalize(top.join("etc")).with_context(|| format!("reading {}/etc", top.display()))?;
    let old = match old {
        Some(dir) => entries(&dir)?,
        None => BTreeMap::new(),
    };
    let new = entries(&new)?;
    let mut changes = EtcChanges::default();
    for (path, target) in &new {
        match old.get(path) {
            None => changes.added.push(path.clone()),
            Some(t) if t != target => changes.changed.push(path.clone()),
            Some(_) => {}
        }
    }
    changes.removed = old.keys().filter(|p| !new.contains_key(*p)).cloned().collect();
    Ok(changes)
}

/// An etc tree's entries (its links and files, not followed) with what each points at.
fn entries(dir: &Path) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut todo = vec![PathBuf::new()];
    while let Some(rel) = todo.pop() {
        let here = dir.join(&rel);
        for entry in std::fs::read_dir(&here).with_context(|| format!("reading {}", here.display()))? {
            let entry = entry?;
            let rel = rel.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                todo.push(rel);
            } else if kind.is_symlink() {
                let target = std::fs::read_link(entry.path())?;
                out.insert(
                    rel.to_string_lossy().into_owned(),
                    target.to_string_lossy().into_owned(),
                );
            } else {
                let digest = crate::store::hash::sha256(&std::fs::read(entry.path())?);
                out.insert(rel.to_string_lossy().into_owned(), crate::store::hash::hex(&digest));
            }
        }
    }
    Ok(out)
}

/// PID 1 is re-executed when the new generation's systemd is another package than the running one's.
fn systemd_changed(root: &Path, top: &Path) -> bool {
    let current = std::fs::canonicalize(root.join("run/current-system/systemd")).ok();
    let new = std::fs::canonicalize(top.join("systemd")).ok();
    current.is_some() && new.is_some() && current != new
}

fn require_rixos(root: &Path) -> Result<()> {
    let release = std::fs::read_to_string(root.join("etc/os-release")).unwrap_or_default();
    if !release.lines().any(|l| l.trim() == "ID=rixos") {
        bail!(
            "{} is not a rixos system (its /etc/os-release has no ID=rixos): switch-to-configuration only \
             activates on the machine it belongs to",
            root.display()
        );
    }
    Ok(())
}

/// The units an interrupted switch still owed: started, restarted or reloaded after activation.
struct Pending {
    dir: PathBuf,
}

impl Pending {
    const LISTS: [&'static str; 3] = ["start-list", "restart-list", "reload-list"];

    fn new(dir: &Path) -> Pending {
        Pending { dir: dir.to_path_buf() }
    }

    /// Adds what an interrupted switch left, for the units the new generation still has.
    fn merge_into(&self, plan: &mut Plan, new_units: &Path) {
        for name in Self::LISTS {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            let text: String = text
                .lines()
                .filter(|u| super::plan::unit_file(new_units, u).exists())
                .map(|u| format!("{u}\n"))
                .collect();
            let set = match name {
                "start-list" => &mut plan.start,
                "restart-list" => &mut plan.restart,
                _ => &mut plan.reload,
            };
            set.extend(text.lines().filter(|l| !l.is_empty()).map(str::to_string));
        }
    }

    fn record(&self, plan: &Plan) -> Result<()> {
        std::fs::create_dir_all(&self.dir)?;
        for (name, set) in Self::LISTS.iter().zip([&plan.start, &plan.restart, &plan.reload]) {
            let path = self.dir.join(name);
            let partial = path.with_extension("tmp");
            let text: String = set.iter().map(|u| format!("{u}\n")).collect();
            std::fs::write(&partial, text).with_context(|| format!("writing {}", partial.display()))?;
            std::fs::rename(&partial, &path)?;
        }
        Ok(())
    }

    fn clear(&self) {
        for name in Self::LISTS {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
    }
}
