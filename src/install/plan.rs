//! The install plan: from the answers and the chosen disk, every partition with its size and file system,
//! what is destroyed, and the configuration the machine gets. It is shown (and `--dry-run` stops there)
//! before anything is written.
//!
//! One layout for both firmware kinds, as the disk images have: GPT with a BIOS boot partition (GRUB's
//! core.img), the EFI system partition mounted at /boot (1 GiB, FAT32; GRUB's menu lives there for BIOS too, so
//! the disk boots on either firmware), the root, and a swap partition at the end when asked for. The file
//! systems' UUIDs are chosen here, so the configuration names them before the disk is touched: a configuration
//! that does not build leaves the disk as it was.

use std::fmt::Write as _;

use anyhow::{Result, bail};
use uuid::Uuid;

use super::answers::{Answers, FirmwareChoice, Swap, parse_size};
use super::disks::Disk;
use super::hardware::{Hardware, hardware_configuration};
use crate::image::disk::layout::{BIOS_BOOT_SIZE, Extent, MIB, SECTOR};
use crate::progress::human_size;

/// The ESP: what NixOS's installer gives it, room for the kernels and initrds of many generations.
pub const ESP_SIZE: u64 = 1 << 30;
/// Root's room beyond the closure: 30% and 512 MiB for logs, homes and the next generations' first builds.
const ROOT_HEADROOM_PERCENT: u64 = 30;
const ROOT_EXTRA: u64 = 512 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    Uefi,
    Bios,
}

impl Firmware {
    /// The firmware the live system was booted by.
    pub fn of_this_machine() -> Firmware {
        if std::path::Path::new("/sys/firmware/efi").exists() {
            Firmware::Uefi
        } else {
            Firmware::Bios
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    BiosBoot,
    Esp,
    Root,
    Swap,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    pub number: u32,
    /// The GPT partition name.
    pub name: &'static str,
    pub kind: Kind,
    pub extent: Extent,
}

/// The file systems' identifiers, chosen before anything is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ids {
    pub disk: Uuid,
    pub root: Uuid,
    /// FAT's volume ID (printed `ABCD-1234`).
    pub esp: u32,
    pub swap: Uuid,
}

impl Ids {
    pub fn random() -> Result<Ids> {
        let mut bytes = [0u8; 52];
        getrandom(&mut bytes)?;
        let uuid = |at: usize| {
            let mut b = [0u8; 16];
            b.copy_from_slice(&bytes[at..at + 16]);
            uuid::Builder::from_random_bytes(b).into_uuid()
        };
        Ok(Ids {
            disk: uuid(0),
            root: uuid(16),
            swap: uuid(32),
            esp: u32::from_le_bytes([bytes[48], bytes[49], bytes[50], bytes[51]]),
        })
    }

