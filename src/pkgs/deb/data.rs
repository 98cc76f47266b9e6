//! The unpacking of `data.tar` into a fresh directory (see the module doc for what it refuses and
//! what it leaves).

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;

use super::ar::{DebFile, Member};
use super::paths::{Components, archive_path, display, merge_usr, relative_target, resolve_link};
use super::{COPY_BUFFER, DebError, drain, reading_after};

/// What [`extract_data`] wrote, for the log.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DataSummary {
    /// Regular files, hard-link copies included.
    pub files: u64,
    /// Directories created, `out` itself not counted.
    pub directories: u64,
    pub symlinks: u64,
    /// Hard links, each materialised as a copy (also counted in `files`).
    pub hard_links: u64,
    /// Symlinks dropped because the usr-merge made them point at themselves (`./bin -> usr/bin`).
    pub merged_aliases: u64,
    /// Bytes of all regular files written.
    pub bytes: u64,
}

impl fmt::Display for DataSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} files ({} bytes, {} from hard links), {} directories, {} symlinks, {} usr aliases merged",
            self.files, self.bytes, self.hard_links, self.directories, self.symlinks, self.merged_aliases
        )
    }
}

/// Unpacks the package's `data.tar` into `out`, which must not exist yet, with the usr-merge applied (see
/// the module doc). On error `out` does not exist afterwards.
pub fn extract_data(deb: &Path, out: &Path) -> Result<DataSummary, DebError> {
    let package = DebFile::open(deb)?;
    fs::create_dir(out).map_err(|source| DebError::Io {
        action: "creating",
        path: out.to_path_buf(),
        source,
    })?;
    let mut guard = RemoveOnError { path: out, armed: true };
    set_mode(out, 0o755)?;
    let summary = Unpacker::new(deb, out).run(&package)?;
    guard.armed = false;
    Ok(summary)
}

pub(super) fn type_name(entry_type: EntryType) -> &'static str {
    match entry_type {
        EntryType::Regular | EntryType::Continuous => "regular file",
        EntryType::Directory => "directory",
        EntryType::Symlink => "symlink",
        EntryType::Link => "hard link",
        EntryType::Char => "character device",
        EntryType::Block => "block device",
        EntryType::Fifo => "fifo",
        EntryType::GNUSparse => "sparse file",
        _ => "tar entry of an unknown type",
    }
}

pub(super) fn set_mode(path: &Path, mode: u32) -> Result<(), DebError> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).map_err(|source| DebError::Io {
        action: "setting the mode of",
        path: path.to_path_buf(),
        source,
    })
}

/// Removes a directory tree on drop unless disarmed: a failed (or panicking) extraction leaves nothing.
struct RemoveOnError<'a> {
    path: &'a Path,
    armed: bool,
}

impl Drop for RemoveOnError<'_> {
    fn drop(&mut self) {
        if self.armed {
            let _ = fs::remove_dir_all(self.path);
        }
    }
}

/// The state of one [`extract_data`] run.
struct Unpacker<'a> {
    deb: &'a Path,
    out: &'a Path,
    /// Real directories made so far (output paths, `out` itself as the empty path).
    dirs: HashSet<Components>,
    /// Which entry made each non-directory and each explicit directory, for collision messages.
    made_by: HashMap<Components, String>,
    summary: DataSummary,
}

