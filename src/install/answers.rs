//! The answer file of an unattended install (`rixos install --answers FILE`): the wizard's choices as TOML or
//! JSON (by the file's extension; TOML otherwise), kebab-case keys, unknown keys refused with their line.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// Every choice an install needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct Answers {
    /// The target disk by its `/dev/disk/by-id/...` name (or any path naming the disk).
    pub disk: Option<String>,
    /// ... or by its serial number ...
    pub serial: Option<String>,
    /// ... or by its model together with `size`.
    pub model: Option<String>,
    /// With `model`: the disk's size ("20G", "512M", "1T" or bytes).
    pub size: Option<String>,
    #[serde(default)]
    pub layout: Layout,
    #[serde(default)]
    pub firmware: FirmwareChoice,
    #[serde(default)]
    pub filesystem: Filesystem,
    #[serde(default)]
    pub swap: Swap,
    /// The swap partition's or file's size ("2G"); required with `swap = "partition"` or `"file"`.
    pub swap_size: Option<String>,
    pub hostname: String,
    #[serde(default = "utc")]
    pub timezone: String,
    #[serde(default = "us")]
    pub keyboard: String,
    pub root_password: Option<String>,
    pub root_hashed_password: Option<String>,
    #[serde(default)]
    pub root_locked: bool,
    /// Keys that may log in as root over SSH.
    #[serde(default)]
    pub root_ssh_keys: Vec<String>,
    /// Whether sshd runs on the installed system.
    #[serde(default)]
    pub ssh: bool,
    #[serde(default)]
    pub users: Vec<User>,
}

fn utc() -> String {
    "UTC".to_string()
}

