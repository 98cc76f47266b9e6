//! Carrying out a plan, as nixos-install does after partitioning, in one go: the configuration written and
//! the system built in the live system's own store (so a configuration that does not build leaves the disk
//! untouched), then the disk partitioned (the `gpt` crate), formatted (Debian's mkfs.vfat, mkfs.ext4, mkswap
//! with the plan's UUIDs), mounted, the closure copied from the live store with its registration, the system
//! profile, channel and /etc/rixos, and the bootloader installed (`boot::loader`, GRUB's BIOS images into the
//! disk). Each step shows progress and goes to /var/log/rixos-install.log.
//!
//! A failure before the first write leaves the disk as it was; after it, everything is unmounted and the disk
//! is left with an empty partition table, never a half-installed system. No other disk is opened.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use gpt::disk::LogicalBlockSize;
use gpt::mbr::ProtectiveMBR;
use gpt::partition_types;

use super::plan::{Kind, Plan, sha512_crypt};
use crate::boot::loader::{Generation, install_on_mounted_esp};
use crate::image::disk::layout::SECTOR;
use crate::image::disk::staging::{RootContents, stage_root};
use crate::progress::{Progress, human_size};
use crate::store::local::LocalStore;
use crate::store::path::StorePath;
use crate::store::registration::{parse_registration, registration};
use crate::store::resolve::resolve_under;

/// Where the install log goes.
pub const LOG: &str = "/var/log/rixos-install.log";
/// Where the new root is mounted while it is filled.
const TARGET: &str = "/run/rixos-install/root";
/// A test hook: the name of a step after which the install fails as if that step's successor had, so the VM
/// tests can check what a failure leaves behind.
const FAIL_AFTER: &str = "RIXOS_INSTALL_FAIL_AFTER";

nix::ioctl_none!(reread_partitions, 0x12, 95);

/// Builds the system of a configuration file in the live store and gives its toplevel.
pub type BuildSystem<'a> = &'a dyn Fn(&Path) -> Result<StorePath>;

/// The install log: every step and error, appended.
struct Log(Option<File>);

impl Log {
    fn open() -> Log {
        let file = OpenOptions::new().create(true).append(true).open(LOG).ok();
        Log(file)
    }

    fn line(&mut self, text: &str) {
        if let Some(file) = &mut self.0 {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0);
            let _ = writeln!(file, "[{now}] {text}");
        }
    }
}

/// Installs `plan`, building its configuration with `build` in the store at `/` (the live system's).
pub fn install(plan: &Plan, build: BuildSystem<'_>) -> Result<()> {
    let mut log = Log::open();
    log.line(&format!("install started\n{}", plan.summary()));
    let mut step = "writing the configuration";
    let mut written = false;
    let result = steps(plan, build, &mut log, &mut step, &mut written);
    let disk = plan.disk.path.display();
    match result {
        Ok(()) => {
            log.line("install finished");
            Ok(())
        }
        Err(error) => {
            log.line(&format!("failed while {step}: {error:#}"));
            unmount_all();
            if !written {
                return Err(error.context(format!(
                    "the install failed while {step}; nothing was written to {disk} (details in {LOG})"
                )));
            }
            let cleared = clear_partition_table(plan);
            log.line(&format!("partition table cleared: {cleared:?}"));
            let left = match cleared {
                Ok(()) => format!("{disk} was left with an empty partition table"),
                Err(e) => format!("clearing the partition table of {disk} failed too ({e:#}); it is not bootable"),
            };
            Err(error.context(format!("the install failed while {step}; {left} (details in {LOG})")))
        }
    }
}

