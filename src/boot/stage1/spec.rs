//! Device specs (`LABEL=x`, `UUID=x`, `PARTUUID=x`, `PARTLABEL=x`, their `/dev/disk/by-*` forms, plain
//! device paths) and matching them against what was read from a block device.
//!
//! Pure: a `BlockIdentity` is filled in by whoever read the device; this file only compares and describes.
//! Without udev there are no `/dev/disk/by-*` links in stage 1, so those forms are matched by identity too.

use std::fmt;

/// What stage 1 knows about one block device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct BlockIdentity {
    /// The kernel's name (`vda1`, `sr0`).
    pub(crate) name: String,
    /// The device node (`/dev/vda1`).
    pub(crate) node: String,
    pub(crate) fstype: Option<String>,
    pub(crate) label: Option<String>,
    pub(crate) uuid: Option<String>,
    pub(crate) partuuid: Option<String>,
    pub(crate) partlabel: Option<String>,
    /// Why the device could not be read (no medium, I/O error); the other fields are then empty.
    pub(crate) unreadable: Option<String>,
}

/// How a filesystem names the device it lives on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum DeviceSpec {
    Label(String),
    Uuid(String),
    PartUuid(String),
    PartLabel(String),
    /// Any other path: it matches once the node exists.
    Path(String),
}

/// A spec's prefix and the kind of spec it makes.
type SpecPrefix = (&'static str, fn(String) -> DeviceSpec);

impl DeviceSpec {
    pub(crate) fn parse(spec: &str) -> DeviceSpec {
        let prefixed: [SpecPrefix; 8] = [
            ("LABEL=", DeviceSpec::Label),
            ("UUID=", DeviceSpec::Uuid),
            ("PARTUUID=", DeviceSpec::PartUuid),
            ("PARTLABEL=", DeviceSpec::PartLabel),
            ("/dev/disk/by-label/", |s| DeviceSpec::Label(unescape_udev(&s))),
            ("/dev/disk/by-uuid/", |s| DeviceSpec::Uuid(unescape_udev(&s))),
            ("/dev/disk/by-partuuid/", |s| DeviceSpec::PartUuid(unescape_udev(&s))),
            ("/dev/disk/by-partlabel/", |s| DeviceSpec::PartLabel(unescape_udev(&s))),
        ];
        for (prefix, make) in prefixed {
            if let Some(rest) = spec.strip_prefix(prefix) {
                return make(rest.to_string());
            }
        }
        DeviceSpec::Path(spec.to_string())
    }

    /// Labels compare exactly (as blkid does); UUIDs ignore case, since tools print them either way.
    pub(crate) fn matches(&self, device: &BlockIdentity) -> bool {
        let same_id =
            |wanted: &str, have: &Option<String>| have.as_deref().is_some_and(|h| h.eq_ignore_ascii_case(wanted));
        match self {
            DeviceSpec::Label(label) => device.label.as_deref() == Some(label.as_str()),
            DeviceSpec::Uuid(uuid) => same_id(uuid, &device.uuid),
            DeviceSpec::PartUuid(uuid) => same_id(uuid, &device.partuuid),
            DeviceSpec::PartLabel(label) => device.partlabel.as_deref() == Some(label.as_str()),
            DeviceSpec::Path(path) => device.node == *path,
        }
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Label(label) => write!(f, "LABEL={label}"),
            DeviceSpec::Uuid(uuid) => write!(f, "UUID={uuid}"),
            DeviceSpec::PartUuid(uuid) => write!(f, "PARTUUID={uuid}"),
            DeviceSpec::PartLabel(label) => write!(f, "PARTLABEL={label}"),
            DeviceSpec::Path(path) => write!(f, "{path}"),
        }
    }
}

/// One device for an error message: `vda1 (ext4, label "rixos", UUID 0a..., PARTUUID 5e...)`.
pub(crate) fn describe(device: &BlockIdentity) -> String {
    if let Some(why) = &device.unreadable {
        return format!("{} ({why})", device.name);
    }
    let mut facts = vec![device.fstype.clone().unwrap_or_else(|| "no filesystem".into())];
    if let Some(label) = &device.label {
        facts.push(format!("label {label:?}"));
    }
    if let Some(uuid) = &device.uuid {
        facts.push(format!("UUID {uuid}"));
    }
    if let Some(partuuid) = &device.partuuid {
        facts.push(format!("PARTUUID {partuuid}"));
    }
    if let Some(partlabel) = &device.partlabel {
        facts.push(format!("PARTLABEL {partlabel:?}"));
    }
    format!("{} ({})", device.name, facts.join(", "))
}