fn us() -> String {
    "us".to_string()
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct User {
    pub name: String,
    pub password: Option<String>,
    pub hashed_password: Option<String>,
    #[serde(default)]
    pub wheel: bool,
    #[serde(default)]
    pub ssh_keys: Vec<String>,
}

/// What happens to the disk. Only erasing it is carried out by this version; the others are refused when read
/// (see [`Answers::check`]), never half-done.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Layout {
    #[default]
    Erase,
    FreeSpace,
    Manual,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FirmwareChoice {
    #[default]
    Auto,
    Uefi,
    Bios,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Filesystem {
    #[default]
    Ext4,
    Btrfs,
    Xfs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Swap {
    #[default]
    None,
    Partition,
    File,
    Zram,
}

impl Answers {
    /// Reads and checks the answer file at `path`.
    pub fn read(path: &Path) -> Result<Answers> {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading the answer file {}", path.display()))?;
        let answers = Answers::parse(&text, path.extension().is_some_and(|e| e == "json"))
            .with_context(|| format!("in the answer file {}", path.display()))?;
        answers
            .check()
            .with_context(|| format!("in the answer file {}", path.display()))?;
        Ok(answers)
    }

    /// Parses TOML (or JSON with `json`); errors name the line.
    pub fn parse(text: &str, json: bool) -> Result<Answers> {
        if json {
            return serde_json::from_str(text).map_err(|e| anyhow::anyhow!("{e}"));
        }
        toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1);
            match line {
                Some(line) => anyhow::anyhow!("line {line}: {}", e.message()),
                None => anyhow::anyhow!("{}", e.message()),
            }
        })
    }

    /// Choices that do not fit together, or that this version does not carry out.
    pub fn check(&self) -> Result<()> {
        let by_model = self.model.is_some() || self.size.is_some();
        match (self.disk.is_some(), self.serial.is_some(), by_model) {
            (true, false, false) | (false, true, false) => {}
            (false, false, true) if self.model.is_some() && self.size.is_some() => {}
            (false, false, true) => bail!("`model` and `size` name a disk together: give both"),
            (false, false, false) => bail!("no disk: give `disk`, `serial`, or `model` with `size`"),
            _ => bail!("give only one of `disk`, `serial`, or `model` with `size`"),
        }
        if let Some(size) = &self.size {
            parse_size(size).context("`size`")?;
        }
        match self.layout {
            Layout::Erase => {}
            other => bail!(
                "layout {:?}: this rixos installs onto a whole disk only (layout = \"erase\")",
                kebab(&other)
            ),
        }
        match self.filesystem {
            Filesystem::Ext4 => {}
            other => bail!(
                "filesystem {:?}: this rixos formats the root as ext4 only",
                kebab(&other)
            ),
        }
        match (self.swap, &self.swap_size) {
            (Swap::Zram, _) => bail!("swap \"zram\": this rixos has no zram swap; use \"partition\" or \"file\""),
            (Swap::Partition | Swap::File, None) => bail!("swap {:?} needs `swap-size`", kebab(&self.swap)),
            (Swap::None, Some(_)) => bail!("`swap-size` is given but swap is \"none\""),
            (_, Some(size)) => {
                parse_size(size).context("`swap-size`")?;
            }
            (Swap::None, None) => {}
        }
        check_hostname(&self.hostname)?;
        let root_ways = [
            self.root_password.is_some(),
            self.root_hashed_password.is_some(),
            self.root_locked,
        ];
        if root_ways.iter().filter(|w| **w).count() > 1 {
            bail!("give only one of `root-password`, `root-hashed-password` and `root-locked = true`");
        }
        if root_ways.iter().all(|w| !w) {
            bail!("root needs `root-password`, `root-hashed-password`, or `root-locked = true`");
        }
        let mut names = std::collections::BTreeSet::new();
        for user in &self.users {
            check_user_name(&user.name)?;
            if !names.insert(&user.name) {
                bail!("user {:?} is given twice", user.name);
            }
            if user.password.is_some() && user.hashed_password.is_some() {
                bail!("user {:?}: give `password` or `hashed-password`, not both", user.name);
            }
        }
        for hash in self
            .root_hashed_password
            .iter()
            .chain(self.users.iter().filter_map(|u| u.hashed_password.as_ref()))
        {
            if hash.contains([':', '\n']) {
                bail!("a hashed password holds `:` or a line break, which /etc/shadow cannot");
            }
        }
        for key in self
            .root_ssh_keys
            .iter()
            .chain(self.users.iter().flat_map(|u| &u.ssh_keys))
        {
            if key.contains('\n') || key.split_whitespace().count() < 2 {
                bail!("{key:?} is not an SSH public key (`TYPE BASE64 [COMMENT]` on one line)");
            }
        }
        let can_log_in = !self.root_locked
            || self
                .users
                .iter()
                .any(|u| u.password.is_some() || u.hashed_password.is_some() || !u.ssh_keys.is_empty())
            || !self.root_ssh_keys.is_empty();
        if !can_log_in {
            bail!("nobody could log in: root is locked and no user has a password or an SSH key");
        }
        Ok(())
    }
}

fn kebab<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// A size as people write it: bytes, or a number with K, M, G or T (powers of 1024, `iB` and `B` allowed).
pub fn parse_size(text: &str) -> Result<u64> {
    let trimmed = text.trim();
    let unit_at = trimmed
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(unit_at);
    let factor: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "K" | "KB" | "KIB" => 1 << 10,
        "M" | "MB" | "MIB" => 1 << 20,
        "G" | "GB" | "GIB" => 1 << 30,
        "T" | "TB" | "TIB" => 1 << 40,
        _ => bail!("{text:?} is not a size (say 512M, 20G or 1T)"),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| anyhow::anyhow!("{text:?} is not a size (say 512M, 20G or 1T)"))?;
    if value <= 0.0 {
        bail!("{text:?} is not a positive size");
    }
    Ok((value * factor as f64) as u64)
}

pub(crate) fn check_hostname(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-');
    if !ok {
        bail!("hostname {name:?}: 1 to 63 letters, digits and `-`, not starting or ending with `-`");
    }
    Ok(())
}

