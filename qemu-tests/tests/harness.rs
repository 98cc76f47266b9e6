//! VM tests of the harness itself: each boots Debian's kernel with a busybox initrd built inside the test and
//! checks what a person at the console would see.

use std::io::{Read, Write};
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use qemu_harness::assets::{BusyboxInitrd, TestKernel};
use qemu_harness::{Firmware, GuestForward, Machine, MachineBuilder, MachineError, MediumKind};

const CMDLINE: &str = "console=ttyS0 panic=-1 quiet";
const BOOT: Duration = Duration::from_secs(90);
const UEFI_BOOT: Duration = Duration::from_secs(180);

fn kernel() -> TestKernel {
    TestKernel::find().expect("the Debian test kernel")
}

/// A machine booting the kernel directly with an initrd whose init runs `script`.
fn busybox_machine(name: &str, dir: &Path, initrd: BusyboxInitrd) -> MachineBuilder {
    let kernel = kernel();
    let path = dir.join(format!("{name}.cpio"));
    initrd.write(&kernel, &path).expect("writing the test initrd");
    Machine::builder(name).direct_boot(&kernel.vmlinuz, Some(&path), CMDLINE)
}

fn process_exists(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

#[test]
fn direct_kernel_boot_prints_the_marker_and_powers_off_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let script = "[ -d /sys/firmware/efi ] && echo firmware=uefi || echo firmware=bios\n\
                  echo RIXOS-MARKER-$((6 * 7))\n\
                  poweroff -f";
    let mut machine = busybox_machine("marker", dir.path(), BusyboxInitrd::new(script))
        .no_reboot()
        .start()
        .unwrap();
    eprintln!("accelerator: {:?}", machine.accel());
    machine.wait_for("firmware=bios", BOOT).unwrap();
    // The number is computed by the guest's shell, so the match cannot come from an echoed command line.
    machine.wait_for("RIXOS-MARKER-42", BOOT).unwrap();
    let status = machine.wait_exit(Duration::from_secs(30)).unwrap();
    assert!(status.success(), "QEMU ended with {status}");
    assert!(
        machine.serial_output().contains("reboot: Power down"),
        "{}",
        machine.serial_output()
    );
}

#[test]
fn a_timeout_names_the_pattern_and_quotes_the_last_serial_lines() {
    let dir = tempfile::tempdir().unwrap();
    let script = "for i in 1 2 3; do echo tail-line-$i; done\nsleep 1000";
    let mut machine = busybox_machine("timeout", dir.path(), BusyboxInitrd::new(script))
        .start()
        .unwrap();
    machine.wait_for("tail-line-3", BOOT).unwrap();
    let err = machine.wait_for("never-printed", Duration::from_secs(2)).unwrap_err();
    let MachineError::Timeout {
        ref pattern, ref tail, ..
    } = err
    else {
        panic!("expected a timeout, got {err}")
    };
    assert_eq!(pattern, "never-printed");
    assert_eq!(tail[tail.len() - 3..], ["tail-line-1", "tail-line-2", "tail-line-3"]);
    let message = err.to_string();
    assert!(
        message.contains("\"never-printed\"") && message.contains("  | tail-line-3"),
        "{message}"
    );
}

#[test]
fn a_machine_killed_mid_boot_starts_again_with_its_disk() {
    let dir = tempfile::tempdir().unwrap();
    let disk = dir.path().join("disk.img");
    std::fs::write(&disk, vec![0u8; 1 << 20]).unwrap();
    // First boot: nothing on the disk yet, so write a note and hang. Second boot: show the note, power off.
    let script = "note=$(head -c 13 /dev/vda)\n\
                  if [ \"$note\" = before-a-kill ]; then echo found-$note; poweroff -f; fi\n\
                  printf before-a-kill | dd of=/dev/vda conv=fsync 2>/dev/null\n\
                  echo first-boot-hanging\n\
                  sleep 1000";
    let initrd = BusyboxInitrd::new(script).modules(&["virtio_pci", "virtio_blk"]);
    let builder = busybox_machine("power-cut", dir.path(), initrd)
        .medium(MediumKind::VirtioDisk, &disk)
        .no_reboot();

    let mut first = builder.start().unwrap();
    first.wait_for("first-boot-hanging", BOOT).unwrap();
    let pid = first.pid();
    first.kill().unwrap();
    assert!(!process_exists(pid), "QEMU {pid} survived the power cut");

    let mut second = builder.start().unwrap();
    second.wait_for("found-before-a-kill", BOOT).unwrap();
    assert!(second.wait_exit(Duration::from_secs(30)).unwrap().success());
}

