//! `builtin:disk-image` on a small store: a toplevel whose boot.json names Debian's GRUB BIOS images (core.img
//! made here by grub-mkimage), a channel and a configuration file. The images are read back with the tools a
//! user has: sgdisk, e2fsck, debugfs, mtools, qemu-img.

use std::collections::BTreeMap;
use std::process::Output;

use super::*;
use crate::image::require_tool;
use crate::store::derivation::Derivation;
use crate::store::local::LocalStore;

struct Fixture {
    dir: tempfile::TempDir,
    store: LocalStore,
    boot: StorePath,
    toplevel: StorePath,
    channel: StorePath,
    configuration: StorePath,
}

const EPOCH: &str = "315532800";

fn fixture() -> Fixture {
    for (tool, package) in [
        ("grub-mkimage", "grub-common"),
        ("mkfs.ext4", "e2fsprogs"),
        ("debugfs", "e2fsprogs"),
        ("e2fsck", "e2fsprogs"),
        ("sgdisk", "gdisk"),
        ("mtype", "mtools"),
        ("qemu-img", "qemu-utils"),
    ] {
        require_tool(tool, package);
    }
    let dir = tempfile::tempdir().unwrap();
    let mut store = LocalStore::open(&dir.path().join("store")).unwrap();
    let boot = dir.path().join("boot-files");
    fs::create_dir(&boot).unwrap();
    fs::copy("/usr/lib/grub/i386-pc/boot.img", boot.join("boot.img")).expect("grub-pc-bin's boot.img");
    let status = Command::new("grub-mkimage")
        .args(["-O", "i386-pc", "-p", "(,gpt2)/grub", "-o"])
        .arg(boot.join("core.img"))
        .args(["biosdisk", "part_gpt", "fat", "normal", "linux"])
        .status()
        .unwrap();
    assert!(status.success());
    fs::write(boot.join("vmlinuz"), "a kernel\n").unwrap();
    fs::write(boot.join("initrd"), "an initrd\n").unwrap();
    let boot = store.add_path(&boot).unwrap();

    let toplevel_dir = dir.path().join("system");
    fs::create_dir(&toplevel_dir).unwrap();
    let json = serde_json::json!({
        "org.nixos.bootspec.v1": {
            "system": "x86_64-linux", "kernel": format!("{boot}/vmlinuz"), "initrd": format!("{boot}/initrd"),
            "kernelParams": ["console=ttyS0"], "label": "rixos test"
        },
        "rixos.loader": {
            "kind": "grub", "timeout": 5, "configurationLimit": 100,
            "grub": { "bios": { "bootImage": format!("{boot}/boot.img"), "coreImage": format!("{boot}/core.img") },
                      "efi": null, "efiInstallAsRemovable": false, "extraConfig": "", "extraEntries": "" },
            "systemd-boot": { "efi": null, "editor": true },
            "efi": { "canTouchEfiVariables": false, "efiSysMountPoint": "/boot" }
        }
    });
    fs::write(toplevel_dir.join("boot.json"), json.to_string()).unwrap();
    fs::create_dir(toplevel_dir.join("bin")).unwrap();
    for n in 0..50 {
        fs::write(toplevel_dir.join(format!("bin/tool-{n}")), format!("tool {n}\n")).unwrap();
    }
    let toplevel = store.add_path(&toplevel_dir).unwrap();
    // The channel refers to the boot files, so the image's closure holds three paths.
    let channel = store
        .add_text("channels", boot.to_string().as_bytes(), std::slice::from_ref(&boot))
        .unwrap();
    let configuration = store
        .add_text("configuration.nix", b"{ imports = [ ./hardware.nix ]; }\n", &[])
        .unwrap();
    Fixture {
        dir,
        store,
        boot,
        toplevel,
        channel,
        configuration,
    }
}

