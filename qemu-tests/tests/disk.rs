//! The default disk image (`rixos image build --format raw|qcow2`, images/raw.nix given a root key): built twice
//! to the same bytes, its qcow2 the same disk, its store accepted by Nix 2.8, and booted from a virtio disk
//! under SeaBIOS and OVMF (with GRUB, and with systemd-boot) to a login over ssh, where the installed system
//! checks its own store, knows its generation, keeps what is written across a reboot and grows into a larger
//! disk.
//!
//! Each machine boots a qcow2 overlay over the built image, so the image itself is never written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use qemu_harness::rixos::{Workspace, sha256_of};
use qemu_harness::{Firmware, Machine, MediumKind};

/// From QEMU's start to sshd answering, under TCG.
const BOOT: Duration = Duration::from_secs(400);

struct Built {
    ws: Workspace,
    key: PathBuf,
    /// The public key's line, authorized for root in every configuration.
    public: String,
    /// The raw image with GRUB, its qcow2, and the raw image with systemd-boot.
    raw: PathBuf,
    qcow2: PathBuf,
    systemd_boot: PathBuf,
    toplevel: String,
}

impl std::ops::Deref for Built {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

/// The one file of the image directory `link` ending in `.ext`, and its recorded sha256 (checked).
fn image_in(link: &Path, ext: &str) -> (PathBuf, String) {
    let image = std::fs::read_dir(link)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap_or_else(|| panic!("{} holds no .{ext}", link.display()));
    let recorded = std::fs::read_to_string(format!("{}.sha256", image.display())).unwrap();
    let recorded = recorded.split_whitespace().next().unwrap().to_string();
    assert_eq!(sha256_of(&image), recorded, "{} matches its .sha256", image.display());
    (image, recorded)
}

/// The store path a result link points at, logically.
fn store_path_of(link: &Path) -> String {
    let target = std::fs::read_link(link).unwrap();
    format!("/nix/store/{}", target.file_name().unwrap().to_string_lossy())
}

/// The image's configuration with `extra` lines added: what the machine's /etc/rixos/configuration.nix
/// holds, and what a user edits it to.
fn configuration(public: &str, extra: &str) -> String {
    format!(
        "{{ ... }}: {{\n  imports = [ <rixos/images/raw.nix> ];\n  \
         users.users.root.openssh.authorizedKeys.keys = [ \"{}\" ];\n{extra}}}\n",
        public.trim()
    )
}

fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ws = Workspace::new();
        let (key, public) = ws.ssh_key();
        let config = |extra: &str| configuration(&public, extra);
        std::fs::write(ws.dir.join("configuration.nix"), config("")).unwrap();
        std::fs::write(
            ws.dir.join("systemd-boot.nix"),
            config("  boot.loader.grub.enable = false;\n  boot.loader.systemd-boot.enable = true;\n"),
        )
        .unwrap();

        let build = |format: &str, config: &str, link: &str| {
            let out = ws.rixos(&["image", "build", "--format", format, "-c", config, "-o", link]);
            let printed = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(
                printed.lines().count() == 2 && printed.lines().all(|l| l.starts_with(&format!("{link}/"))),
                "image build printed {printed:?}"
            );
        };
        build("raw", "configuration.nix", "result-raw");
        let (_, sha256) = image_in(&ws.dir.join("result-raw"), "img");
        // Same inputs, same bytes: delete the image's store path and build it again.
        let image_path = store_path_of(&ws.dir.join("result-raw"));
        std::fs::remove_file(ws.dir.join("result-raw")).unwrap();
        ws.rixos(&["store", "delete", &image_path]);
        build("raw", "configuration.nix", "result-raw");
        let (raw, again) = image_in(&ws.dir.join("result-raw"), "img");
        assert_eq!(again, sha256, "a second build gave another image");

        build("qcow2", "configuration.nix", "result-qcow2");
        let (qcow2, _) = image_in(&ws.dir.join("result-qcow2"), "qcow2");
        build("raw", "systemd-boot.nix", "result-systemd-boot");
        let (systemd_boot, _) = image_in(&ws.dir.join("result-systemd-boot"), "img");