#[test]
fn a_panicking_test_leaves_no_qemu_behind() {
    let dir = tempfile::tempdir().unwrap();
    let builder = busybox_machine("panics", dir.path(), BusyboxInitrd::new("sleep 1000"));
    let pid = std::sync::Mutex::new(None);
    let outcome = std::panic::catch_unwind(|| {
        let machine = builder.start().unwrap();
        *pid.lock().unwrap() = Some(machine.pid());
        panic!("a test failing while its machine runs");
    });
    assert!(outcome.is_err());
    let pid = pid.lock().unwrap().expect("the machine started");
    assert!(!process_exists(pid), "QEMU {pid} outlived the panicking test");
}

#[test]
fn uefi_boot_uses_a_private_copy_of_the_variable_store() {
    let ovmf = qemu_harness::assets::Ovmf::find().unwrap();
    let pristine = std::fs::read(&ovmf.vars).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let script = "[ -d /sys/firmware/efi ] && echo firmware=uefi || echo firmware=bios\npoweroff -f";
    let builder = busybox_machine("uefi", dir.path(), BusyboxInitrd::new(script)).firmware(Firmware::Uefi);
    let mut machine = builder.memory_mib(768).no_reboot().start().unwrap();
    machine.wait_for("firmware=uefi", UEFI_BOOT).unwrap();
    assert!(machine.wait_exit(Duration::from_secs(30)).unwrap().success());
    assert!(
        std::fs::read(&ovmf.vars).unwrap() == pristine,
        "OVMF's shared variable store was written to"
    );
}

#[test]
fn media_appear_as_cdrom_usb_stick_virtio_disk_and_nvme() {
    let dir = tempfile::tempdir().unwrap();
    let image = |name: &str, size: usize| -> PathBuf {
        let path = dir.path().join(name);
        std::fs::write(&path, vec![0u8; size]).unwrap();
        path
    };
    let script = "for i in $(seq 60); do\n\
                    [ -e /sys/block/sr0 ] && [ -e /sys/block/sda ] && [ -e /sys/block/vda ] && \
                    [ -e /sys/block/nvme0n1 ] && break\n\
                    sleep 0.5\n\
                  done\n\
                  for d in sr0 sda vda nvme0n1; do\n\
                    echo \"disk $d removable=$(cat /sys/block/$d/removable) sectors=$(cat /sys/block/$d/size) \
                    bus=$(readlink -f /sys/block/$d | grep -o -e usb -e virtio -e nvme -e ata | head -n1)\"\n\
                  done\n\
                  echo media-listed\n\
                  poweroff -f";
    let modules = [
        "ahci",
        "sr_mod",
        "xhci_pci",
        "usb_storage",
        "sd_mod",
        "virtio_pci",
        "virtio_blk",
        "nvme",
    ];
    let initrd = BusyboxInitrd::new(script).modules(&modules);
    let mut machine = busybox_machine("media", dir.path(), initrd)
        .medium(MediumKind::Cdrom, image("cd.iso", 4 << 20))
        .medium(MediumKind::UsbStick, image("usb.img", 8 << 20))
        .medium(MediumKind::VirtioDisk, image("virtio.img", 16 << 20))
        .medium(MediumKind::Nvme, image("nvme.img", 32 << 20))
        .no_reboot()
        .start()
        .unwrap();
    let listing = machine.wait_for("media-listed", BOOT).unwrap();
    for expected in [
        "disk sr0 removable=1 sectors=8192 bus=ata",
        "disk sda removable=1 sectors=16384 bus=usb",
        "disk vda removable=0 sectors=32768 bus=virtio",
        "disk nvme0n1 removable=0 sectors=65536 bus=nvme",
    ] {
        assert!(listing.contains(expected), "missing {expected:?} in:\n{listing}");
    }
    assert!(machine.wait_exit(Duration::from_secs(30)).unwrap().success());
}

/// Serves one fixed HTTP response to every connection, until the test ends.
fn serve_on_loopback(body: &'static str) -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut request = [0u8; 1024];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
        }
    });
    port
}

