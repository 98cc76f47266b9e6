//! Stage 1 as a list of steps, in the order NixOS's stage-1-init.sh takes them: the API filesystems and the
//! console, the kernel command line and the config, kernel modules, the root (a device, checked and
//! mounted, lustrated if asked; or a live medium), the other filesystems needed for boot, then stage 2.
//!
//! Each step returns a message saying what it tried and why that failed; `run` hands the first one back
//! for the rescue menu. Success never returns: it ends in exec.

use std::convert::Infallible;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use super::cmdline::{self, KernelParams};
use super::config::{self, FsEntry, InitrdConfig, KernelModule, RootSource};
use super::devices::{self, DeviceScanner};
use super::fsck::{self, FsckOutcome};
use super::live;
use super::log;
use super::lustrate;
use super::mounting::{make_dir, mount_at, os_error};
use super::mountopts::{self, MS_NODEV, MS_NOEXEC, MS_NOSUID};
use super::rescue::FailurePolicy;
use super::rootpath;
use super::spec::{self, DeviceSpec};
use super::switch_root;
use super::sys;

const CONFIG_PATH: &str = "/etc/rixos-initrd.conf";
/// Where the new root is assembled before it becomes `/`.
const NEW_ROOT: &str = "/mnt-root";

pub(crate) struct Stopped {
    pub(crate) message: String,
    pub(crate) policy: FailurePolicy,
}

pub(crate) fn run() -> Stopped {
    let mut policy = FailurePolicy::default();
    match boot(&mut policy) {
        Ok(never) => match never {},
        Err(message) => Stopped { message, policy },
    }
}

fn boot(policy: &mut FailurePolicy) -> Result<Infallible, String> {
    mount_api_filesystems()?;
    let params = read_kernel_params();
    *policy = FailurePolicy::from_params(&params);
    let config = read_config()?;
    load_modules(&config.modules);

    let timeout = Duration::from_secs(params.timeout_secs.unwrap_or(config.timeout_secs));
    let mut scanner = DeviceScanner::default();
    let root_description = match &config.root {
        RootSource::Device(entry) => {
            let entry = with_kernel_overrides(entry, &params);
            let description = mount_root(&config, &entry, &mut scanner, timeout)?;
            if lustrate::requested(Path::new(NEW_ROOT)) {
                lustrate_root()?;
            }
            description
        }
        RootSource::Live { medium, squashfs } => {
            if params.root.is_some() {
                log::info("root= on the kernel command line is ignored: this initrd boots a live medium");
            }
            live::mount_live_root(&mut scanner, medium, squashfs, params.copytoram, timeout, NEW_ROOT)?
        }
    };
    for entry in &config.mounts {
        mount_boot_filesystem(&config, entry, &mut scanner, timeout)?;
    }

    let init = stage2_path(&params, &config)?;
    check_stage2(&init, &root_description)?;
    Err(switch_root::switch_and_exec(NEW_ROOT, &init))
}

/// /dev first: without a console in the initrd, it is where stdout and stderr come from.
fn mount_api_filesystems() -> Result<(), String> {
    let api = [
        ("devtmpfs", "/dev", MS_NOSUID, "mode=755"),
        ("proc", "/proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
        ("sysfs", "/sys", MS_NOSUID | MS_NODEV | MS_NOEXEC, ""),
        ("tmpfs", "/run", MS_NOSUID | MS_NODEV, "mode=755"),
    ];
    for (fstype, target, flags, data) in api {
        make_dir(target)?;
        match sys::mount_fs(fstype, target, fstype, flags, data) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(16) => {} // EBUSY: already mounted (by the kernel, or a rerun)
            Err(e) => return Err(format!("mounting {fstype} on {target} failed: {}", os_error(&e))),
        }
        if target == "/dev" {
            sys::ensure_console();
        }
    }
    Ok(())
}