impl<'a> Unpacker<'a> {
    pub(super) fn new(deb: &'a Path, out: &'a Path) -> Unpacker<'a> {
        Unpacker {
            deb,
            out,
            dirs: HashSet::from([Vec::new()]),
            made_by: HashMap::new(),
            summary: DataSummary::default(),
        }
    }

    fn run(mut self, package: &DebFile) -> Result<DataSummary, DebError> {
        let member = &package.data;
        let mut archive = tar::Archive::new(package.member_reader(member)?);
        let entries = archive
            .entries()
            .map_err(|e| self.corrupt(member, format!("reading the first entry: {e}")))?;
        let mut previous = String::new();
        for entry in entries {
            let mut entry = entry.map_err(|e| self.corrupt(member, reading_after(&previous, &e)))?;
            let raw = entry.path_bytes().into_owned();
            let name = String::from_utf8_lossy(&raw).into_owned();
            self.unpack(member, &mut entry, &name, &raw)?;
            previous = name;
        }
        drain(archive.into_inner()).map_err(|e| self.corrupt(member, format!("after its last entry: {e}")))?;
        Ok(self.summary)
    }

    fn unpack(
        &mut self,
        member: &Member,
        entry: &mut tar::Entry<'_, impl Read>,
        name: &str,
        raw: &[u8],
    ) -> Result<(), DebError> {
        let original = archive_path(raw).map_err(|reason| self.refuse(name, reason))?;
        let mapped = merge_usr(&original).to_vec();
        let entry_type = entry.header().entry_type();
        match entry_type {
            EntryType::XGlobalHeader => Ok(()),
            EntryType::Directory => self.directory(name, &mapped),
            EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                let mode = entry
                    .header()
                    .mode()
                    .map_err(|e| self.corrupt(member, format!("entry '{name}': {e}")))?;
                let mode = if mode & 0o111 != 0 { 0o755 } else { 0o644 };
                let dest = self.prepare(name, &mapped)?;
                self.write_file(member, entry, name, &dest, mode)?;
                self.made_by.insert(mapped, name.to_string());
                Ok(())
            }
            EntryType::Symlink => {
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                let target = target
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.refuse(name, "is a symlink without a target"))?;
                self.symlink(name, &original, &mapped, &target)
            }
            EntryType::Link => {
                let target = entry.link_name_bytes().map(|t| t.into_owned());
                let target = target
                    .filter(|t| !t.is_empty())
                    .ok_or_else(|| self.refuse(name, "is a hard link without a target"))?;
                self.hard_link(name, &mapped, &target)
            }
            EntryType::Char | EntryType::Block | EntryType::Fifo => Err(self.refuse(
                name,
                &format!(
                    "is a {}, which a package in the store cannot hold",
                    type_name(entry_type)
                ),
            )),
            other => Err(self.refuse(
                name,
                &format!(
                    "is a tar entry of type {:?}, which rixos does not unpack",
                    other.as_byte() as char
                ),
            )),
        }
    }

    fn directory(&mut self, name: &str, mapped: &[Vec<u8>]) -> Result<(), DebError> {
        if self.dirs.contains(mapped) {
            return Ok(());
        }
        let dest = self.prepare(name, mapped)?;
        fs::create_dir(&dest).map_err(|source| self.io("creating", &dest, source))?;
        set_mode(&dest, 0o755)?;
        self.summary.directories += 1;
        self.dirs.insert(mapped.to_vec());
        self.made_by.insert(mapped.to_vec(), name.to_string());
        Ok(())
    }

    fn write_file(
        &mut self,
        member: &Member,
        entry: &mut impl Read,
        name: &str,
        dest: &Path,
        mode: u32,
    ) -> Result<(), DebError> {
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(dest)
            .map_err(|source| self.io("creating", dest, source))?;
        let mut buffer = vec![0u8; COPY_BUFFER];
        let mut written = 0u64;
        loop {
            let n = match entry.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.corrupt(member, format!("reading entry '{name}': {e}"))),
            };
            file.write_all(&buffer[..n])
                .map_err(|source| self.io("writing", dest, source))?;
            written += n as u64;
        }
        // The umask must not change the mode the store will see.
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|source| self.io("setting the mode of", dest, source))?;
        self.summary.files += 1;
        self.summary.bytes += written;
        Ok(())
    }

    fn symlink(&mut self, name: &str, original: &[Vec<u8>], mapped: &[Vec<u8>], target: &[u8]) -> Result<(), DebError> {
        let shown = String::from_utf8_lossy(target);
        let parent = &original[..original.len().saturating_sub(1)];
        let resolved = resolve_link(parent, target).ok_or_else(|| {
            self.refuse(
                name,
                &format!("is a symlink to '{shown}', which leads outside the package"),
            )
        })?;
        let to = merge_usr(&resolved);
        if to == mapped {
            self.summary.merged_aliases += 1;
            return Ok(());
        }
        let relative = relative_target(&mapped[..mapped.len().saturating_sub(1)], to);
        let dest = match self.prepare(name, mapped) {
            Ok(dest) => dest,
            // The same link from `usr/X` and `X` (parents are checked before a collision is reported).
            Err(DebError::Collision { .. })
                if fs::read_link(self.out.join(OsStr::from_bytes(&mapped.join(&b'/'))))
                    .is_ok_and(|existing| existing.as_os_str().as_bytes() == relative) =>
            {
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        std::os::unix::fs::symlink(OsStr::from_bytes(&relative), &dest)
            .map_err(|source| self.io("creating the symlink", &dest, source))?;
        self.summary.symlinks += 1;
        self.made_by.insert(mapped.to_vec(), name.to_string());
        Ok(())
    }

    fn hard_link(&mut self, name: &str, mapped: &[Vec<u8>], target: &[u8]) -> Result<(), DebError> {
        let shown = String::from_utf8_lossy(target);
        let source = archive_path(target)
            .ok()
            .map(|t| merge_usr(&t).to_vec())
            .ok_or_else(|| {
                self.refuse(
                    name,
                    &format!("is a hard link to '{shown}', which leads outside the package"),
                )
            })?;
        let not_unpacked = || {
            self.refuse(
                name,
                &format!("is a hard link to '{shown}', which is not a file the package unpacked before it"),
            )
        };
        // The source must be a regular file this run wrote, reached through real directories only.
        let (_, source_parent) = source.split_last().ok_or_else(not_unpacked)?;
        if !self.dirs.contains(source_parent) {
            return Err(not_unpacked());
        }
        let source_path = self.out.join(OsStr::from_bytes(&source.join(&b'/')));
        match fs::symlink_metadata(&source_path) {
            Ok(metadata) if metadata.is_file() => {}
            _ => return Err(not_unpacked()),
        }
        let dest = self.prepare(name, mapped)?;
        let bytes = fs::copy(&source_path, &dest).map_err(|source| self.io("copying the hard link", &dest, source))?;
        self.summary.files += 1;
        self.summary.hard_links += 1;
        self.summary.bytes += bytes;
        self.made_by.insert(mapped.to_vec(), name.to_string());
        Ok(())
    }

    /// The output path of a new non-directory or directory entry at `mapped`: its parents made (as real
    /// directories) and checked, and nothing there yet.
    fn prepare(&mut self, name: &str, mapped: &[Vec<u8>]) -> Result<PathBuf, DebError> {
        let Some((_, parents)) = mapped.split_last() else {
            return Err(self.refuse(name, "would replace the package's root directory"));
        };
        let mut path = self.out.to_path_buf();
        for depth in 0..parents.len() {
            path.push(OsStr::from_bytes(&parents[depth]));
            let prefix = &parents[..=depth];
            if self.dirs.contains(prefix) {
                continue;
            }
            match fs::symlink_metadata(&path) {
                Ok(metadata) if metadata.file_type().is_symlink() => {
                    return Err(self.refuse(
                        name,
                        &format!("would be written through '{}', which is a symlink", display(prefix)),
                    ));
                }
                Ok(_) => {
                    return Err(self.refuse(
                        name,
                        &format!("would be written under '{}', which is not a directory", display(prefix)),
                    ));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&path).map_err(|source| self.io("creating", &path, source))?;
                    set_mode(&path, 0o755)?;
                    self.summary.directories += 1;
                    self.dirs.insert(prefix.to_vec());
                    self.made_by
                        .insert(prefix.to_vec(), format!("the directory made for entry '{name}'"));
                }
                Err(source) => return Err(self.io("inspecting", &path, source)),
            }
        }
        path.push(OsStr::from_bytes(&mapped[mapped.len() - 1]));
        match fs::symlink_metadata(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(path),
            Err(source) => Err(self.io("inspecting", &path, source)),
            Ok(_) => {
                let earlier = match self.made_by.get(mapped) {
                    Some(by) if by.starts_with("the directory made") => by.clone(),
                    Some(by) => format!("entry '{by}'"),
                    None => "an earlier entry".to_string(),
                };
                Err(DebError::Collision {
                    path: self.deb.to_path_buf(),
                    entry: name.to_string(),
                    earlier,
                    at: display(mapped),
                })
            }
        }
    }

    fn refuse(&self, entry: &str, reason: &str) -> DebError {
        DebError::Unsafe {
            path: self.deb.to_path_buf(),
            entry: entry.to_string(),
            reason: reason.to_string(),
        }
    }

    fn corrupt(&self, member: &Member, reason: String) -> DebError {
        DebError::Corrupt {
            path: self.deb.to_path_buf(),
            reason: format!("{}: {reason}", member.name),
        }
    }

    fn io(&self, action: &'static str, path: &Path, source: io::Error) -> DebError {
        DebError::Io {
            action,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    use crate::pkgs::deb::test_debs::Node::*;
    use crate::pkgs::deb::test_debs::{Compression, Node, deb_bytes, hello_package, link, mode, write_deb};

    #[test]
    fn extracts_with_usr_merge_modes_and_rewritten_symlinks() {
        for compression in [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let deb = write_deb(dir.path(), &deb_bytes(&hello_package(), compression));
            let out = dir.path().join("out");
            let summary = extract_data(&deb, &out).unwrap_or_else(|e| panic!("{compression:?}: {e}"));

            assert!(!out.join("usr").exists(), "usr/ is merged into the root");
            assert_eq!(fs::read(out.join("bin/hello")).unwrap(), b"hello binary");
            assert_eq!(fs::read(out.join("bin/sh")).unwrap(), b"#!sh");
            assert_eq!(fs::read(out.join("bin/hello-again")).unwrap(), b"hello binary");
            assert_eq!(fs::read(out.join("share/doc/hello/copyright")).unwrap(), b"GPL");
            assert_eq!(
                fs::read(out.join(
                    "share/doc/hello/a-very-long-directory-name-that-does-not-fit/in-the-hundred-bytes-of-a-tar-header/README"
                ))
                .unwrap(),
                b"long"
            );
            for real_dir in ["", "bin", "sbin", "lib", "lib64", "lib/x86_64-linux-gnu", "etc"] {
                let metadata = fs::symlink_metadata(out.join(real_dir)).unwrap();
                assert!(metadata.is_dir(), "{real_dir} is a real directory");
                assert_eq!(metadata.mode() & 0o7777, 0o755, "{real_dir}");
            }

            assert_eq!(mode(&out.join("bin/hello")), 0o755);
            assert_eq!(mode(&out.join("bin/owner-exec")), 0o755);
            assert_eq!(mode(&out.join("bin/setuid")), 0o755);
            assert_eq!(mode(&out.join("sbin/tool")), 0o755);
            assert_eq!(mode(&out.join("lib/x86_64-linux-gnu/libfoo.so.1")), 0o644);
            assert_eq!(mode(&out.join("lib/x86_64-linux-gnu/private.so")), 0o644);
            assert_eq!(mode(&out.join("share/doc/hello/copyright")), 0o644);

            assert_eq!(link(&out.join("bin/sh2")), "sh");
            assert_eq!(link(&out.join("bin/hi")), "hello");
            assert_eq!(link(&out.join("lib/x86_64-linux-gnu/libfoo.so")), "libfoo.so.1");
            assert_eq!(link(&out.join("lib/x86_64-linux-gnu/libbar.so")), "libfoo.so.1");
            assert_eq!(link(&out.join("lib/x86_64-linux-gnu/up.so")), "libfoo.so.1");
            assert_eq!(
                link(&out.join("lib64/ld-linux-x86-64.so.2")),
                "../lib/x86_64-linux-gnu/libc.so.6"
            );
            assert_eq!(link(&out.join("etc/alt")), "alternatives/hello");
            assert_eq!(
                fs::read(out.join("lib64/ld-linux-x86-64.so.2")).unwrap(),
                b"libc",
                "the rewritten link resolves inside out"
            );
            assert_eq!(fs::read(out.join("bin/sh2")).unwrap(), b"#!sh");

            assert_eq!(
                summary,
                DataSummary {
                    files: 11,
                    directories: 11,
                    symlinks: 7,
                    hard_links: 1,
                    merged_aliases: 2,
                    bytes: (12 + 4 + 1 + 1 + 12 + 3 + 3 + 4 + 1 + 3 + 4) as u64,
                },
                "{compression:?}"
            );
        }
    }

    #[test]
    fn merged_usr_alias_and_real_directory_become_one_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(
            dir.path(),
            &deb_bytes(
                &[
                    Symlink("./bin", "usr/bin"),
                    Symlink("./lib", "/usr/lib"),
                    File("./usr/bin/ls", b"ls", 0o755),
                    File("./bin/cat", b"cat", 0o755),
                    File("./usr/lib/x86_64-linux-gnu/libc.so.6", b"libc", 0o644),
                    Symlink("./lib/x86_64-linux-gnu/libc.so", "libc.so.6"),
                    Symlink("./usr/lib/x86_64-linux-gnu/libc.so", "libc.so.6"),
                ],
                Compression::Xz,
            ),
        );
        let out = dir.path().join("out");
        let summary = extract_data(&deb, &out).unwrap();
        assert!(fs::symlink_metadata(out.join("bin")).unwrap().is_dir());
        assert!(fs::symlink_metadata(out.join("lib")).unwrap().is_dir());
        assert_eq!(fs::read(out.join("bin/ls")).unwrap(), b"ls");
        assert_eq!(fs::read(out.join("bin/cat")).unwrap(), b"cat");
        assert_eq!(link(&out.join("lib/x86_64-linux-gnu/libc.so")), "libc.so.6");
        assert_eq!(summary.merged_aliases, 2);
        assert_eq!(summary.symlinks, 1, "the identical duplicate link is one link");
    }

    #[test]
    fn refuses_hostile_entries_and_leaves_no_output() {
        let prefix = [Dir("./"), Dir("./usr/bin/"), File("./usr/bin/ok", b"fine", 0o755)];
        let cases: &[(Node, &str, &str)] = &[
            (
                File("./usr/../../etc/passwd", b"x", 0o644),
                "./usr/../../etc/passwd",
                "has a '..' component",
            ),
            (
                Dir("./usr/share/../../../tmp/"),
                "./usr/share/../../../tmp/",
                "has a '..' component",
            ),
            (File("/etc/passwd", b"x", 0o644), "/etc/passwd", "is an absolute path"),
            (
                Symlink("./etc/evil", "../../../etc/passwd"),
                "./etc/evil",
                "is a symlink to '../../../etc/passwd', which leads outside the package",
            ),
            (
                Symlink("./usr/bin/evil", "/../../etc/passwd"),
                "./usr/bin/evil",
                "which leads outside the package",
            ),
            (
                HardLink("./usr/bin/evil", "../../etc/passwd"),
                "./usr/bin/evil",
                "is a hard link to '../../etc/passwd', which leads outside the package",
            ),
            (
                HardLink("./usr/bin/evil", "/etc/passwd"),
                "./usr/bin/evil",
                "which leads outside the package",
            ),
            (
                HardLink("./usr/bin/evil", "./etc/shadow"),
                "./usr/bin/evil",
                "which is not a file the package unpacked before it",
            ),
            (Char("./dev/null"), "./dev/null", "is a character device"),
            (Block("./dev/sda"), "./dev/sda", "is a block device"),
            (Fifo("./run/initctl"), "./run/initctl", "is a fifo"),
            (
                File("./usr/bin/ok", b"other", 0o755),
                "./usr/bin/ok",
                "both unpack to 'bin/ok'",
            ),
            (
                File("./bin/ok", b"other", 0o755),
                "./bin/ok",
                "and entry './usr/bin/ok' both unpack",
            ),
            (
                File("./usr/bin/ok/x", b"x", 0o644),
                "./usr/bin/ok/x",
                "which is not a directory",
            ),
        ];
        for (hostile, entry, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let mut nodes = prefix.to_vec();
            nodes.push(*hostile);
            let deb = write_deb(dir.path(), &deb_bytes(&nodes, Compression::Gzip));
            let out = dir.path().join("out");
            let error = extract_data(&deb, &out).expect_err(entry).to_string();
            assert!(error.contains(&format!("'{entry}'")), "{error}");
            assert!(error.contains(reason), "{error}");
            assert!(error.contains(&deb.display().to_string()), "{error}");
            assert!(!out.exists(), "{entry}: a refused package leaves no {}", out.display());
        }
    }

    #[test]
    fn refuses_writing_through_a_symlinked_directory() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(
            dir.path(),
            &deb_bytes(
                &[Symlink("./lib64", "lib"), File("./lib64/ld.so", b"x", 0o755)],
                Compression::Zstd,
            ),
        );
        let out = dir.path().join("out");
        let error = extract_data(&deb, &out).unwrap_err().to_string();
        assert!(
            error.ends_with("entry './lib64/ld.so' would be written through 'lib64', which is a symlink"),
            "{error}"
        );
        assert!(!out.exists());
    }

    #[test]
    fn dot_dot_message_names_package_and_entry() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(
            dir.path(),
            &deb_bytes(&[File("./usr/../../etc/passwd", b"x", 0o644)], Compression::Xz),
        );
        let error = extract_data(&deb, &dir.path().join("out")).unwrap_err();
        assert_eq!(
            error.to_string(),
            format!(
                "refusing {}: entry './usr/../../etc/passwd' has a '..' component",
                deb.display()
            )
        );
        assert!(matches!(error, DebError::Unsafe { .. }));
    }
    #[test]
    fn keeps_an_existing_output_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(dir.path(), &deb_bytes(&hello_package(), Compression::Gzip));
        let out = dir.path().join("out");
        fs::create_dir(&out).unwrap();
        fs::write(out.join("mine"), b"keep").unwrap();
        let error = extract_data(&deb, &out).unwrap_err();
        assert!(matches!(&error, DebError::Io { source, .. } if source.kind() == io::ErrorKind::AlreadyExists));
        assert_eq!(fs::read(out.join("mine")).unwrap(), b"keep");
    }
}
