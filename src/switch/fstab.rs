//! File systems and swap devices across a switch, from the old and new `/etc/fstab` (systemd makes their units
//! with its fstab generator, so the unit files of the two generations do not show them). As NixOS decides:
//! an entry gone is unmounted; a changed device or type is unmounted and mounted again (except `/` and `/nix`,
//! which are only remounted when their options change); changed options alone are a remount (a reload of
//! the mount unit). New entries are mounted by starting `local-fs.target` again. A swap device gone is
//! turned off with `swapoff`, since its unit has aliases a stop does not reach.

use std::collections::{BTreeMap, BTreeSet};

/// One line of fstab, its fields unescaped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub device: String,
    pub fs_type: String,
    pub options: String,
}

/// The file systems by mount point and the swap devices of an fstab.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Fstab {
    pub file_systems: BTreeMap<String, Entry>,
    pub swaps: BTreeSet<String>,
}

/// What the file systems ask of a switch.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Changes {
    pub stop: BTreeSet<String>,
    pub start: BTreeSet<String>,
    pub reload: BTreeSet<String>,
    /// Swap devices to turn off.
    pub swapoff: Vec<String>,
}

/// fstab(5): blank-separated fields with octal escapes (`\040` for a space), `#` comments.
pub fn parse(text: &str) -> Fstab {
    let mut fstab = Fstab::default();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let fields: Vec<String> = line.split_whitespace().map(unescape).collect();
        let [device, mount_point, fs_type, rest @ ..] = fields.as_slice() else {
            continue;
        };
        let options = rest.first().cloned().unwrap_or_else(|| "defaults".to_string());
        if fs_type == "swap" {
            fstab.swaps.insert(device.clone());
            continue;
        }
        fstab.file_systems.insert(
            normalise(mount_point),
            Entry {
                device: device.clone(),
                fs_type: fs_type.clone(),
                options,
            },
        );
    }
    fstab
}

fn unescape(field: &str) -> String {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' && i + 3 < bytes.len() && bytes[i + 1..i + 4].iter().all(|b| (b'0'..=b'7').contains(b)) {
            let value = (bytes[i + 1] - b'0') * 64 + (bytes[i + 2] - b'0') * 8 + (bytes[i + 3] - b'0');
            out.push(value);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A mount point without repeated or trailing slashes, as systemd names its unit.
fn normalise(path: &str) -> String {
    let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty() && *p != ".").collect();
    format!("/{}", parts.join("/"))
}

/// systemd's unit name for a path (`systemd-escape --path --suffix=SUFFIX`): `/` is `-`, the slashes between
/// components are `-`, and bytes other than ASCII letters, digits, `:`, `_` and `.` (or a leading `.`) are
/// `\xNN`.
pub fn unit_name(path: &str, suffix: &str) -> String {
    let path = normalise(path);
    let trimmed = path.trim_start_matches('/');
    if trimmed.is_empty() {
        return format!("-.{suffix}");
    }
    let mut name = String::new();
    for (i, byte) in trimmed.bytes().enumerate() {
        match byte {
            b'/' => name.push('-'),
            b'.' if i == 0 => name.push_str("\\x2e"),
            b if b.is_ascii_alphanumeric() || b == b':' || b == b'_' || b == b'.' => name.push(b as char),
            b => name.push_str(&format!("\\x{b:02x}")),
        }
    }
    format!("{name}.{suffix}")
}

