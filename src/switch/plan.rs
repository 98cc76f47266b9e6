//! What switching asks of systemd, decided from the running generation's unit directory, the new one and the
//! units systemd has loaded (a pure function, tested with fixture pairs in `testdata/units`). The rules are
//! NixOS's (its manual's "Unit handling"):
//!
//! - an active unit whose file is gone (or masked) is stopped, unless it says `X-StopOnRemoval=false`;
//! - an active target is started again (which starts what the new generation wants), unless
//!   `RefuseManualStart` or `X-OnlyManualStart`; stopped first when `X-StopOnReconfiguration`;
//! - a changed unit: `.path`, `.slice` and `.socket` units are left to `daemon-reload`; `.mount` units are
//!   reloaded; a service with `X-ReloadIfChanged` is reloaded; with `X-RestartIfChanged=false`,
//!   `RefuseManualStop` or `X-OnlyManualStart` it is left running (and listed); with `X-StopIfChanged=false` it
//!   is restarted after activation; otherwise it is stopped before activation and started after, so the new
//!   unit never runs against the old /etc. A socket-activated service is stopped with its sockets and only the
//!   sockets are started again;
//! - a change of `X-Reload-Triggers` alone reloads; a change of descriptive `[Unit]` keys does nothing.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use anyhow::Result;

use super::unit::{Change, UnitFile, compare};

/// A unit systemd has loaded, with its `ACTIVE` state (`active`, `activating`, `inactive`, `failed`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadedUnit {
    pub name: String,
    pub active: String,
}

/// What to do, by phase: `stop` before activation; then `reload`, `restart` and `start`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    pub stop: BTreeSet<String>,
    pub reload: BTreeSet<String>,
    pub restart: BTreeSet<String>,
    pub start: BTreeSet<String>,
    /// Changed units left running, each with why.
    pub kept: Vec<(String, &'static str)>,
    /// Started only to pull in what they want (active targets): not worth listing to the user.
    pub quiet: BTreeSet<String>,
    /// Units the new generation's active targets want that are not running: starting the targets starts them.
    pub new: BTreeSet<String>,
}

impl Plan {
    /// Units that end up stopped and started again, or restarted: what a user sees restarted.
    pub fn restarted(&self) -> BTreeSet<String> {
        let mut all: BTreeSet<String> = self.stop.intersection(&self.start).cloned().collect();
        all.extend(self.restart.iter().cloned());
        all
    }

    /// Units shown as started: those in `start` that are not quiet, and the new ones.
    pub fn shown_start(&self) -> Vec<&String> {
        let mut shown: BTreeSet<&String> = self.start.iter().filter(|u| !self.quiet.contains(*u)).collect();
        shown.extend(self.new.iter());
        shown.into_iter().collect()
    }
}

/// The file of `unit` in `dir`: its own, or its template's for an instance (`getty@tty1.service` ->
/// `getty@.service`).
pub(crate) fn unit_file(dir: &Path, unit: &str) -> PathBuf {
    let own = dir.join(unit);
    if own.symlink_metadata().is_ok() {
        return own;
    }
    match template_of(unit) {
        Some(template) => dir.join(template),
        None => own,
    }
}

fn template_of(unit: &str) -> Option<String> {
    let (prefix, rest) = unit.split_once('@')?;
    let (instance, suffix) = rest.rsplit_once('.')?;
    (!instance.is_empty()).then(|| format!("{prefix}@.{suffix}"))
}

fn masked(path: &Path) -> bool {
    std::fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null"))
}

/// The plan for moving from the units in `old_dir` to those in `new_dir`, given what systemd has loaded.
pub fn plan(old_dir: &Path, new_dir: &Path, loaded: &[LoadedUnit]) -> Result<Plan> {
    let mut plan = Plan::default();
    for unit in loaded {
        if !matches!(unit.active.as_str(), "active" | "activating" | "reloading") {
            continue;
        }
        let name = unit.name.as_str();
        let old_file = unit_file(old_dir, name);
        // Units of no generation (transient, generated from fstab or the kernel command line) are not ours.
        if !old_file.exists() || masked(&old_file) {
            continue;
        }
        let new_file = unit_file(new_dir, name);
        if !new_file.exists() || masked(&new_file) {
            if UnitFile::read(&old_file)?.flag("Unit", "X-StopOnRemoval", true) {
                plan.stop.insert(name.to_string());
            }
            continue;
        }
        let new = UnitFile::read(&new_file)?;
        if name.ends_with(".target") {
            if !new.flag("Unit", "RefuseManualStart", false) && !new.flag("Unit", "X-OnlyManualStart", false) {
                plan.start.insert(name.to_string());
                plan.quiet.insert(name.to_string());
            }
            if new.flag("Unit", "X-StopOnReconfiguration", false) {
                plan.stop.insert(name.to_string());
            }
            continue;
        }
        match compare(&UnitFile::read(&old_file)?, &new) {
            Change::Equal => {}
            Change::NeedsReload => {
                plan.reload.insert(name.to_string());
            }
            Change::NeedsRestart => modified(&mut plan, name, &new, new_dir),
        }
    }
    // What the targets started again will start: the units new to this generation that their `.wants` and
    // `.requires` name.
    let running: BTreeSet<&str> = loaded
        .iter()
        .filter(|u| matches!(u.active.as_str(), "active" | "activating" | "reloading"))
        .map(|u| u.name.as_str())
        .collect();
    for target in plan.quiet.clone() {
        for dir in [format!("{target}.wants"), format!("{target}.requires")] {
            let Ok(entries) = std::fs::read_dir(new_dir.join(dir)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                // Only units new to this generation: one that ran and ended (a oneshot, a failed
                // condition) is not started again by its target.
                let is_new = !unit_file(old_dir, &name).exists();
                if is_new && !running.contains(name.as_str()) && !masked(&entry.path()) && entry.path().exists() {
                    plan.new.insert(name);
                }
            }
        }
    }
    // A unit restarted or started anyway needs no reload.
    let superseded: BTreeSet<String> = plan.restart.union(&plan.start).cloned().collect();
    plan.reload.retain(|u| !superseded.contains(u));
    Ok(plan)
}

