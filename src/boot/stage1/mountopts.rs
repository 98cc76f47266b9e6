//! fstab-style mount options split the way mount(8) splits them: the generic ones become mount(2) flags,
//! the ones only mount(8) or systemd understand are dropped, and the rest go to the filesystem as its data
//! string.
//!
//! Pure. Also the home of the `MS_*` flag values, so the rest of stage 1 takes them from here.

pub(crate) const MS_RDONLY: u64 = 1;
pub(crate) const MS_NOSUID: u64 = 2;
pub(crate) const MS_NODEV: u64 = 4;
pub(crate) const MS_NOEXEC: u64 = 8;
pub(crate) const MS_SYNCHRONOUS: u64 = 16;
pub(crate) const MS_MANDLOCK: u64 = 64;
pub(crate) const MS_DIRSYNC: u64 = 128;
pub(crate) const MS_NOSYMFOLLOW: u64 = 256;
pub(crate) const MS_NOATIME: u64 = 1024;
pub(crate) const MS_NODIRATIME: u64 = 2048;
pub(crate) const MS_BIND: u64 = 4096;
pub(crate) const MS_MOVE: u64 = 8192;
pub(crate) const MS_REC: u64 = 16384;
pub(crate) const MS_SILENT: u64 = 32768;
pub(crate) const MS_RELATIME: u64 = 1 << 21;
pub(crate) const MS_STRICTATIME: u64 = 1 << 24;
pub(crate) const MS_LAZYTIME: u64 = 1 << 25;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MountOptions {
    pub(crate) flags: u64,
    /// What is left for the filesystem (`trans=virtio,msize=262144`), comma-separated.
    pub(crate) data: String,
}

impl MountOptions {
    pub(crate) fn is_bind(&self) -> bool {
        self.flags & MS_BIND != 0
    }
}

pub(crate) fn parse(options: &str) -> MountOptions {
    let mut flags = 0u64;
    let mut data: Vec<&str> = Vec::new();
    for option in options.split(',').filter(|o| !o.is_empty()) {
        // (set, clear): the later of two contradicting options wins, as with mount(8).
        let (set, clear) = match option {
            "ro" => (MS_RDONLY, 0),
            "rw" => (0, MS_RDONLY),
            "nosuid" => (MS_NOSUID, 0),
            "suid" => (0, MS_NOSUID),
            "nodev" => (MS_NODEV, 0),
            "dev" => (0, MS_NODEV),
            "noexec" => (MS_NOEXEC, 0),
            "exec" => (0, MS_NOEXEC),
            "sync" => (MS_SYNCHRONOUS, 0),
            "async" => (0, MS_SYNCHRONOUS),
            "mand" => (MS_MANDLOCK, 0),
            "nomand" => (0, MS_MANDLOCK),
            "dirsync" => (MS_DIRSYNC, 0),
            "nosymfollow" => (MS_NOSYMFOLLOW, 0),
            "noatime" => (MS_NOATIME, 0),
            "atime" => (0, MS_NOATIME),
            "nodiratime" => (MS_NODIRATIME, 0),
            "diratime" => (0, MS_NODIRATIME),
            "relatime" => (MS_RELATIME, 0),
            "norelatime" => (0, MS_RELATIME),
            "strictatime" => (MS_STRICTATIME, 0),
            "nostrictatime" => (0, MS_STRICTATIME),
            "lazytime" => (MS_LAZYTIME, 0),
            "nolazytime" => (0, MS_LAZYTIME),
            "silent" => (MS_SILENT, 0),
            "loud" => (0, MS_SILENT),
            "bind" => (MS_BIND, 0),
            "rbind" => (MS_BIND | MS_REC, 0),
            _ if is_userspace_only(option) => continue,
            _ => {
                data.push(option);
                continue;
            }
        };
        flags = (flags | set) & !clear;
    }
    MountOptions {
        flags,
        data: data.join(","),
    }
}

/// Options for mount(8), fstab readers and systemd, which a filesystem would reject as unknown.
fn is_userspace_only(option: &str) -> bool {
    matches!(
        option,
        "defaults" | "auto" | "noauto" | "nofail" | "user" | "nouser" | "users" | "owner" | "group" | "_netdev"
    ) || option.starts_with("x-")
        || option.starts_with("comment=")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_and_data() {
        assert_eq!(parse(""), MountOptions::default());
        assert_eq!(parse("defaults"), MountOptions::default());
        assert_eq!(
            parse("ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose"),
            MountOptions {
                flags: MS_RDONLY,
                data: "trans=virtio,version=9p2000.L,msize=262144,cache=loose".into()
            }
        );
        assert_eq!(
            parse("rw,nosuid,nodev,noexec,noatime,errors=remount-ro"),
            MountOptions {
                flags: MS_NOSUID | MS_NODEV | MS_NOEXEC | MS_NOATIME,
                data: "errors=remount-ro".into()
            }
        );
        assert_eq!(parse("relatime,lazytime").flags, MS_RELATIME | MS_LAZYTIME);
        assert!(parse("rbind").is_bind());
        assert_eq!(parse("ro").flags, MS_RDONLY);
    }

    #[test]
    fn later_options_win() {
        assert_eq!(parse("ro,rw").flags, 0);
        assert_eq!(parse("rw,ro").flags, MS_RDONLY);
        assert_eq!(parse("noexec,exec").flags, 0);
    }

    #[test]
    fn userspace_options_are_dropped() {
        assert_eq!(
            parse("nofail,x-systemd.device-timeout=5,noauto,_netdev,comment=x,mode=755"),
            MountOptions {
                flags: 0,
                data: "mode=755".into()
            }
        );
    }
}