fn steps(
    plan: &Plan,
    build: BuildSystem<'_>,
    log: &mut Log,
    step: &mut &'static str,
    written: &mut bool,
) -> Result<()> {
    let fail_after = std::env::var(FAIL_AFTER).unwrap_or_default();
    // Logs a finished step and names the next one (what a failure from here on reports); the test hook fails
    // the next step as soon as it starts.
    let done = |name: &str, next: &'static str, step: &mut &'static str, log: &mut Log| -> Result<()> {
        log.line(&format!("done: {name}"));
        *step = next;
        if fail_after == name {
            bail!("a failure injected after the step {name:?} ({FAIL_AFTER})");
        }
        Ok(())
    };

    let work = tempfile::Builder::new()
        .prefix("rixos-install-")
        .tempdir()
        .context("creating the install's work directory")?;
    let configuration = work.path().join("configuration.nix");
    let hardware = work.path().join("hardware-configuration.nix");
    std::fs::write(&configuration, plan.configuration(&sha512_crypt)?)?;
    std::fs::write(&hardware, plan.hardware_configuration())?;
    done("configure", "building the system", step, log)?;

    let toplevel = build(&configuration)?;
    log.line(&format!("system: {toplevel}"));
    let store = LocalStore::open(Path::new("/"))?;
    let channel = live_channel();
    let mut roots = vec![toplevel.clone()];
    roots.extend(channel.iter().cloned());
    let infos = closure_infos(&store, &roots)?;
    let bytes: u64 = infos.iter().map(|i| i.nar_size).sum();
    let root = plan.partition(Kind::Root).context("the plan has no root partition")?;
    // ext4's metadata and the journal take a few percent; the rest must hold the closure.
    if bytes + bytes / 10 + (128 << 20) > root.extent.bytes() {
        bail!(
            "the system's closure ({}) does not fit the root partition of {}: give a larger disk",
            human_size(bytes),
            human_size(root.extent.bytes())
        );
    }
    done("build", "partitioning", step, log)?;

    *written = true;
    let progress = Progress::stage(format!("partitioning {}", plan.disk.path.display()));
    partition(plan)?;
    progress.finish();
    done("partition", "formatting", step, log)?;

    let progress = Progress::stage("formatting");
    let part = |kind: Kind| plan.partition(kind).map(|p| plan.disk.partition_path(p.number));
    let esp = part(Kind::Esp).context("no ESP")?;
    let root_dev = part(Kind::Root).context("no root")?;
    run_logged(
        log,
        Command::new("mkfs.vfat")
            .args(["-F", "32", "-n", "ESP", "-i", &format!("{:08X}", plan.ids.esp)])
            .arg(&esp),
    )?;
    run_logged(
        log,
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-L", "rixos", "-U", &plan.ids.root.to_string()])
            .arg(&root_dev),
    )?;
    if let Some(swap) = part(Kind::Swap) {
        run_logged(
            log,
            Command::new("mkswap")
                .args(["-L", "swap", "-U", &plan.ids.swap.to_string()])
                .arg(&swap),
        )?;
    }
    progress.finish();
    done("format", "copying the system", step, log)?;

    let target = Path::new(TARGET);
    std::fs::create_dir_all(target)?;
    mount(&root_dev, target, "ext4")?;
    std::fs::create_dir_all(target.join("boot"))?;
    mount(&esp, &target.join("boot"), "vfat")?;
    let progress = Progress::stage(format!("copying the system ({})", human_size(bytes)));
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let channel_list = std::fs::read_to_string("/nix/var/rixos/channels").ok();
    stage_root(
        target,
        &RootContents {
            store_dir: Path::new("/nix/store"),
            paths: &infos,
            toplevel: &toplevel,
            channel: channel.as_ref(),
            channel_list: channel_list.as_deref(),
            files: &[
                ("etc/rixos/configuration.nix".to_string(), configuration.clone()),
                ("etc/rixos/hardware-configuration.nix".to_string(), hardware.clone()),
            ],
            epoch: now,
        },
    )?;
    sync_fs(target)?;
    progress.finish();
    done("copy", "installing the bootloader", step, log)?;

    let progress = Progress::stage("installing the bootloader");
    let generation = Generation {
        number: 1,
        toplevel: toplevel.to_string(),
        created: now,
    };
    let resolve = |p: &str| resolve_under(Path::new("/"), p);
    let installed = install_on_mounted_esp(&[generation], None, &target.join("boot"), &resolve)
        .context("writing the boot files onto the ESP")?;
    if let Some((boot_img, core_img)) = &installed.bios {
        let read = |p: &Path| std::fs::read(p).with_context(|| format!("reading GRUB's {}", p.display()));
        crate::image::disk::grub_bios::install_on_device(&plan.disk.path, &read(boot_img)?, &read(core_img)?)?;
    }
    progress.finish();
    done("bootloader", "unmounting", step, log)?;

    sync_fs(&target.join("boot"))?;
    unmount(&target.join("boot"))?;
    unmount(target)?;
    done("unmount", "finishing", step, log)?;
    Ok(())
}

/// The registration of everything `roots` need, in the store's order.
fn closure_infos(store: &LocalStore, roots: &[StorePath]) -> Result<Vec<crate::store::db::PathInfo>> {
    let closure = store.requisites(roots)?;
    parse_registration(&registration(store, &closure)?, "the system's registration")
}

/// What the installed system will roughly take before it is built: the live system's closure and its
/// channel (the installed system is the live one without the installer's extras). The plan's minimum size
/// comes from it; the built system's own closure is checked again before the disk is touched.
pub fn estimate_closure_bytes() -> Result<u64> {
    let store = LocalStore::open(Path::new("/"))?;
    let current = std::fs::canonicalize("/run/current-system").context("reading /run/current-system")?;
    let mut roots = vec![StorePath::parse(&current.to_string_lossy())?];
    roots.extend(live_channel());
    Ok(closure_infos(&store, &roots)?.iter().map(|i| i.nar_size).sum())
}

/// The live system's channels generation, which the installed machine gets.
fn live_channel() -> Option<StorePath> {
    let real = std::fs::canonicalize("/nix/var/nix/profiles/per-user/root/channels").ok()?;
    StorePath::parse(&real.to_string_lossy()).ok()
}

fn run_logged(log: &mut Log, command: &mut Command) -> Result<()> {
    let out = crate::command::run(command)?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !text.trim().is_empty() {
        log.line(text.trim_end());
    }
    Ok(())
}

