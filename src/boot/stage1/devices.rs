//! Finding block devices without udev: the kernel lists them in `/sys/class/block`, devtmpfs makes their
//! nodes, and reading each one's first bytes (and its disk's partition table) gives the filesystem, label,
//! UUID and PARTUUID that specs name. Waiting for a device is polling that list.
//!
//! A device is read once it is readable and remembered by name and device number; devices that could not be
//! read (a CD drive without its medium yet, a node not yet made) are read again on the next scan.

use std::collections::HashMap;
use std::fs;
use std::io::{self, Read};
use std::path::Path;
use std::time::{Duration, Instant};

use super::log;
use super::mounting::os_error;
use super::parttable;
use super::spec::{BlockIdentity, DeviceSpec, describe};
use super::superblock::{self, PROBE_BYTES};

const SYS_BLOCK: &str = "/sys/class/block";
const POLL_INTERVAL: Duration = Duration::from_millis(20);

#[derive(Default)]
pub(crate) struct DeviceScanner {
    /// By (name, "major:minor"): a node reused for another device is read again.
    known: HashMap<(String, String), BlockIdentity>,
}

/// The device a spec named: the node to mount, and what was read from it (when it is a block device).
#[derive(Debug, Clone)]
pub(crate) struct FoundDevice {
    pub(crate) node: String,
    pub(crate) identity: Option<BlockIdentity>,
}

impl DeviceScanner {
    /// Every block device now, in name order (so disks come before their partitions).
    pub(crate) fn scan(&mut self) -> Vec<BlockIdentity> {
        let Ok(entries) = fs::read_dir(SYS_BLOCK) else { return Vec::new() };
        let mut names: Vec<String> = entries.flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        let mut devices = Vec::new();
        for name in names {
            let sys = Path::new(SYS_BLOCK).join(&name);
            let Ok(dev) = fs::read_to_string(sys.join("dev")) else { continue };
            let key = (name.clone(), dev.trim().to_string());
            if let Some(identity) = self.known.get(&key) {
                devices.push(identity.clone());
                continue;
            }
            let sectors = fs::read_to_string(sys.join("size")).ok().and_then(|s| s.trim().parse::<u64>().ok());
            let empty = sectors == Some(0);
            // Unattached loop devices and empty RAM disks are noise in every list.
            if empty && ["loop", "ram", "zram", "nbd"].iter().any(|p| name.starts_with(p)) {
                continue;
            }
            // sysfs writes `/` in names (cciss/c0d0) as `!`.
            let node = format!("/dev/{}", name.replace('!', "/"));
            let mut identity = BlockIdentity { name: name.clone(), node: node.clone(), ..BlockIdentity::default() };
            if empty {
                identity.unreadable = Some("no medium".into());
            } else {
                match read_identity(&sys, &node, &mut identity) {
                    Ok(()) => {
                        log::debug(&format!("found {}", describe(&identity)));
                        self.known.insert(key, identity.clone());
                    }
                    // ENOMEDIUM: a drive without a disc (yet); not worth the error's wording.
                    Err(e) if e.raw_os_error() == Some(123) => identity.unreadable = Some("no medium".into()),
                    Err(e) => identity.unreadable = Some(format!("cannot read {node}: {}", os_error(&e))),
                }
            }
            devices.push(identity);
        }
        devices
    }
}

fn read_head(node: &str, len: usize) -> io::Result<Vec<u8>> {
    let mut file = fs::File::open(node)?;
    let mut head = vec![0u8; len];
    let mut filled = 0;
    while filled < len {
        match file.read(&mut head[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    head.truncate(filled);
    Ok(head)
}

fn read_identity(sys: &Path, node: &str, identity: &mut BlockIdentity) -> io::Result<()> {
    let head = read_head(node, PROBE_BYTES)?;
    if let Some(fs) = superblock::probe(&head) {
        identity.fstype = Some(fs.fstype.to_string());
        identity.label = fs.label;
        identity.uuid = fs.uuid;
    }
    // A partition knows its number; its parent directory in sysfs is its disk.
    let number = fs::read_to_string(sys.join("partition")).ok().and_then(|n| n.trim().parse::<u32>().ok());
    if let Some(number) = number {
        let disk = fs::canonicalize(sys)
            .ok()
            .and_then(|p| p.parent().and_then(Path::file_name).map(|n| n.to_string_lossy().replace('!', "/")));
        if let Some(disk) = disk {
            let disk_node = format!("/dev/{disk}");
            let mut table = read_head(&disk_node, PROBE_BYTES)?;
            let needed = parttable::bytes_needed(&table);
            if needed > table.len() {
                table = read_head(&disk_node, needed)?;
            }
            if let Some(part) = parttable::partition(&table, number) {
                identity.partuuid = Some(part.partuuid);
                identity.partlabel = part.partlabel;
            }
        }
    }
    Ok(())
}

/// The device `spec` names, if it is there now.
fn find(spec: &DeviceSpec, devices: &[BlockIdentity]) -> Option<FoundDevice> {
    if let DeviceSpec::Path(path) = spec {
        if fs::metadata(path).is_err() {
            return None;
        }
        // The node may be a symlink (by-id made by hand, /dev/root); compare where it leads.
        let real = fs::canonicalize(path).ok().map(|p| p.to_string_lossy().into_owned());
        let identity = devices.iter().find(|d| d.node == *path || Some(&d.node) == real.as_ref()).cloned();
        return Some(FoundDevice { node: path.clone(), identity });
    }
    let matching: Vec<&BlockIdentity> = devices.iter().filter(|d| spec.matches(d)).collect();
    if matching.len() > 1 {
        let names: Vec<&str> = matching.iter().map(|d| d.name.as_str()).collect();
        log::debug(&format!("{} devices match {spec}: {}; using {}", matching.len(), names.join(", "), names[0]));
    }
    matching.first().map(|d| FoundDevice { node: d.node.clone(), identity: Some((*d).clone()) })
}

/// Polls until `spec` appears or `timeout` passes. `what` names the device in messages ("the root device").
pub(crate) fn wait_for(
    scanner: &mut DeviceScanner,
    spec: &DeviceSpec,
    what: &str,
    timeout: Duration,
) -> Result<FoundDevice, String> {
    let started = Instant::now();
    let mut announced = false;
    loop {
        let devices = scanner.scan();
        if let Some(found) = find(spec, &devices) {
            if announced {
                log::info(&format!("found {what} {spec} at {} after {} ms", found.node, started.elapsed().as_millis()));
            }
            return Ok(found);
        }
        if started.elapsed() >= timeout {
            let seen = if devices.is_empty() {
                "no block devices at all (is the disk's driver, e.g. virtio_blk, ahci or sr_mod, in \
                 boot.initrd.availableKernelModules?)"
                    .to_string()
            } else {
                format!("block devices seen: {}", devices.iter().map(describe).collect::<Vec<_>>().join(", "))
            };
            return Err(format!("{what} {spec} did not appear within {} s; {seen}", timeout.as_secs()));
        }
        if !announced {
            log::info(&format!("waiting up to {} s for {what} {spec}", timeout.as_secs()));
            announced = true;
        }
        std::thread::sleep(POLL_INTERVAL);
    }
}
