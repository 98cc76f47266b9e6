//! The image to write: a regular file, checked against `IMAGE.sha256` (sha256sum's or BSD's format) when that
//! exists, before anything is written.

use std::fs::{self, File};
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

use super::BLOCK_SIZE;
use super::target::kind_of;
use crate::store::hash::hex;

/// The sha256 `IMAGE.sha256` gives for an image called `image_name`, from sha256sum's format (`HASH  NAME`,
/// `HASH *NAME`) or BSD's (`SHA256 (NAME) = HASH`). With several entries the image's own is used; a single
/// entry is taken whatever name it gives (images get renamed).
pub fn parse_sha256_file(text: &str, image_name: &str) -> Result<[u8; 32]> {
    let mut entries = Vec::new();
    for line in text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let (hash, name) = if let Some(rest) = line.strip_prefix("SHA256 (") {
            let (name, hash) = rest
                .rsplit_once(") = ")
                .with_context(|| format!("malformed line {line:?}"))?;
            (hash.trim(), name)
        } else {
            let (hash, name) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
            (hash, name.trim_start().trim_start_matches('*'))
        };
        let digest = decode_sha256(hash).with_context(|| format!("{hash:?} is not a sha256 in line {line:?}"))?;
        entries.push((digest, name.to_owned()));
    }
    let base = |name: &str| Path::new(name).file_name().map(|n| n.to_string_lossy().into_owned());
    match entries.as_slice() {
        [] => bail!("no sha256 in it"),
        [(digest, _)] => Ok(*digest),
        _ => match entries
            .iter()
            .find(|(_, name)| base(name).as_deref() == Some(image_name))
        {
            Some((digest, _)) => Ok(*digest),
            None => bail!("it has {} entries and none for {image_name}", entries.len()),
        },
    }
}

fn decode_sha256(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut digest = [0u8; 32];
    for (i, byte) in digest.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(digest)
}

/// The image to write: a regular file, checked against `IMAGE.sha256` when that exists.
pub(super) struct Image {
    pub(super) path: PathBuf,
    pub(super) size: u64,
    /// From `IMAGE.sha256`, already compared with the image.
    pub(super) expected: Option<[u8; 32]>,
}

pub(super) fn open_image(path: &Path) -> Result<Image> {
    let meta = fs::metadata(path).with_context(|| format!("reading the image {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "the image {} is not a regular file but a {}",
            path.display(),
            kind_of(meta.file_type())
        );
    }
    let mut sidecar = path.as_os_str().to_owned();
    sidecar.push(".sha256");
    let sidecar = PathBuf::from(sidecar);
    let expected = match fs::read_to_string(&sidecar) {
        Ok(text) => {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let expected = parse_sha256_file(&text, &name).with_context(|| format!("reading {}", sidecar.display()))?;
            let actual = sha256_of_file(path, meta.len())?;
            if actual != expected {
                bail!(
                    "the image {} does not match {}: its sha256 is {}, the file says {}; the download is damaged or \
                     the files do not belong together; nothing was written",
                    path.display(),
                    sidecar.display(),
                    hex(&actual),
                    hex(&expected)
                );
            }
            Some(expected)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(e).with_context(|| format!("reading {}", sidecar.display())),
    };
    Ok(Image {
        path: path.to_owned(),
        size: meta.len(),
        expected,
    })
}

fn sha256_of_file(path: &Path, size: u64) -> Result<[u8; 32]> {
    let mut file = File::open(path).with_context(|| format!("opening the image {}", path.display()))?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; BLOCK_SIZE];
    let mut done = 0u64;
    loop {
        let n = read_full(&mut file, &mut buffer).with_context(|| format!("reading the image {}", path.display()))?;
        if n == 0 {
            break;
        }
        hasher.update(&buffer[..n]);
        done += n as u64;
    }
    if done != size {
        bail!(
            "the image {} changed size while being read ({size} bytes, then {done})",
            path.display()
        );
    }
    Ok(hasher.finalize().into())
}

/// Reads until the buffer is full or the file ends.
pub(super) fn read_full(file: &mut File, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_files_are_read_in_both_formats() {
        let a = "a".repeat(64);
        let b = "B".repeat(64);
        let text = format!("{a}  other.iso\n{b} *dir/rixos.iso\n");
        assert_eq!(parse_sha256_file(&text, "rixos.iso").unwrap(), [0xbb; 32]);
        assert!(
            parse_sha256_file(&text, "third.iso")
                .unwrap_err()
                .to_string()
                .contains("none for third.iso")
        );
        assert_eq!(
            parse_sha256_file(&format!("{a}  renamed.iso\n"), "rixos.iso").unwrap(),
            [0xaa; 32]
        );
        assert_eq!(parse_sha256_file(&format!("{a}\n"), "rixos.iso").unwrap(), [0xaa; 32]);
        assert_eq!(
            parse_sha256_file(&format!("SHA256 (rixos.iso) = {a}\n"), "rixos.iso").unwrap(),
            [0xaa; 32]
        );
        assert!(parse_sha256_file("xyz  rixos.iso\n", "rixos.iso").is_err());
        assert!(parse_sha256_file("\n", "rixos.iso").is_err());
    }
}
