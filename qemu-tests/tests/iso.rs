//! The default minimal live ISO (`rixos image build --format iso-minimal`): built twice to the same bytes, laid
//! out for BIOS and UEFI on CD and USB stick, booted all four ways to a root shell on the serial console, kept
//! working from RAM after its medium is ejected, and able to write images safely from inside.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use qemu_harness::rixos::Workspace;
use qemu_harness::{Firmware, Machine, MediumKind};

const BOOT: Duration = Duration::from_secs(400);
const COMMAND: Duration = Duration::from_secs(120);

struct Built {
    ws: Workspace,
    iso: PathBuf,
    sha256: String,
}

/// The image's directory and store are its workspace's.
impl std::ops::Deref for Built {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

/// The ISO, built (and rebuilt, to compare) once per test process.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ws = Workspace::new();
        let (dir, store) = (ws.dir.clone(), ws.store.clone());
        let out = qemu_harness::rixos::run(
            &store,
            &dir,
            &["image", "build", "--format", "iso-minimal", "-o", "result"],
        );
        // What it prints are the files as the user opens them: through the link, not inside the store's root
        // or the builder's sandbox.
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("/nix/var/nix/builds/"),
            "image build named a path inside the sandbox: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let printed = String::from_utf8_lossy(&out.stdout);
        let lines: Vec<&str> = printed.lines().collect();
        assert!(
            lines.len() == 2
                && lines[0].starts_with("result/")
                && lines[0].ends_with(".iso")
                && lines[1] == format!("{}.sha256", lines[0])
                && Path::new(&dir).join(lines[0]).is_file(),
            "image build printed {printed:?}"
        );
        let find_iso = || -> PathBuf {
            let entries = std::fs::read_dir(dir.join("result")).unwrap();
            entries
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "iso"))
                .expect("result holds the .iso")
        };
        let iso = find_iso();
        let sha = std::fs::read_to_string(iso.with_extension("iso.sha256")).unwrap();
        let sha256 = sha.split_whitespace().next().unwrap().to_string();
        // Same inputs, same bytes: delete the image's store path and build it again.
        let out_path = format!(
            "/nix/store/{}",
            std::fs::read_link(dir.join("result"))
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        );
        std::fs::remove_file(dir.join("result")).unwrap();
        qemu_harness::rixos::run(&store, &dir, &["store", "delete", &out_path]);
        qemu_harness::rixos::run(
            &store,
            &dir,
            &["image", "build", "--format", "iso-minimal", "-o", "result"],
        );
        let again = std::fs::read_to_string(find_iso().with_extension("iso.sha256")).unwrap();
        assert_eq!(
            again.split_whitespace().next().unwrap(),
            sha256,
            "a second build gave another image"
        );
        let iso = find_iso();
        Built { ws, iso, sha256 }
    })
}

