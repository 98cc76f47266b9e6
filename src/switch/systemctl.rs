//! The thin layer over systemd that switch acts through: `systemctl` of the generation being activated.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use super::plan::LoadedUnit;

pub struct Systemctl {
    program: PathBuf,
}

impl Systemctl {
    /// systemctl of the toplevel at `toplevel` (a directory here).
    pub fn of(toplevel: &Path) -> Systemctl {
        Systemctl {
            program: toplevel.join("systemd/bin/systemctl"),
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(&self.program);
        command.arg("--no-ask-password");
        command
    }

    /// Every unit systemd has loaded, with its active state.
    pub fn loaded_units(&self) -> Result<Vec<LoadedUnit>> {
        let out = crate::command::run(self.command().args([
            "list-units",
            "--all",
            "--full",
            "--plain",
            "--no-legend",
            "--no-pager",
        ]))
        .context("asking systemd for its units")?;
        Ok(parse_list_units(&String::from_utf8_lossy(&out.stdout)))
    }

    /// Runs `systemctl VERB UNITS...` (nothing when there are no units); a failure is returned, not fatal.
    pub fn act(&self, verb: &str, units: &[&String]) -> Result<()> {
        if units.is_empty() {
            return Ok(());
        }
        crate::command::run(self.command().arg(verb).args(units.iter().map(|u| u.as_str())))?;
        Ok(())
    }

    /// `daemon-reload`, or `daemon-reexec` when PID 1's own package changed.
    pub fn reload_manager(&self, reexec: bool) -> Result<()> {
        let verb = if reexec { "daemon-reexec" } else { "daemon-reload" };
        crate::command::run(self.command().arg(verb)).with_context(|| format!("systemctl {verb}"))?;
        Ok(())
    }

    /// The unit's `ActiveState` (`active`, `activating`, `failed`, ...).
    pub fn active_state(&self, unit: &str) -> String {
        let out = self
            .command()
            .args(["show", "--property=ActiveState", "--value", unit])
            .output();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
            .unwrap_or_default()
    }
}

/// `systemctl list-units --plain --no-legend` lines: `UNIT LOAD ACTIVE SUB DESCRIPTION...`.
pub fn parse_list_units(text: &str) -> Vec<LoadedUnit> {
    text.lines()
        .filter_map(|line| {
            let mut words = line.split_whitespace();
            let name = words.next()?;
            let _load = words.next()?;
            let active = words.next()?;
            Some(LoadedUnit {
                name: name.to_string(),
                active: active.to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_units_output() {
        let units = parse_list_units(
            "sshd.service loaded active running SSH Daemon\nhello.service loaded failed failed Hello\n\
             dev-vda.device loaded active plugged /dev/vda\n",
        );
        assert_eq!(units.len(), 3);
        assert_eq!(units[1].name, "hello.service");
        assert_eq!(units[1].active, "failed");
    }
}
