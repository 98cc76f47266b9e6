//! The `ar` container of a `.deb`: every member header checked, `debian-binary` read, and a reader
//! for a member that decompresses it (none, gzip, xz, zstd).

use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use super::{COPY_BUFFER, DebError};

pub(super) const AR_MAGIC: &[u8; 8] = b"!<arch>\n";
const AR_HEADER: u64 = 60;

/// One member of the ar archive: where its bytes are in the file.
#[derive(Debug, Clone)]
pub(super) struct Member {
    pub(super) name: String,
    offset: u64,
    size: u64,
}

/// An opened `.deb` whose ar structure and `debian-binary` have been checked.
pub(super) struct DebFile {
    path: PathBuf,
    file: File,
    pub(super) control: Member,
    pub(super) data: Member,
}

impl DebFile {
    pub(super) fn open(path: &Path) -> Result<DebFile, DebError> {
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
    pub(super) fn member_reader(&self, member: &Member) -> Result<Box<dyn Read + '_>, DebError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pkgs::deb::test_debs::Node::*;
    use crate::pkgs::deb::test_debs::{
        CONTROL, Compression, ar, compress, control_tar, deb_bytes, hello_package, tar, write_deb,
    };
    use crate::pkgs::deb::{extract_data, read_control};

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
}
