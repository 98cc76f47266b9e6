//! Debian binary packages (`.deb`), read without trusting them.
//!
//! Owns the `.deb` format: the `ar` container (`debian-binary`, `control.tar*`, `data.tar*`), the
//! decompression of its members (none, gzip, xz, zstd) and the unpacking of `data.tar` into a fresh directory
//! with Debian's usr-merge applied the way nixpkgs lays out binary packages: `./usr/X` and `./X` both land at
//! `out/X`, so `usr/bin/ls` becomes `out/bin/ls`.
//!
//! Invariants of [`extract_data`]:
//! - Nothing is ever written outside `out`: entries with `..` components or absolute names are refused, every
//!   symlink target is resolved against the package's own tree and rewritten as a relative target that stays
//!   inside `out` (or refused if it cannot), and no entry is written through a symlink.
//! - The result holds only directories (0755), regular files (0755 if the package had any exec bit, else
//!   0644) and symlinks; device nodes, fifos and sockets are refused, hard links become copies, owners and
//!   mtimes are dropped (the store canonicalises them).
//! - Two entries that land on the same path after the merge must agree (directories merge, identical
//!   symlinks are one); a symlink that the merge turns into itself (`./bin -> usr/bin`) is dropped.
//! - On any error `out` is removed again: a failed extraction leaves nothing behind.
//!
//! Knows nothing of the store, of package indices or of signatures: callers check a package's hash against
//! the signed archive before handing it here.

use std::collections::{HashMap, HashSet};
use std::ffi::OsStr;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tar::EntryType;
use thiserror::Error;

const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: u64 = 60;
const COPY_BUFFER: usize = 1 << 16;
/// All control files together may not exceed this: they are held in memory, and real ones are at most a
/// few MiB (the `md5sums` of a large package).
const MAX_CONTROL_BYTES: u64 = 64 << 20;

#[derive(Debug, Error)]
pub enum DebError {
    /// The file is not a Debian binary package at all (no ar magic, members missing or unknown).
    #[error("{} is not a Debian binary package: {reason}", path.display())]
    NotADeb { path: PathBuf, reason: String },
    /// The package has the right shape but its bytes are damaged (truncated, corrupt compression, bad tar).
    #[error("{} is damaged: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// An entry that could write outside the output or make something other than files, directories and
    /// symlinks.
    #[error("refusing {}: entry '{entry}' {reason}", path.display())]
    Unsafe {
        path: PathBuf,
        entry: String,
        reason: String,
    },
    /// Two entries land on the same path after the usr-merge and do not agree.
    #[error("refusing {}: entry '{entry}' and {earlier} both unpack to '{at}'", path.display())]
    Collision {
        path: PathBuf,
        entry: String,
        earlier: String,
        at: String,
    },
    #[error("{}: member '{member}' uses a compression rixos cannot read (it reads none, .gz, .xz and .zst)", path.display())]
    UnsupportedCompression { path: PathBuf, member: String },
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
}

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

/// The files of a package's `control.tar`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlInfo {
    /// The `control` file: the package's stanza (Package, Version, Depends, ...).
    pub control: String,
    /// Every other file (preinst, postinst, prerm, postrm, config, triggers, conffiles, md5sums, ...) by
    /// name, sorted by name.
    pub files: Vec<(String, Vec<u8>)>,
}

impl ControlInfo {
    /// The contents of the control file `name` other than `control` (e.g. `postinst`), if the package has it.
    pub fn file(&self, name: &str) -> Option<&[u8]> {
        self.files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, bytes)| bytes.as_slice())
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