/// Opens the whole disk exclusively: the kernel refuses while any of its partitions is mounted or held.
fn open_exclusive(disk: &Path) -> Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(nix::libc::O_EXCL)
        .open(disk)
        .with_context(|| format!("opening {} for writing (is a partition of it in use?)", disk.display()))
}

/// Clears the old signatures, writes the plan's GPT and protective MBR, and has the kernel read it.
fn partition(plan: &Plan) -> Result<()> {
    let disk = &plan.disk.path;
    // Old file systems' signatures go first, so nothing later finds a stale label or UUID on the new
    // partitions (wipefs, util-linux).
    for part in &plan.disk.partitions {
        crate::command::run(Command::new("wipefs").args(["-q", "-a"]).arg(&part.path))?;
    }
    crate::command::run(Command::new("wipefs").args(["-q", "-a"]).arg(disk))?;
    let mut partitions = std::collections::BTreeMap::new();
    for (i, p) in plan.partitions.iter().enumerate() {
        let kind = match p.kind {
            Kind::BiosBoot => partition_types::BIOS,
            Kind::Esp => partition_types::EFI,
            Kind::Root => partition_types::LINUX_FS,
            Kind::Swap => partition_types::LINUX_SWAP,
        };
        let mut guid = [0u8; 16];
        guid.copy_from_slice(&plan.ids.disk.as_bytes()[..]);
        guid[15] ^= (i + 1) as u8;
        partitions.insert(
            p.number,
            gpt::partition::Partition {
                part_type_guid: kind,
                part_guid: uuid::Builder::from_random_bytes(guid).into_uuid(),
                first_lba: p.extent.first_lba,
                last_lba: p.extent.first_lba + p.extent.sectors - 1,
                flags: 0,
                name: p.name.to_string(),
            },
        );
    }
    write_table(plan, partitions)?;
    for p in &plan.partitions {
        wait_for(&plan.disk.partition_path(p.number))?;
    }
    Ok(())
}

/// An empty GPT on the disk, read by the kernel: what a failed install leaves.
fn clear_partition_table(plan: &Plan) -> Result<()> {
    write_table(plan, Default::default())
}

/// Writes a GPT holding `partitions` and its protective MBR onto the disk opened exclusively, and has the
/// kernel and udev take it in.
fn write_table(plan: &Plan, partitions: std::collections::BTreeMap<u32, gpt::partition::Partition>) -> Result<()> {
    let disk = &plan.disk.path;
    let mut file = open_exclusive(disk)?;
    let mut gpt = gpt::GptConfig::new()
        .writable(true)
        .logical_block_size(LogicalBlockSize::Lb512)
        .create_from_device(&mut file, Some(plan.ids.disk))
        .with_context(|| format!("starting the GUID partition table of {}", disk.display()))?;
    if !partitions.is_empty() {
        gpt.update_partitions(partitions).context("laying out the partitions")?;
    }
    gpt.write().context("writing the GUID partition table")?;
    let sectors = u32::try_from(plan.disk.size / SECTOR - 1).unwrap_or(u32::MAX);
    ProtectiveMBR::with_lb_size(sectors)
        .overwrite_lba0(&mut file)
        .context("writing the protective MBR")?;
    file.sync_all()?;
    reread(&file, disk)?;
    drop(file);
    settle();
    Ok(())
}

fn reread(file: &File, disk: &Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: BLKRRPART takes no argument; the descriptor is open.
    unsafe { reread_partitions(file.as_raw_fd()) }
        .with_context(|| format!("having the kernel read the new partition table of {}", disk.display()))?;
    Ok(())
}

/// Lets udev make the partitions' device nodes and links (systemd's udevadm; skipped where there is none).
fn settle() {
    let _ = Command::new("udevadm").args(["settle", "--timeout=30"]).status();
}

fn wait_for(device: &Path) -> Result<()> {
    let start = Instant::now();
    while !device.exists() {
        if start.elapsed() > Duration::from_secs(30) {
            bail!(
                "{} did not appear after the partition table was written",
                device.display()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}

fn mount(device: &Path, at: &Path, fstype: &str) -> Result<()> {
    nix::mount::mount(
        Some(device),
        at,
        Some(fstype),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .with_context(|| format!("mounting {} at {}", device.display(), at.display()))
}

fn unmount(at: &Path) -> Result<()> {
    nix::mount::umount(at).with_context(|| format!("unmounting {}", at.display()))
}

/// Unmounts whatever the install mounted, innermost first; lazily when busy, so no mount is left behind.
fn unmount_all() {
    let target = PathBuf::from(TARGET);
    for at in [target.join("boot"), target] {
        if nix::mount::umount(&at).is_err() {
            let _ = nix::mount::umount2(&at, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

fn sync_fs(at: &Path) -> Result<()> {
    let dir = File::open(at).with_context(|| format!("opening {}", at.display()))?;
    nix::unistd::syncfs(&dir).with_context(|| format!("syncing {}", at.display()))?;
    Ok(())
}
