//! The disks an install could go to, as util-linux's `lsblk` reports them (its JSON: model, size, serial,
//! partitions with their file systems and labels, mount points, and what is stacked on them), with the
//! `/dev/disk/by-id` names udev made. A disk is unavailable, with the reason, when it holds the live boot
//! medium, a mounted file system, active swap, or a member of LVM, RAID or LUKS that is in use, or when it is
//! read-only: an install never goes there.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::answers::{Answers, parse_size};
use crate::progress::human_size;

/// The live ISO's volume labels start so (`isoImage.volumeID`).
const LIVE_LABEL_PREFIX: &str = "RIXOS_";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disk {
    /// The kernel's name (`vda`, `sda`, `nvme0n1`).
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
    pub model: Option<String>,
    pub serial: Option<String>,
    /// Its names under /dev/disk/by-id, sorted.
    pub by_id: Vec<String>,
    pub partitions: Vec<Partition>,
    /// Why nothing may be installed here, if so.
    pub unavailable: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Partition {
    pub path: PathBuf,
    pub size: u64,
    pub fstype: Option<String>,
    pub label: Option<String>,
    pub partlabel: Option<String>,
}

impl Disk {
    /// How the disk is shown: `/dev/vda (QEMU HARDDISK, 20.0 GiB, virtio-target)`.
    pub fn title(&self) -> String {
        let mut parts = Vec::new();
        if let Some(model) = &self.model {
            parts.push(model.clone());
        }
        parts.push(human_size(self.size));
        if let Some(id) = self.by_id.first() {
            parts.push(id.clone());
        }
        format!("{} ({})", self.path.display(), parts.join(", "))
    }

    /// The path of partition `number` (`/dev/vda3`, `/dev/nvme0n1p3`).
    pub fn partition_path(&self, number: u32) -> PathBuf {
        let name = &self.name;
        if name.ends_with(|c: char| c.is_ascii_digit()) {
            PathBuf::from(format!("/dev/{name}p{number}"))
        } else {
            PathBuf::from(format!("/dev/{name}{number}"))
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}", self.path.display(), human_size(self.size))?;
        if let Some(fstype) = &self.fstype {
            write!(f, ", {fstype}")?;
        }
        if let Some(label) = self.label.as_ref().or(self.partlabel.as_ref()) {
            write!(f, " labelled {label:?}")?;
        }
        write!(f, ")")
    }
}

/// One device in lsblk's JSON.
#[derive(Debug, Deserialize)]
struct Device {
    name: String,
    path: PathBuf,
    #[serde(deserialize_with = "number_or_text")]
    size: u64,
    #[serde(rename = "type")]
    kind: String,
    fstype: Option<String>,
    label: Option<String>,
    partlabel: Option<String>,
    #[serde(default)]
    mountpoints: Vec<Option<String>>,
    model: Option<String>,
    serial: Option<String>,
    #[serde(default, deserialize_with = "flag")]
    ro: bool,
    #[serde(default)]
    children: Vec<Device>,
}

#[derive(Debug, Deserialize)]
struct Listing {
    blockdevices: Vec<Device>,
}

/// lsblk prints numbers as numbers or, in older versions, as strings.
fn number_or_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Number(u64),
        Text(String),
    }
    match Value::deserialize(d)? {
        Value::Number(n) => Ok(n),
        Value::Text(t) => t.trim().parse().map_err(serde::de::Error::custom),
    }
}

/// `true`/`false`, or `"1"`/`"0"` from older versions.
fn flag<'de, D: serde::Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Value {
        Bool(bool),
        Text(String),
    }
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::Text(t) => t == "1",
    })
}

/// The columns read from lsblk.
const COLUMNS: &str = "NAME,PATH,SIZE,TYPE,FSTYPE,LABEL,PARTLABEL,MOUNTPOINTS,MODEL,SERIAL,RO";

/// The machine's disks, each with its partitions and whether it may be installed to.
pub fn scan() -> Result<Vec<Disk>> {
    let out = crate::command::run(Command::new("lsblk").args(["-J", "-b", "-o", COLUMNS]))
        .context("listing the disks (lsblk, util-linux)")?;
    let swaps = std::fs::read_to_string("/proc/swaps").unwrap_or_default();
    assess(
        &String::from_utf8_lossy(&out.stdout),
        &by_id_names(Path::new("/dev/disk/by-id")),
        &swaps,
    )
}