/// Reads the package's `control.tar`: the `control` stanza and the maintainer scripts and other files.
pub fn read_control(deb: &Path) -> Result<ControlInfo, DebError> {
    let package = DebFile::open(deb)?;
    let member = &package.control;
    let mut archive = tar::Archive::new(package.member_reader(member)?);
    let corrupt = |reason: String| DebError::Corrupt {
        path: deb.to_path_buf(),
        reason: format!("{}: {reason}", member.name),
    };
    let unsafe_entry = |entry: &str, reason: &str| DebError::Unsafe {
        path: deb.to_path_buf(),
        entry: entry.to_string(),
        reason: format!("in {} {reason}", member.name),
    };
    let mut control = None;
    let mut files = Vec::new();
    let mut names = HashSet::new();
    let mut total = 0u64;
    let entries = archive
        .entries()
        .map_err(|e| corrupt(format!("reading the first entry: {e}")))?;
    let mut previous = String::new();
    for entry in entries {
        let mut entry = entry.map_err(|e| corrupt(reading_after(&previous, &e)))?;
        let raw = entry.path_bytes().into_owned();
        let name = String::from_utf8_lossy(&raw).into_owned();
        let components = archive_path(&raw).map_err(|reason| unsafe_entry(&name, reason))?;
        let entry_type = entry.header().entry_type();
        match (entry_type, components.as_slice()) {
            (EntryType::XGlobalHeader, _) => {}
            (EntryType::Directory, []) => {}
            (EntryType::Regular | EntryType::Continuous, [file]) => {
                let file =
                    String::from_utf8(file.clone()).map_err(|_| unsafe_entry(&name, "has a name that is not UTF-8"))?;
                if !names.insert(file.clone()) {
                    return Err(unsafe_entry(&name, "appears twice"));
                }
                total += entry.size();
                if total > MAX_CONTROL_BYTES {
                    return Err(unsafe_entry(
                        &name,
                        &format!("makes the control files larger than {} MiB", MAX_CONTROL_BYTES >> 20),
                    ));
                }
                let mut bytes = Vec::with_capacity(entry.size() as usize);
                entry
                    .read_to_end(&mut bytes)
                    .map_err(|e| corrupt(format!("reading entry '{name}': {e}")))?;
                if bytes.len() as u64 != entry.size() {
                    return Err(corrupt(format!(
                        "entry '{name}' ended after {} of its {} bytes",
                        bytes.len(),
                        entry.size()
                    )));
                }
                if file == "control" {
                    control = Some(String::from_utf8(bytes).map_err(|_| DebError::NotADeb {
                        path: deb.to_path_buf(),
                        reason: format!("the control file in {} is not UTF-8", member.name),
                    })?);
                } else {
                    files.push((file, bytes));
                }
            }
            _ => {
                return Err(unsafe_entry(
                    &name,
                    &format!(
                        "is a {}, but control.tar may only hold files at its top level",
                        type_name(entry_type)
                    ),
                ));
            }
        }
        previous = name;
    }
    drain(archive.into_inner()).map_err(|e| corrupt(format!("after its last entry: {e}")))?;
    let control = control.ok_or_else(|| DebError::NotADeb {
        path: deb.to_path_buf(),
        reason: format!("{} has no 'control' file", member.name),
    })?;
    files.sort();
    Ok(ControlInfo { control, files })
}

/// Writes the package's control files (`control`, maintainer scripts, ...) into `dir` (created if missing),
/// each with mode 0644, replacing files of the same name; returns what it wrote.
pub fn extract_control_into(deb: &Path, dir: &Path) -> Result<ControlInfo, DebError> {
    let info = read_control(deb)?;
    fs::create_dir_all(dir).map_err(|source| DebError::Io {
        action: "creating",
        path: dir.to_path_buf(),
        source,
    })?;
    let all = std::iter::once(("control", info.control.as_bytes()))
        .chain(info.files.iter().map(|(n, b)| (n.as_str(), b.as_slice())));
    for (name, bytes) in all {
        let path = dir.join(name);
        let io_error = |source| DebError::Io {
            action: "writing",
            path: path.clone(),
            source,
        };
        // O_NOFOLLOW: a symlink left in `dir` must not redirect the write elsewhere.
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .map_err(io_error)?;
        file.write_all(bytes).map_err(io_error)?;
        file.set_permissions(fs::Permissions::from_mode(0o644))
            .map_err(io_error)?;
    }
    Ok(info)
}

/// One member of the ar archive: where its bytes are in the file.
#[derive(Debug, Clone)]
struct Member {
    name: String,
    offset: u64,
    size: u64,
}

/// An opened `.deb` whose ar structure and `debian-binary` have been checked.
struct DebFile {
    path: PathBuf,
    file: File,
    control: Member,
    data: Member,
}

