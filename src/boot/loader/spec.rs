//! A generation's `boot.json` (written by the modules into every toplevel): the bootspec part (RFC 0125's
//! `org.nixos.bootspec.v1`: kernel, initrd, parameters, label) and `rixos.loader`, the loader and its settings.
//! `init` and `toplevel` are absent: the toplevel cannot name itself, and `init` is always `<toplevel>/init`.

use anyhow::{Context, Result, bail};
use serde_json::Value;

/// What one generation boots.
#[derive(Debug, Clone)]
pub struct BootSpec {
    pub kernel: String,
    pub initrd: String,
    pub kernel_params: Vec<String>,
    pub label: String,
    pub loader: LoaderSpec,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoaderKind {
    Grub,
    SystemdBoot,
    /// No loader enabled: nothing is written to the ESP.
    None,
}

/// `rixos.loader`: only the newest generation's counts.
#[derive(Debug, Clone)]
pub struct LoaderSpec {
    pub kind: LoaderKind,
    /// Seconds the menu waits; `None` waits until a choice is made (`boot.loader.timeout = null`).
    pub timeout: Option<u64>,
    /// How many generations the menu lists, newest first; `None` lists all.
    pub configuration_limit: Option<usize>,
    pub grub: GrubSpec,
    pub systemd_boot: SystemdBootSpec,
    pub can_touch_efi_variables: bool,
    /// Where the running system mounts the ESP (`boot.loader.efi.efiSysMountPoint`), for what updates it there.
    pub efi_sys_mount_point: String,
    /// `efibootmgr`, when `can_touch_efi_variables` and the loader boots with UEFI.
    pub efibootmgr: Option<String>,
}

#[derive(Debug, Clone)]
pub struct GrubSpec {
    /// The disks GRUB's BIOS images go on when the running system updates them (`boot.loader.grub.devices`,
    /// `nodev` left out).
    pub devices: Vec<String>,
    /// `boot.img` (the MBR's code) and `core.img` (the BIOS boot partition's), when GRUB has a BIOS device.
    pub bios: Option<(String, String)>,
    /// `grubx64.efi`, when `efiSupport`.
    pub efi: Option<String>,
    pub efi_install_as_removable: bool,
    /// Lines after the menu's settings (a serial console's `serial`/`terminal_*`, say).
    pub extra_config: String,
    /// Menu entries after the generations'.
    pub extra_entries: String,
}

#[derive(Debug, Clone)]
pub struct SystemdBootSpec {
    /// `systemd-bootx64.efi`, when systemd-boot is enabled.
    pub efi: Option<String>,
    pub editor: bool,
}

impl BootSpec {
    /// Parses the text of `file` (named in errors).
    pub fn parse(text: &str, file: &str) -> Result<Self> {
        let root: Value = serde_json::from_str(text).with_context(|| format!("{file} is not valid JSON"))?;
        let doc = Field {
            value: &root,
            at: file.to_string(),
        };
        let spec = doc.object("org.nixos.bootspec.v1")?;
        let loader = doc.object("rixos.loader")?;
        let grub = loader.object("grub")?;
        let systemd_boot = loader.object("systemd-boot")?;
        let kind = match loader.string("kind")?.as_str() {
            "grub" => LoaderKind::Grub,
            "systemd-boot" => LoaderKind::SystemdBoot,
            "none" => LoaderKind::None,
            other => bail!(
                "{}.kind is {other:?}, not \"grub\", \"systemd-boot\" or \"none\"",
                loader.at
            ),
        };
        let bios = match grub.optional_object("bios")? {
            Some(bios) => Some((bios.string("bootImage")?, bios.string("coreImage")?)),
            None => None,
        };
        Ok(BootSpec {
            kernel: spec.string("kernel")?,
            initrd: spec.string("initrd")?,
            kernel_params: spec.strings("kernelParams")?,
            label: spec.string("label")?,
            loader: LoaderSpec {
                kind,
                timeout: loader.optional_number("timeout")?,
                configuration_limit: loader.optional_number("configurationLimit")?.map(|n| n as usize),
                grub: GrubSpec {
                    // Absent from toplevels that predate it: those left the disk's BIOS images alone.
                    devices: match grub.value.get("devices") {
                        Some(_) => grub.strings("devices")?.into_iter().filter(|d| d != "nodev").collect(),
                        None => Vec::new(),
                    },
                    bios,
                    efi: grub.optional_string("efi")?,
                    efi_install_as_removable: grub.boolean("efiInstallAsRemovable")?,
                    extra_config: grub.string("extraConfig")?,
                    extra_entries: grub.string("extraEntries")?,
                },
                systemd_boot: SystemdBootSpec {
                    efi: systemd_boot.optional_string("efi")?,
                    editor: systemd_boot.boolean("editor")?,
                },
                can_touch_efi_variables: loader.object("efi")?.boolean("canTouchEfiVariables")?,
                efi_sys_mount_point: loader.object("efi")?.string("efiSysMountPoint")?,
                // Absent from toplevels that predate it: those added no firmware boot entry.
                efibootmgr: match loader.object("efi")?.value.get("efibootmgr") {
                    Some(_) => loader.object("efi")?.optional_string("efibootmgr")?,
                    None => None,
                },
            },
        })
    }
}

/// A JSON value and where it is (`FILE: a.b`), so an error names the key that is wrong.
struct Field<'a> {
    value: &'a Value,
    at: String,
}