        // The system the image holds, as the configuration evaluates with the disk image's module.
        let expr = format!(
            "(import <rixos/nixos/eval-config.nix> {{ configuration = {}; \
             extraModules = [ <rixos/nixos/disk-image.nix> ]; }}).config.system.build.toplevel.outPath",
            ws.dir.join("configuration.nix").display()
        );
        let out = ws.rixos(&["instantiate", "--eval", "-E", &expr]);
        let toplevel = String::from_utf8(out.stdout)
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_string();
        Built {
            ws,
            key,
            public,
            raw,
            qcow2,
            systemd_boot,
            toplevel,
        }
    })
}

fn host(program: &str, args: &[&str]) -> Output {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e} (installed by scripts/setup)"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A qcow2 overlay over `image` in the workspace (the image stays as built), optionally grown by `grow`.
fn overlay(b: &Built, image: &Path, name: &str, grow: Option<&str>) -> PathBuf {
    let disk = b.dir.join(format!("{name}.qcow2"));
    let _ = std::fs::remove_file(&disk);
    let backing = image.to_str().unwrap();
    let format = if backing.ends_with(".qcow2") { "qcow2" } else { "raw" };
    host(
        "qemu-img",
        &[
            "create",
            "-q",
            "-f",
            "qcow2",
            "-F",
            format,
            "-b",
            backing,
            disk.to_str().unwrap(),
        ],
    );
    if let Some(size) = grow {
        host("qemu-img", &["resize", "-q", disk.to_str().unwrap(), size]);
    }
    disk
}

fn machine(name: &str, firmware: Firmware, disk: &Path) -> Machine {
    Machine::builder(name)
        .firmware(firmware)
        .memory_mib(1024)
        .medium(MediumKind::VirtioDisk, disk)
        .network()
        .forward_host_port(22)
        .start()
        .unwrap()
}

/// Runs `command` on the machine over ssh as root; gives its exit status and output.
fn ssh(b: &Built, m: &Machine, command: &str) -> (bool, String) {
    let out = qemu_harness::rixos::ssh(&b.key, m.host_port(22).unwrap(), command);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text.trim().to_string())
}

