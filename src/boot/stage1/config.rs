//! `/etc/rixos-initrd.conf`: what rixos wrote into the initrd for stage 1 to do.
//!
//! One directive a line, fields separated by spaces, `#` (at the start of a line or after a space) starts a
//! comment. A field may hold a space or `#` written as an fstab-style octal escape (`\040`, `\043`, `\134`
//! for `\`). Directives:
//!
//! ```text
//! module PATH [optional]            kernel module, in load order; optional = failures are expected
//! root SPEC FSTYPE [OPTIONS]        the root filesystem (or `live`, never both)
//! live SPEC FILE                    live medium SPEC with the squashfs store FILE on it
//! mount SPEC MOUNTPOINT FSTYPE [OPTIONS]   another filesystem needed for boot, under the new root
//! fsck FSTYPE CHECKER               checker run as `CHECKER -p DEVICE` before mounting FSTYPE
//! timeout SECONDS                   how long to wait for devices (default 30)
//! init PATH                         stage 2, unless the kernel command line says `init=`
//! ```
//!
//! Pure: parses text, touches no files. Errors carry the line number, since the file is generated and an
//! error means a bug in the generator worth pointing at exactly.

use std::fmt;

/// How long to wait for a device when the config does not say.
pub(crate) const DEFAULT_TIMEOUT_SECS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KernelModule {
    pub(crate) path: String,
    /// From `boot.initrd.availableKernelModules`: missing hardware or an absent file is not an error.
    pub(crate) optional: bool,
}

/// A filesystem stage 1 mounts: the root (mount point `/`) or one of the `mount` lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FsEntry {
    /// A device spec (`LABEL=x`, `/dev/vda1`, ...) or, for 9p/tmpfs/..., the source as the kernel takes it.
    pub(crate) spec: String,
    pub(crate) mount_point: String,
    pub(crate) fstype: String,
    /// Comma-separated, as in fstab; empty when the line has none.
    pub(crate) options: String,
}