/// What changes between `old` and `new`, for the mount units in `active` (a unit that is not mounted now is
/// neither unmounted nor remounted).
pub fn changes(old: &Fstab, new: &Fstab, active: &BTreeSet<String>) -> Changes {
    let mut changes = Changes::default();
    for (mount_point, before) in &old.file_systems {
        let unit = unit_name(mount_point, "mount");
        if !active.contains(&unit) {
            continue;
        }
        let Some(after) = new.file_systems.get(mount_point) else {
            changes.stop.insert(unit);
            continue;
        };
        let moved = before.device != after.device || before.fs_type != after.fs_type;
        let essential = matches!(mount_point.as_str(), "/" | "/nix");
        if moved && !essential {
            changes.stop.insert(unit.clone());
            changes.start.insert(unit);
        } else if before.options != after.options {
            changes.reload.insert(unit);
        }
    }
    changes.swapoff = old.swaps.difference(&new.swaps).cloned().collect();
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_names_are_systemd_escape_paths() {
        let cases = [
            ("/", "-.mount"),
            ("/boot", "boot.mount"),
            ("/var/lib/my data/", "var-lib-my\\x20data.mount"),
            ("//srv//x-y", "srv-x\\x2dy.mount"),
            ("/.snapshots", "\\x2esnapshots.mount"),
            ("/home/a.b", "home-a.b.mount"),
        ];
        for (path, unit) in cases {
            assert_eq!(unit_name(path, "mount"), unit, "{path}");
        }
    }

    #[test]
    fn entries_are_read_with_escapes_and_swaps_apart() {
        let fstab = parse(
            "# comment\n\
             /dev/disk/by-label/data /srv/my\\040data ext4 noatime,nofail 0 2\n\
             tmpfs /scratch/ tmpfs size=16m 0 0\n\
             /dev/vdb1 none swap sw 0 0\n\
             LABEL=x /short xfs\n",
        );
        assert_eq!(
            fstab.file_systems["/srv/my data"],
            Entry {
                device: "/dev/disk/by-label/data".into(),
                fs_type: "ext4".into(),
                options: "noatime,nofail".into()
            }
        );
        assert_eq!(fstab.file_systems["/scratch"].options, "size=16m");
        assert_eq!(fstab.file_systems["/short"].options, "defaults");
        assert_eq!(fstab.swaps, BTreeSet::from(["/dev/vdb1".to_string()]));
    }

    /// (old fstab, new fstab, expected stop, start, reload, swapoff), with every old mount active.
    #[test]
    fn changes_follow_nixos() {
        type Case = (
            &'static str,
            &'static str,
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
            &'static [&'static str],
        );
        let cases: &[Case] = &[
            (
                "tmpfs /a tmpfs size=1m\n",
                "tmpfs /a tmpfs size=1m\n",
                &[],
                &[],
                &[],
                &[],
            ),
            ("tmpfs /a tmpfs size=1m\n", "", &["a.mount"], &[], &[], &[]),
            (
                "tmpfs /a tmpfs size=1m\n",
                "tmpfs /a tmpfs size=2m\n",
                &[],
                &[],
                &["a.mount"],
                &[],
            ),
            (
                "/dev/vdb /a ext4 defaults\n",
                "/dev/vdc /a ext4 defaults\n",
                &["a.mount"],
                &["a.mount"],
                &[],
                &[],
            ),
            (
                "/dev/vdb /a ext4 defaults\n",
                "/dev/vdb /a xfs defaults\n",
                &["a.mount"],
                &["a.mount"],
                &[],
                &[],
            ),
            // The root and /nix are never unmounted: a new device waits for the next boot.
            (
                "/dev/vdb /nix ext4 defaults\n",
                "/dev/vdc /nix ext4 defaults\n",
                &[],
                &[],
                &[],
                &[],
            ),
            (
                "/dev/vdb /nix ext4 defaults\n",
                "/dev/vdc /nix ext4 noatime\n",
                &[],
                &[],
                &["nix.mount"],
                &[],
            ),
            // New entries are mounted by local-fs.target, not here.
            ("", "tmpfs /a tmpfs size=1m\n", &[], &[], &[], &[]),
            (
                "/dev/vdb1 none swap sw\n/swapfile none swap sw\n",
                "/swapfile none swap sw\n",
                &[],
                &[],
                &[],
                &["/dev/vdb1"],
            ),
        ];
        for (old, new, stop, start, reload, swapoff) in cases {
            let old = parse(old);
            let active = old.file_systems.keys().map(|m| unit_name(m, "mount")).collect();
            let got = changes(&old, &parse(new), &active);
            let set = |names: &[&str]| names.iter().map(|n| n.to_string()).collect::<BTreeSet<_>>();
            assert_eq!(
                (got.stop, got.start, got.reload, got.swapoff),
                (
                    set(stop),
                    set(start),
                    set(reload),
                    swapoff.iter().map(|s| s.to_string()).collect()
                ),
                "{old:?} -> {new}"
            );
        }
    }

    #[test]
    fn mounts_that_are_not_active_are_left_alone() {
        let got = changes(&parse("tmpfs /a tmpfs size=1m\n"), &parse(""), &BTreeSet::new());
        assert_eq!(got, Changes::default());
    }
}
