//! The seed configuration, built with `rixos system build-vm`, boots under QEMU to a working, networked
//! machine: what its administrator would check at the serial console, over ssh and over HTTP.
//!
//! The system is built once (into a store of its own, from the Debian archive of the host's apt sources) and
//! shared by the tests here; building it also checks that the initrd comes out bit for bit the same twice.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use qemu_harness::rixos::{Workspace, sha256_of};
use qemu_harness::{Machine, MachineBuilder, MediumKind};

/// crypt(3) of "rixos" (SHA-512), the root password of the test system.
const ROOT_HASH: &str =
    "$6$rixostestsalt$8tJbnagdonmR3seirrKL4iJSY25bATehmKbCSuzk6mQIgCBPkiC/0gVlXBEmV7J2sw2X/m2/Pqk.BvZBj.6YT/";
/// crypt(3) of [`MYUSER_PASSWORD`] (SHA-512), the wheel user's password (`openssl passwd -6 -salt rixosusersalt`).
const MYUSER_HASH: &str =
    "$6$rixosusersalt$ppkdhacw2UsQELhlZ0BwHvBOTpHfsYOuh/ZAIgqkqVixNu.fbFBgkj3nsn.pVzRJNgn6YN46VZtBy0bvxnDui1";
const MYUSER_PASSWORD: &str = "rixos-user";
const BOOT: Duration = Duration::from_secs(300);
const COMMAND: Duration = Duration::from_secs(60);

struct Built {
    ws: Workspace,
    /// `result`, the build-vm output (`bin/run-mymachine-vm`, `system`).
    result: PathBuf,
    /// The toplevel's logical store path.
    toplevel: String,
    key: PathBuf,
}

/// The built system's directory, store and `rixos` runner are its workspace's.
impl std::ops::Deref for Built {
    type Target = Workspace;
    fn deref(&self) -> &Workspace {
        &self.ws
    }
}

/// What the tests add to the seed for the firewall: nginx answers on 80, which is opened, and on 8080, which
/// is not, so only the firewall keeps 8080 from the host; sshd's 22 is opened by its openFirewall.
const FIREWALL_CONFIG: &str = "  networking.firewall.allowedTCPPorts = [ 80 ];\n  \
    services.nginx.virtualHosts.\"closed.example\" = { listen = [ { port = 8080; } ]; \
    extraConfig = \"return 200 'behind the firewall';\"; };\n";
/// What nginx answers on 8080.
const CLOSED_PORT_BODY: &str = "behind the firewall";

/// Builds the seed (with a root password and key) as a VM, twice the initrd; once per test process.
fn built() -> &'static Built {
    static BUILT: OnceLock<Built> = OnceLock::new();
    BUILT.get_or_init(|| {
        let ws = Workspace::new();
        let (dir, store) = (ws.dir.clone(), ws.store.clone());
        let (key, public) = ws.ssh_key();
        let seed = qemu_harness::rixos::seed();
        std::fs::write(
            dir.join("configuration.nix"),
            format!(
                "{{ ... }}: {{\n  imports = [ {} ];\n  users.users.root.hashedPassword = \"{}\";\n  \
                 users.users.myuser.hashedPassword = \"{}\";\n  \
                 users.users.root.openssh.authorizedKeys.keys = [ \"{}\" ];\n{}}}\n",
                seed.display(),
                ROOT_HASH.replace('$', "\\$"),
                MYUSER_HASH.replace('$', "\\$"),
                public.trim(),
                FIREWALL_CONFIG
            ),
        )
        .unwrap();
        let build = || {
            let out = qemu_harness::rixos::run(
                &store,
                &dir,
                &["system", "build-vm", "-c", "configuration.nix", "-o", "result"],
            );
            String::from_utf8_lossy(&out.stdout).trim().to_string()
        };
        build();
        let result = dir.join("result");
        let toplevel = std::fs::read_link(result.join("system"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let mut b = Built {
            ws,
            result,
            toplevel,
            key,
        };
        // Reproducibility: delete the initrd (and what refers to it), build again, compare the bytes.
        let vm = std::fs::read_link(&b.result).unwrap();
        let vm = format!("/nix/store/{}", vm.file_name().unwrap().to_string_lossy());
        let initrd_file = std::fs::read_link(b.resolve(&b.toplevel).join("initrd")).unwrap();
        let initrd = initrd_file.parent().unwrap().to_string_lossy().into_owned();
        let first = sha256_of(&b.resolve(&initrd_file.to_string_lossy()));
        std::fs::remove_file(&b.result).unwrap();
        // The initrd and everything that refers to it, transitively (the toplevel, the run script, the VM).
        let mut doomed = vec![initrd.clone(), vm];
        let mut i = 0;
        while i < doomed.len() {
            let out = b.rixos(&["store", "query", "--referrers", &doomed[i]]);
            for p in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                if !doomed.iter().any(|d| d == p) {
                    doomed.push(p.to_string());
                }
            }
            i += 1;
        }
        let mut args = vec!["store", "delete"];
        args.extend(doomed.iter().map(String::as_str));
        b.rixos(&args);
        assert!(
            !b.store.join(initrd.trim_start_matches('/')).exists(),
            "the initrd was deleted"
        );
        build();
        let again = std::fs::read_link(b.resolve(&b.toplevel).join("initrd")).unwrap();
        assert_eq!(again, initrd_file, "the same configuration gives the same initrd path");
        assert_eq!(
            sha256_of(&b.resolve(&again.to_string_lossy())),
            first,
            "the rebuilt initrd has other bytes"
        );
        b.toplevel = std::fs::read_link(b.result.join("system"))
            .unwrap()
            .to_string_lossy()
            .into_owned();
        b
    })
}

