//! One QEMU machine: how it is described ([`MachineBuilder`]), started, driven and stopped ([`Machine`]).

use std::fs::File;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use serde_json::json;
use thiserror::Error;

use crate::accel::Accel;
use crate::assets::Ovmf;
use crate::qmp::Qmp;
use crate::serial::{SerialLog, Wait, clean};

/// Every QEMU process the harness starts carries this in its `-name`, so leftovers can be found (see
/// [`Machine::leftover_processes`]).
const PROCESS_MARKER: &str = "rixos-qemu-test";

/// How many serial lines an error quotes.
const TAIL_LINES: usize = 25;

#[derive(Debug, Error)]
pub enum MachineError {
    #[error("machine {machine}: QEMU did not start: {reason}")]
    Start { machine: String, reason: String },
    #[error(
        "machine {machine}: no {pattern:?} on the serial console after {waited:?}; its last lines:\n{}",
        quote(tail)
    )]
    Timeout {
        machine: String,
        pattern: String,
        waited: Duration,
        tail: Vec<String>,
    },
    #[error(
        "machine {machine}: QEMU ended ({status}) before {pattern:?} appeared on the serial console; its last \
         lines:\n{}\nQEMU's own messages:\n{stderr}",
        quote(tail)
    )]
    Ended {
        machine: String,
        pattern: String,
        status: String,
        tail: Vec<String>,
        stderr: String,
    },
    #[error("machine {machine}: {source:#}")]
    Other { machine: String, source: anyhow::Error },
}