/// Filesystems whose source is not a block device (a 9p tag, `tmpfs`, an overlay's `overlay`), so the
/// spec is handed to mount(2) as it is instead of being waited for.
pub(crate) fn source_is_device(fstype: &str) -> bool {
    !matches!(
        fstype,
        "9p" | "virtiofs"
            | "tmpfs"
            | "ramfs"
            | "overlay"
            | "proc"
            | "sysfs"
            | "devtmpfs"
            | "nfs"
            | "nfs4"
            | "cifs"
            | "smb3"
            | "none"
    )
}

/// udev writes unsafe characters in `/dev/disk/by-*` names as `\xHH`.
fn unescape_udev(name: &str) -> String {
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes.get(at + 2..at + 4).and_then(|h| std::str::from_utf8(h).ok());
        match (
            bytes[at],
            bytes.get(at + 1),
            hex.and_then(|h| u8::from_str_radix(h, 16).ok()),
        ) {
            (b'\\', Some(b'x'), Some(byte)) => {
                out.push(byte);
                at += 4;
            }
            (byte, _, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk() -> BlockIdentity {
        BlockIdentity {
            name: "vda1".into(),
            node: "/dev/vda1".into(),
            fstype: Some("ext4".into()),
            label: Some("rixos".into()),
            uuid: Some("0a1b2c3d-0000-4000-8000-00000000abcd".into()),
            partuuid: Some("5e3c1a2b-01".into()),
            partlabel: Some("root fs".into()),
            unreadable: None,
        }
    }

    #[test]
    fn parses_all_forms() {
        assert_eq!(DeviceSpec::parse("LABEL=rixos"), DeviceSpec::Label("rixos".into()));
        assert_eq!(DeviceSpec::parse("UUID=ab-cd"), DeviceSpec::Uuid("ab-cd".into()));
        assert_eq!(
            DeviceSpec::parse("PARTUUID=ab-01"),
            DeviceSpec::PartUuid("ab-01".into())
        );
        assert_eq!(
            DeviceSpec::parse("PARTLABEL=root"),
            DeviceSpec::PartLabel("root".into())
        );
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-label/my\\x20disk"),
            DeviceSpec::Label("my disk".into())
        );
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-uuid/ab-cd"),
            DeviceSpec::Uuid("ab-cd".into())
        );
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-partuuid/ab-01"),
            DeviceSpec::PartUuid("ab-01".into())
        );
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-partlabel/root"),
            DeviceSpec::PartLabel("root".into())
        );
        assert_eq!(DeviceSpec::parse("/dev/vda1"), DeviceSpec::Path("/dev/vda1".into()));
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-id/virtio-x"),
            DeviceSpec::Path("/dev/disk/by-id/virtio-x".into())
        );
        assert_eq!(
            DeviceSpec::parse("/dev/disk/by-label/bad\\xZZ"),
            DeviceSpec::Label("bad\\xZZ".into())
        );
    }

    #[test]
    fn matching() {
        let d = disk();
        assert!(DeviceSpec::parse("LABEL=rixos").matches(&d));
        assert!(
            !DeviceSpec::parse("LABEL=RIXOS").matches(&d),
            "labels are case-sensitive"
        );
        assert!(DeviceSpec::parse("UUID=0A1B2C3D-0000-4000-8000-00000000ABCD").matches(&d));
        assert!(!DeviceSpec::parse("UUID=0a1b2c3d").matches(&d));
        assert!(DeviceSpec::parse("PARTUUID=5E3C1A2B-01").matches(&d));
        assert!(DeviceSpec::parse("/dev/disk/by-partlabel/root\\x20fs").matches(&d));
        assert!(DeviceSpec::parse("/dev/vda1").matches(&d));
        assert!(!DeviceSpec::parse("/dev/vda").matches(&d));
        assert!(!DeviceSpec::parse("LABEL=x").matches(&BlockIdentity::default()));
    }

    #[test]
    fn describes_devices() {
        assert_eq!(
            describe(&disk()),
            "vda1 (ext4, label \"rixos\", UUID 0a1b2c3d-0000-4000-8000-00000000abcd, PARTUUID 5e3c1a2b-01, \
             PARTLABEL \"root fs\")"
        );
        let empty = BlockIdentity {
            name: "sr0".into(),
            ..BlockIdentity::default()
        };
        assert_eq!(describe(&empty), "sr0 (no filesystem)");
        let unreadable = BlockIdentity {
            name: "sr1".into(),
            unreadable: Some("no medium".into()),
            ..empty
        };
        assert_eq!(describe(&unreadable), "sr1 (no medium)");
        assert_eq!(DeviceSpec::parse("/dev/disk/by-uuid/x").to_string(), "UUID=x");
    }

    #[test]
    fn device_sources() {
        assert!(source_is_device("ext4"));
        assert!(source_is_device("vfat"));
        assert!(!source_is_device("9p"));
        assert!(!source_is_device("tmpfs"));
        assert!(!source_is_device("overlay"));
    }
}
