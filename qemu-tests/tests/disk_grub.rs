//! `builtin:disk-image`'s BIOS embedding, booted: a small image of a fake system whose boot.json names Debian's
//! boot.img, a core.img made here by grub-mkimage (prefix `(,gpt2)/grub`, as grub.nix builds it), the test
//! kernel and a busybox initrd. SeaBIOS runs the MBR's boot.img, which loads core.img from the BIOS boot
//! partition, which reads the menu from the ESP and boots the kernel: the initrd's marker on the serial console
//! proves every step. The full system's images are disk.rs's.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use qemu_harness::assets::{BusyboxInitrd, TestKernel};
use qemu_harness::{Firmware, Machine, MediumKind};
use rixos::store::builtin::Builtin;
use rixos::store::derivation::Derivation;
use rixos::store::local::LocalStore;
use rixos::store::path::StorePath;

/// From QEMU's start to the initrd's marker under TCG: SeaBIOS, GRUB's menu (1 s), the kernel.
const BOOT: Duration = Duration::from_secs(240);
/// What grub.nix puts into its core.img.
const GRUB_MODULES: &[&str] = &[
    "biosdisk",
    "part_gpt",
    "part_msdos",
    "fat",
    "ext2",
    "normal",
    "linux",
    "search",
    "configfile",
    "echo",
    "test",
    "serial",
    "terminal",
    "gzio",
    "sleep",
    "all_video",
];

/// A store holding a toplevel whose boot.json boots `kernel` with an initrd printing the marker.
fn fake_system(dir: &Path, kernel: &TestKernel) -> (LocalStore, StorePath) {
    let mut store = LocalStore::open(&dir.join("store")).unwrap();
    let boot = dir.join("boot-files");
    std::fs::create_dir(&boot).unwrap();
    std::fs::copy("/usr/lib/grub/i386-pc/boot.img", boot.join("boot.img"))
        .expect("GRUB's boot.img: install grub-pc-bin (scripts/setup)");
    let status = Command::new("grub-mkimage")
        .args(["-O", "i386-pc", "-p", "(,gpt2)/grub", "-o"])
        .arg(boot.join("core.img"))
        .args(GRUB_MODULES)
        .status()
        .expect("grub-mkimage: install grub-common (scripts/setup)");
    assert!(status.success());
    std::fs::copy(&kernel.vmlinuz, boot.join("vmlinuz")).unwrap();
    // The shell computes the number, so an echo of the script cannot match.
    let script = "[ -d /sys/firmware/efi ] && echo firmware=uefi || echo firmware=bios\n\
                  echo RIXOS-DISK-$((6 * 7))\n\
                  poweroff -f";
    BusyboxInitrd::new(script).write(kernel, &boot.join("initrd")).unwrap();
    let boot = store.add_path(&boot).unwrap();

    let toplevel = dir.join("system");
    std::fs::create_dir(&toplevel).unwrap();
    let json = serde_json::json!({
        "org.nixos.bootspec.v1": {
            "system": "x86_64-linux", "kernel": format!("{boot}/vmlinuz"), "initrd": format!("{boot}/initrd"),
            "kernelParams": ["console=ttyS0", "panic=-1"], "label": "rixos disk test"
        },
        "rixos.loader": {
            "kind": "grub", "timeout": 1, "configurationLimit": 100,
            "grub": { "bios": { "bootImage": format!("{boot}/boot.img"), "coreImage": format!("{boot}/core.img") },
                      "efi": null, "efiInstallAsRemovable": false, "extraEntries": "",
                      "extraConfig": "serial --unit=0 --speed=115200\nterminal_input console serial\nterminal_output console serial\n" },
            "systemd-boot": { "efi": null, "editor": true },
            "efi": { "canTouchEfiVariables": false, "efiSysMountPoint": "/boot" }
        }
    });
    std::fs::write(toplevel.join("boot.json"), json.to_string()).unwrap();
    let toplevel = store.add_path(&toplevel).unwrap();
    (store, toplevel)
}

#[test]
fn seabios_boots_grub_embedded_in_the_bios_boot_partition() {
    let kernel = TestKernel::find().expect("the Debian test kernel");
    let dir = tempfile::tempdir().unwrap();
    let (store, toplevel) = fake_system(dir.path(), &kernel);
    let drv = Derivation {
        builder: "builtin:disk-image".to_string(),
        env: [
            ("toplevel", toplevel.to_string()),
            ("imageName", "grub-test".to_string()),
            ("format", "raw".to_string()),
            ("diskSize", "auto".to_string()),
            ("espSize", "256".to_string()),
            ("sourceDateEpoch", "315532800".to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect(),
        ..Derivation::default()
    };
    let out = dir.path().join("builds/out");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let drv_path = StorePath::from_base_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-grub-test.drv").unwrap();
    rixos::image::disk::build(&Builtin {
        store: &store,
        drv_path: &drv_path,
        drv: &drv,
        outputs: BTreeMap::from([("out".to_string(), out.clone())]),
    })
    .unwrap();

    let mut machine = Machine::builder("disk-grub")
        .firmware(Firmware::Bios)
        .medium(MediumKind::VirtioDisk, out.join("grub-test.img"))
        .no_reboot()
        .start()
        .unwrap();
    eprintln!("accelerator: {:?}", machine.accel());
    machine.wait_for("rixos - Generation 1 (1980-01-01)", BOOT).unwrap();
    machine.wait_for("firmware=bios", BOOT).unwrap();
    machine.wait_for("RIXOS-DISK-42", BOOT).unwrap();
    let status = machine.wait_exit(Duration::from_secs(60)).unwrap();
    assert!(status.success(), "QEMU ended with {status}");
}