    /// The ESP's UUID as /dev/disk/by-uuid names it.
    pub fn esp_uuid(&self) -> String {
        format!("{:04X}-{:04X}", self.esp >> 16, self.esp & 0xffff)
    }
}

fn getrandom(buf: &mut [u8]) -> Result<()> {
    use std::io::Read;
    std::fs::File::open("/dev/urandom")?.read_exact(buf)?;
    Ok(())
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub disk: Disk,
    pub firmware: Firmware,
    pub partitions: Vec<Planned>,
    pub ids: Ids,
    /// A swap file's size, when swap is a file.
    pub swap_file: Option<u64>,
    /// The serial console the live system runs on (`ttyS0,115200`), kept by the installed system.
    pub serial_console: Option<String>,
    pub answers: Answers,
    pub hardware: Hardware,
    /// The release the live system is (`system.stateVersion`), written into the configuration as NixOS's
    /// installer does, so later releases keep this machine's stateful defaults.
    pub state_version: Option<String>,
}

impl Plan {
    /// Lays out `disk` for `answers`, refusing a disk smaller than the system needs (`closure` bytes).
    pub fn new(
        answers: &Answers,
        disk: &Disk,
        closure: u64,
        firmware_here: Firmware,
        kernel_cmdline: &str,
        hardware: Hardware,
        ids: Ids,
    ) -> Result<Plan> {
        let firmware = match answers.firmware {
            FirmwareChoice::Auto => firmware_here,
            FirmwareChoice::Uefi => Firmware::Uefi,
            FirmwareChoice::Bios => Firmware::Bios,
        };
        let swap_size = match &answers.swap_size {
            Some(size) => parse_size(size)?.div_ceil(MIB) * MIB,
            None => 0,
        };
        let swap_partition = if answers.swap == Swap::Partition { swap_size } else { 0 };
        let root_min = closure + closure * ROOT_HEADROOM_PERCENT / 100 + ROOT_EXTRA;
        let root_min = root_min.div_ceil(MIB) * MIB;
        let start_of_root = MIB + BIOS_BOOT_SIZE + ESP_SIZE;
        // The last MiB holds the backup GPT; the disk's end is rounded down to a MiB.
        let end = (disk.size / MIB) * MIB - MIB;
        let minimum = start_of_root + root_min + swap_partition + MIB;
        if disk.size < minimum || end < start_of_root + root_min + swap_partition {
            bail!(
                "{} is too small: this system needs at least {} ({} for the root, {} for the boot partitions{})",
                disk.title(),
                human_size(minimum),
                human_size(root_min),
                human_size(start_of_root),
                if swap_partition > 0 {
                    format!(", {} for swap", human_size(swap_partition))
                } else {
                    String::new()
                }
            );
        }
        let extent = |from: u64, len: u64| Extent {
            first_lba: from / SECTOR,
            sectors: len / SECTOR,
        };
        let mut partitions = vec![
            Planned {
                number: 1,
                name: "bios",
                kind: Kind::BiosBoot,
                extent: extent(MIB, BIOS_BOOT_SIZE),
            },
            Planned {
                number: 2,
                name: "ESP",
                kind: Kind::Esp,
                extent: extent(MIB + BIOS_BOOT_SIZE, ESP_SIZE),
            },
            Planned {
                number: 3,
                name: "rixos",
                kind: Kind::Root,
                extent: extent(start_of_root, end - swap_partition - start_of_root),
            },
        ];
        if swap_partition > 0 {
            partitions.push(Planned {
                number: 4,
                name: "swap",
                kind: Kind::Swap,
                extent: extent(end - swap_partition, swap_partition),
            });
        }
        let serial_console = kernel_cmdline
            .split_whitespace()
            .filter_map(|w| w.strip_prefix("console="))
            .rfind(|c| c.starts_with("ttyS"))
            .map(str::to_string);
        Ok(Plan {
            disk: disk.clone(),
            firmware,
            partitions,
            ids,
            swap_file: (answers.swap == Swap::File).then_some(swap_size),
            serial_console,
            answers: answers.clone(),
            hardware,
            state_version: None,
        })
    }

    pub fn partition(&self, kind: Kind) -> Option<&Planned> {
        self.partitions.iter().find(|p| p.kind == kind)
    }

    /// What the user confirms: what is destroyed, what is made, and the system.
    pub fn summary(&self) -> String {
        let mut s = String::new();
        let firmware = match self.firmware {
            Firmware::Uefi => "UEFI",
            Firmware::Bios => "BIOS",
        };
        let _ = writeln!(s, "Install rixos onto {}, booting with {firmware}.", self.disk.title());
        if self.disk.partitions.is_empty() {
            let _ = writeln!(
                s,
                "Everything on {} is erased (it holds no partitions).",
                self.disk.path.display()
            );
        } else {
            let _ = writeln!(s, "This destroys everything on {}:", self.disk.path.display());
            for part in &self.disk.partitions {
                let _ = writeln!(s, "  {part}");
            }
        }
        let _ = writeln!(s, "and creates:");
        for p in &self.partitions {
            let what = match p.kind {
                Kind::BiosBoot => "BIOS boot partition (GRUB)".to_string(),
                Kind::Esp => "EFI system partition, FAT32, at /boot".to_string(),
                Kind::Root => "ext4, at /".to_string(),
                Kind::Swap => "swap".to_string(),
            };
            let _ = writeln!(
                s,
                "  {:<16} {:>10}  {what}",
                self.disk.partition_path(p.number).display().to_string(),
                human_size(p.extent.bytes())
            );
        }
        if let Some(size) = self.swap_file {
            let _ = writeln!(s, "  a swap file of {} at /swapfile", human_size(size));
        }
        let a = &self.answers;
        let users: Vec<String> = a
            .users
            .iter()
            .map(|u| {
                if u.wheel {
                    format!("{} (wheel)", u.name)
                } else {
                    u.name.clone()
                }
            })
            .collect();
        let root = if a.root_locked { "locked" } else { "with a password" };
        let _ = writeln!(
            s,
            "System: hostname {:?}, time zone {}, keyboard {}; users: {}; root {root}; sshd {}.",
            a.hostname,
            a.timezone,
            a.keyboard,
            if users.is_empty() {
                "none".to_string()
            } else {
                users.join(", ")
            },
            if a.ssh { "on" } else { "off" }
        );
        s
    }

