//! NAR, the Nix ARchive: a canonical serialisation of a file tree (contents, the owner-executable bit, symlink
//! targets; no times, owners or other modes), written and read as streams so no file sits in memory whole.
//!
//! Reading validates everything Nix's reader does (token order, padding, sorted unique entry names, no `.`,
//! `..`, `/` or NUL in names), and [`restore`] removes what it wrote if the archive turns out bad.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use thiserror::Error;

const MAGIC: &str = "nix-archive-1";
/// Longest token, name or symlink target a reader accepts (Linux's PATH_MAX).
const MAX_SHORT_STRING: u64 = 4096;
/// Deepest directory nesting a reader accepts, so a hostile archive cannot exhaust the native stack.
const MAX_DEPTH: usize = 512;
const COPY_BUFFER: usize = 1 << 20;

#[derive(Debug, Error)]
pub enum NarError {
    #[error("reading {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("{path}: {what} (a file changed while being archived?)")]
    Changed { path: PathBuf, what: String },
    #[error("{path} is a {kind}, which a NAR cannot hold (only files, directories and symlinks)")]
    Unsupported { path: PathBuf, kind: &'static str },
    #[error("writing the NAR: {0}")]
    Write(io::Error),
    #[error("bad NAR at byte {offset}: {message}")]
    Invalid { offset: u64, message: String },
    #[error("restoring to {path}: {source}")]
    Restore { path: PathBuf, source: io::Error },
}

/// Writes the NAR of `path` (not following a symlink at `path` itself) to `out`.
pub fn dump(path: &Path, out: impl Write) -> Result<(), NarError> {
    let mut out = BufWriter::with_capacity(1 << 16, out);
    let mut buffer = vec![0u8; COPY_BUFFER];
    write_str(&mut out, MAGIC.as_bytes())?;
    dump_node(path, &mut out, &mut buffer)?;
    out.flush().map_err(NarError::Write)
}

/// The sha256 of the NAR of `path`, and the NAR's size in bytes.
///
/// Reading the tree and hashing overlap: a thread writes the NAR into 1 MiB chunks (recycled, so nothing is
/// allocated per chunk) while this one hashes them.
pub fn hash_path(path: &Path) -> Result<([u8; 32], u64), NarError> {
    const CHUNKS: usize = 4;
    let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS);
    let (empty_tx, empty_rx) = std::sync::mpsc::sync_channel::<Vec<u8>>(CHUNKS);
    for _ in 0..CHUNKS {
        empty_tx
            .send(Vec::with_capacity(COPY_BUFFER))
            .expect("the channel has room for every chunk");
    }
    let source = path.to_path_buf();
    let producer = std::thread::spawn(move || {
        let mut writer = ChunkWriter {
            full: full_tx,
            empty: empty_rx,
            chunk: Vec::new(),
        };
        writer.chunk = writer.next_chunk()?;
        dump(&source, &mut writer)?;
        writer.send().map_err(NarError::Write)
    });
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    for mut chunk in full_rx {
        hasher.update(&chunk);
        size += chunk.len() as u64;
        chunk.clear();
        // The producer may have finished and dropped its receiver; then the chunk is simply freed.
        let _ = empty_tx.send(chunk);
    }
    producer
        .join()
        .map_err(|_| NarError::Write(io::Error::other("the archiver thread panicked")))??;
    Ok((hasher.finalize().into(), size))
}

/// Collects written bytes into chunks for another thread, reusing the chunks it hands back.
struct ChunkWriter {
    full: std::sync::mpsc::SyncSender<Vec<u8>>,
    empty: std::sync::mpsc::Receiver<Vec<u8>>,
    chunk: Vec<u8>,
}

impl ChunkWriter {
    fn next_chunk(&self) -> Result<Vec<u8>, NarError> {
        self.empty
            .recv()
            .map_err(|_| NarError::Write(io::Error::other("the hashing side stopped")))
    }

