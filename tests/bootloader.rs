//! The bootloaders from a built system: `rixos system build` of a GRUB (BIOS and UEFI) and a systemd-boot
//! configuration, each toplevel's boot.json, and the ESP `rixos::boot::loader::install_files` makes of it: real
//! GRUB and systemd-boot EFI binaries, GRUB's BIOS images, a menu GRUB's own parser accepts, kernels copied.
//! Needs the network to the Debian mirror.

use std::fs;
use std::path::Path;

use rixos::boot::loader::{Generation, install_files};

mod common;

/// Builds `configuration` (the body of a module) and installs generation 1 of it into `esp`.
fn build_and_install(
    dir: &Path,
    name: &str,
    configuration: &str,
    esp: &Path,
) -> (String, rixos::boot::loader::Installed) {
    let store = dir.join("store");
    let file = dir.join(format!("{name}.nix"));
    fs::write(
        &file,
        format!(
            r#"{{ ... }}: {{
  fileSystems."/" = {{ device = "/dev/disk/by-label/rixos"; fsType = "ext4"; }};
  boot.kernelParams = [ "console=ttyS0,115200" ];
  {configuration}
}}"#
        ),
    )
    .unwrap();
    let out = common::rixos(
        &store,
        dir,
        &["system", "build", "-c", file.to_str().unwrap(), "-o", name],
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let toplevel = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let generations = [Generation {
        number: 1,
        toplevel: toplevel.clone(),
        created: 315_532_800,
    }];
    let installed = install_files(&generations, esp, &|p| rixos::store::resolve::resolve_under(&store, p))
        .unwrap_or_else(|e| panic!("{name}: {e:#}"));
    (toplevel, installed)
}

/// Whether the file is a PE executable (what UEFI firmware loads).
fn is_pe(path: &Path) -> bool {
    fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"MZ"))
}

#[test]
fn grub_and_systemd_boot_from_built_systems() {
    let dir = tempfile::tempdir().unwrap();
    let out = common::rixos(&dir.path().join("store"), dir.path(), &["channel", "--update"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let esp = dir.path().join("esp-grub");
    let (toplevel, installed) = build_and_install(
        dir.path(),
        "grub",
        r#"boot.loader.grub.device = "/dev/vda"; boot.loader.grub.efiSupport = true; boot.loader.grub.efiInstallAsRemovable = true;
  boot.loader.grub.extraConfig = "serial --unit=0 --speed=115200\nterminal_output --append serial";"#,
        &esp,
    );
    let (boot_img, core_img) = installed
        .bios
        .expect("GRUB with a BIOS device hands back its BIOS images");
    let boot = fs::read(&boot_img).unwrap();
    assert_eq!(
        (boot.len(), &boot[510..]),
        (512, &[0x55, 0xaa][..]),
        "{}",
        boot_img.display()
    );
    let core = fs::metadata(&core_img).unwrap().len();
    assert!(
        core < 1 << 20,
        "core.img ({core} bytes) must fit the 1 MiB BIOS boot partition"
    );
    assert!(is_pe(&esp.join("EFI/BOOT/BOOTX64.EFI")) && is_pe(&esp.join("EFI/rixos/grubx64.efi")));
    assert_eq!(installed.efi_boot_entry, None, "canTouchEfiVariables is off by default");
    let cfg = fs::read_to_string(esp.join("grub/grub.cfg")).unwrap();
    assert!(cfg.contains("menuentry 'rixos - Generation 1 (1980-01-01)'"), "{cfg}");
    assert!(
        cfg.contains(&format!("init={toplevel}/init console=ttyS0,115200")),
        "{cfg}"
    );
    assert!(cfg.contains("terminal_output --append serial\n"), "{cfg}");
    let check = std::process::Command::new("grub-script-check")
        .arg(esp.join("grub/grub.cfg"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "grub-script-check: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let kernels: Vec<String> = fs::read_dir(esp.join("kernels"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(kernels.len(), 2, "{kernels:?}");
    for name in &kernels {
        assert!(cfg.contains(&format!("/kernels/{name}")), "{name} not in\n{cfg}");
    }

    let esp = dir.path().join("esp-systemd-boot");
    let (toplevel, installed) = build_and_install(
        dir.path(),
        "systemd-boot",
        "boot.loader.systemd-boot.enable = true; boot.loader.systemd-boot.editor = false; boot.loader.timeout = 2;
  boot.loader.efi.canTouchEfiVariables = true;",
        &esp,
    );
    assert_eq!(installed.bios, None);
    // Allowed to touch the EFI variables: an entry for the firmware, and the efibootmgr that adds it, which is
    // also on the system's PATH.
    let entry = installed
        .efi_boot_entry
        .expect("canTouchEfiVariables asks for a firmware boot entry");
    assert_eq!(
        (entry.label.as_str(), entry.loader.as_str()),
        ("Linux Boot Manager", r"\EFI\systemd\systemd-bootx64.efi")
    );
    let store = dir.path().join("store");
    let resolve = |p: &str| rixos::store::resolve::resolve_under(&store, p).unwrap();
    let spec = fs::read_to_string(resolve(&format!("{toplevel}/boot.json"))).unwrap();
    let spec = rixos::boot::loader::spec::BootSpec::parse(&spec, "boot.json").unwrap();
    let efibootmgr = spec.loader.efibootmgr.expect("boot.json names efibootmgr");
    assert!(
        fs::read(resolve(&efibootmgr)).is_ok_and(|b| b.starts_with(b"\x7fELF")),
        "{efibootmgr} is no program"
    );
    assert!(resolve(&format!("{toplevel}/sw/bin/efibootmgr")).exists());
    assert!(is_pe(&esp.join("EFI/systemd/systemd-bootx64.efi")) && is_pe(&esp.join("EFI/BOOT/BOOTX64.EFI")));
    assert_eq!(
        fs::read_to_string(esp.join("loader/loader.conf")).unwrap(),
        "timeout 2\ndefault rixos-generation-1.conf\neditor no\nconsole-mode keep\n"
    );
    let entry = fs::read_to_string(esp.join("loader/entries/rixos-generation-1.conf")).unwrap();
    assert!(
        entry.contains(&format!("\noptions init={toplevel}/init console=ttyS0,115200\n")),
        "{entry}"
    );
    for key in ["linux", "initrd"] {
        let file = entry
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{key} /")))
            .unwrap_or_else(|| panic!("{entry}"));
        assert!(is_pe(&esp.join(file)) || key == "initrd", "{file}");
        assert!(esp.join(file).is_file(), "{file}");
    }
}