impl DebFile {
    fn open(path: &Path) -> Result<DebFile, DebError> {
        let io_error = |source| DebError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        };
        let not_a_deb = |reason: String| DebError::NotADeb {
            path: path.to_path_buf(),
            reason,
        };
        let file = File::open(path).map_err(io_error)?;
        let members = ar_members(path, &file)?;
        let mut members = members.into_iter();
        let first = members
            .next()
            .ok_or_else(|| not_a_deb("the ar archive is empty".into()))?;
        if first.name != "debian-binary" {
            return Err(not_a_deb(format!(
                "its first member is '{}', not 'debian-binary'",
                first.name
            )));
        }
        if first.size > 1024 {
            return Err(not_a_deb(format!("its debian-binary member has {} bytes", first.size)));
        }
        let mut version = Vec::new();
        (&file).seek(SeekFrom::Start(first.offset)).map_err(io_error)?;
        (&file).take(first.size).read_to_end(&mut version).map_err(io_error)?;
        let version = String::from_utf8_lossy(&version);
        let line = version.lines().next().unwrap_or("").trim();
        let (major, minor) = line.split_once('.').unwrap_or((line, "0"));
        if major != "2" || minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
            return Err(not_a_deb(format!(
                "its debian-binary says format '{line}', and only format 2.x is understood"
            )));
        }
        let (mut control, mut data) = (None, None);
        for member in members {
            let slot = if member.name.starts_with("control.tar") {
                &mut control
            } else if member.name.starts_with("data.tar") {
                &mut data
            } else if member.name.starts_with('_') {
                // dpkg's reserved namespace for additions it ignores.
                continue;
            } else {
                return Err(not_a_deb(format!("it has an unknown member '{}'", member.name)));
            };
            if let Some(earlier) = slot.replace(member) {
                return Err(not_a_deb(format!(
                    "it has two members '{}' and '{}'",
                    earlier.name,
                    slot.as_ref().map_or("", |m| m.name.as_str())
                )));
            }
        }
        let control = control.ok_or_else(|| not_a_deb("it has no control.tar member".into()))?;
        let data = data.ok_or_else(|| not_a_deb("it has no data.tar member".into()))?;
        Ok(DebFile {
            path: path.to_path_buf(),
            file,
            control,
            data,
        })
    }

    /// The decompressed bytes of `member` (a `control.tar*` or `data.tar*`).
    fn member_reader(&self, member: &Member) -> Result<Box<dyn Read + '_>, DebError> {
        let io_error = |source| DebError::Io {
            action: "reading",
            path: self.path.clone(),
            source,
        };
        (&self.file).seek(SeekFrom::Start(member.offset)).map_err(io_error)?;
        let raw = BufReader::with_capacity(COPY_BUFFER, (&self.file).take(member.size));
        let suffix = member
            .name
            .strip_prefix("control.tar")
            .or_else(|| member.name.strip_prefix("data.tar"))
            .unwrap_or(&member.name);
        Ok(match suffix {
            "" => Box::new(raw),
            ".gz" => Box::new(flate2::bufread::MultiGzDecoder::new(raw)),
            ".xz" => Box::new(xz2::bufread::XzDecoder::new_multi_decoder(raw)),
            ".zst" => Box::new(
                zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| DebError::Corrupt {
                    path: self.path.clone(),
                    reason: format!("{}: {e}", member.name),
                })?,
            ),
            _ => {
                return Err(DebError::UnsupportedCompression {
                    path: self.path.clone(),
                    member: member.name.clone(),
                });
            }
        })
    }
}

/// The members of the ar archive in `file`, checking every header and that no member runs past the end.
fn ar_members(path: &Path, file: &File) -> Result<Vec<Member>, DebError> {
    let io_error = |source| DebError::Io {
        action: "reading",
        path: path.to_path_buf(),
        source,
    };
    let not_a_deb = |reason: String| DebError::NotADeb {
        path: path.to_path_buf(),
        reason,
    };
    let corrupt = |reason: String| DebError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let len = file.metadata().map_err(io_error)?.len();
    let mut reader = BufReader::new(file);
    let mut magic = [0u8; 8];
    if len < 8 || reader.read_exact(&mut magic).is_err() || &magic != AR_MAGIC {
        return Err(not_a_deb("it does not start with the ar magic '!<arch>\\n'".into()));
    }
    let mut members = Vec::new();
    let mut pos = 8u64;
    while pos < len {
        if len - pos < AR_HEADER {
            return Err(corrupt(format!(
                "the ar member header at byte {pos} is cut off after {} bytes (truncated download?)",
                len - pos
            )));
        }
        let mut header = [0u8; AR_HEADER as usize];
        reader.read_exact(&mut header).map_err(io_error)?;
        if &header[58..60] != b"`\n" {
            return Err(not_a_deb(format!("bad ar member header at byte {pos}")));
        }
        let raw_name = trim_ascii_end(&header[..16]);
        // GNU ar ends names with '/'; dpkg-deb does not.
        let raw_name = raw_name.strip_suffix(b"/").unwrap_or(raw_name);
        let name = std::str::from_utf8(raw_name)
            .ok()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| not_a_deb(format!("bad ar member name at byte {pos}")))?
            .to_string();
        let size = std::str::from_utf8(trim_ascii_end(&header[48..58]))
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .ok_or_else(|| not_a_deb(format!("bad size of ar member '{name}' at byte {pos}")))?;
        let offset = pos + AR_HEADER;
        if size > len - offset {
            return Err(corrupt(format!(
                "ar member '{name}' has {size} bytes but the file ends {} bytes after its header \
                 (truncated download?)",
                len - offset
            )));
        }
        members.push(Member { name, offset, size });
        // Members start at even offsets; a missing pad byte after the last one is tolerated.
        pos = (offset + size + (size & 1)).min(len);
        reader.seek(SeekFrom::Start(pos)).map_err(io_error)?;
    }
    Ok(members)
}