/// Where the new root comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootSource {
    Device(FsEntry),
    /// A live medium holding a squashfs of the store; the root itself is a tmpfs.
    Live {
        medium: String,
        squashfs: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct FsChecker {
    pub(crate) fstype: String,
    pub(crate) program: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct InitrdConfig {
    pub(crate) modules: Vec<KernelModule>,
    pub(crate) root: RootSource,
    pub(crate) mounts: Vec<FsEntry>,
    pub(crate) checkers: Vec<FsChecker>,
    pub(crate) timeout_secs: u64,
    pub(crate) init: Option<String>,
}

impl InitrdConfig {
    /// The checker for `fstype`, if the config names one.
    pub(crate) fn checker_for(&self, fstype: &str) -> Option<&str> {
        self.checkers
            .iter()
            .find(|c| c.fstype == fstype)
            .map(|c| c.program.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ConfigError {
    /// 1-based; 0 for errors about the file as a whole.
    pub(crate) line: usize,
    pub(crate) message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "line {}: {}", self.line, self.message)
        }
    }
}

pub(crate) fn parse(text: &str) -> Result<InitrdConfig, ConfigError> {
    let mut modules = Vec::new();
    let mut root: Option<(usize, RootSource)> = None;
    let mut mounts = Vec::new();
    let mut checkers: Vec<FsChecker> = Vec::new();
    let mut timeout_secs: Option<u64> = None;
    let mut init: Option<String> = None;

    for (index, raw_line) in text.lines().enumerate() {
        let line = index + 1;
        let err = |message: String| ConfigError { line, message };
        let fields: Vec<String> = split_fields(strip_comment(raw_line)).map_err(err)?;
        let Some((directive, args)) = fields.split_first() else {
            continue;
        };
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        match directive.as_str() {
            "module" => {
                let [path, rest @ ..] = args.as_slice() else {
                    return Err(err("`module` needs a path: module PATH [optional]".into()));
                };
                let optional = match rest {
                    [] => false,
                    ["optional"] => true,
                    _ => return Err(err(format!("`module` takes PATH [optional], got {}", rest.join(" ")))),
                };
                modules.push(KernelModule {
                    path: absolute(path, "module path").map_err(err)?,
                    optional,
                });
            }
            "root" | "live" => {
                if let Some((first, _)) = &root {
                    return Err(err(format!(
                        "a second root (`{directive}`); line {first} already gives one"
                    )));
                }
                let source = if directive == "root" {
                    let (spec, fstype, options) = match args.as_slice() {
                        [spec, fstype] => (spec, fstype, ""),
                        [spec, fstype, options] => (spec, fstype, *options),
                        _ => return Err(err("`root` takes SPEC FSTYPE [OPTIONS]".into())),
                    };
                    RootSource::Device(FsEntry {
                        spec: spec.to_string(),
                        mount_point: "/".into(),
                        fstype: fstype.to_string(),
                        options: options.to_string(),
                    })
                } else {
                    let [medium, squashfs] = args.as_slice() else {
                        return Err(err("`live` takes SPEC FILE (the squashfs on the medium)".into()));
                    };
                    RootSource::Live {
                        medium: medium.to_string(),
                        squashfs: absolute(squashfs, "squashfs file").map_err(err)?,
                    }
                };
                root = Some((line, source));
            }
            "mount" => {
                let (spec, mount_point, fstype, options) = match args.as_slice() {
                    [spec, mount_point, fstype] => (spec, mount_point, fstype, ""),
                    [spec, mount_point, fstype, options] => (spec, mount_point, fstype, *options),
                    _ => return Err(err("`mount` takes SPEC MOUNTPOINT FSTYPE [OPTIONS]".into())),
                };
                let mount_point = absolute(mount_point, "mount point").map_err(err)?;
                if mount_point == "/" {
                    return Err(err(
                        "`mount` cannot mount `/`; the root comes from the `root` line".into()
                    ));
                }
                mounts.push(FsEntry {
                    spec: spec.to_string(),
                    mount_point,
                    fstype: fstype.to_string(),
                    options: options.to_string(),
                });
            }
            "fsck" => {
                let [fstype, program] = args.as_slice() else {
                    return Err(err("`fsck` takes FSTYPE CHECKER".into()));
                };
                if checkers.iter().any(|c| c.fstype == *fstype) {
                    return Err(err(format!("a second checker for {fstype}")));
                }
                checkers.push(FsChecker {
                    fstype: fstype.to_string(),
                    program: absolute(program, "checker").map_err(err)?,
                });
            }
            "timeout" => {
                let [seconds] = args.as_slice() else {
                    return Err(err("`timeout` takes SECONDS".into()));
                };
                if timeout_secs.is_some() {
                    return Err(err("a second `timeout`".into()));
                }
                let seconds = seconds
                    .parse::<u64>()
                    .map_err(|_| err(format!("`timeout` wants whole seconds, got `{seconds}`")))?;
                timeout_secs = Some(seconds);
            }
            "init" => {
                let [path] = args.as_slice() else {
                    return Err(err("`init` takes PATH".into()));
                };
                if init.is_some() {
                    return Err(err("a second `init`".into()));
                }
                init = Some(absolute(path, "init").map_err(err)?);
            }
            other => return Err(err(format!("unknown directive `{other}`"))),
        }
    }

    let Some((_, root)) = root else {
        return Err(ConfigError {
            line: 0,
            message: "no `root` or `live` line: stage 1 cannot know what to mount".into(),
        });
    };
    Ok(InitrdConfig {
        modules,
        root,
        mounts,
        checkers,
        timeout_secs: timeout_secs.unwrap_or(DEFAULT_TIMEOUT_SECS),
        init,
    })
}

/// Cuts a comment: `#` at the start or after whitespace (so a `#` inside a field, rare as it is, survives).
fn strip_comment(line: &str) -> &str {
    let mut previous_is_space = true;
    for (at, c) in line.char_indices() {
        if c == '#' && previous_is_space {
            return &line[..at];
        }
        previous_is_space = c.is_whitespace();
    }
    line
}

fn split_fields(line: &str) -> Result<Vec<String>, String> {
    line.split_whitespace().map(unescape).collect()
}

/// Decodes fstab-style `\NNN` octal escapes (three digits), the only way to put a space into a field.
fn unescape(field: &str) -> Result<String, String> {
    if !field.contains('\\') {
        return Ok(field.to_string());
    }
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        if bytes[at] == b'\\' {
            let digits = bytes
                .get(at + 1..at + 4)
                .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
            let Some(digits) = digits else {
                return Err(format!(
                    "`{field}`: a backslash must start a three-digit octal escape like \\040"
                ));
            };
            let value = digits.iter().fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            let byte = u8::try_from(value).map_err(|_| format!("`{field}`: octal escape above \\377"))?;
            out.push(byte);
            at += 4;
        } else {
            out.push(bytes[at]);
            at += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{field}`: escapes make invalid UTF-8"))
}

fn absolute(path: &str, what: &str) -> Result<String, String> {
    if path.starts_with('/') {
        Ok(path.to_string())
    } else {
        Err(format!("the {what} `{path}` is not an absolute path"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FULL: &str = "\
# generated by rixos
module /lib/modules/6.1.0-x-amd64/kernel/drivers/virtio/virtio_pci.ko optional   # availableKernelModules
module /lib/modules/6.1.0-x-amd64/kernel/fs/ext4/ext4.ko
root LABEL=rixos ext4 rw
mount store /nix/store 9p ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose
mount tmpfs /tmp tmpfs
fsck ext4 /nix/store/abc-e2fsprogs/sbin/e2fsck

timeout 5
init /nix/store/xyz-system/init
";

    #[test]
    fn parses_every_directive() {
        let config = parse(FULL).unwrap();
        assert_eq!(config.modules.len(), 2);
        assert!(config.modules[0].optional);
        assert!(!config.modules[1].optional);
        assert_eq!(
            config.modules[1].path,
            "/lib/modules/6.1.0-x-amd64/kernel/fs/ext4/ext4.ko"
        );
        assert_eq!(
            config.root,
            RootSource::Device(FsEntry {
                spec: "LABEL=rixos".into(),
                mount_point: "/".into(),
                fstype: "ext4".into(),
                options: "rw".into()
            })
        );
        assert_eq!(config.mounts.len(), 2);
        assert_eq!(config.mounts[0].spec, "store");
        assert_eq!(config.mounts[0].mount_point, "/nix/store");
        assert_eq!(
            config.mounts[0].options,
            "ro,trans=virtio,version=9p2000.L,msize=262144,cache=loose"
        );
        assert_eq!(config.mounts[1].options, "");
        assert_eq!(config.checker_for("ext4"), Some("/nix/store/abc-e2fsprogs/sbin/e2fsck"));
        assert_eq!(config.checker_for("vfat"), None);
        assert_eq!(config.timeout_secs, 5);
        assert_eq!(config.init.as_deref(), Some("/nix/store/xyz-system/init"));
    }

    #[test]
    fn live_and_defaults() {
        let config = parse("live LABEL=RIXOS_ISO /rixos/store.squashfs\n").unwrap();
        assert_eq!(
            config.root,
            RootSource::Live {
                medium: "LABEL=RIXOS_ISO".into(),
                squashfs: "/rixos/store.squashfs".into()
            }
        );
        assert_eq!(config.timeout_secs, DEFAULT_TIMEOUT_SECS);
        assert_eq!(config.init, None);
    }

    #[test]
    fn octal_escapes_and_inner_hash() {
        let config = parse("root LABEL=my\\040disk ext4 rw\ninit /a#b\n").unwrap();
        let RootSource::Device(root) = config.root else {
            panic!("not a device root")
        };
        assert_eq!(root.spec, "LABEL=my disk");
        assert_eq!(config.init.as_deref(), Some("/a#b"));
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("root LABEL=a ext4\nroot LABEL=b ext4\n", 2, "already gives one"),
            ("root LABEL=a ext4\nlive LABEL=b /s\n", 2, "already gives one"),
            ("root LABEL=a\n", 1, "SPEC FSTYPE"),
            ("root LABEL=a ext4\nmodule x.ko\n", 2, "not an absolute path"),
            ("root LABEL=a ext4\nmodule /x.ko maybe\n", 2, "PATH [optional]"),
            ("root LABEL=a ext4\ntimeout soon\n", 2, "whole seconds"),
            (
                "root LABEL=a ext4\n\n\nfrobnicate\n",
                4,
                "unknown directive `frobnicate`",
            ),
            ("root LABEL=a ext4\nmount x / tmpfs\n", 2, "cannot mount `/`"),
            ("root LABEL=a ext4\nfsck ext4 /a\nfsck ext4 /b\n", 3, "second checker"),
            ("root LABEL=a\\04 ext4\n", 1, "octal escape"),
            ("root LABEL=a ext4 rw extra\n", 1, "SPEC FSTYPE [OPTIONS]"),
        ];
        for (text, line, needle) in cases {
            let error = parse(text).unwrap_err();
            assert_eq!(error.line, line, "{text:?}: {error}");
            assert!(error.message.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn no_root_is_an_error() {
        let error = parse("# nothing\ntimeout 3\n").unwrap_err();
        assert_eq!(error.line, 0);
        assert!(error.to_string().contains("no `root` or `live`"));
    }
}
