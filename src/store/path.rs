//! Store paths: `/nix/store/<hash32>-<name>`, and how each kind of content gets its hash part.
//!
//! The hash part is the Nix32 of sha256(`<type>:sha256:<inner hex>:<store dir>:<name>`) folded to 20 bytes. The
//! type says what the inner digest is over: `text` (contents of toFile and .drv files), `source` (the NAR of
//! added paths), `output:<id>` (fixed-output and input-addressed derivation outputs).

use std::fmt;

use thiserror::Error;

use super::hash::{compress_hash, hex, nix32_decode, nix32_encode, sha256};

/// The logical store directory; rixos keeps Nix's so paths and hashes match (see DESIGN.md).
pub const STORE_DIR: &str = "/nix/store";

const HASH_BYTES: usize = 20;
const HASH_CHARS: usize = 32;
const MAX_NAME: usize = 211;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum StorePathError {
    #[error("{path:?} is not in the store {STORE_DIR}")]
    NotInStore { path: String },
    #[error("{path:?} is not a store path (expected {STORE_DIR}/<32-character hash>-<name>)")]
    Malformed { path: String },
    #[error(
        "store path name {name:?} is invalid: {reason} (names are at most 211 characters of A-Z a-z 0-9 + - . _ ? =, \
         not starting with '.')"
    )]
    BadName { name: String, reason: &'static str },
}

/// A store path, kept as its hash part and name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StorePath {
    hash: [u8; HASH_BYTES],
    name: String,
}

/// Checks a store path name the way Nix does.
pub fn check_name(name: &str) -> Result<(), StorePathError> {
    let bad = |reason| {
        Err(StorePathError::BadName {
            name: name.to_string(),
            reason,
        })
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name.len() > MAX_NAME {
        return bad("it is too long");
    }
    if name.starts_with('.') {
        return bad("it starts with '.'");
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || "+-._?=".contains(*c)))
    {
        let _ = c;
        return bad("it holds a character outside the allowed set");
    }
    Ok(())
}

impl StorePath {
    pub fn from_parts(hash: [u8; HASH_BYTES], name: &str) -> Result<Self, StorePathError> {
        check_name(name)?;
        Ok(StorePath {
            hash,
            name: name.to_string(),
        })
    }

    /// Parses `<hash32>-<name>`, the store path's file name.
    pub fn from_base_name(base: &str) -> Result<Self, StorePathError> {
        let malformed = || StorePathError::Malformed { path: base.to_string() };
        if base.len() < HASH_CHARS + 2 || base.as_bytes()[HASH_CHARS] != b'-' {
            return Err(malformed());
        }
        let digest = nix32_decode(&base[..HASH_CHARS], HASH_BYTES).map_err(|_| malformed())?;
        let hash = digest.try_into().map_err(|_| malformed())?;
        StorePath::from_parts(hash, &base[HASH_CHARS + 1..])
    }

    /// Parses a full path `/nix/store/<hash32>-<name>`.
    pub fn parse(path: &str) -> Result<Self, StorePathError> {
        let base = path
            .strip_prefix(STORE_DIR)
            .and_then(|rest| rest.strip_prefix('/'))
            .ok_or_else(|| StorePathError::NotInStore { path: path.to_string() })?;
        if base.contains('/') {
            return Err(StorePathError::Malformed { path: path.to_string() });
        }
        StorePath::from_base_name(base)
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn hash_part(&self) -> String {
        nix32_encode(&self.hash)
    }

    pub fn base_name(&self) -> String {
        format!("{}-{}", self.hash_part(), self.name)
    }
}

impl fmt::Display for StorePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{STORE_DIR}/{}", self.base_name())
    }
}

/// The path for content of the given `kind` (`text:...`, `source:...`, `output:out`) with inner sha256 digest.
fn make_store_path(kind: &str, inner: &[u8; 32], name: &str) -> Result<StorePath, StorePathError> {
    check_name(name)?;
    let fingerprint = format!("{kind}:sha256:{}:{STORE_DIR}:{name}", hex(inner));
    let folded = compress_hash(&sha256(fingerprint.as_bytes()), HASH_BYTES);
    Ok(StorePath {
        hash: folded.try_into().expect("folded to 20 bytes"),
        name: name.to_string(),
    })
}

fn with_references<'a>(mut kind: String, references: impl IntoIterator<Item = &'a StorePath>) -> String {
    let mut refs: Vec<String> = references.into_iter().map(StorePath::to_string).collect();
    refs.sort();
    for reference in refs {
        kind.push(':');
        kind.push_str(&reference);
    }
    kind
}

/// The path of a text file (`builtins.toFile`, a `.drv`) with sha256 `contents_digest` and its references.
pub fn text_path<'a>(
    name: &str,
    contents_digest: &[u8; 32],
    references: impl IntoIterator<Item = &'a StorePath>,
) -> Result<StorePath, StorePathError> {
    make_store_path(&with_references("text".to_string(), references), contents_digest, name)
}