/// The partition's GUID in [`converted_disk`], so the root can be given as `root=PARTUUID=...`.
const ROOT_PARTUUID: &str = "5a1e7c0d-0b5e-4d2a-9c1f-7e57ab1e0001";

/// A GPT disk with one ext4 partition (label rixos-vm) that an earlier system left files on, and the marker
/// that asks stage 1 to lustrate it: everything moves to /old-root, the listed paths come back.
fn converted_disk(dir: &Path) -> PathBuf {
    let old = dir.join("old-root-contents");
    std::fs::create_dir_all(old.join("etc/ssh")).unwrap();
    std::fs::create_dir_all(old.join("srv")).unwrap();
    std::fs::write(old.join("etc/ssh/kept_key"), "kept across the conversion\n").unwrap();
    std::fs::write(old.join("srv/old-data"), "left in /old-root\n").unwrap();
    std::fs::write(old.join("etc/NIXOS_LUSTRATE"), "/etc/ssh/kept_key\n").unwrap();
    let disk = dir.join("converted.img");
    std::fs::File::create(&disk).unwrap().set_len(1 << 30).unwrap();
    let mut sfdisk = Command::new("sfdisk")
        .args(["--quiet"])
        .arg(&disk)
        .stdin(Stdio::piped())
        .spawn()
        .unwrap();
    write!(
        sfdisk.stdin.take().unwrap(),
        "label: gpt\nstart=2048, size=2093056, type=linux, uuid={ROOT_PARTUUID}\n"
    )
    .unwrap();
    assert!(sfdisk.wait().unwrap().success(), "sfdisk");
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-F", "-L", "rixos-vm", "-E", "offset=1048576", "-d"])
        .arg(&old)
        .arg(&disk)
        .arg("1046528k")
        .status()
        .unwrap();
    assert!(status.success(), "mkfs.ext4 {}", disk.display());
    disk
}

/// A sparse disk image of `size` bytes holding an empty ext4 file system labelled `label`.
fn empty_ext4(path: &Path, size: u64, label: &str) -> PathBuf {
    std::fs::File::create(path).unwrap().set_len(size).unwrap();
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-L", label])
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success(), "mkfs.ext4 {}", path.display());
    path.to_path_buf()
}

/// Runs `command` at the root shell and returns what it printed.
fn run(m: &mut Machine, command: &str) -> String {
    qemu_harness::rixos::shell(m, command, COMMAND)
}

/// Waits `wait` for an answer on the host's `port` (forwarded to the guest): a dropped SYN shows as a
/// connection QEMU accepted on the host side that never carries a byte back.
fn no_http_answer_within(port: u16, wait: Duration) -> Result<(), String> {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return Ok(());
    };
    stream.set_read_timeout(Some(wait)).unwrap();
    let _ = write!(stream, "GET / HTTP/1.0\r\nConnection: close\r\n\r\n");
    let mut buf = vec![0u8; 512];
    match stream.read(&mut buf) {
        Ok(n) if n > 0 => {
            // An answer: the rest of it, to the end nginx closes it at.
            buf.truncate(n);
            let _ = stream.read_to_end(&mut buf);
            Err(String::from_utf8_lossy(&buf).into_owned())
        }
        _ => Ok(()),
    }
}