#[test]
fn network_forwards_host_ports_in_and_guest_connections_out() {
    let host_service = serve_on_loopback("hello-from-the-host\n");
    let dir = tempfile::tempdir().unwrap();
    let script = "ip link set lo up\n\
                  ip link set eth0 up\n\
                  ip addr add 10.0.2.15/24 dev eth0\n\
                  ip route add default via 10.0.2.2\n\
                  mkdir -p /www && echo served-by-the-guest > /www/index.html\n\
                  httpd -p 8080 -h /www\n\
                  wget -q -O - http://10.0.2.100/latest/meta-data/\n\
                  echo guest-ready\n\
                  sleep 1000";
    let initrd = BusyboxInitrd::new(script).modules(&["virtio_pci", "virtio_net"]);
    let forward = GuestForward {
        guest: (Ipv4Addr::new(10, 0, 2, 100), 80),
        host: (Ipv4Addr::LOCALHOST, host_service).into(),
    };
    let mut machine = busybox_machine("network", dir.path(), initrd)
        .forward_host_port(8080)
        .forward_guest(forward)
        .start()
        .unwrap();
    let output = machine.wait_for("guest-ready", BOOT).unwrap();
    assert!(
        output.contains("hello-from-the-host"),
        "the guest did not reach the host service:\n{output}"
    );

    let port = machine.host_port(8080).expect("a host port for guest port 8080");
    let mut stream = TcpStream::connect((Ipv4Addr::LOCALHOST, port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET /index.html HTTP/1.0\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    assert!(response.contains("served-by-the-guest"), "{response}");
}

#[test]
fn screenshot_shows_the_firmware_screen() {
    let mut machine = Machine::builder("screenshot").start().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let png_path = dir.path().join("screen.png");
    // SeaBIOS draws its banner, then "No bootable device"; wait until the screen is no longer blank.
    let mut lit = 0;
    for _ in 0..60 {
        machine.screenshot(&png_path).unwrap();
        let decoder = png::Decoder::new(std::fs::File::open(&png_path).unwrap());
        let mut reader = decoder.read_info().unwrap();
        let mut pixels = vec![0; reader.output_buffer_size()];
        let info = reader.next_frame(&mut pixels).unwrap();
        assert!(
            info.width >= 640 && info.height >= 400,
            "{}x{}",
            info.width,
            info.height
        );
        lit = pixels.iter().filter(|&&p| p > 0x40).count();
        if lit > 1000 {
            break;
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(lit > 1000, "the firmware screen stayed blank ({lit} lit values)");
}

#[test]
fn the_power_button_reaches_the_guest() {
    let dir = tempfile::tempdir().unwrap();
    // The ACPI button driver turns a press into a key event on the "Power Button" input devices.
    let script = "for i in $(seq 80); do\n\
                    events=$(grep -A5 'Power Button' /proc/bus/input/devices | grep -o 'event[0-9]*')\n\
                    [ -n \"$events\" ] && break\n\
                    sleep 0.25\n\
                  done\n\
                  for e in $events; do\n\
                    while [ ! -e /dev/input/$e ]; do sleep 0.1; done\n\
                    (head -c 1 /dev/input/$e > /dev/null; echo power-button-pressed; poweroff -f) &\n\
                  done\n\
                  echo waiting-for-the-button: $events\n\
                  sleep 1000";
    let initrd = BusyboxInitrd::new(script).modules(&["button", "evdev"]);
    let mut machine = busybox_machine("power-button", dir.path(), initrd)
        .no_reboot()
        .start()
        .unwrap();
    machine
        .wait_for_regex("waiting-for-the-button: event[0-9]", BOOT)
        .unwrap();
    // The guest's readers may still be opening their devices; press again until it reacts, as a person would.
    let mut pressed = Err(None);
    for _ in 0..15 {
        machine.power_button().unwrap();
        match machine.wait_for("power-button-pressed", Duration::from_secs(2)) {
            Ok(_) => {
                pressed = Ok(());
                break;
            }
            Err(e @ MachineError::Timeout { .. }) => pressed = Err(Some(e)),
            Err(e) => panic!("{e}"),
        }
    }
    if let Err(Some(e)) = pressed {
        panic!("the guest never saw the power button: {e}");
    }
    assert!(machine.wait_exit(Duration::from_secs(30)).unwrap().success());
}

#[test]
fn reset_boots_the_guest_again() {
    let dir = tempfile::tempdir().unwrap();
    let script = "echo init-started\nsleep 1000";
    let mut machine = busybox_machine("reset", dir.path(), BusyboxInitrd::new(script))
        .start()
        .unwrap();
    machine.wait_for("init-started", BOOT).unwrap();
    machine.reset().unwrap();
    // The cursor is past the first boot's line, so this only matches the second boot.
    machine.wait_for("init-started", BOOT).unwrap();
}

#[test]
fn a_guest_forward_outside_the_user_network_is_refused_before_qemu_starts() {
    let forward = GuestForward {
        guest: (Ipv4Addr::new(169, 254, 169, 254), 80),
        host: (Ipv4Addr::LOCALHOST, 1).into(),
    };
    let err = Machine::builder("bad-forward")
        .forward_guest(forward)
        .start()
        .err()
        .expect("the forward is refused");
    assert!(
        err.to_string()
            .contains("169.254.169.254: the address must be in 10.0.2.0/24"),
        "{err}"
    );
}
