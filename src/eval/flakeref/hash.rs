//! Hashes in fetcher inputs: `rev` and `narHash` in any of Nix's notations.

use super::attrs::{FAttrs, FErr, FResult, failure, maybe_str};

fn hash_size(algo: &str) -> Option<usize> {
    Some(match algo {
        "md5" => 16,
        "sha1" => 20,
        "sha256" | "blake3" => 32,
        "sha512" => 64,
        _ => return None,
    })
}

fn unknown_algo(algo: &str) -> FErr {
    FErr::Other(format!(
        "unknown hash algorithm '{algo}', expect 'blake3', 'md5', 'sha1', 'sha256', or 'sha512'"
    ))
}

/// The digest in `body`, in base-16, Nix base-32 or base-64 (SRI hashes are always base-64).
fn decode_hash_body(original: &str, body: &str, algo: &str, sri: bool) -> FResult<Vec<u8>> {
    let size = hash_size(algo).ok_or_else(|| unknown_algo(algo))?;
    let base64 = |what: &str| -> FResult<Vec<u8>> {
        match crate::eval::builtins::base64_decode(body) {
            Some(b) if b.len() == size => Ok(b),
            Some(_) => failure(format!("invalid {what} hash '{original}'")),
            None => failure(format!("invalid base-64 hash '{original}'")),
        }
    };
    if sri {
        return base64("SRI");
    }
    if body.len() == size * 2 {
        return (0..size)
            .map(|i| body.get(2 * i..2 * i + 2).and_then(|h| u8::from_str_radix(h, 16).ok()))
            .collect::<Option<Vec<u8>>>()
            .ok_or_else(|| FErr::Other(format!("invalid base-16 hash '{original}'")));
    }
    if body.len() == crate::store::hash::nix32_len(size) {
        return crate::store::hash::nix32_decode(body, size)
            .map_err(|_| FErr::Other(format!("invalid base-32 hash '{original}'")));
    }
    if body.len() == size.div_ceil(3) * 4 {
        return base64("base-64");
    }
    failure(format!("hash '{body}' has wrong length for hash algorithm '{algo}'"))
}

/// Splits `algo:body` or the SRI form `algo-body`; the flag says which.
fn split_hash_prefix(s: &str) -> Option<(&str, &str, bool)> {
    if let Some((a, b)) = s.split_once(':') {
        return Some((a, b, false));
    }
    s.split_once('-').map(|(a, b)| (a, b, true))
}

/// A hash with or without a type prefix; an unprefixed one is of type `algo` (Nix's `Hash::parseAny`).
pub(super) fn parse_hash_any(s: &str, algo: &str) -> FResult<(String, Vec<u8>)> {
    match split_hash_prefix(s) {
        Some((a, body, sri)) => {
            if hash_size(a).is_none() {
                return Err(unknown_algo(a));
            }
            if a != algo {
                return failure(format!("hash '{s}' should have type '{algo}'"));
            }
            Ok((a.to_string(), decode_hash_body(s, body, a, sri)?))
        }
        None => Ok((algo.to_string(), decode_hash_body(s, s, algo, false)?)),
    }
}

/// A hash that names its type (Nix's `Hash::parseAnyPrefixed`).
fn parse_hash_prefixed(s: &str) -> FResult<(String, Vec<u8>)> {
    match split_hash_prefix(s) {
        Some((a, body, sri)) => {
            if hash_size(a).is_none() {
                return Err(unknown_algo(a));
            }
            Ok((a.to_string(), decode_hash_body(s, body, a, sri)?))
        }
        None => failure(format!("hash '{s}' does not include a type")),
    }
}

/// The input's `rev` in base 16 (a commit hash), if it has one.
pub(super) fn get_rev(attrs: &FAttrs) -> FResult<Option<String>> {
    let Some(s) = maybe_str(attrs, "rev")? else {
        return Ok(None);
    };
    let (_, bytes) = match parse_hash_prefixed(&s) {
        Ok(h) => h,
        Err(_) => parse_hash_any(&s, "sha1")?,
    };
    Ok(Some(crate::store::hash::hex(&bytes)))
}

/// The input's `narHash` in SRI form, if it has one; it must be SHA-256.
pub(super) fn get_nar_hash(attrs: &FAttrs) -> FResult<Option<String>> {
    let Some(s) = maybe_str(attrs, "narHash")? else {
        return Ok(None);
    };
    let bytes = if s.is_empty() {
        vec![0u8; 32]
    } else {
        let Some((algo, body)) = s.split_once('-') else {
            return failure(format!("hash '{s}' is not SRI"));
        };
        if hash_size(algo).is_none() {
            return Err(unknown_algo(algo));
        }
        if algo != "sha256" {
            return failure("narHash must use SHA-256");
        }
        decode_hash_body(&s, body, algo, true)?
    };
    Ok(Some(format!("sha256-{}", crate::eval::builtins::base64_encode(&bytes))))
}