pub(crate) fn check_user_name(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 32
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        && name.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
        && name != "root";
    if !ok {
        bail!(
            "user name {name:?}: lower-case letters, digits, `_` and `-`, starting with a letter or `_`, at most 32, not root"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
disk = "/dev/disk/by-id/virtio-target"
layout = "erase"
firmware = "auto"
filesystem = "ext4"
swap = "file"
swap-size = "512M"
hostname = "installed"
timezone = "Europe/Amsterdam"
keyboard = "de"
root-locked = true
ssh = true

[[users]]
name = "alice"
password = "secret"
wheel = true
ssh-keys = ["ssh-ed25519 AAAAC3Nza alice@laptop"]
"#;

    #[test]
    fn a_full_answer_file_reads_as_toml_and_as_json() {
        let answers = Answers::parse(GOOD, false).unwrap();
        answers.check().unwrap();
        assert_eq!(answers.disk.as_deref(), Some("/dev/disk/by-id/virtio-target"));
        assert_eq!(answers.swap, Swap::File);
        assert_eq!(answers.users[0].name, "alice");
        assert!(answers.users[0].wheel);
        let json = serde_json::to_string(&answers).unwrap();
        assert!(json.contains("\"swap-size\""), "{json}");
        assert_eq!(Answers::parse(&json, true).unwrap(), answers);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_their_line() {
        let typo = GOOD.replace("keyboard = \"de\"", "keybaord = \"de\"");
        let error = Answers::parse(&typo, false).unwrap_err().to_string();
        assert!(error.contains("line 10") && error.contains("keybaord"), "{error}");
        let bad = GOOD.replace("layout = \"erase\"", "layout = \"wipe\"");
        let error = Answers::parse(&bad, false).unwrap_err().to_string();
        assert!(error.contains("line 3") && error.contains("wipe"), "{error}");
        let json_typo = "{\n  \"hostname\": \"x\",\n  \"dsik\": \"/dev/vda\"\n}";
        let error = Answers::parse(json_typo, true).unwrap_err().to_string();
        assert!(error.contains("dsik") && error.contains("line 3"), "{error}");
    }

    #[test]
    fn choices_that_do_not_fit_are_refused_saying_why() {
        for (from, to, expected) in [
            ("disk = \"/dev/disk/by-id/virtio-target\"", "", "no disk"),
            (
                "disk = \"/dev/disk/by-id/virtio-target\"",
                "disk = \"/dev/vda\"\nserial = \"x\"",
                "only one of",
            ),
            (
                "disk = \"/dev/disk/by-id/virtio-target\"",
                "model = \"QEMU\"",
                "give both",
            ),
            ("layout = \"erase\"", "layout = \"manual\"", "whole disk only"),
            ("filesystem = \"ext4\"", "filesystem = \"xfs\"", "ext4 only"),
            ("swap-size = \"512M\"", "", "needs `swap-size`"),
            ("swap-size = \"512M\"", "swap-size = \"lots\"", "is not a size"),
            ("swap = \"file\"", "swap = \"zram\"", "no zram"),
            ("hostname = \"installed\"", "hostname = \"-bad\"", "hostname \"-bad\""),
            ("root-locked = true", "", "root needs"),
            (
                "root-locked = true",
                "root-locked = true\nroot-password = \"x\"",
                "only one of",
            ),
            ("name = \"alice\"", "name = \"Alice\"", "user name \"Alice\""),
            (
                "ssh-keys = [\"ssh-ed25519 AAAAC3Nza alice@laptop\"]",
                "ssh-keys = [\"nonsense\"]",
                "not an SSH public key",
            ),
        ] {
            assert!(GOOD.contains(from), "{from}");
            let text = GOOD.replacen(from, to, 1);
            let error = format!(
                "{:#}",
                Answers::parse(&text, false).and_then(|a| a.check()).unwrap_err()
            );
            assert!(error.contains(expected), "{from} -> {to}: {error}");
        }
        let locked_out = GOOD
            .replace("password = \"secret\"", "")
            .replace("ssh-keys = [\"ssh-ed25519 AAAAC3Nza alice@laptop\"]", "");
        let error = Answers::parse(&locked_out, false)
            .unwrap()
            .check()
            .unwrap_err()
            .to_string();
        assert!(error.contains("nobody could log in"), "{error}");
    }

    #[test]
    fn sizes_read_as_people_write_them() {
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("2G").unwrap(), 2 << 30);
        assert_eq!(parse_size("1.5GiB").unwrap(), 3 << 29);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        assert!(parse_size("2X").is_err());
        assert!(parse_size("0").is_err());
    }
}