fn read_kernel_params() -> KernelParams {
    let params = match fs::read_to_string("/proc/cmdline") {
        Ok(text) => cmdline::parse(&text),
        Err(e) => {
            log::info(&format!("reading /proc/cmdline failed ({}); using no kernel parameters", os_error(&e)));
            KernelParams::default()
        }
    };
    log::set_debug(params.debug);
    for warning in &params.warnings {
        log::info(&format!("kernel command line: {warning}"));
    }
    params
}

fn read_config() -> Result<InitrdConfig, String> {
    let text = fs::read_to_string(CONFIG_PATH)
        .map_err(|e| format!("reading {CONFIG_PATH} failed: {} (the initrd is incomplete)", os_error(&e)))?;
    config::parse(&text).map_err(|e| format!("{CONFIG_PATH} {e}"))
}

fn load_modules(modules: &[KernelModule]) {
    let started = Instant::now();
    let mut loaded = 0;
    for module in modules {
        let name = Path::new(&module.path).file_name().map_or(module.path.clone(), |n| n.to_string_lossy().into_owned());
        let result = fs::File::open(&module.path).and_then(|file| sys::finit_module(&file));
        match result {
            Ok(()) => {
                loaded += 1;
                log::debug(&format!("loaded {name}"));
            }
            Err(e) if e.raw_os_error() == Some(17) => log::debug(&format!("{name} is already loaded")), // EEXIST
            // ENOENT, ENXIO, ENODEV: the file or the hardware is absent, which availableKernelModules expects.
            Err(e) if module.optional && matches!(e.raw_os_error(), Some(2) | Some(6) | Some(19)) => {
                log::debug(&format!("{name} not loaded: {}", os_error(&e)));
            }
            Err(e) => log::info(&format!("loading the kernel module {} failed: {}; going on", module.path, os_error(&e))),
        }
    }
    log::debug(&format!("loaded {loaded} of {} kernel modules in {} ms", modules.len(), started.elapsed().as_millis()));
}

/// `root=`, `rootfstype=` and `rootflags=` replace the config's spec, type and options.
fn with_kernel_overrides(entry: &FsEntry, params: &KernelParams) -> FsEntry {
    FsEntry {
        spec: params.root.clone().unwrap_or_else(|| entry.spec.clone()),
        mount_point: entry.mount_point.clone(),
        fstype: params.root_fstype.clone().unwrap_or_else(|| entry.fstype.clone()),
        options: params.root_flags.clone().unwrap_or_else(|| entry.options.clone()),
    }
}

/// Waits for the device, checks it, mounts it. Returns `SPEC, NODE` for later messages.
fn mount_root(
    config: &InitrdConfig,
    entry: &FsEntry,
    scanner: &mut DeviceScanner,
    timeout: Duration,
) -> Result<String, String> {
    let spec = DeviceSpec::parse(&entry.spec);
    let found = devices::wait_for(scanner, &spec, "the root device", timeout)?;
    let fstype = resolve_fstype(&entry.fstype, found.identity.as_ref().and_then(|i| i.fstype.as_deref()), &found.node)?;
    check_filesystem(config, &fstype, &found.node)?;
    mount_at(&found.node, NEW_ROOT, &fstype, &mountopts::parse(&entry.options))?;
    log::info(&format!("mounted the root {spec} ({}, {fstype})", found.node));
    Ok(format!("{spec}, {}", found.node))
}

/// `auto` takes what the superblock says.
fn resolve_fstype(configured: &str, probed: Option<&str>, node: &str) -> Result<String, String> {
    if configured != "auto" {
        return Ok(configured.to_string());
    }
    probed
        .map(str::to_string)
        .ok_or_else(|| format!("the filesystem type is `auto`, but no known filesystem was found on {node}"))
}