/// The path of an added tree (`nix-store --add`, path literals) with NAR sha256 `nar_digest`.
pub fn source_path<'a>(
    name: &str,
    nar_digest: &[u8; 32],
    references: impl IntoIterator<Item = &'a StorePath>,
    self_reference: bool,
) -> Result<StorePath, StorePathError> {
    let mut kind = with_references("source".to_string(), references);
    if self_reference {
        kind.push_str(":self");
    }
    make_store_path(&kind, nar_digest, name)
}

/// How a fixed-output hash covers its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileIngestion {
    /// The hash is of the file's bytes.
    Flat,
    /// The hash is of the NAR of the whole tree.
    Recursive,
}

/// The output path of a fixed-output derivation whose output has hash `digest` under `algo` ("sha256", "sha1",
/// "sha512", "md5").
pub fn fixed_output_path(
    name: &str,
    ingestion: FileIngestion,
    algo: &str,
    digest: &[u8],
) -> Result<StorePath, StorePathError> {
    if ingestion == FileIngestion::Recursive && algo == "sha256" {
        let digest: &[u8; 32] = digest
            .try_into()
            .map_err(|_| StorePathError::Malformed { path: name.into() })?;
        return source_path(name, digest, [], false);
    }
    let mode = if ingestion == FileIngestion::Recursive {
        "r:"
    } else {
        ""
    };
    let inner = sha256(format!("fixed:out:{mode}{algo}:{}:", hex(digest)).as_bytes());
    make_store_path("output:out", &inner, name)
}

/// The path of output `output` of an input-addressed derivation named `drv_name` whose hashDerivationModulo is
/// `modulo_hash`.
pub fn output_path(drv_name: &str, output: &str, modulo_hash: &[u8; 32]) -> Result<StorePath, StorePathError> {
    let name = if output == "out" {
        drv_name.to_string()
    } else {
        format!("{drv_name}-{output}")
    };
    make_store_path(&format!("output:{output}"), modulo_hash, &name)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Vectors from ../shared/docs/nix-formats.md, produced by Nix 2.8.

    #[test]
    fn to_file_paths_match_nix() {
        let x = text_path("x", &sha256(b"hello"), []).unwrap();
        assert_eq!(x.to_string(), "/nix/store/4g4g9i669dl63abpww0djbl2jxl6bwiz-x");

        let foo = text_path("foo", &sha256(b"bar"), []).unwrap();
        let baz = text_path("baz", &sha256(foo.to_string().as_bytes()), [&foo]).unwrap();
        assert_eq!(baz.to_string(), "/nix/store/5xd714cbfnkz02h2vbsj4fm03x3f15nf-baz");
    }

    #[test]
    fn added_file_path_matches_nix() {
        let nar_digest = super::super::hash::nix32_decode("0sg9f58l1jj88w6pdrfdpj5x9b1zrwszk84j81zvby36q9whhhqa", 32)
            .unwrap()
            .try_into()
            .unwrap();
        let path = source_path("hello.txt", &nar_digest, [], false).unwrap();
        assert_eq!(
            path.to_string(),
            "/nix/store/xfp2hphvk98rkk9ywlqpp587rjdcgnc2-hello.txt"
        );
    }

    #[test]
    fn flat_fixed_output_path_matches_nix() {
        let path = fixed_output_path("fo", FileIngestion::Flat, "sha256", &sha256(b"hello")).unwrap();
        assert_eq!(path.to_string(), "/nix/store/nqf0xn3i5yddaqga5lmixksnxg099q5c-fo");
    }

    #[test]
    fn parse_and_display_round_trip() {
        let text = "/nix/store/4g4g9i669dl63abpww0djbl2jxl6bwiz-x";
        let path = StorePath::parse(text).unwrap();
        assert_eq!(
            (path.to_string().as_str(), path.name(), path.hash_part().as_str()),
            (text, "x", "4g4g9i669dl63abpww0djbl2jxl6bwiz")
        );
    }

    #[test]
    fn bad_paths_and_names_are_refused() {
        assert!(matches!(
            StorePath::parse("/usr/bin/x"),
            Err(StorePathError::NotInStore { .. })
        ));
        assert!(matches!(
            StorePath::parse("/nix/store/short-x"),
            Err(StorePathError::Malformed { .. })
        ));
        assert!(matches!(
            StorePath::parse("/nix/store/4g4g9i669dl63abpww0djbl2jxl6bwiz-x/sub"),
            Err(StorePathError::Malformed { .. })
        ));
        for name in ["", ".hidden", "with space", "slash/", &"a".repeat(212)] {
            assert!(
                matches!(check_name(name), Err(StorePathError::BadName { .. })),
                "{name:?}"
            );
        }
        check_name(&"a".repeat(211)).unwrap();
        check_name("foo-1.0+git_x?=.").unwrap();
    }
}