fn quote(lines: &[String]) -> String {
    if lines.is_empty() {
        return "  | (nothing)".to_string();
    }
    lines.iter().map(|l| format!("  | {l}")).collect::<Vec<_>>().join("\n")
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Firmware {
    /// SeaBIOS, QEMU's default.
    Bios,
    /// OVMF from Debian's `ovmf`, with a private copy of the variable store for each started machine.
    Uefi,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediumKind {
    /// A read-only CD-ROM drive on the SATA controller.
    Cdrom,
    /// A removable USB mass-storage stick on an XHCI controller.
    UsbStick,
    /// A virtio-blk disk.
    VirtioDisk,
    /// An NVMe drive.
    Nvme,
}

#[derive(Debug, Clone)]
struct Medium {
    kind: MediumKind,
    path: PathBuf,
}

/// A kernel started directly by QEMU, without a bootloader.
#[derive(Debug, Clone)]
pub struct DirectBoot {
    pub kernel: PathBuf,
    pub initrd: Option<PathBuf>,
    pub cmdline: String,
}

/// Connections the guest makes to `guest` go to `host` on this machine (a fake metadata service, say). QEMU
/// only accepts guest addresses inside the user-mode network, 10.0.2.0/24, other than .2 and .3.
#[derive(Debug, Clone, Copy)]
pub struct GuestForward {
    pub guest: (Ipv4Addr, u16),
    pub host: SocketAddr,
}

#[derive(Debug, Clone, Default)]
struct Network {
    host_forwards: Vec<u16>,
    guest_forwards: Vec<GuestForward>,
}

/// What a machine is made of. Cloneable, so the same machine can be started again after a power cut.
#[derive(Debug, Clone)]
pub struct MachineBuilder {
    name: String,
    firmware: Firmware,
    memory_mib: u32,
    cpus: u32,
    media: Vec<Medium>,
    direct_boot: Option<DirectBoot>,
    network: Option<Network>,
    no_reboot: bool,
    extra_args: Vec<String>,
}

impl MachineBuilder {
    pub fn firmware(mut self, firmware: Firmware) -> Self {
        self.firmware = firmware;
        self
    }

    pub fn memory_mib(mut self, memory_mib: u32) -> Self {
        self.memory_mib = memory_mib;
        self
    }

    pub fn cpus(mut self, cpus: u32) -> Self {
        self.cpus = cpus;
        self
    }

    /// Attaches a medium; media boot in the order they are attached.
    pub fn medium(mut self, kind: MediumKind, path: impl Into<PathBuf>) -> Self {
        self.media.push(Medium {
            kind,
            path: path.into(),
        });
        self
    }

    pub fn direct_boot(mut self, kernel: &Path, initrd: Option<&Path>, cmdline: &str) -> Self {
        let initrd = initrd.map(Path::to_path_buf);
        self.direct_boot = Some(DirectBoot {
            kernel: kernel.to_path_buf(),
            initrd,
            cmdline: cmdline.to_string(),
        });
        self
    }

    /// A user-mode network card (virtio-net, guest address 10.0.2.15 by DHCP, gateway 10.0.2.2).
    pub fn network(mut self) -> Self {
        self.network.get_or_insert_with(Network::default);
        self
    }

    /// Makes guest TCP port `guest_port` reachable on a free port of the host's loopback; ask
    /// [`Machine::host_port`] which.
    pub fn forward_host_port(mut self, guest_port: u16) -> Self {
        self.network
            .get_or_insert_with(Network::default)
            .host_forwards
            .push(guest_port);
        self
    }

    /// Adds a guest forward; an address QEMU would refuse is reported when the machine starts.
    pub fn forward_guest(mut self, forward: GuestForward) -> Self {
        self.network
            .get_or_insert_with(Network::default)
            .guest_forwards
            .push(forward);
        self
    }

    /// A reboot or triple fault ends QEMU instead of restarting the machine.
    pub fn no_reboot(mut self) -> Self {
        self.no_reboot = true;
        self
    }

    pub fn extra_args<S: Into<String>>(mut self, args: impl IntoIterator<Item = S>) -> Self {
        self.extra_args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Starts QEMU and connects to it. The machine runs until it powers off, is killed, or is dropped.
    pub fn start(&self) -> Result<Machine, MachineError> {
        Machine::start(self.clone())
    }

    fn qemu_args(&self, dir: &Path, accel: Accel, host_ports: &[(u16, u16)]) -> anyhow::Result<Vec<String>> {
        let mut args: Vec<String> = vec![
            "-name".into(),
            format!("{PROCESS_MARKER}:{}", self.name),
            "-machine".into(),
            "q35".into(),
        ];
        args.extend(accel.qemu_args().map(String::from));
        args.extend([
            "-m".into(),
            self.memory_mib.to_string(),
            "-smp".into(),
            self.cpus.to_string(),
        ]);
        // Only the devices asked for: a VGA card (for screenshots), the serial port on our stdio, QMP.
        args.extend(
            [
                "-nodefaults",
                "-no-user-config",
                "-display",
                "none",
                "-vga",
                "std",
                "-chardev",
                "stdio,id=serial0,signal=off",
                "-serial",
                "chardev:serial0",
                "-qmp",
            ]
            .map(String::from),
        );
        args.push(format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display()));
        if self.no_reboot {
            args.push("-no-reboot".into());
        }
        if self.firmware == Firmware::Uefi {
            let ovmf = Ovmf::find()?;
            let vars = dir.join("OVMF_VARS.fd");
            std::fs::copy(&ovmf.vars, &vars)
                .with_context(|| format!("copying the UEFI variable store {}", ovmf.vars.display()))?;
            args.push("-drive".into());
            args.push(format!(
                "if=pflash,format=raw,unit=0,readonly=on,file={}",
                ovmf.code.display()
            ));
            args.push("-drive".into());
            args.push(format!("if=pflash,format=raw,unit=1,file={}", vars.display()));
        }
        if let Some(boot) = &self.direct_boot {
            args.extend([
                "-kernel".into(),
                path_arg(&boot.kernel)?,
                "-append".into(),
                boot.cmdline.clone(),
            ]);
            if let Some(initrd) = &boot.initrd {
                args.extend(["-initrd".into(), path_arg(initrd)?]);
            }
        }
        let mut sata_port = 0;
        let mut xhci = false;
        for (index, medium) in self.media.iter().enumerate() {
            let id = format!("medium{index}");
            let boot_index = index + 1;
            let path = path_arg(&medium.path)?;
            let (format, read_only) = match medium.kind {
                MediumKind::Cdrom => ("raw", true),
                _ => (image_format(&medium.path)?, false),
            };
            let media = if medium.kind == MediumKind::Cdrom {
                ",media=cdrom"
            } else {
                ""
            };
            let readonly = if read_only { ",readonly=on" } else { "" };
            args.push("-drive".into());
            args.push(format!("id={id},if=none,file={path},format={format}{media}{readonly}"));
            let device = match medium.kind {
                MediumKind::Cdrom => {
                    sata_port += 1;
                    format!("ide-cd,drive={id},bus=ide.{}", sata_port - 1)
                }
                MediumKind::UsbStick => {
                    if !xhci {
                        args.extend(["-device".into(), "qemu-xhci,id=xhci".into()]);
                        xhci = true;
                    }
                    format!("usb-storage,bus=xhci.0,drive={id},removable=on")
                }
                // A serial, as clouds and hypervisors give, so the disk has a /dev/disk/by-id name.
                MediumKind::VirtioDisk => format!("virtio-blk-pci,drive={id},serial=rixos{index}"),
                MediumKind::Nvme => format!("nvme,drive={id},serial=rixos{index}"),
            };
            args.push("-device".into());
            args.push(format!("{device},id={id}-dev,bootindex={boot_index}"));
        }
        if let Some(network) = &self.network {
            let mut netdev = "user,id=net0".to_string();
            for (guest, host) in host_ports {
                netdev.push_str(&format!(",hostfwd=tcp:127.0.0.1:{host}-:{guest}"));
            }
            for forward in &network.guest_forwards {
                // One relay process per guest connection (QEMU's `cmd:` form), so a service can be asked many
                // times; a `tcp:` chardev would be a single connection opened when QEMU starts.
                let (addr, port) = forward.guest;
                let [a, b, c, d] = addr.octets();
                if [a, b, c] != [10, 0, 2] || d == 2 || d == 3 {
                    return Err(anyhow!(
                        "guest forward to {addr}: the address must be in 10.0.2.0/24, not .2 or .3"
                    ));
                }
                let (host, host_port) = (forward.host.ip(), forward.host.port());
                let relay = crate::assets::busybox()?;
                netdev.push_str(&format!(
                    ",guestfwd=tcp:{addr}:{port}-cmd:{} nc {host} {host_port}",
                    relay.display()
                ));
            }
            args.extend(["-netdev".into(), netdev]);
            args.extend([
                "-device".into(),
                "virtio-net-pci,netdev=net0,mac=52:54:00:12:34:56".into(),
            ]);
        }
        args.extend(self.extra_args.iter().cloned());
        Ok(args)
    }
}

/// QEMU splits `-drive` options at commas; a path holding one would be misread.
fn path_arg(path: &Path) -> anyhow::Result<String> {
    let text = path
        .to_str()
        .ok_or_else(|| anyhow!("path {} is not UTF-8", path.display()))?;
    if text.contains(',') {
        return Err(anyhow!(
            "path {text} contains a comma, which QEMU's option syntax cannot carry"
        ));
    }
    if !path.exists() {
        return Err(anyhow!("{text} does not exist"));
    }
    Ok(text.to_string())
}

/// qcow2 images start with "QFI\xfb"; everything else is attached raw. Naming the format keeps QEMU from
/// guessing (and from refusing writes to block 0 of a raw image it had to probe).
fn image_format(path: &Path) -> anyhow::Result<&'static str> {
    let mut magic = [0u8; 4];
    let mut file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let is_qcow2 = file.read_exact(&mut magic).is_ok() && &magic == b"QFI\xfb";
    Ok(if is_qcow2 { "qcow2" } else { "raw" })
}

/// A free TCP port on the loopback. Another process could take it before QEMU binds it; in a test run that
/// race is rare enough, and QEMU then fails to start with a clear message.
fn free_loopback_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("finding a free loopback port")?;
    Ok(listener.local_addr()?.port())
}