/// A machine that boots `toplevel` directly (kernel, initrd, `params` after the system's own), with the
/// test store over 9p and `disk` as its virtio disk.
fn seed_vm(b: &Built, name: &str, toplevel: &str, disk: &Path, params: &str) -> MachineBuilder {
    let own = std::fs::read_to_string(b.resolve(&format!("{toplevel}/kernel-params"))).unwrap();
    let cmdline = format!("{} init={toplevel}/init console=ttyS0 panic=-1 {params}", own.trim());
    let store = format!(
        "local,path={},security_model=none,mount_tag=store,readonly=on",
        b.store.join("nix/store").display()
    );
    Machine::builder(name)
        .memory_mib(1024)
        .direct_boot(
            &b.resolve(&format!("{toplevel}/kernel")),
            Some(&b.resolve(&format!("{toplevel}/initrd"))),
            &cmdline,
        )
        .medium(MediumKind::VirtioDisk, disk)
        .no_reboot()
        .extra_args(["-virtfs".to_string(), store])
}

fn http_get(port: u16, host: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn the_seed_boots_to_a_login_and_does_what_it_says() {
    let b = built();
    let disk = converted_disk(&b.dir);
    // The root by PARTUUID (overriding the configuration's label), on a disk stage 1 must lustrate first.
    let builder = seed_vm(b, "seed", &b.toplevel, &disk, &format!("root=PARTUUID={ROOT_PARTUUID}"))
        .forward_host_port(22)
        .forward_host_port(80)
        .forward_host_port(8080);
    let mut m = builder.start().unwrap();
    m.wait_for("rixos stage 1: starting stage 2", BOOT).unwrap();
    m.wait_for("mymachine login:", BOOT).unwrap();
    m.send_line("root").unwrap();
    m.wait_for("Password:", COMMAND).unwrap();
    m.send_line("rixos").unwrap();
    m.wait_for("# ", COMMAND).unwrap();

    // Kernel messages on the serial console would land in the middle of command output.
    run(&mut m, "dmesg -n 1");
    assert_eq!(run(&mut m, "hostname"), "mymachine");
    // Lustrated: the old system is under /old-root, the listed path came back, the rest did not.
    assert_eq!(
        run(
            &mut m,
            "cat /old-root/srv/old-data; cat /etc/ssh/kept_key; ls /srv 2>&1 | wc -l"
        ),
        "left in /old-root\nkept across the conversion\n0"
    );
    let state = run(&mut m, "systemctl is-system-running --wait");
    assert_eq!(
        state,
        "running",
        "failed units:\n{}",
        run(&mut m, "systemctl --failed --no-legend")
    );
    assert_eq!(run(&mut m, "systemctl is-active sshd nginx"), "active\nactive");
    // The console's keymap (console.keyMap's default, console-data's `us`) is the kernel's: its nine
    // modifier combinations, where the kernel's built-in keymap has seven (keymaps 0-2,4-5,8,12).
    assert_eq!(run(&mut m, "systemctl is-active vconsole-setup"), "active");
    assert_eq!(
        run(&mut m, "dumpkeys -C /dev/tty1 | grep '^keymaps'"),
        "keymaps 0-2,4-6,8-9,12"
    );
    // Nothing under /lib, /usr and /bin but /bin/sh, /usr/bin/env and the documented compatibility links.
    assert_eq!(
        run(&mut m, "cd /usr && find . -mindepth 1 | sort | tr '\\n' ' '"),
        "./bin ./bin/env"
    );
    assert_eq!(run(&mut m, "cd /bin && ls -A | tr '\\n' ' '"), "mount sh umount");
    assert_eq!(
        run(&mut m, "cd /lib && find . -mindepth 1 | sort | tr '\\n' ' '"),
        "./modules ./systemd ./systemd/systemd-shutdown"
    );
    assert!(run(&mut m, "readlink -f /etc/localtime").ends_with("/share/zoneinfo/Europe/Amsterdam"));
    let id = run(&mut m, "id myuser");
    assert!(id.contains("(wheel)") && id.contains("(networkmanager)"), "{id}");

    run(
        &mut m,
        "mkdir -p /var/www/a /var/www/b && echo site-a > /var/www/a/index.html && echo site-b > /var/www/b/index.html",
    );
    let port = m.host_port(80).unwrap();
    for (host, body) in [("a.example", "site-a"), ("b.example", "site-b")] {
        let response = http_get(port, host);
        assert!(
            response.starts_with("HTTP/1.1 200") && response.trim_end().ends_with(body),
            "{host}: {response}"
        );
    }

    // The firewall: loaded before the network, its kernel modules loaded on demand; 8080 has a listener
    // (answering on loopback, which is trusted) but is not opened, so the host gets nothing from it, and the
    // refused connection is logged.
    assert_eq!(run(&mut m, "systemctl is-active firewall"), "active");
    assert_eq!(run(&mut m, "nft list tables"), "table inet rixos-fw");
    let modules = run(&mut m, "cut -d' ' -f1 /proc/modules | sort | tr '\\n' ' '");
    for module in [
        "nf_tables",
        "nft_ct",
        "nft_fib_inet",
        "nft_limit",
        "nft_log",
        "nf_conntrack",
    ] {
        assert!(
            modules.split(' ').any(|m| m == module),
            "{module} is not loaded: {modules}"
        );
    }
    assert_eq!(run(&mut m, "curl -s http://127.0.0.1:8080/"), CLOSED_PORT_BODY);
    let closed = m.host_port(8080).unwrap();
    if let Err(answer) = no_http_answer_within(closed, Duration::from_secs(5)) {
        panic!("port 8080 is not opened, yet the host got an answer: {answer}");
    }
    let logged = run(&mut m, "dmesg | grep -c 'refused connection: .*DPT=8080'");
    assert_ne!(logged, "0", "the refused connection is not in the kernel log");

    let ssh = qemu_harness::rixos::ssh(&b.key, m.host_port(22).unwrap(), "hostname");
    assert_eq!(
        String::from_utf8_lossy(&ssh.stdout).trim(),
        "mymachine",
        "ssh: {}",
        String::from_utf8_lossy(&ssh.stderr)
    );

    m.send_line("poweroff").unwrap();
    let status = m
        .wait_exit(Duration::from_secs(30))
        .expect("poweroff ends QEMU within 30 s");
    assert!(status.success(), "{status}");
}

/// `networking.firewall.enable = false`, built into the same store (only what changed is built), opens the
/// port the seed's firewall keeps closed.
#[test]
fn without_the_firewall_the_closed_port_answers() {
    let b = built();
    std::fs::write(
        b.dir.join("configuration-open.nix"),
        "{ ... }: {\n  imports = [ ./configuration.nix ];\n  networking.firewall.enable = false;\n}\n",
    )
    .unwrap();
    b.rixos(&[
        "system",
        "build-vm",
        "-c",
        "configuration-open.nix",
        "-o",
        "result-open",
    ]);
    let toplevel = std::fs::read_link(b.dir.join("result-open/system")).unwrap();
    let toplevel = toplevel.to_string_lossy();
    assert_ne!(
        toplevel, b.toplevel,
        "the configuration without a firewall is another system"
    );
    let disk = empty_ext4(&b.dir.join("open.img"), 1 << 30, "rixos-vm");
    let mut m = seed_vm(b, "seed-open", &toplevel, &disk, "")
        .forward_host_port(8080)
        .start()
        .unwrap();
    m.wait_for("mymachine login:", BOOT).unwrap();
    let port = m.host_port(8080).unwrap();
    // nginx may still be starting when the login prompt shows.
    let start = Instant::now();
    let answer = loop {
        match no_http_answer_within(port, Duration::from_secs(5)) {
            Err(answer) => break answer,
            Ok(()) if start.elapsed() > COMMAND => {
                panic!("no answer on 8080 within {COMMAND:?} of the login prompt")
            }
            Ok(()) => std::thread::sleep(Duration::from_secs(1)),
        }
    };
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.trim_end().ends_with(CLOSED_PORT_BODY),
        "{answer}"
    );
    m.kill().unwrap();
}