/// Waits until root logs in over ssh (the system is up), failing with the console's end if it never does.
fn wait_for_ssh(b: &Built, m: &mut Machine) {
    let start = Instant::now();
    loop {
        if let (true, out) = ssh(b, m, "echo up")
            && out == "up"
        {
            return;
        }
        if start.elapsed() > BOOT {
            let console = m.serial_output();
            let tail: Vec<&str> = console.lines().rev().take(40).collect();
            panic!(
                "{}: no ssh login within {BOOT:?}; console:\n{}",
                m.name(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
        std::thread::sleep(Duration::from_secs(5));
    }
}

/// Reboots and waits for ssh on the new boot (the old sshd may still answer for a moment: another boot id).
fn reboot(b: &Built, m: &mut Machine) {
    let boot_id = run(b, m, "cat /proc/sys/kernel/random/boot_id");
    let _ = ssh(b, m, "systemctl reboot");
    let start = Instant::now();
    loop {
        std::thread::sleep(Duration::from_secs(5));
        wait_for_ssh(b, m);
        if ssh(b, m, "cat /proc/sys/kernel/random/boot_id").1 != boot_id {
            return;
        }
        assert!(start.elapsed() < BOOT, "{}: the machine did not reboot", m.name());
    }
}

/// Runs `command` over ssh; it must succeed.
fn run(b: &Built, m: &Machine, command: &str) -> String {
    let (ok, out) = ssh(b, m, command);
    assert!(ok, "{}: {command} failed: {out}", m.name());
    out
}

#[test]
fn the_image_is_reproducible_its_qcow2_is_the_same_disk_and_nix_accepts_its_store() {
    let b = built();
    let converted = b.dir.join("converted.img");
    host(
        "qemu-img",
        &[
            "convert",
            "-f",
            "qcow2",
            "-O",
            "raw",
            b.qcow2.to_str().unwrap(),
            converted.to_str().unwrap(),
        ],
    );
    assert_eq!(
        sha256_of(&converted),
        sha256_of(&b.raw),
        "the qcow2 converted back is the raw image"
    );
    std::fs::remove_file(&converted).unwrap();

    // The root partition's store, taken out rootless with debugfs, verified by Nix 2.8.
    let table = String::from_utf8(host("sfdisk", &["--json", b.raw.to_str().unwrap()]).stdout).unwrap();
    let table: serde_json::Value = serde_json::from_str(&table).unwrap();
    let parts = table["partitiontable"]["partitions"].as_array().unwrap();
    assert_eq!(parts.len(), 3, "BIOS boot, ESP, root: {table}");
    let root = &parts[2];
    let offset = root["start"].as_u64().unwrap() * 512;
    let extracted = b.dir.join("extracted");
    std::fs::create_dir_all(&extracted).unwrap();
    let device = format!("{}?offset={offset}", b.raw.display());
    host(
        "debugfs",
        &["-R", &format!("rdump /nix {}", extracted.display()), &device],
    );
    let verify = Command::new("nix-store")
        .arg("--store")
        .arg(&extracted)
        .args(["--verify", "--check-contents"])
        .output()
        .expect("nix-store (nix-bin) is installed by scripts/setup");
    assert!(
        verify.status.success() && !String::from_utf8_lossy(&verify.stderr).contains("error"),
        "Nix 2.8 rejects the image's store: {}",
        String::from_utf8_lossy(&verify.stderr)
    );
    let profile = std::fs::read_link(extracted.join("nix/var/nix/profiles/system")).unwrap();
    assert_eq!(profile, Path::new("system-1-link"));
    let _ = std::fs::remove_dir_all(&extracted);
}

#[test]
fn the_image_boots_with_seabios_and_its_system_manages_itself_and_persists() {
    let b = built();
    let disk = overlay(b, &b.raw, "bios", None);
    let mut m = machine("disk-bios", Firmware::Bios, &disk);
    wait_for_ssh(b, &mut m);
    assert_eq!(run(b, &m, "readlink /run/current-system"), b.toplevel);
    assert_eq!(run(b, &m, "readlink /nix/var/nix/profiles/system"), "system-1-link");
    assert!(run(b, &m, "rixos --version").starts_with("rixos "));
    // The machine's own store by default: every path there, with its recorded hash.
    assert_eq!(
        run(b, &m, "rixos store verify --check-contents 2>&1; echo status=$?"),
        "status=0"
    );
    // Collecting garbage there keeps the running system, its generation and the channel.
    let gc = run(b, &m, "rixos gc 2>&1; echo status=$?");
    assert!(gc.ends_with("status=0"), "rixos gc: {gc}");
    assert_eq!(run(b, &m, "rixos store verify 2>&1; echo status=$?"), "status=0");
    run(
        b,
        &m,
        "test -x /run/current-system/init && test -e /nix/var/nix/profiles/system/init",
    );
    run(b, &m, "test -e /nix/var/nix/profiles/per-user/root/channels");
    // The emergency shell, where a boot that cannot mount its file systems ends, asks for root's password.
    run(b, &m, "test -x /sbin/sulogin");
    // Names resolve through systemd-resolved, with the DNS server DHCP handed out: the channel's mirror's.
    assert_eq!(
        run(b, &m, "readlink /etc/static/resolv.conf"),
        "/run/systemd/resolve/stub-resolv.conf"
    );
    let mirror = run(
        b,
        &m,
        "rixos channel --list | head -1 | sed -E 's|^[^ ]+ [a-z]+://([^/:]+).*|\\1|'",
    );
    let (ok, out) = ssh(
        b,
        &m,
        &format!("getent hosts {mirror} || {{ cat /etc/resolv.conf; systemctl status systemd-resolved; false; }}"),
    );
    assert!(ok, "{mirror} does not resolve:\n{out}");
    assert!(run(b, &m, "test -d /sys/firmware/efi && echo uefi || echo bios") == "bios");
    assert!(
        run(b, &m, "grep -c menuentry /boot/grub/grub.cfg")
            .parse::<u32>()
            .unwrap()
            >= 1
    );
    run(b, &m, "echo kept > /root/persisted && sync");
    reboot(b, &mut m);
    assert_eq!(run(b, &m, "cat /root/persisted"), "kept");
    let _ = ssh(b, &m, "systemctl poweroff");
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
}

#[test]
fn the_image_boots_with_ovmf_and_grows_into_a_larger_disk() {
    let b = built();
    let size_of_root = |m: &Machine| -> u64 { run(b, m, "df -B1M --output=size / | tail -1").trim().parse().unwrap() };
    let disk = overlay(b, &b.raw, "uefi-grown", Some("+2G"));
    let mut m = machine("disk-uefi", Firmware::Uefi, &disk);
    wait_for_ssh(b, &mut m);
    assert_eq!(run(b, &m, "test -d /sys/firmware/efi && echo uefi"), "uefi");
    assert_eq!(run(b, &m, "readlink /run/current-system"), b.toplevel);
    let image_mib = std::fs::metadata(&b.raw).unwrap().len() >> 20;
    let grown = size_of_root(&m);
    assert!(
        grown > image_mib + 1500,
        "the root has {grown} MiB on a disk of {} MiB (the image is {image_mib} MiB):\n{}",
        image_mib + 2048,
        ssh(
            b,
            &m,
            "journalctl -b -u rixos-growpart -u rixos-growfs-root --no-pager | tail -30"
        )
        .1
    );
    let _ = ssh(b, &m, "systemctl poweroff");
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
}

#[test]
fn the_systemd_boot_image_boots_with_ovmf() {
    let b = built();
    let disk = overlay(b, &b.systemd_boot, "systemd-boot", None);
    let mut m = machine("disk-systemd-boot", Firmware::Uefi, &disk);
    wait_for_ssh(b, &mut m);
    // systemd-boot tells the booted system about itself through an EFI variable.
    let loader = run(
        b,
        &m,
        "cat /sys/firmware/efi/efivars/LoaderInfo-4a67b082-0a4c-41cf-b6c7-440b29bb8c4f | tr -d '\\000'",
    );
    assert!(loader.contains("systemd-boot"), "LoaderInfo: {loader:?}");
    assert!(run(b, &m, "ls /boot/loader/entries").contains("generation-1"));
    assert_eq!(run(b, &m, "rixos store verify 2>&1; echo status=$?"), "status=0");

    // Allowed to touch the EFI variables, a switch adds systemd-boot's entry to the firmware's boot order
    // (the image itself boots from the removable path), and the next boot comes through that entry.
    edit_configuration(
        b,
        &m,
        "  boot.loader.grub.enable = false;\n  boot.loader.systemd-boot.enable = true;\n  \
         boot.loader.efi.canTouchEfiVariables = true;\n",
    );
    let (ok, out) = system(b, &m, "switch");
    assert!(ok, "{out}");
    let added = out
        .lines()
        .find_map(|l| l.strip_prefix("added the firmware boot entry Boot"))
        .unwrap_or_else(|| panic!("no firmware boot entry added:\n{out}"));
    let number = &added[..4];
    let efibootmgr = run(b, &m, "efibootmgr -v");
    assert!(
        efibootmgr.contains(&format!("BootOrder: {number}")) && efibootmgr.contains("systemd-bootx64.efi"),
        "{efibootmgr}"
    );
    // A second switch finds the entry there and adds none.
    let (ok, out) = system(b, &m, "switch");
    assert!(ok && !out.contains("added the firmware boot entry"), "{out}");
    reboot(b, &mut m);
    assert_eq!(
        run(b, &m, "efibootmgr | grep BootCurrent"),
        format!("BootCurrent: {number}")
    );
    let _ = ssh(b, &m, "systemctl poweroff");
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
}

/// The main PIDs of `units`, space-separated, in order.
fn main_pids(b: &Built, m: &Machine, units: &str) -> Vec<String> {
    run(b, m, &format!("systemctl show --property=MainPID --value {units}"))
        .lines()
        .map(str::to_string)
        .collect()
}

/// A tmpfs at /scratch of `size`, as a configuration's lines.
fn scratch(size: &str) -> String {
    format!(
        "  fileSystems.\"/scratch\" = {{ device = \"tmpfs\"; fsType = \"tmpfs\"; options = [ \"size={size}\" ]; }};\n"
    )
}

/// Writes the machine's configuration: the image's with `extra` lines.
fn edit_configuration(b: &Built, m: &Machine, extra: &str) {
    run(
        b,
        m,
        &format!(
            "cat > /etc/rixos/configuration.nix <<'RIXOS_EOF'\n{}RIXOS_EOF",
            configuration(&b.public, extra)
        ),
    );
}

/// Runs `rixos system ARGS` on the machine; gives whether it succeeded and all it printed.
fn system(b: &Built, m: &Machine, args: &str) -> (bool, String) {
    let (_, out) = ssh(b, m, &format!("rixos system {args} 2>&1; echo status=$?"));
    let ok = out.ends_with("status=0");
    (ok, out)
}

/// The units a switch's output (or dry-activate's, with "would ") names after `what`.
fn listed(out: &str, what: &str) -> Vec<String> {
    out.lines()
        .filter_map(|l| l.strip_prefix(&format!("{what} the following units: ")))
        .flat_map(|l| l.split(", ").map(str::to_string))
        .collect()
}

/// Reboots and waits for GRUB's menu on the serial console (it must list `generations`), then types `keys`
/// there (nothing: the default boots when the menu's time is up), and waits for ssh on the new boot.
fn reboot_through_menu(b: &Built, m: &mut Machine, generations: &[u32], keys: &str) {
    let _ = ssh(b, m, "systemctl reboot");
    let menu = m
        .wait_for("rixos - Generation 1 (", BOOT)
        .unwrap_or_else(|e| panic!("no boot menu on the serial console: {e}"));
    for n in generations {
        assert!(
            menu.contains(&format!("rixos - Generation {n} (")),
            "the menu lacks generation {n}:\n{menu}"
        );
    }
    for key in keys.split_inclusive(['\r', 'B']) {
        m.send_keys(key).unwrap();
        std::thread::sleep(Duration::from_millis(300));
    }
    m.wait_for("rixos stage 2: activating", BOOT).unwrap();
    wait_for_ssh(b, m);
}

#[test]
fn the_installed_system_switches_rolls_back_and_boots_every_generation() {
    let b = built();
    let disk = overlay(b, &b.raw, "switch", None);
    let mut m = machine("disk-switch", Firmware::Bios, &disk);
    // The first boot's menu, so later waits see only the menus of the reboots.
    m.wait_for("Booting `rixos - Generation 1 (", BOOT).unwrap();
    wait_for_ssh(b, &mut m);
    let kept = "sshd.service systemd-journald.service";
    let pids = main_pids(b, &m, kept);

    // Generation 2: a service, a hostname, a user. dry-activate says what the switch then does.
    edit_configuration(
        b,
        &m,
        &format!(
            "  networking.hostName = \"second\";\n  users.users.alice.isNormalUser = true;\n  \
             systemd.services.hello = {{ wantedBy = [ \"multi-user.target\" ]; serviceConfig.Type = \"oneshot\"; \
             serviceConfig.RemainAfterExit = true; script = \"echo hello > /run/hello\"; }};\n{}",
            scratch("16m")
        ),
    );
    let (ok, dry) = system(b, &m, "dry-activate");
    assert!(ok, "{dry}");
    assert!(listed(&dry, "would restart").is_empty(), "{dry}");
    assert_eq!(listed(&dry, "would start"), ["hello.service"], "{dry}");
    assert!(
        dry.contains("would change in /etc:") && dry.contains("/etc/hostname"),
        "{dry}"
    );
    assert_eq!(run(b, &m, "hostname"), "rixos", "dry-activate changed nothing");
    let (ok, out) = system(b, &m, "switch");
    assert!(ok, "{out}");
    assert!(listed(&out, "restarting").is_empty(), "{out}");
    assert_eq!(run(b, &m, "cat /run/hello"), "hello");
    assert_eq!(run(b, &m, "hostname"), "second");
    assert!(run(b, &m, "id alice").contains("uid=1000(alice)"));
    // A new file system is mounted.
    assert_eq!(run(b, &m, "findmnt -n -o SIZE /scratch"), "16M");
    assert_eq!(main_pids(b, &m, kept), pids, "sshd and journald kept running:\n{out}");
    let generations = run(b, &m, "rixos system list-generations");
    assert_eq!(generations.lines().count(), 3, "{generations}");
    assert!(
        generations.lines().nth(1).unwrap().starts_with("2 ") && generations.contains("current"),
        "{generations}"
    );
    assert!(run(b, &m, "grep -c 'menuentry ' /boot/grub/grub.cfg") == "2");

    // Generation 3: sshd's configuration changes, so sshd (only) restarts, as dry-activate says.
    // Its file system's options change too: a remount.
    let sshd = "  networking.hostName = \"second\";\n  services.openssh.extraConfig = \"ClientAliveInterval 30\";\n";
    let third = &format!("{sshd}{}", scratch("32m"));
    edit_configuration(b, &m, third);
    let (ok, dry) = system(b, &m, "dry-activate");
    assert!(ok, "{dry}");
    assert_eq!(listed(&dry, "would restart"), ["sshd.service"], "{dry}");
    assert!(
        listed(&dry, "would reload").contains(&"scratch.mount".to_string()),
        "{dry}"
    );
    assert!(
        listed(&dry, "would stop").contains(&"hello.service".to_string()),
        "{dry}"
    );
    let (ok, out) = system(b, &m, "switch");
    assert!(ok, "{out}");
    assert_eq!(listed(&out, "restarting"), listed(&dry, "would restart"), "{out}");
    let now = main_pids(b, &m, kept);
    assert_ne!(now[0], pids[0], "sshd restarted");
    assert_eq!(now[1], pids[1], "journald kept running");
    assert_eq!(run(b, &m, "grep -c ClientAlive /etc/ssh/sshd_config"), "1");
    assert_eq!(run(b, &m, "findmnt -n -o SIZE /scratch"), "32M");

    // test: active now, not a generation, gone after a reboot. Its file system is gone: unmounted.
    edit_configuration(
        b,
        &m,
        &format!("{sshd}  environment.etc.\"only-tested\".text = \"x\";\n"),
    );
    let (ok, out) = system(b, &m, "test");
    assert!(ok, "{out}");
    assert_eq!(run(b, &m, "cat /etc/only-tested"), "x");
    assert_eq!(run(b, &m, "findmnt /scratch || echo unmounted"), "unmounted");
    assert_eq!(run(b, &m, "readlink /nix/var/nix/profiles/system"), "system-3-link");

    // A new service that fails: the switch names it and fails; the machine stays usable; --rollback recovers.
    edit_configuration(
        b,
        &m,
        &format!(
            "{third}  systemd.services.broken = {{ wantedBy = [ \"multi-user.target\" ]; \
             serviceConfig.Type = \"oneshot\"; script = \"exit 3\"; }};\n"
        ),
    );
    let (ok, out) = system(b, &m, "switch");
    assert!(!ok, "{out}");
    assert!(out.contains("the following units failed: broken.service"), "{out}");
    assert_eq!(run(b, &m, "echo still here"), "still here");
    assert_eq!(run(b, &m, "findmnt -n -o SIZE /scratch"), "32M", "mounted again");
    let (ok, out) = system(b, &m, "switch --rollback");
    assert!(ok, "{out}");
    assert!(out.contains("rolling back to generation 3"), "{out}");
    assert_eq!(run(b, &m, "readlink /nix/var/nix/profiles/system"), "system-3-link");
    assert!(run(b, &m, "test -e /etc/systemd/system/broken.service || echo gone").contains("gone"));

    // boot: nothing changes until the reboot.
    edit_configuration(b, &m, "  networking.hostName = \"later\";\n");
    let (ok, out) = system(b, &m, "boot");
    assert!(ok, "{out}");
    assert_eq!(run(b, &m, "hostname"), "second");
    assert_eq!(run(b, &m, "readlink /nix/var/nix/profiles/system"), "system-5-link");

    // The menu lists every generation; choosing generation 1 (four down from the newest) boots the image's.
    reboot_through_menu(b, &mut m, &[1, 2, 3, 4, 5], "\x1b[B\x1b[B\x1b[B\x1b[B\r");
    assert_eq!(run(b, &m, "hostname"), "rixos");
    assert_eq!(run(b, &m, "readlink /run/booted-system"), b.toplevel);
    assert!(run(b, &m, "test -e /etc/only-tested || echo gone").contains("gone"));
    let generations = run(b, &m, "rixos system list-generations");
    assert!(
        generations
            .lines()
            .any(|l| l.starts_with("1 ") && l.ends_with("booted"))
            && generations
                .lines()
                .any(|l| l.starts_with("5 ") && l.ends_with("current")),
        "{generations}"
    );

    // The default after a reboot is the profile's: generation 5, made by `boot`.
    reboot_through_menu(b, &mut m, &[1, 5], "");
    assert_eq!(run(b, &m, "hostname"), "later");

    // Old generations deleted and collected: generation 1's system is gone, the running one stays, and the
    // next switch drops the deleted ones from the menu.
    let (ok, out) = system(b, &m, "delete-generations old");
    assert!(ok && out.contains("deleted generation 1"), "{out}");
    let gc = run(b, &m, "rixos gc 2>&1; echo status=$?");
    assert!(gc.ends_with("status=0"), "{gc}");
    assert!(run(b, &m, &format!("test -e {} || echo collected", b.toplevel)).contains("collected"));
    assert_eq!(run(b, &m, "rixos store verify 2>&1; echo status=$?"), "status=0");
    let (ok, out) = system(b, &m, "switch");
    assert!(ok, "{out}");
    assert_eq!(run(b, &m, "grep -c 'menuentry ' /boot/grub/grub.cfg"), "1");
    assert_eq!(run(b, &m, "readlink /nix/var/nix/profiles/system"), "system-5-link");

    // Two switches at once: the second is refused while the first holds the lock.
    let (_, out) = ssh(
        b,
        &m,
        "((rixos system test > /tmp/first 2>&1; echo \"first status=$?\" >> /tmp/first) &) ; sleep 3; \
         rixos system test 2>&1; echo status=$?",
    );
    assert!(
        out.contains("another switch of this system is running") && !out.ends_with("status=0"),
        "{out}"
    );
    // The first one, which held the lock, still finishes its switch.
    let first = run(
        b,
        &m,
        "until grep -q '^first status=' /tmp/first; do sleep 1; done; cat /tmp/first",
    );
    assert!(first.ends_with("first status=0"), "{first}");
    let _ = ssh(b, &m, "systemctl poweroff");
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
}

/// A guest shell command that runs `rixos system switch` with each line it prints stamped with the
/// milliseconds since it began, into /tmp/switch.log, ending with the line `switch status=N`.
const STAMPED_SWITCH: &str = "start=$(date +%s%N); (rixos system switch 2>&1; echo \"switch status=$?\") | \
     while IFS= read -r line; do echo \"$(( ($(date +%s%N) - start) / 1000000 )) $line\"; done > /tmp/switch.log";

/// Guest shell lines that start [`STAMPED_SWITCH`] and say `RIXOS-CUT-NOW` on the serial console `delay`
/// seconds after a line containing `marker` is printed (after the start without one), for the host to kill
/// QEMU there; or `RIXOS-CUT-MISSED` when the switch ended first. Detached, so the ssh session that starts
/// it returns at once.
fn switch_then_cut(marker: Option<&str>, delay: f64) -> String {
    let wait = match marker {
        Some(marker) => format!(
            "until grep -q -e '{marker}' -e 'switch status=' /tmp/switch.log 2>/dev/null; do sleep 0.05; done\n"
        ),
        None => String::new(),
    };
    let script = format!(
        "rm -f /tmp/switch.log\n{STAMPED_SWITCH} &\n{wait}\
         if grep -q 'switch status=' /tmp/switch.log; then echo RIXOS-CUT-MISSED > /dev/ttyS0; exit; fi\n\
         sleep {delay:.2}\n\
         echo RIXOS-CUT-NOW > /dev/ttyS0\n"
    );
    format!(
        "cat > /tmp/cut.sh <<'RIXOS_EOF'\n{script}RIXOS_EOF\n\
         setsid nohup bash /tmp/cut.sh > /dev/null 2>&1 < /dev/null &"
    )
}

/// The milliseconds since the switch began at which a line containing `text` was printed, in a log written
/// by [`STAMPED_SWITCH`].
fn printed_at(log: &str, text: &str) -> f64 {
    log.lines()
        .find_map(|l| {
            let (at, line) = l.split_once(' ')?;
            line.contains(text).then(|| at.parse::<f64>().unwrap() / 1000.0)
        })
        .unwrap_or_else(|| panic!("the switch never printed {text:?}:\n{log}"))
}

/// The running generation's /etc is its own toplevel's, whole, and the store is sound; right after a boot
/// (`booted`), the running generation is also the booted one (a switch without a reboot leaves them apart).
fn assert_consistent(b: &Built, m: &Machine, context: &str, booted: bool) {
    let booted_check = if booted {
        "[ \"$(readlink -f /run/booted-system)\" = \"$current\" ] || echo \"booted-system is not current-system\"; "
    } else {
        ""
    };
    let check = run(
        b,
        m,
        &format!(
            "current=$(readlink -f /run/current-system); {booted_check}\
         [ \"$(readlink -f /etc/static)\" = \"$(readlink -f $current/etc)\" ] || echo \"/etc/static is not $current/etc\"; \
         [ \"$(hostname)\" = \"$(cat $current/etc/hostname)\" ] || echo \"hostname $(hostname) is not the system's\"; \
         for f in $(ls $current/etc); do [ -e /etc/$f ] || echo \"/etc/$f is missing\"; done; \
         find /etc -xdev -type l -lname '/etc/static/*' ! -exec test -e {{}} ';' -print | sed 's/^/dangling: /'; \
         rixos store verify > /tmp/verify 2>&1 || {{ echo 'rixos store verify failed:'; cat /tmp/verify; }}; \
         echo checked"
        ),
    );
    assert_eq!(
        check, "checked",
        "{context}: the booted system is not consistent:\n{check}"
    );
}

#[test]
fn a_switch_cut_off_at_any_moment_leaves_a_system_that_boots_a_consistent_generation() {
    let b = built();
    let disk = overlay(b, &b.raw, "cut", None);
    let mut m = machine("disk-cut", Firmware::Bios, &disk);
    wait_for_ssh(b, &mut m);

    // One whole switch first, to learn when each phase begins: the build (evaluation included) until the
    // profile gets its generation, then the boot menu, then activation.
    edit_configuration(b, &m, "  networking.hostName = \"cut0\";\n");
    let log = run(b, &m, &format!("{STAMPED_SWITCH}; cat /tmp/switch.log"));
    assert!(log.ends_with("switch status=0"), "{log}");
    let profile = printed_at(&log, "of the system:");
    let menu = printed_at(&log, "updated the boot menu");
    let activating = printed_at(&log, "activating the configuration");
    let reloading = printed_at(&log, "reloading systemd");

    // Ten moments: five through the build, then in the profile's and the boot menu's steps, and through
    // activation. Each switch builds a new system (another hostname).
    let mut moments: Vec<(Option<&str>, f64)> = [0.1, 0.3, 0.5, 0.7, 0.9].iter().map(|f| (None, f * profile)).collect();
    moments.extend([
        (Some("of the system:"), 0.0),
        (Some("of the system:"), (menu - profile) / 2.0),
        (Some("updated the boot menu"), 0.0),
        (Some("activating the configuration"), (reloading - activating) / 2.0),
        (Some("reloading systemd"), 0.2),
    ]);
    for (i, (marker, delay)) in moments.into_iter().enumerate() {
        let before = run(b, &m, "readlink -f /run/current-system");
        let hostname = format!("cut{}", i + 1);
        edit_configuration(b, &m, &format!("  networking.hostName = \"{hostname}\";\n"));
        run(b, &m, &switch_then_cut(marker, delay));
        let at = format!("a switch cut off {delay:.2} s after {}", marker.unwrap_or("its start"));
        let said = m
            .wait_for_regex("RIXOS-CUT-(NOW|MISSED)", BOOT)
            .unwrap_or_else(|e| panic!("{at}: {e}"));
        assert_eq!(said[1], "NOW", "{at}: the switch ended first");
        // The power cut: QEMU killed, so what the guest's page cache held is lost; then the disk boots again.
        m.kill().unwrap();
        m = machine("disk-cut", Firmware::Bios, &disk);
        wait_for_ssh(b, &mut m);
        assert_consistent(b, &m, &at, true);
        let now = run(b, &m, "readlink -f /run/current-system");
        let name = run(b, &m, "hostname");
        assert!(
            now == before || name == hostname,
            "{at}: booted {now} ({name}), neither the old system {before} nor the new one"
        );
    }

    // Still a machine that switches: the next switch completes and its system is the one running.
    edit_configuration(b, &m, "  networking.hostName = \"after\";\n");
    let (ok, out) = system(b, &m, "switch");
    assert!(ok, "{out}");
    assert_eq!(run(b, &m, "hostname"), "after");
    assert_consistent(b, &m, "the switch after the cuts", false);
    let _ = ssh(b, &m, "systemctl poweroff");
    m.wait_exit(Duration::from_secs(120)).expect("poweroff ends QEMU");
}