fn trim_ascii_end(bytes: &[u8]) -> &[u8] {
    let end = bytes.iter().rposition(|&b| b != b' ').map_or(0, |i| i + 1);
    &bytes[..end]
}

/// A path inside the package: no empty, `.` or `..` components.
type Components = Vec<Vec<u8>>;

/// The components of an entry name from a tar header (`./usr/bin/ls` -> `usr`, `bin`, `ls`), refusing
/// absolute names and `..`.
fn archive_path(raw: &[u8]) -> Result<Components, &'static str> {
    if raw.is_empty() {
        return Err("has an empty name");
    }
    if raw[0] == b'/' {
        return Err("is an absolute path");
    }
    if raw.contains(&0) {
        return Err("has a NUL byte in its name");
    }
    let mut components = Vec::new();
    for component in raw.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => return Err("has a '..' component"),
            name => components.push(name.to_vec()),
        }
    }
    Ok(components)
}

/// Where a path of the package lands in the output: `usr/X` and `X` are both `X`.
fn merge_usr(components: &[Vec<u8>]) -> &[Vec<u8>] {
    match components.split_first() {
        Some((first, rest)) if first == b"usr" => rest,
        _ => components,
    }
}

/// The package path a symlink at `parent/...` with `target` points to, resolved lexically inside the
/// package's tree; `None` if it climbs above the root.
fn resolve_link(parent: &[Vec<u8>], target: &[u8]) -> Option<Components> {
    let mut resolved: Components = if target.starts_with(b"/") {
        Vec::new()
    } else {
        parent.to_vec()
    };
    for component in target.split(|&b| b == b'/') {
        match component {
            b"" | b"." => {}
            b".." => {
                resolved.pop()?;
            }
            name => resolved.push(name.to_vec()),
        }
    }
    Some(resolved)
}

/// The relative symlink target that leads from directory `from` to `to` (both output paths).
fn relative_target(from: &[Vec<u8>], to: &[Vec<u8>]) -> Vec<u8> {
    let common = from.iter().zip(to).take_while(|(a, b)| a == b).count();
    let mut parts: Vec<&[u8]> = vec![b".."; from.len() - common];
    parts.extend(to[common..].iter().map(Vec::as_slice));
    if parts.is_empty() {
        return b".".to_vec();
    }
    parts.join(&b'/')
}

fn display(components: &[Vec<u8>]) -> String {
    String::from_utf8_lossy(&components.join(&b'/')).into_owned()
}

fn type_name(entry_type: EntryType) -> &'static str {
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

fn reading_after(previous: &str, error: &io::Error) -> String {
    if previous.is_empty() {
        format!("reading the first entry: {error}")
    } else {
        format!("reading the entry after '{previous}': {error}")
    }
}

/// Reads `reader` to its end, so the decompressor checks its trailer (a stream cut after the tar's last
/// entry is still caught).
fn drain(mut reader: impl Read) -> io::Result<u64> {
    io::copy(&mut reader, &mut io::sink())
}