#[test]
fn stage_1_says_what_it_waited_for_and_offers_a_rescue_shell() {
    let b = built();
    let disk = empty_ext4(&b.dir.join("wrong-label.img"), 64 << 20, "other");
    let cmdline = format!("init={}/init console=ttyS0 panic=-1 rixos.timeout=3", b.toplevel);
    let mut m = Machine::builder("stage1-rescue")
        .direct_boot(
            &b.resolve(&format!("{}/kernel", b.toplevel)),
            Some(&b.resolve(&format!("{}/initrd", b.toplevel))),
            &cmdline,
        )
        .medium(MediumKind::VirtioDisk, &disk)
        .start()
        .unwrap();
    let said = m.wait_for("i)", BOOT).unwrap();
    assert!(said.contains("rixos-vm did not appear within 3 s"), "{said}");
    assert!(said.contains("label \"other\""), "it lists the devices it saw: {said}");
    m.send_line("i").unwrap();
    m.send_line("echo RESCUE-$((6 * 7))").unwrap();
    m.wait_for("RESCUE-42", COMMAND).unwrap();
    m.kill().unwrap();
}

/// A child process killed when the test ends, however it ends.
struct Killed(std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_run_script_makes_its_disk_and_boots_with_the_users_qemu_options() {
    let b = built();
    let disk = b.dir.join("run-script.img");
    let script = b.result.join("bin/run-mymachine-vm");
    let child = Command::new(&script)
        .env("QEMU_OPTS", "-nographic -no-reboot -name rixos-qemu-test:run-script")
        .env("QEMU_KERNEL_PARAMS", "console=ttyS0 panic=-1")
        .env("RIXOS_DISK_IMAGE", &disk)
        // The script asks rixos which accelerator works (`rixos qemu-accel --kernel` with the system's kernel);
        // a failure there ends the script before QEMU starts.
        .env("RIXOS", qemu_harness::rixos::binary())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let seen = Arc::new(Mutex::new(String::new()));
    let writer = Arc::clone(&seen);
    // Raw chunks, not lines: the login prompt has no newline after it.
    std::thread::spawn(move || {
        let mut stdout = stdout;
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 {
                break;
            }
            writer.lock().unwrap().push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    let start = Instant::now();
    while !seen.lock().unwrap().contains("mymachine login:") {
        assert!(
            start.elapsed() < BOOT,
            "no login prompt within {BOOT:?}; the console showed:\n{}",
            seen.lock().unwrap()
        );
        assert!(
            child.0.try_wait().unwrap().is_none(),
            "QEMU ended early:\n{}",
            seen.lock().unwrap()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(disk.exists(), "the run script made the disk image {}", disk.display());
    let console = seen.lock().unwrap().clone();
    assert!(
        console.contains("Command line:") && console.contains("console=ttyS0"),
        "QEMU_KERNEL_PARAMS reached the kernel"
    );
}

/// Types `command` at the shell, answers each prompt in `answers` (waited for in order) with its reply, and
/// returns what the command printed after the last reply and its exit status.
fn answering(m: &mut Machine, command: &str, answers: &[(&str, &str)]) -> (String, i32) {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    m.send_line(&format!("{command}; echo \"ANSWERED-{n} $?\"")).unwrap();
    for (prompt, reply) in answers {
        m.wait_for(prompt, COMMAND)
            .unwrap_or_else(|e| panic!("{command}: no {prompt:?}: {e}"));
        m.send_line(reply).unwrap();
    }
    let groups = m
        .wait_for_regex(&format!(r"([\s\S]*?)ANSWERED-{n} (\d+)\r?\n"), COMMAND)
        .unwrap_or_else(|e| panic!("{command}: {e}"));
    (
        groups[1].replace('\r', "").trim().to_string(),
        groups[2].parse().unwrap(),
    )
}

fn last_line(text: &str) -> &str {
    text.lines().last().unwrap_or_default().trim()
}

#[test]
fn a_wheel_user_becomes_root_and_the_gc_timer_collects_safely() {
    let b = built();
    let disk = b.dir.join("wheel-user.img");
    std::fs::File::create(&disk).unwrap().set_len(1 << 30).unwrap();
    let status = Command::new("mkfs.ext4")
        .args(["-q", "-L", "rixos-vm", "-E", "root_owner=0:0"])
        .arg(&disk)
        .status()
        .unwrap();
    assert!(status.success());
    // As the run script boots it: the closure's registration named on the command line.
    let closure_info = std::fs::read_link(b.result.join("closure-info")).unwrap();
    let params = format!("regInfo={}/registration", closure_info.display());
    let mut m = seed_vm(b, "wheel-user", &b.toplevel, &disk, &params).start().unwrap();
    m.wait_for("mymachine login:", BOOT).unwrap();
    m.send_line("myuser").unwrap();
    m.wait_for("Password:", COMMAND).unwrap();
    m.send_line(MYUSER_PASSWORD).unwrap();
    m.wait_for("$ ", COMMAND).unwrap();
    let sudo = format!("echo {MYUSER_PASSWORD} | sudo -S -p ''");

    // sudo with the user's password; quiet the kernel on the console first, as root.
    let first = run(&mut m, &format!("{sudo} bash -c 'dmesg -n 1; id -u'"));
    assert_eq!(last_line(&first), "0", "{first}");
    assert_eq!(run(&mut m, "id -u"), "1000");
    let wrapped = run(&mut m, "command -v sudo su passwd ping mount");
    assert_eq!(
        wrapped,
        "/run/wrappers/bin/sudo\n/run/wrappers/bin/su\n/run/wrappers/bin/passwd\n/run/wrappers/bin/ping\n/run/wrappers/bin/mount"
    );
    let listing = run(&mut m, "ls -l /run/wrappers/bin/sudo");
    assert!(listing.starts_with("-r-s--x--x 1 root root "), "{listing}");

    // su with root's password.
    let (out, status) = answering(&mut m, "su -c 'id -u'", &[("Password:", "rixos")]);
    assert_eq!((last_line(&out), status), ("0", 0), "{out}");

    // ping needs a raw socket: the wrapper's cap_net_raw.
    assert_eq!(
        run(&mut m, "ping -c1 -W10 127.0.0.1 >/dev/null && echo ping-ok"),
        "ping-ok"
    );

    // passwd changes the user's own password; su to the user takes the new one.
    let new_password = "another-Secret-42";
    let (out, status) = answering(
        &mut m,
        "passwd",
        &[
            ("Current password:", MYUSER_PASSWORD),
            ("New password:", new_password),
            ("Retype new password:", new_password),
        ],
    );
    assert_eq!(status, 0, "passwd: {out}");
    assert!(out.contains("password updated successfully"), "{out}");
    let (out, status) = answering(&mut m, "su myuser -c 'id -un'", &[("Password:", new_password)]);
    assert_eq!((last_line(&out), status), ("myuser", 0), "{out}");

    // The gc timer is there; its service runs the system's rixos against / and succeeds, keeping what the
    // system uses (its closure was registered at boot).
    let sudo = format!("echo {new_password} | sudo -S -p ''");
    // systemctl as a user needs D-Bus, which the system does not run; root's talks to systemd directly.
    let timers = run(
        &mut m,
        &format!("{sudo} systemctl list-timers --all --no-legend --no-pager"),
    );
    assert!(timers.contains("rixos-gc.timer"), "{timers}");
    let registered = run(
        &mut m,
        &format!("{sudo} rixos --store / store query --requisites $(readlink -f /run/current-system) | wc -l"),
    );
    assert!(last_line(&registered).parse::<u32>().unwrap() > 100, "{registered}");
    let started = run(
        &mut m,
        &format!("{sudo} systemctl start rixos-gc.service; echo started-$?"),
    );
    assert_eq!(last_line(&started), "started-0", "{started}");
    assert_eq!(
        last_line(&run(
            &mut m,
            &format!("{sudo} systemctl show -p Result -p ExecMainStatus rixos-gc.service | paste -sd' '")
        )),
        "Result=success ExecMainStatus=0"
    );
    let status = run(&mut m, &format!("{sudo} systemctl status --no-pager rixos-gc.service"));
    assert!(status.contains("status=0/SUCCESS"), "{status}");
    let journal = run(
        &mut m,
        &format!("{sudo} journalctl -u rixos-gc.service --no-pager -o cat"),
    );
    assert!(journal.contains("0 store paths deleted"), "{journal}");
    // And the system still works.
    assert_eq!(last_line(&run(&mut m, &format!("{sudo} id -u"))), "0");
    assert_eq!(
        last_line(&run(
            &mut m,
            &format!("{sudo} systemctl is-active sshd nginx | paste -sd' '")
        )),
        "active active"
    );

    m.send_line(&format!("{sudo} poweroff")).unwrap();
    let status = m
        .wait_exit(Duration::from_secs(30))
        .expect("poweroff ends QEMU within 30 s");
    assert!(status.success(), "{status}");
}
