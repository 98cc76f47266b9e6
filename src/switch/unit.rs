//! systemd unit files as switch compares them: sections of keys with their values in order, the unit's
//! drop-ins (`NAME.d/*.conf`, by file name) merged in, an empty assignment (`ExecStart=`) clearing what came
//! before, as systemd reads them.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

/// One parsed unit: section name -> key -> values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitFile {
    pub sections: BTreeMap<String, BTreeMap<String, Vec<String>>>,
}

impl UnitFile {
    /// The unit at `path` (following links) with its drop-ins from `path.d/`.
    pub fn read(path: &Path) -> Result<UnitFile> {
        let mut unit = UnitFile::default();
        let text = fs::read_to_string(path).with_context(|| format!("reading the unit {}", path.display()))?;
        unit.merge(&text);
        let dropins = path.with_file_name(format!(
            "{}.d",
            path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default()
        ));
        if let Ok(entries) = fs::read_dir(&dropins) {
            let mut confs: Vec<_> = entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "conf"))
                .collect();
            confs.sort();
            for conf in confs {
                let text =
                    fs::read_to_string(&conf).with_context(|| format!("reading the drop-in {}", conf.display()))?;
                unit.merge(&text);
            }
        }
        Ok(unit)
    }

    /// Parses `text` (a unit file or drop-in) on top of what is already here.
    pub fn merge(&mut self, text: &str) {
        let mut section: Option<String> = None;
        let mut lines = text.lines();
        while let Some(line) = lines.next() {
            let mut line = line.trim().to_string();
            // A trailing backslash continues the value on the next line (joined with a space, as systemd).
            while line.ends_with('\\') {
                line.pop();
                line.truncate(line.trim_end().len());
                match lines.next() {
                    Some(next) => {
                        line.push(' ');
                        line.push_str(next.trim());
                    }
                    None => break,
                }
            }
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(name.to_string());
                self.sections.entry(name.to_string()).or_default();
                continue;
            }
            let (Some(section), Some((key, value))) = (&section, line.split_once('=')) else {
                continue;
            };
            let values = self
                .sections
                .entry(section.clone())
                .or_default()
                .entry(key.trim().to_string())
                .or_default();
            let value = value.trim();
            if value.is_empty() {
                values.clear();
            } else {
                values.push(value.to_string());
            }
        }
    }

    /// The last value of `key` in `section`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        self.sections.get(section)?.get(key)?.last().map(String::as_str)
    }

    /// `key` read as systemd reads a boolean (`yes`, `true`, `on`, `1`), `default` when unset.
    pub fn flag(&self, section: &str, key: &str, default: bool) -> bool {
        match self.get(section, key) {
            Some(v) => matches!(v.to_ascii_lowercase().as_str(), "1" | "yes" | "true" | "on"),
            None => default,
        }
    }
}

/// What a change of a unit's file asks of the running unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    Equal,
    /// Only `X-Reload-Triggers` changed.
    NeedsReload,
    NeedsRestart,
}

/// Keys of `[Unit]` systemd applies on `daemon-reload` alone: a change there restarts nothing (NixOS's list).
const UNIT_KEYS_WITHOUT_RESTART: &[&str] = &[
    "Description",
    "Documentation",
    "OnFailure",
    "OnSuccess",
    "OnFailureJobMode",
    "IgnoreOnIsolate",
    "StopWhenUnneeded",
    "RefuseManualStart",
    "RefuseManualStop",
    "AllowIsolate",
    "CollectMode",
    "SourcePath",
];

/// Compares the running unit's file with the new one.
pub fn compare(old: &UnitFile, new: &UnitFile) -> Change {
    let empty = BTreeMap::new();
    let mut change = Change::Equal;
    let sections: std::collections::BTreeSet<&String> = old.sections.keys().chain(new.sections.keys()).collect();
    for section in sections {
        let a = old.sections.get(section).unwrap_or(&empty);
        let b = new.sections.get(section).unwrap_or(&empty);
        let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
        for key in keys {
            let (va, vb) = (a.get(key).map(Vec::as_slice), b.get(key).map(Vec::as_slice));
            let (va, vb) = (va.unwrap_or(&[]), vb.unwrap_or(&[]));
            if va == vb {
                continue;
            }
            if section == "Unit" && UNIT_KEYS_WITHOUT_RESTART.contains(&key.as_str()) {
                continue;
            }
            if section == "Unit" && key == "X-Reload-Triggers" {
                change = Change::NeedsReload;
                continue;
            }
            return Change::NeedsRestart;
        }
    }
    change
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(text: &str) -> UnitFile {
        let mut u = UnitFile::default();
        u.merge(text);
        u
    }

    #[test]
    fn parses_sections_continuations_comments_and_resets() {
        let u = unit(
            "# comment\n[Unit]\nDescription=A \\\n  long one\n; other comment\n[Service]\nExecStart=/bin/a\nExecStart=\nExecStart=/bin/b\nEnvironment=A=1\nEnvironment=B=2\n",
        );
        assert_eq!(u.get("Unit", "Description"), Some("A long one"));
        assert_eq!(u.sections["Service"]["ExecStart"], vec!["/bin/b"]);
        assert_eq!(u.sections["Service"]["Environment"], vec!["A=1", "B=2"]);
        assert!(!u.flag("Service", "X-RestartIfChanged", false));
        assert!(unit("[Service]\nX-StopIfChanged=yes\n").flag("Service", "X-StopIfChanged", false));
    }

    #[test]
    fn drop_ins_are_merged_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.service");
        fs::write(&path, "[Service]\nExecStart=/bin/a\nRestart=no\n").unwrap();
        fs::create_dir(dir.path().join("a.service.d")).unwrap();
        fs::write(dir.path().join("a.service.d/20-b.conf"), "[Service]\nRestart=always\n").unwrap();
        fs::write(
            dir.path().join("a.service.d/10-a.conf"),
            "[Service]\nRestart=on-failure\nExecStart=\nExecStart=/bin/b\n",
        )
        .unwrap();
        fs::write(dir.path().join("a.service.d/ignored.txt"), "[Service]\nRestart=never\n").unwrap();
        let u = UnitFile::read(&path).unwrap();
        assert_eq!(u.get("Service", "Restart"), Some("always"));
        assert_eq!(u.sections["Service"]["ExecStart"], vec!["/bin/b"]);
    }

    #[test]
    fn comparisons() {
        let base = "[Unit]\nDescription=x\nAfter=network.target\n[Service]\nExecStart=/bin/a\n";
        for (new, expected) in [
            (base.to_string(), Change::Equal),
            (base.replace("Description=x", "Description=y"), Change::Equal),
            (
                base.replace("Description=x\n", "Description=x\nDocumentation=man:a\n"),
                Change::Equal,
            ),
            (base.replace("/bin/a", "/bin/b"), Change::NeedsRestart),
            (base.replace("After=network.target\n", ""), Change::NeedsRestart),
            (
                format!("{base}[Install]\nWantedBy=multi-user.target\n"),
                Change::NeedsRestart,
            ),
            (
                base.replace("Description=x\n", "Description=x\nX-Reload-Triggers=/nix/store/a\n"),
                Change::NeedsReload,
            ),
            (
                base.replace("Description=x\n", "X-Reload-Triggers=/nix/store/a\n")
                    .replace("/bin/a", "/bin/c"),
                Change::NeedsRestart,
            ),
        ] {
            assert_eq!(compare(&unit(base), &unit(&new)), expected, "{new}");
        }
    }
}
