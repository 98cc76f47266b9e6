//! The "newc" cpio format the Linux kernel unpacks as an initramfs, written reproducibly.
//!
//! [`Initramfs`] collects entries, adds missing parent directories, and writes them sorted by path with inode
//! numbers counted from 1 and one fixed mtime, so the same entries always give the same bytes. File contents
//! added from the host are streamed when the archive is written, never held in memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};

use thiserror::Error;

const MAGIC: &[u8] = b"070701";
const TRAILER: &str = "TRAILER!!!";

const S_IFDIR: u32 = 0o040000;
const S_IFREG: u32 = 0o100000;
const S_IFLNK: u32 = 0o120000;
const S_IFCHR: u32 = 0o020000;

#[derive(Debug, Error)]
pub enum CpioError {
    #[error("initramfs entry {path:?}: must be a relative path without '.', '..' or empty components")]
    BadPath { path: String },
    #[error("initramfs entry {path:?} is added twice")]
    Duplicate { path: String },
    #[error("initramfs entry {path:?}: {parent:?} is not a directory")]
    ParentNotDirectory { path: String, parent: String },
    #[error("initramfs entry {path:?}: reading {source_path}: {source}")]
    ReadSource {
        path: String,
        source_path: PathBuf,
        source: io::Error,
    },
    #[error("initramfs entry {path:?}: {what} is too large for the newc format")]
    TooLarge { path: String, what: &'static str },
    #[error("writing the initramfs: {0}")]
    Write(#[from] io::Error),
}

/// Where a regular file's bytes come from.
#[derive(Debug, Clone)]
enum Contents {
    Bytes(Vec<u8>),
    Host(PathBuf),
}

#[derive(Debug, Clone)]
enum Entry {
    Directory { mode: u32 },
    File { mode: u32, contents: Contents },
    Symlink { target: String },
    CharDevice { mode: u32, major: u32, minor: u32 },
}

/// A set of initramfs entries, written as one reproducible newc archive.
#[derive(Debug, Clone, Default)]
pub struct Initramfs {
    entries: BTreeMap<String, Entry>,
    mtime: u32,
}

impl Initramfs {
    /// An empty archive whose entries all carry `mtime` (seconds since the epoch; SOURCE_DATE_EPOCH or 0).
    pub fn new(mtime: u32) -> Self {
        Initramfs {
            entries: BTreeMap::new(),
            mtime,
        }
    }

    pub fn directory(&mut self, path: &str, mode: u32) -> Result<&mut Self, CpioError> {
        let path = self.prepare(path)?;
        self.entries.insert(path, Entry::Directory { mode: mode & 0o7777 });
        Ok(self)
    }

    pub fn file(&mut self, path: &str, mode: u32, data: impl Into<Vec<u8>>) -> Result<&mut Self, CpioError> {
        let path = self.prepare(path)?;
        let contents = Contents::Bytes(data.into());
        self.entries.insert(
            path,
            Entry::File {
                mode: mode & 0o7777,
                contents,
            },
        );
        Ok(self)
    }

    /// A file whose contents are read from `source` on the host when the archive is written.
    pub fn file_from_host(&mut self, path: &str, mode: u32, source: &Path) -> Result<&mut Self, CpioError> {
        let path = self.prepare(path)?;
        let contents = Contents::Host(source.to_path_buf());
        self.entries.insert(
            path,
            Entry::File {
                mode: mode & 0o7777,
                contents,
            },
        );
        Ok(self)
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> Result<&mut Self, CpioError> {
        let path = self.prepare(path)?;
        self.entries.insert(
            path,
            Entry::Symlink {
                target: target.to_string(),
            },
        );
        Ok(self)
    }

    pub fn char_device(&mut self, path: &str, mode: u32, major: u32, minor: u32) -> Result<&mut Self, CpioError> {
        let path = self.prepare(path)?;
        self.entries.insert(
            path,
            Entry::CharDevice {
                mode: mode & 0o7777,
                major,
                minor,
            },
        );
        Ok(self)
    }

    /// Checks `path`, refuses duplicates, and adds any missing parent directories (mode 0755).
    fn prepare(&mut self, path: &str) -> Result<String, CpioError> {
        let bad = || CpioError::BadPath { path: path.to_string() };
        if path.is_empty() || path.starts_with('/') || path.ends_with('/') || path.contains("//") {
            return Err(bad());
        }
        if !Path::new(path).components().all(|c| matches!(c, Component::Normal(_))) {
            return Err(bad());
        }
        if self.entries.contains_key(path) {
            return Err(CpioError::Duplicate { path: path.to_string() });
        }
        let mut parent = String::new();
        for component in path
            .split('/')
            .collect::<Vec<_>>()
            .split_last()
            .map(|(_, p)| p)
            .unwrap_or(&[])
        {
            if !parent.is_empty() {
                parent.push('/');
            }
            parent.push_str(component);
            match self.entries.get(&parent) {
                None => {
                    self.entries.insert(parent.clone(), Entry::Directory { mode: 0o755 });
                }
                Some(Entry::Directory { .. }) => {}
                Some(_) => {
                    return Err(CpioError::ParentNotDirectory {
                        path: path.to_string(),
                        parent,
                    });
                }
            }
        }
        Ok(path.to_string())
    }

    /// Writes the archive, entries sorted by path (so parents come before their children), then the trailer.
    pub fn write_to(&self, out: impl Write) -> Result<(), CpioError> {
        let mut out = CountingWriter { inner: out, written: 0 };
        for (index, (path, entry)) in self.entries.iter().enumerate() {
            let ino = u32::try_from(index + 1).map_err(|_| CpioError::TooLarge {
                path: path.clone(),
                what: "the entry count",
            })?;
            let header = |mode: u32, nlink: u32, size: u64, rdev: (u32, u32)| -> Result<Header, CpioError> {
                let filesize = u32::try_from(size).map_err(|_| CpioError::TooLarge {
                    path: path.clone(),
                    what: "the file",
                })?;
                Ok(Header {
                    ino,
                    mode,
                    nlink,
                    mtime: self.mtime,
                    filesize,
                    rdev,
                    name: path,
                })
            };
            match entry {
                Entry::Directory { mode } => {
                    header(S_IFDIR | mode, 2, 0, (0, 0))?.write(&mut out)?;
                }
                Entry::Symlink { target } => {
                    header(S_IFLNK | 0o777, 1, target.len() as u64, (0, 0))?.write(&mut out)?;
                    out.write_all(target.as_bytes())?;
                    out.pad()?;
                }
                Entry::CharDevice { mode, major, minor } => {
                    header(S_IFCHR | mode, 1, 0, (*major, *minor))?.write(&mut out)?;
                }
                Entry::File {
                    mode,
                    contents: Contents::Bytes(data),
                } => {
                    header(S_IFREG | mode, 1, data.len() as u64, (0, 0))?.write(&mut out)?;
                    out.write_all(data)?;
                    out.pad()?;
                }
                Entry::File {
                    mode,
                    contents: Contents::Host(source),
                } => {
                    let read_err = |e| CpioError::ReadSource {
                        path: path.clone(),
                        source_path: source.clone(),
                        source: e,
                    };
                    let file = File::open(source).map_err(read_err)?;
                    let len = file.metadata().map_err(read_err)?.len();
                    header(S_IFREG | mode, 1, len, (0, 0))?.write(&mut out)?;
                    // Copy exactly `len` bytes: a file that changes size meanwhile must not corrupt the archive.
                    let copied = io::copy(&mut file.take(len), &mut out).map_err(read_err)?;
                    if copied != len {
                        let e = io::Error::new(io::ErrorKind::UnexpectedEof, "file shrank while being archived");
                        return Err(read_err(e));
                    }
                    out.pad()?;
                }
            }
        }
        Header {
            ino: 0,
            mode: 0,
            nlink: 1,
            mtime: 0,
            filesize: 0,
            rdev: (0, 0),
            name: TRAILER,
        }
        .write(&mut out)?;
        out.inner.flush()?;
        Ok(())
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, CpioError> {
        let mut bytes = Vec::new();
        self.write_to(&mut bytes)?;
        Ok(bytes)
    }
}

struct Header<'a> {
    ino: u32,
    mode: u32,
    nlink: u32,
    mtime: u32,
    filesize: u32,
    rdev: (u32, u32),
    name: &'a str,
}

impl Header<'_> {
    fn write<W: Write>(&self, out: &mut CountingWriter<W>) -> io::Result<()> {
        let namesize = self.name.len() as u32 + 1;
        let fields = [
            self.ino,
            self.mode,
            0,
            0,
            self.nlink,
            self.mtime,
            self.filesize,
            0,
            0,
            self.rdev.0,
            self.rdev.1,
            namesize,
            0,
        ];
        out.write_all(MAGIC)?;
        for field in fields {
            write!(out, "{field:08X}")?;
        }
        out.write_all(self.name.as_bytes())?;
        out.write_all(&[0])?;
        out.pad()
    }
}

/// Tracks the offset so entries can be padded to the 4-byte boundaries newc requires.
struct CountingWriter<W> {
    inner: W,
    written: u64,
}

impl<W: Write> CountingWriter<W> {
    fn pad(&mut self) -> io::Result<()> {
        let padding = (4 - (self.written % 4) as usize) % 4;
        self.write_all(&[0; 3][..padding])
    }
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};

    fn sample() -> Initramfs {
        let mut archive = Initramfs::new(1);
        archive.file("init", 0o755, "#!/bin/sh\necho hi\n").unwrap();
        archive.symlink("bin/sh", "busybox").unwrap();
        archive.file("etc/deep/name", 0o644, "x").unwrap();
        archive.directory("proc", 0o555).unwrap();
        archive.char_device("dev/console", 0o600, 5, 1).unwrap();
        archive
    }

    #[test]
    fn same_entries_give_same_bytes_in_any_insertion_order() {
        let mut reversed = Initramfs::new(1);
        reversed.char_device("dev/console", 0o600, 5, 1).unwrap();
        reversed.directory("proc", 0o555).unwrap();
        reversed.file("etc/deep/name", 0o644, "x").unwrap();
        reversed.symlink("bin/sh", "busybox").unwrap();
        reversed.file("init", 0o755, "#!/bin/sh\necho hi\n").unwrap();
        assert_eq!(sample().to_bytes().unwrap(), reversed.to_bytes().unwrap());
    }

    #[test]
    fn header_layout_matches_the_newc_format() {
        let mut archive = Initramfs::new(0x5f5e100);
        archive.file("a", 0o644, "hello").unwrap();
        let bytes = archive.to_bytes().unwrap();
        let expected_header = "07070100000001000081A4000000000000000000000001\
                               05F5E10000000005000000000000000000000000000000000000000200000000";
        assert_eq!(std::str::from_utf8(&bytes[..110]).unwrap(), expected_header);
        // name "a\0" padded so the data starts at 112, then "hello" padded to 120, then the trailer.
        assert_eq!(&bytes[110..112], b"a\0");
        assert_eq!(&bytes[112..117], b"hello");
        assert_eq!(&bytes[117..120], &[0, 0, 0]);
        assert_eq!(&bytes[120..126], MAGIC);
        assert!(bytes.ends_with(b"TRAILER!!!\0\0\0\0"));
        assert_eq!(bytes.len() % 4, 0);
    }

    #[test]
    fn gnu_cpio_extracts_what_we_write() {
        let cpio = Command::new("cpio").arg("--version").output();
        assert!(cpio.is_ok(), "GNU cpio is missing: run scripts/setup");
        let dir = tempfile::tempdir().unwrap();
        let host_file = dir.path().join("source");
        std::fs::write(&host_file, vec![7u8; 70_001]).unwrap();
        let mut archive = sample();
        archive.file_from_host("lib/big", 0o600, &host_file).unwrap();
        let out = dir.path().join("out");
        std::fs::create_dir(&out).unwrap();
        let mut child = Command::new("cpio")
            .args(["-idm", "--quiet", "--no-absolute-filenames"])
            .current_dir(&out)
            .stdin(Stdio::piped())
            .spawn()
            .unwrap();
        // Device nodes need privileges cpio may lack; leave them out of the extraction check.
        let mut without_devices = archive.clone();
        without_devices
            .entries
            .retain(|_, e| !matches!(e, Entry::CharDevice { .. }));
        without_devices.write_to(child.stdin.take().unwrap()).unwrap();
        assert!(child.wait().unwrap().success());

        assert_eq!(
            std::fs::read_to_string(out.join("init")).unwrap(),
            "#!/bin/sh\necho hi\n"
        );
        assert_eq!(
            std::fs::metadata(out.join("init")).unwrap().permissions().mode() & 0o7777,
            0o755
        );
        assert_eq!(std::fs::read_link(out.join("bin/sh")).unwrap(), Path::new("busybox"));
        assert_eq!(std::fs::read(out.join("lib/big")).unwrap(), vec![7u8; 70_001]);
        assert_eq!(
            std::fs::metadata(out.join("proc")).unwrap().permissions().mode() & 0o7777,
            0o555
        );
        assert_eq!(std::fs::read_to_string(out.join("etc/deep/name")).unwrap(), "x");
    }

    #[test]
    fn refuses_bad_and_duplicate_paths() {
        let mut archive = Initramfs::new(0);
        for bad in ["", "/abs", "a/../b", "./a", "a//b", "a/"] {
            assert!(
                matches!(archive.file(bad, 0o644, ""), Err(CpioError::BadPath { .. })),
                "{bad:?}"
            );
        }
        archive.file("x", 0o644, "").unwrap();
        assert!(matches!(archive.file("x", 0o644, ""), Err(CpioError::Duplicate { .. })));
        assert!(matches!(
            archive.file("x/y", 0o644, ""),
            Err(CpioError::ParentNotDirectory { .. })
        ));
    }

    #[test]
    fn missing_host_file_names_the_entry_and_the_source() {
        let mut archive = Initramfs::new(0);
        archive
            .file_from_host("lib/mod.ko", 0o644, Path::new("/nonexistent/mod.ko"))
            .unwrap();
        let err = archive.to_bytes().unwrap_err().to_string();
        assert!(
            err.contains("lib/mod.ko") && err.contains("/nonexistent/mod.ko"),
            "{err}"
        );
    }
}