impl Fixture {
    fn env(&self) -> BTreeMap<String, String> {
        [
            ("toplevel", self.toplevel.to_string()),
            ("imageName", "disk".to_string()),
            ("format", "raw".to_string()),
            ("diskSize", "auto".to_string()),
            ("espSize", "256".to_string()),
            ("channel", self.channel.to_string()),
            (
                "configurationFiles",
                format!("etc/rixos/configuration.nix\t{}\n", self.configuration),
            ),
            ("sourceDateEpoch", EPOCH.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// Runs the builder into a new output directory `builds/<label>/out`.
    fn build(&self, label: &str, change: &[(&str, &str)]) -> (Result<()>, PathBuf) {
        let mut drv = Derivation {
            builder: "builtin:disk-image".to_string(),
            env: self.env(),
            ..Derivation::default()
        };
        for (key, value) in change {
            drv.env.insert(key.to_string(), value.to_string());
        }
        let parent = self.dir.path().join("builds").join(label);
        fs::create_dir_all(&parent).unwrap();
        let out = parent.join("out");
        let drv_path = StorePath::from_base_name("aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa-disk.drv").unwrap();
        let build = Builtin {
            store: &self.store,
            drv_path: &drv_path,
            drv: &drv,
            outputs: BTreeMap::from([("out".to_string(), out.clone())]),
        };
        (super::build(&build), out)
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn stdout(command: &mut Command) -> String {
    String::from_utf8_lossy(&run(command).stdout).into_owned()
}

/// The partition's start in bytes, as sgdisk reads the table.
fn partition_offset(image: &Path, number: u32) -> u64 {
    let info = stdout(Command::new("sgdisk").arg(format!("-i={number}")).arg(image));
    let first = info
        .lines()
        .find_map(|l| l.strip_prefix("First sector: "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("sgdisk -i={number}: {info}"));
    first * 512
}

#[test]
fn a_raw_image_holds_the_installed_system_and_is_reproducible() {
    let fx = fixture();
    let (built, out) = fx.build("first", &[]);
    built.unwrap();
    let image = out.join("disk.img");
    let checksum = fs::read_to_string(out.join("disk.img.sha256")).unwrap();
    let (sha256, _) = crate::image::iso::sha256_file(&image).unwrap();
    assert_eq!(checksum, format!("{sha256}  disk.img\n"));
    assert!(
        fs::read_dir(out.parent().unwrap()).unwrap().count() == 1,
        "the temporary directory beside the output is gone"
    );

    // The partition table, and GRUB's boot.img pointing at core.img in the BIOS boot partition.
    let verify = stdout(Command::new("sgdisk").arg("-v").arg(&image));
    assert!(verify.contains("No problems found"), "{verify}");
    let bytes = fs::read(&image).unwrap();
    let boot_img = fs::read("/usr/lib/grub/i386-pc/boot.img").unwrap();
    assert_eq!(
        &bytes[0x68..0x1b8],
        &boot_img[0x68..0x1b8],
        "boot.img's code is in the MBR"
    );
    assert_eq!(&bytes[0x5c..0x64], &2048u64.to_le_bytes());
    assert_eq!(bytes[0x1be + 4], 0xee, "the protective MBR's partition stays");
    let core_img = fs::read(fx.store.real_path(&fx.boot).join("core.img")).unwrap();
    let bios = 1 << 20;
    assert_eq!(
        &bytes[bios..bios + 488],
        &core_img[..488],
        "core.img starts the BIOS boot partition"
    );
    assert_eq!(
        &bytes[bios + 500..bios + 508],
        &2049u64.to_le_bytes(),
        "its blocklist names the next sector"
    );
    assert_eq!(&bytes[bios + 512..bios + core_img.len()], &core_img[512..]);

    // The root file system: clean, labelled, with exactly the closure, its database, profile, channel and
    // configuration.
    let root = format!("{}?offset={}", image.display(), partition_offset(&image, 3));
    let fsck = run(Command::new("e2fsck").args(["-fn", &root]));
    let summary = String::from_utf8_lossy(&fsck.stdout).into_owned();
    assert!(summary.contains("Pass 5") && summary.contains(" files ("), "{summary}");
    let debugfs = |request: &str| stdout(Command::new("debugfs").args(["-R", request, &root]));
    let listing = debugfs("ls -l /nix/store");
    let mut closure = fx.store.requisites(&[fx.toplevel.clone(), fx.channel.clone()]).unwrap();
    closure.sort();
    assert_eq!(closure.len(), 3);
    let names: Vec<&str> = listing
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter(|n| *n != "." && *n != "..")
        .collect();
    let mut expected: Vec<String> = closure.iter().map(StorePath::base_name).collect();
    expected.sort();
    assert_eq!(names, expected, "{listing}");
    assert!(debugfs("ls -l /nix/var/nix/db").contains("db.sqlite"));
    assert!(debugfs("stat /nix/var/nix/profiles/system").contains("system-1-link"));
    assert_eq!(
        debugfs("cat /etc/rixos/configuration.nix"),
        "{ imports = [ ./hardware.nix ]; }\n"
    );
    let stat = debugfs(&format!("stat /nix/store/{}/bin/tool-7", fx.toplevel.base_name()));
    assert!(stat.contains("User:     0   Group:     0"), "root-owned: {stat}");
    assert!(stat.contains("ctime: 0x12cea600"), "ctime is the epoch: {stat}");

    // The ESP: FAT32 labelled ESP, with GRUB's menu and the kernel.
    let esp = format!("{}@@{}", image.display(), partition_offset(&image, 2));
    let menu = stdout(Command::new("mtype").args(["-i", &esp, "::/grub/grub.cfg"]));
    assert!(menu.contains("Generation 1"), "{menu}");
    let info = stdout(Command::new("minfo").args(["-i", &esp]));
    assert!(info.contains("disk type=\"FAT32   \""), "{info}");
    assert!(info.contains("ESP"), "{info}");

    // A second build, at another time and from a staging tree made anew, gives the same bytes.
    std::thread::sleep(std::time::Duration::from_millis(1100));
    let (again, out2) = fx.build("second", &[]);
    again.unwrap();
    assert_eq!(
        fs::read_to_string(out2.join("disk.img.sha256")).unwrap(),
        checksum,
        "two builds of one image differ"
    );
}

#[test]
fn qcow2_converts_back_to_the_raw_image() {
    let fx = fixture();
    let (raw, raw_out) = fx.build("raw", &[]);
    raw.unwrap();
    let (qcow2, out) = fx.build("qcow2", &[("format", "qcow2")]);
    qcow2.unwrap();
    let image = out.join("disk.qcow2");
    let checksum = fs::read_to_string(out.join("disk.qcow2.sha256")).unwrap();
    assert!(checksum.ends_with("  disk.qcow2\n"), "{checksum}");
    let info = stdout(Command::new("qemu-img").args(["info", "--output=json"]).arg(&image));
    assert!(info.contains("\"format\": \"qcow2\""), "{info}");
    let back = fx.dir.path().join("back.img");
    run(Command::new("qemu-img")
        .args(["convert", "-f", "qcow2", "-O", "raw"])
        .arg(&image)
        .arg(&back));
    let (raw_sha, _) = crate::image::iso::sha256_file(&raw_out.join("disk.img")).unwrap();
    let (back_sha, _) = crate::image::iso::sha256_file(&back).unwrap();
    assert_eq!(
        back_sha, raw_sha,
        "qemu-img convert of the qcow2 gives other bytes than the raw image"
    );
}

#[test]
fn bad_input_is_refused_with_what_to_change_and_leaves_nothing() {
    let fx = fixture();
    let outside = format!("../etc/passwd\t{}\n", fx.configuration);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("format", "vmdk")],
            "format \"vmdk\" is neither \"raw\" nor \"qcow2\"",
        ),
        (
            &[("diskSize", "12x")],
            "diskSize \"12x\" is not a positive number of MiB",
        ),
        (&[("espSize", "64")], "give espSize at least 256"),
        (&[("diskSize", "270")], "leaves no room for the root file system"),
        (&[("sourceDateEpoch", "")], "needs `sourceDateEpoch`"),
        (&[("imageName", "../x")], "must be a plain file name"),
        (
            &[("configurationFiles", "etc/x\t/nix/store/x")],
            "configurationFiles line 1",
        ),
        (
            &[("configurationFiles", &outside)],
            "is not a relative path of plain names",
        ),
    ];
    for (n, (change, expected)) in cases.iter().enumerate() {
        let (result, out) = fx.build(&format!("bad-{n}"), change);
        let error = format!("{:#}", result.unwrap_err());
        assert!(error.contains(expected), "{change:?}: {error}");
        let left: Vec<_> = fs::read_dir(out.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .filter(|name| name != "out")
            .collect();
        assert!(left.is_empty(), "{change:?} left {left:?}");
    }
}