/// Every `/dev/disk/by-id` name, by the device it names (`/dev/vda` -> `virtio-target`).
fn by_id_names(dir: &Path) -> BTreeMap<PathBuf, Vec<String>> {
    let mut names: BTreeMap<PathBuf, Vec<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if let Ok(device) = std::fs::canonicalize(entry.path()) {
            names
                .entry(device)
                .or_default()
                .push(entry.file_name().to_string_lossy().into_owned());
        }
    }
    for list in names.values_mut() {
        list.sort();
    }
    names
}

/// The disks in lsblk's JSON `listing`, with their by-id names and the active swap of `/proc/swaps`.
fn assess(listing: &str, by_id: &BTreeMap<PathBuf, Vec<String>>, swaps: &str) -> Result<Vec<Disk>> {
    let listing: Listing = serde_json::from_str(listing).context("reading lsblk's JSON")?;
    let swapping: Vec<&str> = swaps
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    let mut disks = Vec::new();
    for device in listing.blockdevices {
        // Floppy drives are "disks" to the kernel, and nobody installs onto one.
        let floppy = device.name.starts_with("fd");
        if !(device.kind == "disk" || device.kind == "rom") || device.size == 0 || floppy {
            continue;
        }
        let mut reasons = Vec::new();
        if device.kind == "rom" {
            reasons.push("it is a CD/DVD drive".to_string());
        }
        if device.ro && device.kind != "rom" {
            reasons.push("it is read-only".to_string());
        }
        let mut partitions = Vec::new();
        // The disk itself may carry a file system (a hybrid ISO written to a stick does).
        let mut all: Vec<&Device> = vec![&device];
        all.extend(device.children.iter());
        for part in &all {
            if part.label.as_deref().is_some_and(|l| l.starts_with(LIVE_LABEL_PREFIX))
                && part.fstype.as_deref() == Some("iso9660")
            {
                reasons.push("it holds the live system this runs from".to_string());
            }
            for mount in part.mountpoints.iter().flatten() {
                if mount == "[SWAP]" {
                    reasons.push(format!("{} is active swap", part.path.display()));
                } else {
                    reasons.push(format!("{} is mounted at {mount}", part.path.display()));
                }
            }
            if swapping.iter().any(|s| Path::new(s) == part.path)
                && !part.mountpoints.iter().flatten().any(|m| m == "[SWAP]")
            {
                reasons.push(format!("{} is active swap", part.path.display()));
            }
            // Part of the disk itself, for a whole-disk device; its partitions' children below.
            let stacked: Vec<&Device> = if std::ptr::eq(*part, &device) {
                Vec::new()
            } else {
                part.children.iter().collect()
            };
            for holder in stacked {
                reasons.push(format!(
                    "{} is in use by {} ({})",
                    part.path.display(),
                    holder.path.display(),
                    match holder.kind.as_str() {
                        "crypt" => "LUKS".to_string(),
                        "lvm" => "LVM".to_string(),
                        kind if kind.starts_with("raid") => "RAID".to_string(),
                        kind => kind.to_string(),
                    }
                ));
            }
            if !std::ptr::eq(*part, &device) {
                partitions.push(Partition {
                    path: part.path.clone(),
                    size: part.size,
                    fstype: part.fstype.clone(),
                    label: part.label.clone(),
                    partlabel: part.partlabel.clone(),
                });
            }
        }
        // A disk used whole by LVM, RAID or LUKS has those as children, not partitions.
        for child in &device.children {
            if child.kind != "part" && !reasons.iter().any(|r| r.contains(&child.path.display().to_string())) {
                reasons.push(format!("it is in use by {} ({})", child.path.display(), child.kind));
            }
        }
        reasons.dedup();
        disks.push(Disk {
            name: device.name.clone(),
            path: device.path.clone(),
            size: device.size,
            model: device
                .model
                .as_ref()
                .map(|m| m.trim().to_string())
                .filter(|m| !m.is_empty()),
            serial: device
                .serial
                .as_ref()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty()),
            by_id: by_id.get(&device.path).cloned().unwrap_or_default(),
            partitions: partitions.into_iter().filter(|p| p.path != device.path).collect(),
            unavailable: (!reasons.is_empty()).then(|| reasons.join("; ")),
        });
    }
    Ok(disks)
}