/// A running (or ended) QEMU machine.
pub struct Machine {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    serial: Arc<SerialLog>,
    serial_thread: Option<JoinHandle<()>>,
    /// Where the serial console had been read up to by the last successful wait.
    cursor: usize,
    qmp: Qmp,
    host_ports: Vec<(u16, u16)>,
    accel: Accel,
    dir: Option<tempfile::TempDir>,
}

impl Machine {
    /// Describes a new machine: 1 CPU, 512 MiB, SeaBIOS, no media, no network.
    pub fn builder(name: &str) -> MachineBuilder {
        MachineBuilder {
            name: name.to_string(),
            firmware: Firmware::Bios,
            memory_mib: 512,
            cpus: 1,
            media: Vec::new(),
            direct_boot: None,
            network: None,
            no_reboot: false,
            extra_args: Vec::new(),
        }
    }

    fn start(config: MachineBuilder) -> Result<Machine, MachineError> {
        let machine = config.name.clone();
        let fail = |source: anyhow::Error| MachineError::Other {
            machine: machine.clone(),
            source,
        };
        let dir = tempfile::Builder::new()
            .prefix(&format!("rixos-qemu-{}-", config.name.replace('/', "_")))
            .tempdir()
            .map_err(|e| fail(anyhow!(e).context("creating the machine's working directory")))?;
        let accel = crate::accel::detect().map_err(fail)?;
        let mut host_ports = Vec::new();
        for &guest in config.network.iter().flat_map(|n| &n.host_forwards) {
            host_ports.push((guest, free_loopback_port().map_err(fail)?));
        }
        let args = config.qemu_args(dir.path(), accel, &host_ports).map_err(fail)?;
        let stderr_path = dir.path().join("qemu.stderr");
        let stderr = File::create(&stderr_path).map_err(|e| fail(e.into()))?;
        let mut command = Command::new(rixos::qemu::accel::qemu_binary());
        command
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr);
        // SAFETY: prctl is async-signal-safe; it ties QEMU's life to the thread that starts it, so a test process
        // that dies without unwinding (abort, SIGKILL) leaves no machine behind.
        unsafe {
            command.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|e| MachineError::Start {
            machine: machine.clone(),
            reason: format!("running qemu-system-x86_64: {e} (run scripts/setup to install qemu-system-x86)"),
        })?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let log_copy = File::create(dir.path().join("serial.log")).map_err(|e| fail(e.into()))?;
        let silence_note = (accel == Accel::Kvm)
            .then(|| format!("machine {machine}: no output for 60 s under KVM; retry with RIXOS_QEMU_ACCEL=tcg"));
        let (serial, serial_thread) = SerialLog::follow(stdout, log_copy, silence_note);
        let stdin = child.stdin.take();