fn modified(plan: &mut Plan, name: &str, new: &UnitFile, new_dir: &Path) {
    let suffix = name.rsplit_once('.').map_or("", |(_, s)| s);
    match suffix {
        "path" | "slice" | "socket" | "scope" | "device" | "swap" => return,
        "mount" => {
            plan.reload.insert(name.to_string());
            return;
        }
        _ => {}
    }
    if new.flag("Service", "X-ReloadIfChanged", false) {
        plan.reload.insert(name.to_string());
        return;
    }
    if !new.flag("Service", "X-RestartIfChanged", true) {
        plan.kept.push((name.to_string(), "restartIfChanged = false"));
        return;
    }
    if new.flag("Unit", "RefuseManualStop", false) {
        plan.kept.push((name.to_string(), "RefuseManualStop"));
        return;
    }
    if new.flag("Unit", "X-OnlyManualStart", false) {
        plan.kept.push((name.to_string(), "X-OnlyManualStart"));
        return;
    }
    if !new.flag("Service", "X-StopIfChanged", true) {
        plan.restart.insert(name.to_string());
        return;
    }
    let sockets = sockets_of(name, new, new_dir);
    if sockets.is_empty() {
        plan.stop.insert(name.to_string());
        plan.start.insert(name.to_string());
    } else {
        // Socket activation starts the service again on the first connection.
        plan.stop.insert(name.to_string());
        for socket in sockets {
            plan.stop.insert(socket.clone());
            plan.start.insert(socket);
        }
    }
}

/// The sockets that activate a service: its `Sockets=` and the socket of its own name in the new generation.
fn sockets_of(name: &str, unit: &UnitFile, new_dir: &Path) -> Vec<String> {
    let mut sockets: BTreeSet<String> = unit
        .sections
        .get("Service")
        .and_then(|s| s.get("Sockets"))
        .into_iter()
        .flatten()
        .flat_map(|v| v.split_whitespace().map(str::to_string))
        .collect();
    if let Some(base) = name.strip_suffix(".service") {
        let own = format!("{base}.socket");
        if new_dir.join(&own).exists() {
            sockets.insert(own);
        }
    }
    sockets.into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each case in `testdata/units/CASE`: `old/` and `new/` unit directories, `loaded` (`UNIT STATE` lines)
    /// and `expected` (`stop: a b`, `reload: ...`, `restart: ...`, `start: ...`, `kept: ...` lines).
    #[test]
    fn fixture_pairs() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/switch/testdata/units");
        let mut cases: Vec<_> = std::fs::read_dir(&root).unwrap().flatten().map(|e| e.path()).collect();
        cases.sort();
        assert!(cases.len() >= 8, "{cases:?}");
        for case in cases {
            let loaded: Vec<LoadedUnit> = std::fs::read_to_string(case.join("loaded"))
                .unwrap()
                .lines()
                .filter_map(|l| l.split_once(' '))
                .map(|(n, s)| LoadedUnit {
                    name: n.to_string(),
                    active: s.trim().to_string(),
                })
                .collect();
            let plan = plan(&case.join("old"), &case.join("new"), &loaded).unwrap();
            let join = |s: &BTreeSet<String>| s.iter().cloned().collect::<Vec<_>>().join(" ");
            let kept: Vec<&str> = plan.kept.iter().map(|(u, _)| u.as_str()).collect();
            let shown_start: Vec<&str> = plan.shown_start().into_iter().map(String::as_str).collect();
            let got = format!(
                "stop: {}\nreload: {}\nrestart: {}\nstart: {}\nkept: {}\n",
                join(&plan.stop),
                join(&plan.reload),
                join(&plan.restart),
                shown_start.join(" "),
                kept.join(" ")
            );
            let expected = std::fs::read_to_string(case.join("expected")).unwrap();
            assert_eq!(got, expected, "case {}", case.display());
        }
    }

    #[test]
    fn instances_use_their_template() {
        assert_eq!(template_of("getty@tty1.service").as_deref(), Some("getty@.service"));
        assert_eq!(template_of("getty@.service"), None);
        assert_eq!(template_of("sshd.service"), None);
    }
}