    fn send(&mut self) -> io::Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let next = self
            .empty
            .recv()
            .map_err(|_| io::Error::other("the hashing side stopped"))?;
        let full = std::mem::replace(&mut self.chunk, next);
        self.full
            .send(full)
            .map_err(|_| io::Error::other("the hashing side stopped"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let room = COPY_BUFFER - self.chunk.len();
        let n = buf.len().min(room);
        self.chunk.extend_from_slice(&buf[..n]);
        if self.chunk.len() == COPY_BUFFER {
            self.send()?;
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

pub struct HashingWriter {
    pub hasher: Sha256,
    pub size: u64,
}

impl Write for HashingWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.size += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn write_str(out: &mut impl Write, s: &[u8]) -> Result<(), NarError> {
    out.write_all(&(s.len() as u64).to_le_bytes())
        .map_err(NarError::Write)?;
    out.write_all(s).map_err(NarError::Write)?;
    write_padding(out, s.len() as u64)
}

fn write_padding(out: &mut impl Write, len: u64) -> Result<(), NarError> {
    let padding = (8 - (len % 8) as usize) % 8;
    out.write_all(&[0u8; 8][..padding]).map_err(NarError::Write)
}

fn dump_node(path: &Path, out: &mut impl Write, buffer: &mut [u8]) -> Result<(), NarError> {
    let read_err = |source| NarError::Read {
        path: path.to_path_buf(),
        source,
    };
    let meta = fs::symlink_metadata(path).map_err(read_err)?;
    let kind = meta.file_type();
    for token in ["(", "type"] {
        write_str(out, token.as_bytes())?;
    }
    if kind.is_file() {
        write_str(out, b"regular")?;
        if meta.permissions().mode() & 0o100 != 0 {
            write_str(out, b"executable")?;
            write_str(out, b"")?;
        }
        write_str(out, b"contents")?;
        let len = meta.len();
        out.write_all(&len.to_le_bytes()).map_err(NarError::Write)?;
        let mut file = File::open(path).map_err(read_err)?.take(len);
        let mut copied = 0u64;
        loop {
            let n = file.read(buffer).map_err(read_err)?;
            if n == 0 {
                break;
            }
            out.write_all(&buffer[..n]).map_err(NarError::Write)?;
            copied += n as u64;
        }
        if copied != len {
            let what = format!("read {copied} bytes where its size was {len}");
            return Err(NarError::Changed {
                path: path.to_path_buf(),
                what,
            });
        }
        write_padding(out, len)?;
    } else if kind.is_symlink() {
        write_str(out, b"symlink")?;
        write_str(out, b"target")?;
        let target = fs::read_link(path).map_err(read_err)?;
        write_str(out, target.as_os_str().as_bytes())?;
    } else if kind.is_dir() {
        write_str(out, b"directory")?;
        let mut names: Vec<_> = fs::read_dir(path)
            .map_err(read_err)?
            .map(|entry| entry.map(|e| e.file_name()))
            .collect::<Result<_, _>>()
            .map_err(read_err)?;
        names.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
        for name in names {
            for token in ["entry", "(", "name"] {
                write_str(out, token.as_bytes())?;
            }
            write_str(out, name.as_bytes())?;
            write_str(out, b"node")?;
            dump_node(&path.join(&name), out, buffer)?;
            write_str(out, b")")?;
        }
    } else {
        let kind = if kind.is_char_device() || kind.is_block_device() {
            "device node"
        } else {
            "socket or FIFO"
        };
        return Err(NarError::Unsupported {
            path: path.to_path_buf(),
            kind,
        });
    }
    write_str(out, b")")
}

/// Reads a NAR from `input` and creates the tree at `target`, which must not exist. On any error the partial
/// tree is removed.
pub fn restore(input: impl Read, target: &Path) -> Result<(), NarError> {
    let mut reader = NarReader {
        input: BufReader::with_capacity(1 << 16, input),
        offset: 0,
    };
    let result = reader
        .expect(MAGIC)
        .and_then(|()| reader.restore_node(target, 0))
        .and_then(|()| reader.expect_end());
    if result.is_err() {
        // Best effort: the error that caused this matters more than a failure to clean up.
        let _ = remove_tree(target);
    }
    result
}

/// Removes a tree even where canonicalisation made directories read-only for non-root users.
pub(crate) fn remove_tree(path: &Path) -> io::Result<()> {
    match fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => {
            make_writable(path)?;
            fs::remove_dir_all(path)
        }
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

pub(crate) fn make_writable(dir: &Path) -> io::Result<()> {
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755))?;
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        if entry.file_type()?.is_dir() {
            make_writable(&entry.path())?;
        }
    }
    Ok(())
}

struct NarReader<R> {
    input: BufReader<R>,
    offset: u64,
}

impl<R: Read> NarReader<R> {
    fn invalid(&self, message: impl Into<String>) -> NarError {
        NarError::Invalid {
            offset: self.offset,
            message: message.into(),
        }
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> Result<(), NarError> {
        self.input.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => self.invalid("the archive is truncated"),
            _ => self.invalid(format!("reading: {e}")),
        })?;
        self.offset += buf.len() as u64;
        Ok(())
    }

    fn read_u64(&mut self) -> Result<u64, NarError> {
        let mut bytes = [0u8; 8];
        self.read_exact(&mut bytes)?;
        Ok(u64::from_le_bytes(bytes))
    }

    fn read_padding(&mut self, len: u64) -> Result<(), NarError> {
        let padding = (8 - (len % 8) as usize) % 8;
        let mut bytes = [0u8; 8];
        self.read_exact(&mut bytes[..padding])?;
        if bytes.iter().any(|&b| b != 0) {
            return Err(self.invalid("non-zero padding"));
        }
        Ok(())
    }

    fn read_short(&mut self) -> Result<Vec<u8>, NarError> {
        let len = self.read_u64()?;
        if len > MAX_SHORT_STRING {
            return Err(self.invalid(format!("a string of {len} bytes where at most {MAX_SHORT_STRING} fit")));
        }
        let mut bytes = vec![0u8; len as usize];
        self.read_exact(&mut bytes)?;
        self.read_padding(len)?;
        Ok(bytes)
    }

    fn expect(&mut self, token: &str) -> Result<(), NarError> {
        let found = self.read_short()?;
        if found != token.as_bytes() {
            return Err(self.invalid(format!(
                "expected {token:?}, found {:?}",
                String::from_utf8_lossy(&found)
            )));
        }
        Ok(())
    }

    fn expect_end(&mut self) -> Result<(), NarError> {
        let mut byte = [0u8; 1];
        match self.input.read(&mut byte) {
            Ok(0) => Ok(()),
            Ok(_) => Err(self.invalid("data after the end of the archive")),
            Err(e) => Err(self.invalid(format!("reading: {e}"))),
        }
    }

    fn restore_node(&mut self, path: &Path, depth: usize) -> Result<(), NarError> {
        if depth > MAX_DEPTH {
            return Err(self.invalid(format!("directories nested deeper than {MAX_DEPTH}")));
        }
        let restore_err = |source| NarError::Restore {
            path: path.to_path_buf(),
            source,
        };
        self.expect("(")?;
        self.expect("type")?;
        match self.read_short()?.as_slice() {
            b"regular" => {
                let mut token = self.read_short()?;
                let mut executable = false;
                if token == b"executable" {
                    self.expect("")?;
                    executable = true;
                    token = self.read_short()?;
                }
                if token != b"contents" {
                    return Err(self.invalid(format!(
                        "expected \"contents\", found {:?}",
                        String::from_utf8_lossy(&token)
                    )));
                }
                let len = self.read_u64()?;
                let mode = if executable { 0o755 } else { 0o644 };
                let file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(mode)
                    .open(path)
                    .map_err(restore_err)?;
                let mut file = BufWriter::with_capacity(COPY_BUFFER, file);
                let copied = io::copy(&mut (&mut self.input).take(len), &mut file).map_err(restore_err)?;
                self.offset += copied;
                if copied != len {
                    return Err(self.invalid("the archive is truncated"));
                }
                file.flush().map_err(restore_err)?;
                self.read_padding(len)?;
            }
            b"symlink" => {
                self.expect("target")?;
                let target = self.read_short()?;
                if target.is_empty() || target.contains(&0) {
                    return Err(self.invalid("a symlink target that is empty or holds NUL"));
                }
                std::os::unix::fs::symlink(std::ffi::OsStr::from_bytes(&target), path).map_err(restore_err)?;
            }
            b"directory" => {
                fs::create_dir(path).map_err(restore_err)?;
                let mut previous: Option<Vec<u8>> = None;
                loop {
                    let token = self.read_short()?;
                    if token == b")" {
                        return Ok(());
                    }
                    if token != b"entry" {
                        return Err(self.invalid(format!(
                            "expected \"entry\" or \")\", found {:?}",
                            String::from_utf8_lossy(&token)
                        )));
                    }
                    self.expect("(")?;
                    self.expect("name")?;
                    let name = self.read_short()?;
                    if name.is_empty() || name == b"." || name == b".." || name.contains(&b'/') || name.contains(&0) {
                        return Err(self.invalid(format!("forbidden entry name {:?}", String::from_utf8_lossy(&name))));
                    }
                    if previous.as_ref().is_some_and(|p| p.as_slice() >= name.as_slice()) {
                        return Err(self.invalid(format!(
                            "entry {:?} is not sorted after the one before it (or repeats it)",
                            String::from_utf8_lossy(&name)
                        )));
                    }
                    self.expect("node")?;
                    self.restore_node(&path.join(std::ffi::OsStr::from_bytes(&name)), depth + 1)?;
                    self.expect(")")?;
                    previous = Some(name);
                }
            }
            other => {
                return Err(self.invalid(format!("unknown node type {:?}", String::from_utf8_lossy(other))));
            }
        }
        self.expect(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::hash::nix32_encode;

    fn sample_tree(root: &Path) {
        fs::create_dir_all(root.join("sub")).unwrap();
        fs::write(root.join("a"), "hello").unwrap();
        std::os::unix::fs::symlink("a", root.join("link")).unwrap();
        fs::write(root.join("sub/x"), "#!/bin/sh\n").unwrap();
        fs::set_permissions(root.join("sub/x"), fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn tree_hash_matches_nix() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        sample_tree(&root);
        let (digest, _) = hash_path(&root).unwrap();
        assert_eq!(
            nix32_encode(&digest),
            "02s9md0lrpzcr8xa3nq1p8y2k2kn81nxfqsf5b35hrbw4mild6dl"
        );
    }

    #[test]
    fn single_file_hash_matches_nix() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("hello.txt");
        fs::write(&file, "hello").unwrap();
        assert_eq!(
            nix32_encode(&hash_path(&file).unwrap().0),
            "0sg9f58l1jj88w6pdrfdpj5x9b1zrwszk84j81zvby36q9whhhqa"
        );
    }

    fn nar_of(path: &Path) -> Vec<u8> {
        let mut bytes = Vec::new();
        dump(path, &mut bytes).unwrap();
        bytes
    }

    #[test]
    fn restore_gives_back_the_same_tree() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("t");
        sample_tree(&root);
        let nar = nar_of(&root);
        let copy = dir.path().join("copy");
        restore(nar.as_slice(), &copy).unwrap();
        assert_eq!(nar_of(&copy), nar);
        assert_eq!(fs::read_link(copy.join("link")).unwrap(), Path::new("a"));
        assert_ne!(
            fs::metadata(copy.join("sub/x")).unwrap().permissions().mode() & 0o100,
            0
        );
    }

    /// The NAR of a directory whose entries are given verbatim (names, files' contents), for hostile archives.
    fn directory_nar(entries: &[(&[u8], &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        for token in [MAGIC, "(", "type", "directory"] {
            write_str(&mut out, token.as_bytes()).unwrap();
        }
        for (name, contents) in entries {
            for token in ["entry", "(", "name"] {
                write_str(&mut out, token.as_bytes()).unwrap();
            }
            write_str(&mut out, name).unwrap();
            for token in ["node", "(", "type", "regular", "contents"] {
                write_str(&mut out, token.as_bytes()).unwrap();
            }
            write_str(&mut out, contents).unwrap();
            write_str(&mut out, b")").unwrap();
            write_str(&mut out, b")").unwrap();
        }
        write_str(&mut out, b")").unwrap();
        out
    }

    fn wrong_magic() -> Vec<u8> {
        let mut nar = directory_nar(&[]);
        nar[8 + 12] = b'2';
        nar
    }

    #[test]
    fn bad_archives_are_refused_and_leave_nothing_behind() {
        let good = directory_nar(&[(b"a", b"1"), (b"b", b"2")]);
        let cases: Vec<(&str, Vec<u8>, &str)> = vec![
            ("unsorted", directory_nar(&[(b"b", b"1"), (b"a", b"2")]), "not sorted"),
            ("duplicate", directory_nar(&[(b"a", b"1"), (b"a", b"2")]), "not sorted"),
            ("dotdot", directory_nar(&[(b"..", b"1")]), "forbidden entry name \"..\""),
            ("dot", directory_nar(&[(b".", b"1")]), "forbidden entry name"),
            ("slash", directory_nar(&[(b"x/y", b"1")]), "forbidden entry name"),
            ("empty name", directory_nar(&[(b"", b"1")]), "forbidden entry name"),
            ("truncated", good[..good.len() - 20].to_vec(), "truncated"),
            ("trailing data", [good.as_slice(), b"x"].concat(), "data after the end"),
            (
                "wrong magic",
                wrong_magic(),
                "expected \"nix-archive-1\", found \"nix-archive-2\"",
            ),
        ];
        for (what, nar, expected) in cases {
            let dir = tempfile::tempdir().unwrap();
            let target = dir.path().join("out");
            let err = restore(nar.as_slice(), &target).expect_err(what).to_string();
            assert!(err.contains(expected), "{what}: {err}");
            assert!(
                !target.exists() && fs::symlink_metadata(&target).is_err(),
                "{what}: partial tree left behind"
            );
        }
    }

    #[test]
    fn devices_cannot_be_archived() {
        let err = dump(Path::new("/dev/null"), io::sink()).unwrap_err().to_string();
        assert!(err.contains("/dev/null is a device node"), "{err}");
    }
}