        let qmp = match Qmp::connect(&dir.path().join("qmp.sock"), Duration::from_secs(20)) {
            Ok(qmp) => qmp,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let said = std::fs::read_to_string(&stderr_path).unwrap_or_default();
                let reason = format!("{e:#}\nQEMU's own messages:\n{said}\ncommand line: {}", args.join(" "));
                return Err(MachineError::Start { machine, reason });
            }
        };
        Ok(Machine {
            name: config.name,
            child,
            stdin,
            serial,
            serial_thread: Some(serial_thread),
            cursor: 0,
            qmp,
            host_ports,
            accel,
            dir: Some(dir),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The QEMU process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn accel(&self) -> Accel {
        self.accel
    }

    /// The host loopback port forwarded to `guest_port`.
    pub fn host_port(&self, guest_port: u16) -> Option<u16> {
        self.host_ports
            .iter()
            .find(|(guest, _)| *guest == guest_port)
            .map(|(_, host)| *host)
    }

    /// Everything the serial console printed so far, as text.
    pub fn serial_output(&self) -> String {
        self.serial.text()
    }

    fn other(&self, source: anyhow::Error) -> MachineError {
        MachineError::Other {
            machine: self.name.clone(),
            source,
        }
    }

    /// Waits until `text` appears on the serial console after the previous match; returns the console output
    /// from there up to and including it.
    pub fn wait_for(&mut self, text: &str, timeout: Duration) -> Result<String, MachineError> {
        let needle = text.as_bytes().to_vec();
        self.wait_with(text, timeout, move |bytes| {
            bytes
                .windows(needle.len().max(1))
                .position(|w| w == needle.as_slice())
                .map(|p| p + needle.len())
        })
    }

    /// Like [`Machine::wait_for`] with a regular expression; returns its capture groups (0 is the whole match).
    pub fn wait_for_regex(&mut self, pattern: &str, timeout: Duration) -> Result<Vec<String>, MachineError> {
        let re = regex::bytes::Regex::new(pattern).map_err(|e| self.other(e.into()))?;
        let mut groups = Vec::new();
        self.wait_with(pattern, timeout, |bytes| {
            let captures = re.captures(bytes)?;
            groups = captures
                .iter()
                .map(|m| m.map(|m| clean(m.as_bytes())).unwrap_or_default())
                .collect();
            Some(captures.get(0).map_or(0, |m| m.end()))
        })?;
        Ok(groups)
    }

    fn wait_with(
        &mut self,
        pattern: &str,
        timeout: Duration,
        find: impl FnMut(&[u8]) -> Option<usize>,
    ) -> Result<String, MachineError> {
        let start = self.cursor;
        match self.serial.wait_until(start, timeout, find) {
            Wait::Found(end) => {
                self.cursor = start + end;
                let text = self.serial.text_between(start, self.cursor);
                Ok(text)
            }
            Wait::TimedOut => Err(MachineError::Timeout {
                machine: self.name.clone(),
                pattern: pattern.to_string(),
                waited: timeout,
                tail: self.serial.tail(TAIL_LINES),
            }),
            Wait::Closed => {
                let status = match self.child.wait() {
                    Ok(status) => status.to_string(),
                    Err(e) => format!("status unknown: {e}"),
                };
                Err(MachineError::Ended {
                    machine: self.name.clone(),
                    pattern: pattern.to_string(),
                    status,
                    tail: self.serial.tail(TAIL_LINES),
                    stderr: self.qemu_stderr(),
                })
            }
        }
    }

    /// Types `text` and Enter on the serial console.
    pub fn send_line(&mut self, text: &str) -> Result<(), MachineError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.other(anyhow!("the serial console is closed")));
        };
        let sent = stdin
            .write_all(format!("{text}\n").as_bytes())
            .and_then(|()| stdin.flush());
        sent.map_err(|e| self.other(anyhow!(e).context("typing on the serial console")))
    }

    /// Types `text` on the serial console as it is (escape sequences such as an arrow key's, no Enter).
    pub fn send_keys(&mut self, text: &str) -> Result<(), MachineError> {
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.other(anyhow!("the serial console is closed")));
        };
        let sent = stdin.write_all(text.as_bytes()).and_then(|()| stdin.flush());
        sent.map_err(|e| self.other(anyhow!(e).context("typing on the serial console")))
    }

    /// Takes the medium out of the drive of the `index`-th medium attached (a CD-ROM), as a user ejecting it.
    pub fn eject(&mut self, index: usize) -> Result<(), MachineError> {
        self.qmp_execute("eject", json!({ "device": format!("medium{index}"), "force": true }))
            .map(drop)
    }

    /// Saves the screen (the VGA console) as a PNG file.
    pub fn screenshot(&mut self, png: &Path) -> Result<(), MachineError> {
        let ppm = self.work_dir().join("screen.ppm");
        let filename = ppm.to_string_lossy().into_owned();
        self.qmp_execute("screendump", json!({ "filename": filename }))?;
        crate::assets::ppm_to_png(&ppm, png).map_err(|e| self.other(e))
    }

    /// Presses the ACPI power button (the guest decides what to do with it).
    pub fn power_button(&mut self) -> Result<(), MachineError> {
        self.qmp_execute("system_powerdown", json!({})).map(drop)
    }

    /// Presses the reset button.
    pub fn reset(&mut self) -> Result<(), MachineError> {
        self.qmp_execute("system_reset", json!({})).map(drop)
    }

    fn qmp_execute(&mut self, command: &str, arguments: serde_json::Value) -> Result<serde_json::Value, MachineError> {
        let reply = self.qmp.execute(command, arguments);
        reply.map_err(|e| self.other(e))
    }

    /// Cuts the power: QEMU is killed at once, disks keep whatever reached them.
    pub fn kill(&mut self) -> Result<(), MachineError> {
        if self.child.try_wait().map_err(|e| self.other(e.into()))?.is_none() {
            // ESRCH here only means it exited meanwhile; wait() below reaps it either way.
            let _ = self.child.kill();
        }
        self.child.wait().map_err(|e| self.other(e.into()))?;
        self.finish_serial();
        Ok(())
    }

    /// Waits for QEMU to end by itself (the guest powered off, or rebooted with `no_reboot`).
    pub fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus, MachineError> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().map_err(|e| self.other(e.into()))? {
                self.finish_serial();
                return Ok(status);
            }
            if Instant::now() >= deadline {
                return Err(MachineError::Timeout {
                    machine: self.name.clone(),
                    pattern: "(QEMU to exit)".to_string(),
                    waited: timeout,
                    tail: self.serial.tail(TAIL_LINES),
                });
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The QEMU processes started by this harness that are still running, anywhere on the host.
    pub fn leftover_processes() -> Vec<u32> {
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return Vec::new();
        };
        let mut pids: Vec<u32> = entries
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let marker = format!("{PROCESS_MARKER}:");
                let is_ours = cmdline.split(|&b| b == 0).any(|arg| arg.starts_with(marker.as_bytes()));
                // A zombie still has its cmdline cleared; only live processes count.
                is_ours && !is_zombie(*pid)
            })
            .collect();
        pids.sort_unstable();
        pids
    }

    fn work_dir(&self) -> &Path {
        self.dir
            .as_ref()
            .expect("the working directory lives as long as the machine")
            .path()
    }

    fn qemu_stderr(&self) -> String {
        std::fs::read_to_string(self.work_dir().join("qemu.stderr")).unwrap_or_default()
    }

    /// After QEMU ended: let the reader thread drain the last serial bytes.
    fn finish_serial(&mut self) {
        if let Some(thread) = self.serial_thread.take() {
            let _ = thread.join();
        }
    }
}

fn is_zombie(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The state follows the parenthesised command name, which may itself hold spaces or parentheses.
    stat.rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'))
}

impl Drop for Machine {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.finish_serial();
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            // Keep the serial log and QEMU's messages of a failed test for a look afterwards.
            eprintln!("machine {}: logs kept in {}", self.name, dir.keep().display());
        }
    }
}