    /// `hardware-configuration.nix`: the file systems and drivers of this machine.
    pub fn hardware_configuration(&self) -> String {
        let mut hardware = self.hardware.clone();
        hardware.file_systems = vec![
            (
                "/".to_string(),
                format!("/dev/disk/by-uuid/{}", self.ids.root),
                "ext4".to_string(),
            ),
            (
                "/boot".to_string(),
                format!("/dev/disk/by-uuid/{}", self.ids.esp_uuid()),
                "vfat".to_string(),
            ),
        ];
        hardware.swaps = self
            .partition(Kind::Swap)
            .map(|_| format!("/dev/disk/by-uuid/{}", self.ids.swap))
            .into_iter()
            .collect();
        hardware_configuration(&hardware)
    }

    /// `configuration.nix`: the bootloader and the wizard's choices, commented as NixOS's template is.
    /// `hash` turns a clear-text password into its crypt(3) hash.
    pub fn configuration(&self, hash: &dyn Fn(&str) -> Result<String>) -> Result<String> {
        let a = &self.answers;
        let mut s = String::new();
        s.push_str(
            "# This machine's configuration, written by `rixos install`. Change it, then run `rixos system switch`\n\
             # (or `rixos system boot` for the next boot only); `rixos options QUERY` finds every option.\n\
             { config, lib, pkgs, ... }:\n{\n  imports = [ ./hardware-configuration.nix ];\n\n",
        );
        match self.firmware {
            Firmware::Bios => {
                let device = match self.disk.by_id.first() {
                    Some(id) => format!("/dev/disk/by-id/{id}"),
                    None => self.disk.path.display().to_string(),
                };
                let _ = writeln!(
                    s,
                    "  # GRUB, for BIOS: in the MBR and BIOS boot partition of this disk."
                );
                let _ = writeln!(s, "  boot.loader.grub.device = {};", nix_string(&device));
            }
            Firmware::Uefi => {
                s.push_str(
                    "  # GRUB, for UEFI: on the ESP (/boot) at the removable-media path, which every firmware boots\n\
                     \x20 # without a boot entry of its own.\n\
                     \x20 boot.loader.grub.device = \"nodev\";\n\
                     \x20 boot.loader.grub.efiSupport = true;\n\
                     \x20 boot.loader.grub.efiInstallAsRemovable = true;\n",
                );
            }
        }
        if let Some(console) = &self.serial_console {
            let (tty, speed) = console.split_once(',').unwrap_or((console, "115200"));
            let unit = tty.trim_start_matches("ttyS");
            let speed: String = speed.chars().take_while(|c| c.is_ascii_digit()).collect();
            let _ = write!(
                s,
                "\n  # Installed from the serial console {tty}: the kernel, GRUB and a login stay there too.\n\
                 \x20 boot.kernelParams = [ \"console=tty0\" {} ];\n\
                 \x20 boot.loader.grub.extraConfig = ''\n\
                 \x20   serial --unit={unit} --speed={speed}\n\
                 \x20   terminal_input --append serial\n\
                 \x20   terminal_output --append serial\n\
                 \x20 '';\n",
                nix_string(&format!("console={console}"))
            );
        }
        if let Some(size) = self.swap_file {
            let _ = write!(
                s,
                "\n  swapDevices = [ {{ device = \"/swapfile\"; size = {}; }} ];\n",
                size / MIB
            );
        }
        let _ = write!(
            s,
            "\n  networking.hostName = {};\n  networking.useDHCP = true;\n  time.timeZone = {};\n  console.keyMap = {};\n",
            nix_string(&a.hostname),
            nix_string(&a.timezone),
            nix_string(&a.keyboard)
        );
        let root_hash = match (&a.root_password, &a.root_hashed_password) {
            (Some(clear), _) => hash(clear)?,
            (None, Some(hashed)) => hashed.clone(),
            (None, None) => "!".to_string(),
        };
        let _ = write!(s, "\n  users.users.root.hashedPassword = {};\n", nix_string(&root_hash));
        if !a.root_ssh_keys.is_empty() {
            let _ = writeln!(
                s,
                "  users.users.root.openssh.authorizedKeys.keys = {};",
                nix_list(&a.root_ssh_keys)
            );
        }
        for user in &a.users {
            let _ = writeln!(s, "  users.users.{} = {{", user.name);
            let _ = writeln!(s, "    isNormalUser = true;");
            if user.wheel {
                let _ = writeln!(s, "    extraGroups = [ \"wheel\" ];");
            }
            let hashed = match (&user.password, &user.hashed_password) {
                (Some(clear), _) => Some(hash(clear)?),
                (None, Some(hashed)) => Some(hashed.clone()),
                (None, None) => None,
            };
            if let Some(hashed) = hashed {
                let _ = writeln!(s, "    hashedPassword = {};", nix_string(&hashed));
            }
            if !user.ssh_keys.is_empty() {
                let _ = writeln!(s, "    openssh.authorizedKeys.keys = {};", nix_list(&user.ssh_keys));
            }
            let _ = writeln!(s, "  }};");
        }
        let _ = writeln!(s, "\n  services.openssh.enable = {};", a.ssh);
        if let Some(version) = &self.state_version {
            let _ = write!(
                s,
                "\n  # The release this machine was installed with: stateful defaults (data formats, paths) follow it.\n\
                 \x20 # Leave it as it is when upgrading.\n\
                 \x20 system.stateVersion = {};\n",
                nix_string(version)
            );
        }
        s.push_str("}\n");
        Ok(s)
    }
}

/// A Nix string literal of `text`.
pub fn nix_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '$' => out.push_str("\\$"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn nix_list(items: &[String]) -> String {
    let inner: Vec<String> = items.iter().map(|i| nix_string(i)).collect();
    format!("[ {} ]", inner.join(" "))
}

/// A password's hash as `mkpasswd -m sha-512` prints it (`$6$SALT$HASH`, 5000 rounds).
pub fn sha512_crypt(password: &str) -> Result<String> {
    let params = sha_crypt::Sha512Params::new(sha_crypt::ROUNDS_DEFAULT)
        .map_err(|e| anyhow::anyhow!("sha512-crypt parameters: {e:?}"))?;
    sha_crypt::sha512_simple(password, &params).map_err(|e| anyhow::anyhow!("hashing a password: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::install::disks::Partition;

    fn disk(size: u64) -> Disk {
        Disk {
            name: "vda".into(),
            path: "/dev/vda".into(),
            size,
            model: None,
            serial: Some("target".into()),
            by_id: vec!["virtio-target".into()],
            partitions: vec![Partition {
                path: "/dev/vda1".into(),
                size: 1 << 30,
                fstype: Some("ext4".into()),
                label: Some("old".into()),
                partlabel: None,
            }],
            unavailable: None,
        }
    }

    fn answers(extra: &str) -> Answers {
        let text = format!(
            "disk = \"/dev/vda\"\nhostname = \"installed\"\nroot-password = \"toor\"\nssh = true\n{extra}\n\
             [[users]]\nname = \"alice\"\npassword = \"secret\"\nwheel = true\n"
        );
        let answers = Answers::parse(&text, false).unwrap();
        answers.check().unwrap();
        answers
    }

    fn ids() -> Ids {
        Ids {
            disk: Uuid::from_u128(1),
            root: Uuid::from_u128(0x1234),
            esp: 0xabcd_0123,
            swap: Uuid::from_u128(0x5678),
        }
    }

    fn plan(answers: &Answers, size: u64) -> Result<Plan> {
        Plan::new(
            answers,
            &disk(size),
            800 * MIB,
            Firmware::Bios,
            "BOOT_IMAGE=x console=tty0 console=ttyS0,115200",
            Hardware::default(),
            ids(),
        )
    }

    #[test]
    fn the_layout_fills_the_disk_with_swap_at_the_end() {
        let answers = answers("swap = \"partition\"\nswap-size = \"2G\"");
        let plan = plan(&answers, 20 << 30).unwrap();
        let sizes: Vec<(u32, u64, u64)> = plan
            .partitions
            .iter()
            .map(|p| (p.number, p.extent.offset() / MIB, p.extent.bytes() / MIB))
            .collect();
        assert_eq!(
            sizes,
            [
                (1, 1, 1),
                (2, 2, 1024),
                (3, 1026, 20480 - 1026 - 2048 - 1),
                (4, 20480 - 2049, 2048)
            ]
        );
        let summary = plan.summary();
        assert!(
            summary.contains("This destroys everything on /dev/vda:\n  /dev/vda1 (1.0 GiB, ext4 labelled \"old\")"),
            "{summary}"
        );
        assert!(summary.contains("/dev/vda4"), "{summary}");
        assert!(
            summary.contains("users: alice (wheel); root with a password; sshd on"),
            "{summary}"
        );
    }

    #[test]
    fn a_small_disk_is_refused_naming_the_minimum() {
        let answers = answers("");
        let error = plan(&answers, 1 << 30).unwrap_err().to_string();
        // 800 MiB closure: 1552 MiB root, 1026 MiB before it, 1 MiB of backup GPT.
        assert!(
            error.contains("too small: this system needs at least 2.5 GiB"),
            "{error}"
        );
    }

    #[test]
    fn the_configuration_names_the_disk_the_console_and_the_users() {
        let answers = answers("swap = \"file\"\nswap-size = \"512M\"");
        let plan = plan(&answers, 20 << 30).unwrap();
        let text = plan.configuration(&|p| Ok(format!("HASH({p})"))).unwrap();
        for expected in [
            "imports = [ ./hardware-configuration.nix ];",
            "boot.loader.grub.device = \"/dev/disk/by-id/virtio-target\";",
            "boot.kernelParams = [ \"console=tty0\" \"console=ttyS0,115200\" ];",
            "serial --unit=0 --speed=115200",
            "swapDevices = [ { device = \"/swapfile\"; size = 512; } ];",
            "networking.hostName = \"installed\";",
            "users.users.root.hashedPassword = \"HASH(toor)\";",
            "extraGroups = [ \"wheel\" ];",
            "hashedPassword = \"HASH(secret)\";",
            "services.openssh.enable = true;",
        ] {
            assert!(text.contains(expected), "{expected} not in\n{text}");
        }
        let hardware = plan.hardware_configuration();
        assert!(hardware.contains("fileSystems.\"/\" = { device = \"/dev/disk/by-uuid/00000000-0000-0000-0000-000000001234\"; fsType = \"ext4\"; };"), "{hardware}");
        assert!(hardware.contains("/dev/disk/by-uuid/ABCD-0123"), "{hardware}");
    }

    #[test]
    fn passwords_hash_as_crypt_reads_them() {
        let hash = sha512_crypt("secret").unwrap();
        assert!(hash.starts_with("$6$"), "{hash}");
        sha_crypt::sha512_check("secret", &hash).unwrap();
        assert!(sha_crypt::sha512_check("other", &hash).is_err());
        assert_eq!(nix_string("a\"b$c\\"), "\"a\\\"b\\$c\\\\\"");
    }
}