/// The one disk the answers name, refused when no disk or several match, or when it is unavailable.
pub fn choose<'a>(disks: &'a [Disk], answers: &Answers) -> Result<&'a Disk> {
    let matches: Vec<&Disk> = if let Some(given) = &answers.disk {
        let device = std::fs::canonicalize(given).with_context(|| format!("the disk {given} does not exist"))?;
        let found: Vec<&Disk> = disks.iter().filter(|d| d.path == device).collect();
        if found.is_empty() {
            bail!(
                "{given} ({}) is not a disk (a partition or another kind of device?); disks here: {}",
                device.display(),
                list(disks)
            );
        }
        found
    } else if let Some(serial) = &answers.serial {
        disks
            .iter()
            .filter(|d| d.serial.as_deref() == Some(serial.as_str()))
            .collect()
    } else {
        let model = answers.model.as_deref().unwrap_or_default();
        let size = parse_size(answers.size.as_deref().unwrap_or_default())?;
        // Within 1%: people write 20G for a disk of 20.0 GiB or of 20 GB.
        let close = |d: &Disk| (d.size as f64 - size as f64).abs() <= size as f64 * 0.01;
        disks
            .iter()
            .filter(|d| d.model.as_deref() == Some(model) && close(d))
            .collect()
    };
    let disk = match matches.as_slice() {
        [one] => *one,
        [] => bail!("no disk matches the answer file's disk; disks here: {}", list(disks)),
        several => bail!(
            "the answer file's disk is ambiguous: {} match; name it by /dev/disk/by-id or serial",
            several.iter().map(|d| d.title()).collect::<Vec<_>>().join(", ")
        ),
    };
    if let Some(reason) = &disk.unavailable {
        bail!("{} cannot be installed to: {reason}", disk.title());
    }
    Ok(disk)
}