fn host(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_iso_is_hybrid_small_and_checksummed() {
    let b = built();
    let iso = b.iso.to_str().unwrap();
    let size = std::fs::metadata(&b.iso).unwrap().len();
    assert!(size <= 400 << 20, "the ISO is {} MiB, more than 400", size >> 20);
    let sums = host("sha256sum", &[iso]);
    assert!(sums.starts_with(&b.sha256), "the .sha256 file matches the image");
    let torito = Command::new("xorriso")
        .args(["-indev", iso, "-report_el_torito", "plain"])
        .output()
        .unwrap();
    let torito = String::from_utf8_lossy(&torito.stdout).into_owned() + &String::from_utf8_lossy(&torito.stderr);
    assert!(torito.contains("BIOS"), "a BIOS boot image:\n{torito}");
    assert!(torito.contains("UEFI"), "a UEFI boot image:\n{torito}");
    let gpt = host("sgdisk", &["-p", iso]);
    assert!(gpt.contains("EF00"), "the GPT has the ESP:\n{gpt}");
    let mbr = host("fdisk", &["-l", "-t", "dos", iso]);
    assert!(
        mbr.contains("ee") || mbr.contains("GPT"),
        "the MBR protects the GPT:\n{mbr}"
    );
}

/// Boots the ISO with `firmware` from `kind` to the automatic root login on the serial console.
fn boot(name: &str, firmware: Firmware, kind: MediumKind, extra_disks: &[&Path]) -> Machine {
    let b = built();
    // A stick is written to (and locked by QEMU for writing): each boots its own copy, as if burnt.
    let medium = if kind == MediumKind::UsbStick {
        let stick = b.dir.join(format!("{name}.img"));
        std::fs::copy(&b.iso, &stick).unwrap();
        stick
    } else {
        b.iso.clone()
    };
    let mut builder = Machine::builder(name)
        .firmware(firmware)
        .memory_mib(2048)
        .medium(kind, &medium);
    for disk in extra_disks {
        builder = builder.medium(MediumKind::VirtioDisk, *disk);
    }
    let mut m = builder.start().unwrap();
    m.wait_for("rixos stage 1: starting stage 2", BOOT).unwrap();
    m.wait_for("(automatic login)", BOOT).unwrap();
    m.wait_for("# ", COMMAND).unwrap();
    m
}

fn run(m: &mut Machine, command: &str) -> String {
    qemu_harness::rixos::shell(m, command, COMMAND)
}

fn check_live(m: &mut Machine) {
    // Kernel messages on the serial console would land in the middle of command output.
    run(m, "dmesg -n 1");
    let version = run(m, "rixos --version");
    assert!(
        version.starts_with("rixos "),
        "{}: rixos --version printed {version:?}",
        m.name()
    );
    // The overlay, bind-mounted read-only over itself by stage 2: only rixos writes the store.
    assert_eq!(run(m, "findmnt -n -o FSTYPE /nix/store | uniq"), "overlay");
    assert_eq!(
        run(
            m,
            "touch /nix/store/written 2>/dev/null && echo writable || echo read-only"
        ),
        "read-only"
    );
    assert_eq!(run(m, "findmnt -n -o FSTYPE /nix/.ro-store"), "squashfs");
}

#[test]
fn it_boots_from_cd_and_usb_stick_with_bios_and_uefi() {
    for (name, firmware, kind) in [
        ("iso-bios-cd", Firmware::Bios, MediumKind::Cdrom),
        ("iso-bios-usb", Firmware::Bios, MediumKind::UsbStick),
        ("iso-uefi-cd", Firmware::Uefi, MediumKind::Cdrom),
        ("iso-uefi-usb", Firmware::Uefi, MediumKind::UsbStick),
    ] {
        let mut m = boot(name, firmware, kind, &[]);
        check_live(&mut m);
        if name != "iso-bios-cd" {
            m.kill().unwrap();
            continue;
        }
        // The medium's store is registered in the live system's database, which rixos uses by default there.
        assert_eq!(
            run(&mut m, "rixos store verify 2>&1; echo status=$?"),
            "status=0",
            "the live store verifies"
        );
        let closure = run(&mut m, "rixos store query --requisites /run/current-system | wc -l");
        assert!(
            closure.parse::<u32>().unwrap_or(0) > 100,
            "the live system's closure is registered: {closure}"
        );
        // Shutting down is clean: systemd leaves the store and the medium (which it runs from) to its last
        // step, and poweroff does not look for logind.
        m.send_line("poweroff").unwrap();
        m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
        let console = m.serial_output();
        // From the command typed at the prompt on (systemd's own lines name systemd-poweroff.service later).
        let typed = console
            .rfind("# poweroff")
            .expect("the typed poweroff is on the console");
        let shutdown = &console[typed..];
        assert!(
            shutdown.contains("Power down"),
            "the shutdown ran to its end:\n{shutdown}"
        );
        for noise in [
            "Failed unmounting",
            "FAILED",
            "Failed to connect to bus",
            "Failed to execute",
        ] {
            assert!(!shutdown.contains(noise), "{noise:?} while shutting down:\n{shutdown}");
        }
    }
}

#[test]
fn copied_to_ram_it_keeps_working_without_its_medium() {
    let b = built();
    let mut m = Machine::builder("iso-copytoram")
        .memory_mib(2048)
        .medium(MediumKind::Cdrom, &b.iso)
        .start()
        .unwrap();
    // The second menu entry: down, then Enter, before GRUB's timeout.
    m.wait_for("copied to RAM", BOOT).unwrap();
    m.send_keys("\x1b[B").unwrap();
    std::thread::sleep(Duration::from_millis(500));
    m.send_keys("\r").unwrap();
    m.wait_for("(automatic login)", BOOT).unwrap();
    m.wait_for("# ", COMMAND).unwrap();
    assert!(run(&mut m, "cat /proc/cmdline").contains("copytoram"));
    m.eject(0).unwrap();
    std::thread::sleep(Duration::from_secs(2));
    check_live(&mut m);
    assert_eq!(
        run(&mut m, "sha256sum /nix/store/*-rixos/bin/rixos | wc -l"),
        "1",
        "the store reads from RAM"
    );
    m.kill().unwrap();
}

#[test]
fn inside_the_iso_image_write_writes_verifies_and_refuses_what_it_must() {
    let b = built();
    let target = b.dir.join("target.img");
    std::fs::File::create(&target).unwrap().set_len(64 << 20).unwrap();
    let busy = b.dir.join("busy.img");
    std::fs::File::create(&busy).unwrap().set_len(64 << 20).unwrap();
    let mut m = boot("iso-write", Firmware::Bios, MediumKind::Cdrom, &[&target, &busy]);
    run(&mut m, "dmesg -n 1");
    run(&mut m, "head -c 8M /dev/urandom > /tmp/image.img");
    // A good target: written and read back.
    let out = run(
        &mut m,
        "rixos image write /tmp/image.img /dev/vda --yes 2>&1; echo status=$?",
    );
    assert!(out.ends_with("status=0"), "{out}");
    assert_eq!(
        run(&mut m, "head -c 8388608 /dev/vda | sha256sum | cut -d' ' -f1"),
        run(&mut m, "sha256sum < /tmp/image.img | cut -d' ' -f1"),
        "the stick holds the image"
    );
    // The boot medium is refused.
    let out = run(
        &mut m,
        "rixos image write /tmp/image.img /dev/sr0 --yes 2>&1; echo status=$?",
    );
    assert!(!out.ends_with("status=0"), "the boot medium was written: {out}");
    // A disk with a mounted file system is refused.
    assert_eq!(
        run(
            &mut m,
            "mkfs.ext4 -q /dev/vdb && mkdir -p /mnt && mount /dev/vdb /mnt && echo mounted"
        ),
        "mounted"
    );
    let out = run(
        &mut m,
        "rixos image write /tmp/image.img /dev/vdb --yes 2>&1; echo status=$?",
    );
    assert!(out.contains("mounted") && !out.ends_with("status=0"), "{out}");
    // A read-back that differs fails loudly.
    let out = run(
        &mut m,
        "RIXOS_WRITE_CORRUPT_AT=4096 rixos image write /tmp/image.img /dev/vda --yes 2>&1; echo status=$?",
    );
    assert!(out.contains("differs") && !out.ends_with("status=0"), "{out}");
    m.kill().unwrap();
    let _ = std::io::stdout().flush();
}

/// The answer file of the install test: the 4 GiB disk (the ISO is medium 0, so this is virtio-rixos1), a swap
/// file, a wheel user with a password, root's SSH key, sshd on.
fn answer_file(disk: &str, root_key: &str) -> String {
    format!(
        "disk = \"{disk}\"\nhostname = \"installed\"\nswap = \"file\"\nswap-size = \"256M\"\n\
         root-locked = true\nroot-ssh-keys = [\"{root_key}\"]\nssh = true\n\n\
         [[users]]\nname = \"alice\"\npassword = \"secret\"\nwheel = true\n"
    )
}

/// `rixos install --answers` on the live ISO with no network: what it refuses leaves every disk as it was, a
/// failure after partitioning leaves an empty table, and the install boots on its own from the disk, where the
/// user logs in with the chosen password, sudo works, root's key opens ssh, and generate-config agrees.
#[test]
fn it_installs_from_an_answer_file_onto_a_disk_that_then_boots_alone() {
    let b = built();
    let target = b.dir.join("install-target.img");
    std::fs::File::create(&target).unwrap().set_len(4 << 30).unwrap();
    let small = b.dir.join("install-small.img");
    std::fs::File::create(&small).unwrap().set_len(1 << 30).unwrap();
    let wizard_target = b.dir.join("install-wizard.img");
    std::fs::File::create(&wizard_target).unwrap().set_len(4 << 30).unwrap();
    let blank = qemu_harness::rixos::sha256_of(&target);
    let (key, public) = b.ssh_key();
    let mut m = boot(
        "iso-install",
        Firmware::Bios,
        MediumKind::Cdrom,
        &[&target, &small, &wizard_target],
    );
    run(&mut m, "dmesg -n 1");
    for (file, disk) in [
        ("target", "/dev/disk/by-id/virtio-rixos1"),
        ("small", "/dev/disk/by-id/virtio-rixos2"),
        ("medium", "/dev/sr0"),
    ] {
        run(
            &mut m,
            &format!("printf '%s' '{}' > /tmp/{file}.toml", answer_file(disk, &public)),
        );
    }
    // Building the system and copying it take minutes under TCG.
    let long = |m: &mut Machine, command: &str| qemu_harness::rixos::shell(m, command, Duration::from_secs(900));
    let install = |m: &mut Machine, args: &str| {
        long(
            m,
            &format!("rixos install {args} 2>&1 | tail -n 25; echo status=${{PIPESTATUS[0]}}"),
        )
    };

    // The plan, and nothing written.
    let out = install(&mut m, "--answers /tmp/target.toml --dry-run");
    assert!(out.ends_with("status=0"), "{out}");
    for expected in [
        "/dev/sr0 (",
        "unavailable: it is a CD/DVD drive; it holds the live system this runs from",
        "Install rixos onto /dev/vda (4.0 GiB, virtio-rixos1), booting with BIOS.",
        "/dev/vda2           1.0 GiB  EFI system partition, FAT32, at /boot",
        "/dev/vda3",
        "a swap file of 256.0 MiB at /swapfile",
        "users: alice (wheel); root locked; sshd on.",
        "nothing was written",
    ] {
        assert!(out.contains(expected), "the dry run shows {expected:?}:\n{out}");
    }
    // Refusals, each before anything is written.
    let out = install(&mut m, "--answers /tmp/medium.toml --yes");
    assert!(
        out.contains("holds the live system") && !out.ends_with("status=0"),
        "{out}"
    );
    let out = install(&mut m, "--answers /tmp/small.toml --yes");
    assert!(
        out.contains("is too small: this system needs at least") && !out.ends_with("status=0"),
        "{out}"
    );
    let out = run(
        &mut m,
        "echo vdb | rixos install --answers /tmp/target.toml 2>&1 | tail -n 2; echo status=${PIPESTATUS[1]}",
    );
    assert!(
        out.contains("is not the disk's name \"vda\"; nothing was written to /dev/vda") && !out.ends_with("status=0"),
        "{out}"
    );
    assert_eq!(
        qemu_harness::rixos::sha256_of(&target),
        blank,
        "a refused or dry-run install wrote to the disk"
    );
    // A disk with a mounted file system.
    // (Its metadata is written out before each look from the host: the kernel writes it lazily.)
    run(
        &mut m,
        "mkfs.ext4 -q -E lazy_itable_init=0,lazy_journal_init=0 /dev/vdb && mkdir -p /mnt/data \
         && mount /dev/vdb /mnt/data && sync",
    );
    let used = qemu_harness::rixos::sha256_of(&small);
    let out = install(&mut m, "--answers /tmp/small.toml --yes");
    assert!(
        out.contains("/dev/vdb is mounted at /mnt/data") && !out.ends_with("status=0"),
        "{out}"
    );
    run(&mut m, "sync");
    assert_eq!(
        qemu_harness::rixos::sha256_of(&small),
        used,
        "the mounted disk was written to"
    );
    run(&mut m, "umount /mnt/data");

    // A failure after partitioning: an empty partition table, and the step named.
    let out = long(
        &mut m,
        "RIXOS_INSTALL_FAIL_AFTER=partition rixos install --answers /tmp/target.toml --yes 2>&1 | tail -n 3; \
         echo status=${PIPESTATUS[0]}",
    );
    assert!(
        out.contains("the install failed while formatting; /dev/vda was left with an empty partition table")
            && out.contains("/var/log/rixos-install.log")
            && !out.ends_with("status=0"),
        "{out}"
    );
    assert_eq!(run(&mut m, "blkid -p -o value -s PTTYPE /dev/vda"), "gpt");
    assert_eq!(
        run(&mut m, "lsblk -n -o NAME /dev/vda | wc -l"),
        "1",
        "no partitions are left"
    );
    assert_eq!(
        run(&mut m, "findmnt -n -R /run/rixos-install | wc -l"),
        "0",
        "nothing is left mounted"
    );

    // The install, with no prompt.
    let out = long(
        &mut m,
        "rixos install --answers /tmp/target.toml --yes 2>&1 | tail -n 1; echo status=${PIPESTATUS[0]}",
    );
    assert!(
        out.contains("rixos is installed on /dev/vda") && out.ends_with("status=0"),
        "{out}"
    );
    assert!(
        run(&mut m, "cat /var/log/rixos-install.log").contains("install finished"),
        "the log records the install"
    );
    // The wizard, over the serial console, onto the third disk (the first listed is the one just installed);
    // its answers saved as an answer file that plans the same install.
    m.send_line("rixos install").unwrap();
    let step = |m: &mut Machine, prompt: &str, keys: &str| {
        m.wait_for(prompt, COMMAND)
            .unwrap_or_else(|e| panic!("the wizard asks {prompt:?}: {e}"));
        std::thread::sleep(Duration::from_millis(300));
        m.send_keys(keys).unwrap();
    };
    step(&mut m, "The disk to erase and install onto", "\x1b[B");
    std::thread::sleep(Duration::from_millis(300));
    m.send_keys("\x1b[B").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    m.send_keys("\r").unwrap();
    step(&mut m, "Swap", "\x1b[A\r");
    step(&mut m, "Hostname [rixos]", "wizard\r");
    step(&mut m, "Time zone", "Europe/Paris\r");
    step(&mut m, "Keyboard layout of the console [us]", "\r");
    step(&mut m, "Your user name", "bob\r");
    step(&mut m, "Password for bob:", "bobpw\r");
    step(&mut m, "Again:", "bobpw\r");
    step(&mut m, "May bob administer the machine", "\r");
    step(&mut m, "An SSH public key for bob", "\r");
    step(&mut m, "Lock root's password", "\r");
    step(&mut m, "An SSH public key for root", "\r");
    step(&mut m, "Run the SSH server?", "\r");
    let summary = m
        .wait_for("to erase it and install, anything else to stop:", COMMAND)
        .unwrap();
    for expected in [
        "Install rixos onto /dev/vdc (4.0 GiB, virtio-rixos3), booting with BIOS.",
        "System: hostname \"wizard\", time zone Europe/Paris, keyboard us; users: bob (wheel); root locked; sshd off.",
    ] {
        assert!(
            summary.contains(expected),
            "the wizard's summary shows {expected:?}:\n{summary}"
        );
    }
    m.send_line("vdc").unwrap();
    step(&mut m, "Save these answers as an answer file", "y");
    step(&mut m, "Save to [/root/rixos-answers.toml]", "\r");
    m.wait_for("rixos is installed on /dev/vdc", Duration::from_secs(900))
        .unwrap();
    m.wait_for("# ", COMMAND).unwrap();
    let saved = run(&mut m, "cat /root/rixos-answers.toml");
    assert!(
        saved.contains("disk = \"/dev/disk/by-id/virtio-rixos3\"")
            && saved.contains("hashed-password = \"$6$")
            && !saved.contains("bobpw"),
        "the saved answers name the disk and hold only hashes:\n{saved}"
    );
    let replanned = install(&mut m, "--answers /root/rixos-answers.toml --dry-run");
    assert!(
        replanned.contains("Install rixos onto /dev/vdc") && replanned.ends_with("status=0"),
        "{replanned}"
    );
    m.send_line("poweroff").unwrap();
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");

    // The wizard's disk alone: bob logs in with the password he chose, and sudo works for him.
    let mut w = Machine::builder("installed-by-wizard")
        .memory_mib(1024)
        .medium(MediumKind::VirtioDisk, &wizard_target)
        .start()
        .unwrap();
    w.wait_for("wizard login:", BOOT).unwrap();
    w.send_line("bob").unwrap();
    w.wait_for("Password:", COMMAND).unwrap();
    w.send_line("bobpw").unwrap();
    w.wait_for("$ ", COMMAND).unwrap();
    assert_eq!(
        run(&mut w, "echo bobpw | sudo -S -p '' id -un"),
        "root",
        "sudo works for bob"
    );
    assert_eq!(run(&mut w, "date -d 2026-12-01 +%Z"), "CET", "the chosen time zone");
    w.kill().unwrap();

    // The disk alone, as after removing the medium: GRUB from the MBR, the system on the serial console.
    let mut m = Machine::builder("installed")
        .memory_mib(1024)
        .medium(MediumKind::VirtioDisk, &target)
        .network()
        .forward_host_port(22)
        .start()
        .unwrap();
    m.wait_for("installed login:", BOOT).unwrap();
    m.send_line("alice").unwrap();
    m.wait_for("Password:", COMMAND).unwrap();
    m.send_line("secret").unwrap();
    m.wait_for("$ ", COMMAND).unwrap();
    run(&mut m, "dmesg -n 1 2>/dev/null");
    assert_eq!(run(&mut m, "id -un; id -Gn"), "alice\nusers wheel");
    assert_eq!(
        run(&mut m, "echo secret | sudo -S -p '' id -un"),
        "root",
        "sudo works for wheel"
    );
    assert_eq!(run(&mut m, "swapon --show=NAME --noheadings"), "/swapfile");
    assert_eq!(
        run(&mut m, "findmnt -n -o FSTYPE /; findmnt -n -o FSTYPE /boot"),
        "ext4\nvfat"
    );
    assert_eq!(
        run(
            &mut m,
            "[ \"$(rixos generate-config --show-hardware-config)\" = \"$(cat /etc/rixos/hardware-configuration.nix)\" ] \
             && echo same"
        ),
        "same",
        "generate-config reproduces the installer's hardware-configuration.nix"
    );
    let generations = run(&mut m, "rixos system list-generations");
    assert!(generations.contains("current, booted"), "{generations}");
    // Root is locked for passwords but its key opens ssh.
    let port = m.host_port(22).unwrap();
    let mut out = qemu_harness::rixos::ssh(&key, port, "hostname");
    for _ in 0..30 {
        if out.status.success() {
            break;
        }
        std::thread::sleep(Duration::from_secs(2));
        out = qemu_harness::rixos::ssh(&key, port, "hostname");
    }
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "installed",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    m.kill().unwrap();
}