impl<'a> Field<'a> {
    fn get(&self, key: &str) -> Result<Field<'a>> {
        let at = if self.at.contains(": ") {
            format!("{}.{key}", self.at)
        } else {
            format!("{}: {key}", self.at)
        };
        match self.value.get(key) {
            Some(value) => Ok(Field { value, at }),
            None => bail!("{at} is missing (was the toplevel built by an older rixos? rebuild it)"),
        }
    }

    fn object(&self, key: &str) -> Result<Field<'a>> {
        let field = self.get(key)?;
        if !field.value.is_object() {
            bail!("{} is not an object", field.at);
        }
        Ok(field)
    }

    fn optional_object(&self, key: &str) -> Result<Option<Field<'a>>> {
        let field = self.get(key)?;
        if field.value.is_null() {
            Ok(None)
        } else {
            self.object(key).map(Some)
        }
    }

    fn string(&self, key: &str) -> Result<String> {
        let field = self.get(key)?;
        field
            .value
            .as_str()
            .map(str::to_string)
            .with_context(|| format!("{} is not a string", field.at))
    }

    fn optional_string(&self, key: &str) -> Result<Option<String>> {
        if self.get(key)?.value.is_null() {
            Ok(None)
        } else {
            self.string(key).map(Some)
        }
    }

    fn strings(&self, key: &str) -> Result<Vec<String>> {
        let field = self.get(key)?;
        let list = field
            .value
            .as_array()
            .with_context(|| format!("{} is not a list", field.at))?;
        list.iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .with_context(|| format!("{} holds a non-string", field.at))
            })
            .collect()
    }

    fn boolean(&self, key: &str) -> Result<bool> {
        let field = self.get(key)?;
        field
            .value
            .as_bool()
            .with_context(|| format!("{} is not true or false", field.at))
    }

    fn optional_number(&self, key: &str) -> Result<Option<u64>> {
        let field = self.get(key)?;
        if field.value.is_null() {
            return Ok(None);
        }
        field
            .value
            .as_u64()
            .map(Some)
            .with_context(|| format!("{} is not a non-negative integer", field.at))
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A boot.json as the modules write it, with the loader's part given.
    pub fn boot_json(kernel: &str, initrd: &str, params: &[&str], loader: Value) -> String {
        serde_json::json!({
            "org.nixos.bootspec.v1": {
                "system": "x86_64-linux", "kernel": kernel, "initrd": initrd,
                "kernelParams": params, "label": "rixos 25.11 (Linux 6.1.0-18-amd64)"
            },
            "rixos.loader": loader,
        })
        .to_string()
    }

    #[test]
    fn parses_what_the_modules_write() {
        let text = boot_json(
            "/nix/store/k-linux/boot/vmlinuz",
            "/nix/store/i-initrd/initrd",
            &["quiet"],
            serde_json::json!({
                "kind": "grub", "timeout": null, "configurationLimit": 3,
                "grub": { "bios": { "bootImage": "/nix/store/g-bios/boot.img", "coreImage": "/nix/store/g-bios/core.img" },
                          "efi": null, "efiInstallAsRemovable": false, "extraConfig": "serial", "extraEntries": "",
                          "devices": ["/dev/vda"], "configurationLimit": 3 },
                "systemd-boot": { "efi": null, "editor": true, "configurationLimit": null },
                "efi": { "canTouchEfiVariables": true, "efiSysMountPoint": "/boot",
                         "efibootmgr": "/nix/store/e-efibootmgr/bin/efibootmgr" }
            }),
        );
        let spec = BootSpec::parse(&text, "boot.json").unwrap();
        assert_eq!(spec.kernel, "/nix/store/k-linux/boot/vmlinuz");
        assert_eq!(spec.kernel_params, ["quiet"]);
        assert_eq!(spec.loader.kind, LoaderKind::Grub);
        assert_eq!(spec.loader.timeout, None);
        assert_eq!(spec.loader.configuration_limit, Some(3));
        assert_eq!(
            spec.loader.grub.bios,
            Some(("/nix/store/g-bios/boot.img".into(), "/nix/store/g-bios/core.img".into()))
        );
        assert!(spec.loader.can_touch_efi_variables);
        assert_eq!(
            spec.loader.efibootmgr.as_deref(),
            Some("/nix/store/e-efibootmgr/bin/efibootmgr")
        );
    }

    #[test]
    fn errors_name_the_file_and_key() {
        let cases: &[(&str, &str)] = &[
            ("{", "/t/boot.json is not valid JSON"),
            ("{}", "/t/boot.json: org.nixos.bootspec.v1 is missing"),
            (
                r#"{"org.nixos.bootspec.v1": {}, "rixos.loader": {"kind": "lilo", "grub": {}, "systemd-boot": {}}}"#,
                r#"/t/boot.json: rixos.loader.kind is "lilo", not"#,
            ),
            (
                r#"{"org.nixos.bootspec.v1": {"kernel": 1}, "rixos.loader": {"kind": "none", "grub": {"bios": null}, "systemd-boot": {}}}"#,
                "/t/boot.json: org.nixos.bootspec.v1.kernel is not a string",
            ),
        ];
        for (text, expected) in cases {
            let error = format!("{:#}", BootSpec::parse(text, "/t/boot.json").unwrap_err());
            assert!(error.starts_with(expected), "{text}: {error}");
        }
    }
}