fn list(disks: &[Disk]) -> String {
    if disks.is_empty() {
        return "none".to_string();
    }
    disks.iter().map(Disk::title).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A live system booted from a USB stick (sda, the ISO written whole), with a free virtio disk, a disk
    /// with a mounted data partition, one with active swap, and one whose partition is opened by LUKS.
    const LISTING: &str = r#"{"blockdevices": [
      {"name":"loop0","path":"/dev/loop0","size":524288000,"type":"loop","fstype":"squashfs","label":null,"partlabel":null,"mountpoints":["/nix/.ro-store"],"model":null,"serial":null,"rm":false,"ro":true},
      {"name":"sda","path":"/dev/sda","size":"700448768","type":"disk","fstype":"iso9660","label":"RIXOS_24_11","partlabel":null,"mountpoints":["/iso"],"model":"Flash Disk","serial":"0123","rm":"1","ro":"0",
        "children":[{"name":"sda1","path":"/dev/sda1","size":700000000,"type":"part","fstype":"iso9660","label":"RIXOS_24_11","partlabel":null,"mountpoints":[null],"model":null,"serial":null,"rm":true,"ro":false},
                    {"name":"sda2","path":"/dev/sda2","size":3145728,"type":"part","fstype":"vfat","label":"EFIBOOT","partlabel":null,"mountpoints":[null],"model":null,"serial":null,"rm":true,"ro":false}]},
      {"name":"sr0","path":"/dev/sr0","size":700448768,"type":"rom","fstype":"iso9660","label":"RIXOS_24_11","partlabel":null,"mountpoints":[null],"model":"QEMU DVD-ROM","serial":null,"rm":true,"ro":false},
      {"name":"fd0","path":"/dev/fd0","size":4096,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":null,"rm":true,"ro":false},
      {"name":"vda","path":"/dev/vda","size":21474836480,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":"target","rm":false,"ro":false},
      {"name":"vdb","path":"/dev/vdb","size":10737418240,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":"data","rm":false,"ro":false,
        "children":[{"name":"vdb1","path":"/dev/vdb1","size":10735321088,"type":"part","fstype":"ext4","label":"data","partlabel":"data","mountpoints":["/mnt/data"],"model":null,"serial":null,"rm":false,"ro":false}]},
      {"name":"vdc","path":"/dev/vdc","size":10737418240,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":"swapping","rm":false,"ro":false,
        "children":[{"name":"vdc1","path":"/dev/vdc1","size":1073741824,"type":"part","fstype":"swap","label":null,"partlabel":null,"mountpoints":["[SWAP]"],"model":null,"serial":null,"rm":false,"ro":false}]},
      {"name":"nvme0n1","path":"/dev/nvme0n1","size":21474836480,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":"Samsung SSD 980","serial":"S1","rm":false,"ro":false,
        "children":[{"name":"nvme0n1p1","path":"/dev/nvme0n1p1","size":21473787904,"type":"part","fstype":"crypto_LUKS","label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":null,"rm":false,"ro":false,
          "children":[{"name":"cryptroot","path":"/dev/mapper/cryptroot","size":21457010688,"type":"crypt","fstype":"ext4","label":null,"partlabel":null,"mountpoints":[null],"model":null,"serial":null,"rm":false,"ro":false}]}]},
      {"name":"vdd","path":"/dev/vdd","size":10737418240,"type":"disk","fstype":null,"label":null,"partlabel":null,"mountpoints":[null],"model":"Samsung SSD 980","serial":"S2","rm":false,"ro":false}
    ]}"#;

    fn disks() -> Vec<Disk> {
        let by_id = BTreeMap::from([(PathBuf::from("/dev/vda"), vec!["virtio-target".to_string()])]);
        assess(LISTING, &by_id, "Filename Type Size Used Priority\n").unwrap()
    }

    fn reason(disks: &[Disk], name: &str) -> Option<String> {
        disks.iter().find(|d| d.name == name).unwrap().unavailable.clone()
    }

    #[test]
    fn disks_in_use_are_unavailable_with_the_reason() {
        let disks = disks();
        let names: Vec<&str> = disks.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(
            names,
            ["sda", "sr0", "vda", "vdb", "vdc", "nvme0n1", "vdd"],
            "loop devices and floppies are left out"
        );
        assert_eq!(
            reason(&disks, "sr0").unwrap(),
            "it is a CD/DVD drive; it holds the live system this runs from"
        );
        assert!(reason(&disks, "sda").unwrap().contains("holds the live system"));
        assert!(reason(&disks, "sda").unwrap().contains("/dev/sda is mounted at /iso"));
        assert_eq!(reason(&disks, "vda"), None);
        assert_eq!(reason(&disks, "vdb").unwrap(), "/dev/vdb1 is mounted at /mnt/data");
        assert_eq!(reason(&disks, "vdc").unwrap(), "/dev/vdc1 is active swap");
        assert_eq!(
            reason(&disks, "nvme0n1").unwrap(),
            "/dev/nvme0n1p1 is in use by /dev/mapper/cryptroot (LUKS)"
        );
        let vdb = disks.iter().find(|d| d.name == "vdb").unwrap();
        assert_eq!(
            vdb.partitions[0].to_string(),
            "/dev/vdb1 (10.0 GiB, ext4 labelled \"data\")"
        );
        assert_eq!(disks[2].title(), "/dev/vda (20.0 GiB, virtio-target)");
        assert_eq!(disks[5].partition_path(2), Path::new("/dev/nvme0n1p2"));
        assert_eq!(disks[2].partition_path(2), Path::new("/dev/vda2"));
    }

    fn answers(disk_keys: &str) -> Answers {
        Answers::parse(&format!("{disk_keys}\nhostname = \"x\"\nroot-locked = true\n"), false).unwrap()
    }

    #[test]
    fn the_answers_name_exactly_one_available_disk() {
        let disks = disks();
        assert_eq!(choose(&disks, &answers("serial = \"target\"")).unwrap().name, "vda");
        assert_eq!(
            choose(&disks, &answers("model = \"Samsung SSD 980\"\nsize = \"10G\""))
                .unwrap()
                .name,
            "vdd"
        );
        for (keys, expected) in [
            ("serial = \"nothing\"", "no disk matches"),
            ("serial = \"data\"", "/dev/vdb1 is mounted at /mnt/data"),
            ("serial = \"0123\"", "holds the live system"),
            ("disk = \"/nonexistent\"", "does not exist"),
        ] {
            let error = choose(&disks, &answers(keys)).unwrap_err().to_string();
            assert!(error.contains(expected), "{keys}: {error}");
        }
        let mut twins = disks.clone();
        twins[2].model = Some("Samsung SSD 980".into());
        twins[2].size = twins[6].size;
        let error = choose(&twins, &answers("model = \"Samsung SSD 980\"\nsize = \"10G\""))
            .unwrap_err()
            .to_string();
        assert!(error.contains("ambiguous"), "{error}");
    }
}