fn check_filesystem(config: &InitrdConfig, fstype: &str, device: &str) -> Result<(), String> {
    let Some(checker) = config.checker_for(fstype) else { return Ok(()) };
    if !Path::new(checker).exists() {
        log::info(&format!("the {fstype} checker {checker} is not in the initrd; {device} is not checked"));
        return Ok(());
    }
    // e2fsck asks /etc/mtab whether the device is mounted; stage 1 has no other mount table.
    if fs::symlink_metadata("/etc/mtab").is_err() {
        let _ = fs::create_dir_all("/etc");
        if let Err(e) = std::os::unix::fs::symlink("/proc/mounts", "/etc/mtab") {
            log::debug(&format!("linking /etc/mtab to /proc/mounts failed: {e}"));
        }
    }
    log::info(&format!("checking {device} ({fstype})"));
    match fsck::check(checker, device)? {
        FsckOutcome::Clean => Ok(()),
        FsckOutcome::Corrected => {
            log::info(&format!("errors on {device} were corrected"));
            Ok(())
        }
        FsckOutcome::RebootNeeded => {
            log::info(&format!("errors on {device} were corrected and the checker asks for a reboot; rebooting"));
            sys::reboot_now();
        }
    }
}

fn lustrate_root() -> Result<(), String> {
    log::info(&format!("{NEW_ROOT}/{} exists: lustrating the root", lustrate::MARKER));
    let report = lustrate::lustrate(Path::new(NEW_ROOT)).map_err(|e| format!("lustration failed: {e}"))?;
    log::info(&format!("moved to /old-root: {}", list_or_none(&report.moved)));
    for warning in &report.warnings {
        log::info(warning);
    }
    log::info(&format!("kept from the old root: {}", list_or_none(&report.kept)));
    Ok(())
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() { "nothing".into() } else { items.join(", ") }
}

/// A `mount` line: bind mounts and 9p/tmpfs/... sources are used as they are, devices waited for.
fn mount_boot_filesystem(
    config: &InitrdConfig,
    entry: &FsEntry,
    scanner: &mut DeviceScanner,
    timeout: Duration,
) -> Result<(), String> {
    let target = format!("{NEW_ROOT}{}", entry.mount_point);
    let options = mountopts::parse(&entry.options);
    if options.is_bind() {
        // The source of a bind mount is a path on the new root.
        let source = format!("{NEW_ROOT}{}", entry.spec);
        return mount_at(&source, &target, "none", &options);
    }
    if !spec::source_is_device(&entry.fstype) {
        mount_at(&entry.spec, &target, &entry.fstype, &options)?;
        log::debug(&format!("mounted {} on {} ({})", entry.spec, entry.mount_point, entry.fstype));
        return Ok(());
    }
    let spec = DeviceSpec::parse(&entry.spec);
    let what = format!("the device for {}", entry.mount_point);
    let found = devices::wait_for(scanner, &spec, &what, timeout)?;
    let fstype = resolve_fstype(&entry.fstype, found.identity.as_ref().and_then(|i| i.fstype.as_deref()), &found.node)?;
    check_filesystem(config, &fstype, &found.node)?;
    mount_at(&found.node, &target, &fstype, &options)?;
    log::info(&format!("mounted {spec} ({}, {fstype}) on {}", found.node, entry.mount_point));
    Ok(())
}

fn stage2_path(params: &KernelParams, config: &InitrdConfig) -> Result<String, String> {
    let init = params.init.clone().or_else(|| config.init.clone()).ok_or_else(|| {
        format!("no stage 2: {CONFIG_PATH} has no `init` line and the kernel command line no init=")
    })?;
    if !init.starts_with('/') {
        return Err(format!("stage 2 `{init}` is not an absolute path"));
    }
    Ok(init)
}

fn check_stage2(init: &str, root: &str) -> Result<(), String> {
    let resolved = rootpath::resolve_in_root(Path::new(NEW_ROOT), init)
        .map_err(|why| format!("stage 2 `{init}` does not exist on the root ({root}): {why}"))?;
    let md = fs::metadata(&resolved).map_err(|e| format!("stage 2 `{init}` on the root ({root}): {}", os_error(&e)))?;
    if !md.is_file() || md.permissions().mode() & 0o111 == 0 {
        return Err(format!("stage 2 `{init}` on the root ({root}) is not an executable file"));
    }
    Ok(())
}