fn set_mode(path: &Path, mode: u32) -> Result<(), DebError> {
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
    fn new(deb: &'a Path, out: &'a Path) -> Unpacker<'a> {
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

    /// One tar entry of a fixture, named exactly as given (no normalisation, so hostile names can be made).
    #[derive(Clone, Copy)]
    enum Node<'a> {
        Dir(&'a str),
        File(&'a str, &'a [u8], u32),
        Symlink(&'a str, &'a str),
        HardLink(&'a str, &'a str),
        Char(&'a str),
        Block(&'a str),
        Fifo(&'a str),
        /// A name too long for the header, written with a GNU long-name entry.
        LongFile(&'a str, &'a [u8]),
    }
    use Node::*;

    fn tar(nodes: &[Node]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for node in nodes {
            let mut header = tar::Header::new_gnu();
            let (name, link, entry_type, data, mode): (&str, &str, EntryType, &[u8], u32) = match *node {
                Dir(name) => (name, "", EntryType::Directory, b"", 0o755),
                File(name, data, mode) => (name, "", EntryType::Regular, data, mode),
                Symlink(name, target) => (name, target, EntryType::Symlink, b"", 0o777),
                HardLink(name, target) => (name, target, EntryType::Link, b"", 0o644),
                Char(name) => (name, "", EntryType::Char, b"", 0o644),
                Block(name) => (name, "", EntryType::Block, b"", 0o644),
                Fifo(name) => (name, "", EntryType::Fifo, b"", 0o644),
                LongFile(name, data) => {
                    header.set_entry_type(EntryType::Regular);
                    header.set_mode(0o644);
                    header.set_size(data.len() as u64);
                    builder.append_data(&mut header, name, data).unwrap();
                    continue;
                }
            };
            assert!(name.len() < 100 && link.len() < 100, "fixture names fit the header");
            let old = header.as_old_mut();
            old.name = [0; 100];
            old.name[..name.len()].copy_from_slice(name.as_bytes());
            old.linkname = [0; 100];
            old.linkname[..link.len()].copy_from_slice(link.as_bytes());
            header.set_entry_type(entry_type);
            header.set_mode(mode);
            header.set_size(data.len() as u64);
            header.set_uid(0);
            header.set_gid(0);
            header.set_mtime(1_700_000_000);
            header.set_cksum();
            builder.append(&header, data).unwrap();
        }
        builder.into_inner().unwrap()
    }

    #[derive(Clone, Copy, Debug)]
    enum Compression {
        None,
        Gzip,
        Xz,
        Zstd,
    }

    fn compress(data: &[u8], compression: Compression) -> (Vec<u8>, &'static str) {
        match compression {
            Compression::None => (data.to_vec(), ""),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
                encoder.write_all(data).unwrap();
                (encoder.finish().unwrap(), ".gz")
            }
            Compression::Xz => {
                let mut encoder = xz2::write::XzEncoder::new(Vec::new(), 6);
                encoder.write_all(data).unwrap();
                (encoder.finish().unwrap(), ".xz")
            }
            Compression::Zstd => (zstd::encode_all(data, 3).unwrap(), ".zst"),
        }
    }

    fn ar(members: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = AR_MAGIC.to_vec();
        for (name, data) in members {
            let header = format!(
                "{:<16}{:<12}{:<6}{:<6}{:<8}{:<10}`\n",
                name,
                0,
                0,
                0,
                100644,
                data.len()
            );
            assert_eq!(header.len(), 60);
            out.extend_from_slice(header.as_bytes());
            out.extend_from_slice(data);
            if data.len() % 2 == 1 {
                out.push(b'\n');
            }
        }
        out
    }

    const CONTROL: &str = "Package: hello\nVersion: 2.10-3\nArchitecture: amd64\nDescription: greets\n";

    fn control_tar() -> Vec<u8> {
        tar(&[
            Dir("./"),
            File("./control", CONTROL.as_bytes(), 0o644),
            File("./postinst", b"#!/bin/sh\nset -e\necho configured\n", 0o755),
            File("./md5sums", b"0123  usr/bin/hello\n", 0o644),
        ])
    }

    fn deb_bytes(data: &[Node], compression: Compression) -> Vec<u8> {
        let (control, control_suffix) = compress(&control_tar(), Compression::Gzip);
        let (data, data_suffix) = compress(&tar(data), compression);
        ar(&[
            ("debian-binary", b"2.0\n"),
            (&format!("control.tar{control_suffix}"), &control),
            (&format!("data.tar{data_suffix}"), &data),
        ])
    }

    fn write_deb(dir: &Path, bytes: &[u8]) -> PathBuf {
        let path = dir.join("fixture.deb");
        fs::write(&path, bytes).unwrap();
        path
    }

    fn mode(path: &Path) -> u32 {
        fs::symlink_metadata(path).unwrap().mode() & 0o7777
    }

    fn link(path: &Path) -> String {
        fs::read_link(path).unwrap().to_string_lossy().into_owned()
    }

    fn hello_package() -> Vec<Node<'static>> {
        vec![
            Dir("./"),
            Dir("./bin/"),
            File("./bin/sh", b"#!sh", 0o755),
            Dir("./usr/"),
            Dir("./usr/bin/"),
            File("./usr/bin/hello", b"hello binary", 0o755),
            File("./usr/bin/owner-exec", b"x", 0o700),
            File("./usr/bin/setuid", b"s", 0o4755),
            HardLink("./usr/bin/hello-again", "./usr/bin/hello"),
            Symlink("./usr/bin/sh2", "/bin/sh"),
            Symlink("./usr/bin/hi", "hello"),
            Dir("./usr/lib/"),
            Dir("./usr/lib/x86_64-linux-gnu/"),
            File("./usr/lib/x86_64-linux-gnu/libfoo.so.1", b"ELF", 0o644),
            File("./usr/lib/x86_64-linux-gnu/private.so", b"ELF", 0o600),
            Symlink("./usr/lib/x86_64-linux-gnu/libfoo.so", "libfoo.so.1"),
            Symlink(
                "./usr/lib/x86_64-linux-gnu/libbar.so",
                "/lib/x86_64-linux-gnu/libfoo.so.1",
            ),
            Symlink(
                "./usr/lib/x86_64-linux-gnu/up.so",
                "../../../lib/x86_64-linux-gnu/libfoo.so.1",
            ),
            Dir("./lib/"),
            Dir("./lib/x86_64-linux-gnu/"),
            File("./lib/x86_64-linux-gnu/libc.so.6", b"libc", 0o755),
            Dir("./lib64/"),
            Symlink("./lib64/ld-linux-x86-64.so.2", "/lib/x86_64-linux-gnu/libc.so.6"),
            // Merged-usr packages ship the aliases; after the merge they point at themselves.
            Symlink("./sbin", "usr/sbin"),
            Dir("./usr/sbin/"),
            File("./usr/sbin/tool", b"t", 0o750),
            Symlink("./usr/sbin/tool", "/usr/sbin/tool"),
            Dir("./etc/"),
            Symlink("./etc/alt", "/etc/alternatives/hello"),
            // Files in both usr/X and X's directories merge into one real directory.
            Dir("./usr/share/doc/hello/"),
            File("./usr/share/doc/hello/copyright", b"GPL", 0o644),
            LongFile(
                "./usr/share/doc/hello/a-very-long-directory-name-that-does-not-fit/in-the-hundred-bytes-of-a-tar-header/README",
                b"long",
            ),
        ]
    }

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
    fn refuses_truncated_and_corrupt_packages() {
        for compression in [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd] {
            let good = deb_bytes(&hello_package(), compression);
            let data_start = find(&good, b"data.tar").unwrap() + 60;
            // The end of the data member, before the pad byte an odd-sized member gets.
            let data_end = data_start + compress(&tar(&hello_package()), compression).0.len();
            let mut damaged: Vec<(String, Vec<u8>)> = Vec::new();
            for cut in [1, 7, 100, 600, data_end - data_start - 10] {
                damaged.push((format!("cut {cut} bytes"), good[..data_end - cut].to_vec()));
            }
            // A truncated member whose header was fixed up to match: only the decompressor or tar notices.
            if !matches!(compression, Compression::None) {
                let (data, suffix) = compress(&tar(&hello_package()), compression);
                let (control, _) = compress(&control_tar(), Compression::Gzip);
                let short = &data[..data.len() - 9];
                damaged.push((
                    "short member".into(),
                    ar(&[
                        ("debian-binary", b"2.0\n"),
                        ("control.tar.gz", &control),
                        (&format!("data.tar{suffix}"), short),
                    ]),
                ));
                let mut flipped = good.clone();
                let middle = data_start + (good.len() - data_start) / 2;
                for byte in &mut flipped[middle..middle + 16] {
                    *byte ^= 0x5a;
                }
                damaged.push(("flipped bytes".into(), flipped));
            }
            for (what, bytes) in damaged {
                let dir = tempfile::tempdir().unwrap();
                let deb = write_deb(dir.path(), &bytes);
                let out = dir.path().join("out");
                let error = extract_data(&deb, &out)
                    .expect_err(&format!("{compression:?}, {what}"))
                    .to_string();
                assert!(error.contains(&deb.display().to_string()), "{error}");
                assert!(!out.exists(), "{compression:?}, {what}: {error}");
            }
        }
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    #[test]
    fn refuses_files_that_are_not_debian_packages() {
        let (control, _) = compress(&control_tar(), Compression::Gzip);
        let (data, _) = compress(&tar(&[Dir("./")]), Compression::Xz);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("text", b"Package: hello\n".to_vec(), "does not start with the ar magic"),
            ("empty ar", AR_MAGIC.to_vec(), "the ar archive is empty"),
            (
                "data first",
                ar(&[("data.tar.xz", &data), ("debian-binary", b"2.0\n")]),
                "its first member is 'data.tar.xz', not 'debian-binary'",
            ),
            (
                "format 3",
                ar(&[
                    ("debian-binary", b"3.0\n"),
                    ("control.tar.gz", &control),
                    ("data.tar.xz", &data),
                ]),
                "format '3.0'",
            ),
            (
                "no data",
                ar(&[("debian-binary", b"2.0\n"), ("control.tar.gz", &control)]),
                "it has no data.tar member",
            ),
            (
                "unknown member",
                ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar.gz", &control),
                    ("evil", b"x"),
                    ("data.tar.xz", &data),
                ]),
                "it has an unknown member 'evil'",
            ),
        ];
        for (what, bytes, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let deb = write_deb(dir.path(), &bytes);
            let out = dir.path().join("out");
            let error = extract_data(&deb, &out).expect_err(what);
            assert!(matches!(error, DebError::NotADeb { .. }), "{what}: {error}");
            assert!(error.to_string().contains(reason), "{what}: {error}");
            assert!(!out.exists());
        }
    }

    #[test]
    fn reports_unsupported_compression() {
        let dir = tempfile::tempdir().unwrap();
        let (control, _) = compress(&control_tar(), Compression::Gzip);
        let deb = write_deb(
            dir.path(),
            &ar(&[
                ("debian-binary", b"2.0\n"),
                ("control.tar.gz", &control),
                ("data.tar.bz2", b"BZh9"),
            ]),
        );
        let out = dir.path().join("out");
        let error = extract_data(&deb, &out).unwrap_err();
        assert!(
            matches!(&error, DebError::UnsupportedCompression { member, .. } if member == "data.tar.bz2"),
            "{error}"
        );
        assert!(!out.exists());
        // The control member is still readable.
        assert_eq!(read_control(&deb).unwrap().control, CONTROL);
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

    #[test]
    fn reads_control_and_maintainer_scripts() {
        for compression in [Compression::None, Compression::Gzip, Compression::Xz, Compression::Zstd] {
            let dir = tempfile::tempdir().unwrap();
            let (control, suffix) = compress(&control_tar(), compression);
            let (data, _) = compress(&tar(&[Dir("./")]), Compression::Xz);
            let deb = write_deb(
                dir.path(),
                &ar(&[
                    ("debian-binary", b"2.0\n"),
                    (&format!("control.tar{suffix}"), &control),
                    ("data.tar.xz", &data),
                ]),
            );
            let info = read_control(&deb).unwrap();
            assert_eq!(info.control, CONTROL);
            assert_eq!(
                info.file("postinst"),
                Some(&b"#!/bin/sh\nset -e\necho configured\n"[..])
            );
            let names: Vec<&str> = info.files.iter().map(|(n, _)| n.as_str()).collect();
            assert_eq!(names, ["md5sums", "postinst"]);

            let scripts = dir.path().join("nix-support/debian");
            let written = extract_control_into(&deb, &scripts).unwrap();
            assert_eq!(written, info);
            assert_eq!(fs::read_to_string(scripts.join("control")).unwrap(), CONTROL);
            assert_eq!(
                fs::read(scripts.join("postinst")).unwrap(),
                b"#!/bin/sh\nset -e\necho configured\n"
            );
            assert_eq!(mode(&scripts.join("postinst")), 0o644);
            assert_eq!(mode(&scripts.join("md5sums")), 0o644);
        }
    }

    #[test]
    fn extract_control_into_does_not_follow_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        let deb = write_deb(dir.path(), &deb_bytes(&[Dir("./")], Compression::Gzip));
        let scripts = dir.path().join("scripts");
        fs::create_dir(&scripts).unwrap();
        let victim = dir.path().join("victim");
        fs::write(&victim, b"precious").unwrap();
        std::os::unix::fs::symlink(&victim, scripts.join("postinst")).unwrap();
        let error = extract_control_into(&deb, &scripts).unwrap_err();
        assert!(error.to_string().contains("postinst"), "{error}");
        assert_eq!(fs::read(&victim).unwrap(), b"precious");
    }

    #[test]
    fn refuses_hostile_control_members() {
        let cases: &[(Node, &str, &str)] = &[
            (
                File("./../postinst", b"x", 0o755),
                "./../postinst",
                "has a '..' component",
            ),
            (
                File("./scripts/postinst", b"x", 0o755),
                "./scripts/postinst",
                "may only hold files at its top level",
            ),
            (Symlink("./postinst", "/etc/shadow"), "./postinst", "is a symlink"),
            (
                File("./control", b"Package: twice\n", 0o644),
                "./control",
                "appears twice",
            ),
        ];
        for (hostile, entry, reason) in cases {
            let dir = tempfile::tempdir().unwrap();
            let control = tar(&[File("./control", CONTROL.as_bytes(), 0o644), *hostile]);
            let (data, _) = compress(&tar(&[Dir("./")]), Compression::Xz);
            let deb = write_deb(
                dir.path(),
                &ar(&[
                    ("debian-binary", b"2.0\n"),
                    ("control.tar", &control),
                    ("data.tar.xz", &data),
                ]),
            );
            let error = read_control(&deb).expect_err(entry).to_string();
            assert!(error.contains(&format!("'{entry}'")), "{error}");
            assert!(error.contains(reason), "{error}");
            let scripts = dir.path().join("scripts");
            assert!(extract_control_into(&deb, &scripts).is_err());
            assert!(!scripts.exists(), "nothing is written when control.tar is refused");
        }
    }

    #[test]
    fn symlink_targets_are_resolved_in_the_package_and_made_relative() {
        // (entry, target, the output link's target, or None if it escapes)
        let cases: &[(&str, &str, Option<&str>)] = &[
            ("usr/bin/sh2", "/bin/sh", Some("sh")),
            ("usr/bin/sh2", "../../bin/sh", Some("sh")),
            (
                "bin/x",
                "/usr/lib/x86_64-linux-gnu/y",
                Some("../lib/x86_64-linux-gnu/y"),
            ),
            ("usr/share/doc/a/changelog", "../b/changelog", Some("../b/changelog")),
            ("usr/share/doc/a", "b", Some("b")),
            ("usr/lib/a/b/c", "/", Some("../../..")),
            ("usr/lib/a/b/c", "/usr", Some("../../..")),
            ("usr/lib/a/b/c", "/usr/lib/a/b", Some(".")),
            ("etc/x", "./y/./z//w/", Some("y/z/w")),
            ("etc/x", "../../etc/passwd", None),
            ("usr/bin/x", "../../../etc/passwd", None),
            ("x", "..", None),
        ];
        for (entry, target, expected) in cases {
            let original = archive_path(entry.as_bytes()).unwrap();
            let mapped = merge_usr(&original);
            let got = resolve_link(&original[..original.len() - 1], target.as_bytes())
                .map(|to| String::from_utf8(relative_target(&mapped[..mapped.len() - 1], merge_usr(&to))).unwrap());
            assert_eq!(got.as_deref(), *expected, "{entry} -> {target}");
        }
    }

    /// Every .deb in apt's cache unpacks, and holds exactly the regular files `dpkg-deb -c` lists, at their
    /// usr-merged paths with their sizes.
    #[test]
    fn unpacks_real_debian_packages_from_the_apt_cache() {
        let mut debs: Vec<PathBuf> = fs::read_dir("/var/cache/apt/archives")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "deb"))
            .collect();
        if debs.is_empty() {
            println!("SKIPPED: no .deb in /var/cache/apt/archives to test against");
            return;
        }
        debs.sort();
        debs.truncate(12);
        for deb in debs {
            let dir = tempfile::tempdir().unwrap();
            let out = dir.path().join("out");
            let summary = extract_data(&deb, &out).unwrap_or_else(|e| panic!("{e}"));
            println!("{}: {summary}", deb.display());
            let info = read_control(&deb).unwrap();
            assert!(info.control.starts_with("Package: "), "{}", deb.display());

            let listing = std::process::Command::new("dpkg-deb")
                .arg("-c")
                .arg(&deb)
                .output()
                .expect("dpkg-deb runs (it is on every host that has an apt cache)");
            assert!(listing.status.success(), "dpkg-deb -c {}", deb.display());
            let mut files = 0;
            for line in String::from_utf8_lossy(&listing.stdout).lines() {
                // "-rw-r--r-- root/root     18336 2022-11-06 12:04 ./usr/bin/hello"
                let mut fields = line.split_whitespace();
                if !fields.next().is_some_and(|perms| perms.starts_with('-')) {
                    continue;
                }
                let size: u64 = fields.nth(1).and_then(|s| s.parse().ok()).expect(line);
                let name = &line[line.find(" ./").expect(line) + 1..];
                let original = archive_path(name.as_bytes()).unwrap();
                let path = out.join(display(merge_usr(&original)));
                let metadata = fs::symlink_metadata(&path)
                    .unwrap_or_else(|e| panic!("{}: {name} -> {}: {e}", deb.display(), path.display()));
                assert!(metadata.is_file(), "{}", path.display());
                assert_eq!(metadata.len(), size, "{}", path.display());
                files += 1;
            }
            assert_eq!(files, summary.files - summary.hard_links, "{}", deb.display());
            assert!(!out.join("usr").exists(), "{}", deb.display());
            assert_links_stay_inside(&out, &[]);
        }
    }

    /// Every symlink under `out/dir` is relative and, resolved lexically, stays inside `out`.
    fn assert_links_stay_inside(out: &Path, dir: &[Vec<u8>]) {
        let path = out.join(display(dir));
        for entry in fs::read_dir(&path).unwrap() {
            let entry = entry.unwrap();
            let mut child = dir.to_vec();
            child.push(entry.file_name().as_bytes().to_vec());
            let file_type = entry.file_type().unwrap();
            if file_type.is_dir() {
                assert_links_stay_inside(out, &child);
            } else if file_type.is_symlink() {
                let target = fs::read_link(entry.path()).unwrap();
                assert!(target.is_relative(), "{}", entry.path().display());
                assert!(
                    resolve_link(dir, target.as_os_str().as_bytes()).is_some(),
                    "{} -> {} leaves the output",
                    entry.path().display(),
                    target.display()
                );
            }
        }
    }
}
